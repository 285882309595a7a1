//! A tiny `--name value` parser: the generator needs no more.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

/// Options given as `--name value` pairs.
#[derive(Debug, Default)]
pub struct Args {
    values: HashMap<String, String>,
}

impl Args {
    /// Parses `--name value` pairs; anything else is an error.
    pub fn parse(args: impl IntoIterator<Item = String>) -> Result<Args, String> {
        let mut values = HashMap::new();
        let mut args = args.into_iter();
        while let Some(arg) = args.next() {
            let Some(name) = arg.strip_prefix("--") else {
                return Err(format!("unexpected argument {arg:?}"));
            };
            let value = args
                .next()
                .ok_or_else(|| format!("--{name} needs a value"))?;
            values.insert(name.to_string(), value);
        }
        Ok(Args { values })
    }

    /// The value of `--name`, parsed, or `default`.
    pub fn get<T: FromStr>(&self, name: &str, default: T) -> Result<T, String> {
        match self.values.get(name) {
            None => Ok(default),
            Some(v) => v.parse().map_err(|_| format!("bad --{name} {v:?}")),
        }
    }

    /// The value of `--name` as a string, or `default`.
    pub fn string(&self, name: &str, default: &str) -> String {
        self.values
            .get(name)
            .cloned()
            .unwrap_or_else(|| default.to_string())
    }

    /// The value of `--name`, required.
    pub fn required<T: FromStr>(&self, name: &str) -> Result<T, String> {
        let v = self
            .values
            .get(name)
            .ok_or_else(|| format!("--{name} is required"))?;
        v.parse().map_err(|_| format!("bad --{name} {v:?}"))
    }

    /// Seconds (fractions allowed) as a duration, or `default` seconds.
    pub fn seconds(&self, name: &str, default: f64) -> Result<Duration, String> {
        let s: f64 = self.get(name, default)?;
        if !(0.0..=3600.0).contains(&s) {
            return Err(format!("--{name} must be 0..=3600 seconds"));
        }
        Ok(Duration::from_secs_f64(s))
    }
}
