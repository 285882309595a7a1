//! The examples' command lines: `--name value` options and at most one bare
//! address, with a usage line on any mistake. Each example uses part of it.

#![allow(dead_code)]

use std::str::FromStr;

/// The arguments not yet taken.
pub struct Args {
    name: &'static str,
    usage: &'static str,
    rest: Vec<String>,
}

impl Args {
    /// The process's arguments; `-h` or `--help` prints the usage and
    /// exits with success.
    pub fn new(name: &'static str, usage: &'static str) -> Args {
        let args = Args {
            name,
            usage,
            rest: std::env::args().skip(1).collect(),
        };
        if args.rest.iter().any(|a| a == "-h" || a == "--help") {
            println!("usage: {name} {usage}");
            std::process::exit(0);
        }
        args
    }

    /// The value of `--option`, or `default` if it is absent.
    pub fn option<T: FromStr>(&mut self, option: &str, default: T) -> T {
        let Some(at) = self.rest.iter().position(|a| a == option) else {
            return default;
        };
        if at + 1 >= self.rest.len() {
            self.fail(&format!("{option} needs a value"));
        }
        let value = self.rest.remove(at + 1);
        self.rest.remove(at);
        value
            .parse()
            .unwrap_or_else(|_| self.fail(&format!("bad {option} {value:?}")))
    }

    /// The bare argument (the address to listen on), or `default`.
    pub fn address(&mut self, default: &str) -> String {
        match self.rest.iter().position(|a| !a.starts_with('-')) {
            Some(at) => self.rest.remove(at),
            None => default.to_string(),
        }
    }

    /// Fails on any argument left over.
    pub fn finish(self) {
        if let Some(arg) = self.rest.first() {
            self.fail(&format!("unknown argument {arg}"));
        }
    }

    /// Prints `problem` and the usage line, and exits with status 2.
    pub fn fail(&self, problem: &str) -> ! {
        if !problem.is_empty() {
            eprintln!("{}: {problem}", self.name);
        }
        eprintln!("usage: {} {}", self.name, self.usage);
        std::process::exit(2);
    }
}
