//! The layers have no arrow running upward, and the files no import cycle
//! (issue 12). Bottom to top: core < hub < blocking layer < runtime.
//!
//! - a) a file refers only to modules of its own layer or lower ones;
//! - b) the core names no transport: sockets, threads, channels, files;
//! - c) the hub names no socket and nothing above it;
//! - d) no files import each other, directly or around a loop.
//!
//! `lib.rs` re-exports everything and is exempt from a) to c). To add a module,
//! put its top-level name in `LAYERS`, in the lowest layer whose rules it obeys.
//!
//! The checker is a small lexer, not a parser: it blanks comments, string and
//! character literals and `#[cfg(test)]` items (test code may import freely),
//! then follows `use` trees and `crate::`, `super::`, `self::` and child-module
//! paths. `mod x;` declares a child; it is not a dependency, but a `use` is.
//! A module's `pub use` of its own child is its table of contents, not a
//! dependency either: a path through it is followed to the child's file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Layer {
    Core,
    Hub,
    Blocking,
    Runtime,
}

/// Every top-level module of `src/`, with its layer.
const LAYERS: &[(&str, Layer)] = &[
    ("error", Layer::Core),
    ("config", Layer::Core),
    ("message", Layer::Core),
    ("frame", Layer::Core),
    ("handshake", Layer::Core),
    ("protocol", Layer::Core),
    ("extension", Layer::Core),
    ("hub", Layer::Hub),
    ("wire", Layer::Hub),
    ("connection", Layer::Blocking),
    ("socket", Layer::Blocking),
    ("server", Layer::Runtime),
    ("client", Layer::Runtime),
];

/// Rule b: what the core never names (`std::io` and `std::sync::Arc` are fine).
const CORE_BANNED: &str = "std::net std::thread std::sync::mpsc crossbeam TcpStream \
    TcpListener UnixStream std::os:: std::fs std::process";
const CORE_WHY: &str = "rule b: the core must not depend on the transport: it is the sans-IO \
    protocol; sockets, threads, channels, files and processes belong to the layers above";

/// Rule c: what the hub never names (threads and crossbeam channels are fine).
const HUB_BANNED: &str = "std::net TcpStream TcpListener UnixStream std::os:: IoSlice \
    set_nonblocking crate::server crate::connection crate::socket";
const HUB_WHY: &str = "rule c: the hub must stay transport-free: sockets, vectored writes \
    and the connection and server above it are not its business";

const D_WHY: &str = "files must depend one way only, so that each can be read, tested and \
    changed without the others";

impl Layer {
    fn name(self) -> &'static str {
        ["core", "hub", "blocking layer", "runtime"][self as usize]
    }
}

fn layer_of(module: &str) -> Result<Layer, String> {
    let found = LAYERS.iter().find(|(name, _)| *name == module);
    found.map(|&(_, layer)| layer).ok_or_else(|| match module {
        "" => "the crate root (lib.rs) re-exports every layer: import from the module".into(),
        _ => format!(
            "unknown module {module}: add it to the layer table in tests/layering.rs \
             (an item re-exported by lib.rs: import it from its own module)"
        ),
    })
}

/// One file after lexing: its module path, its code without comments,
/// literals or test items, and the paths it refers to.
struct File {
    path: String,
    module: Vec<String>,
    code: String,
    refs: Vec<Ref>,
}

/// A path a file refers to: `crate::` and the absolute path inside the
/// crate, or a path outside it as written (`std::net::TcpStream`).
struct Ref {
    line: usize,
    path: Vec<String>,
    /// Whether it came from a `pub use`: a re-export, when it names a child.
    public: bool,
}

impl Ref {
    /// The module path inside the crate, without `crate`.
    fn inside(&self) -> Option<&[String]> {
        let rooted = self.path.first().is_some_and(|p| p == "crate");
        rooted.then(|| &self.path[1..])
    }
}

fn is_ident(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

fn blank(chars: &mut [char]) {
    for c in chars.iter_mut().filter(|c| **c != '\n') {
        *c = ' ';
    }
}

/// The source with comments and string and character literals blanked; lines are kept.
fn strip(src: &str) -> Vec<char> {
    let mut c: Vec<char> = src.chars().collect();
    let mut i = 0;
    while i < c.len() {
        let end = literal_or_comment_end(&c, i);
        blank(&mut c[i..end]);
        i = end.max(i + 1);
    }
    c
}

/// Where the comment or literal that starts at `i` ends; `i` when none starts there.
fn literal_or_comment_end(c: &[char], i: usize) -> usize {
    let at = |k: usize| c.get(k).copied().unwrap_or('\0');
    let after = |from: usize, end: &dyn Fn(usize) -> bool| (from..c.len()).find(|&k| end(k));
    if at(i) == '/' && at(i + 1) == '/' {
        return after(i, &|k| c[k] == '\n').unwrap_or(c.len());
    }
    if at(i) == '/' && at(i + 1) == '*' {
        let (mut depth, mut k) = (1, i + 2);
        while depth > 0 && k < c.len() {
            match (at(k), at(k + 1)) {
                ('/', '*') => (depth, k) = (depth + 1, k + 2),
                ('*', '/') => (depth, k) = (depth - 1, k + 2),
                _ => k += 1,
            }
        }
        return k.min(c.len());
    }
    let prefix = i == 0 || !is_ident(c[i - 1]); // `b"`, `r#"`: not the end of a name
    let k = i + usize::from(prefix && matches!((at(i), at(i + 1)), ('b' | 'c', '"' | '\'' | 'r')));
    if prefix && at(k) == 'r' && matches!(at(k + 1), '"' | '#') {
        let hashes = (k + 1..c.len()).take_while(|&j| c[j] == '#').count();
        let close = |j: usize| c[j] == '"' && (1..=hashes).all(|h| at(j + h) == '#');
        let end = after(k + 2 + hashes, &close).map_or(c.len(), |j| j + 1 + hashes);
        return if at(k + 1 + hashes) == '"' { end } else { i }; // else `r#name`
    }
    if at(k) == '"' {
        let mut j = k + 1;
        while j < c.len() && c[j] != '"' {
            j += if c[j] == '\\' { 2 } else { 1 };
        }
        return (j + 1).min(c.len());
    }
    match (at(k), at(k + 1), at(k + 2)) {
        ('\'', '\\', _) => after(k + 3, &|j| c[j] == '\'').map_or(c.len(), |j| j + 1),
        ('\'', x, '\'') if x != '\'' => k + 3, // `'x'`; a lifetime `'a` has no closing quote
        _ => i,
    }
}

struct Tok {
    text: String,
    line: usize,
    start: usize,
    end: usize,
}

fn tokens(c: &[char]) -> Vec<Tok> {
    let (mut out, mut i, mut line) = (Vec::new(), 0, 1);
    while i < c.len() {
        let start = i;
        if c[i].is_whitespace() {
            line += usize::from(c[i] == '\n');
            i += 1;
            continue;
        }
        let name = c[i..].iter().take_while(|&&ch| is_ident(ch)).count();
        i += name.max(1 + usize::from(c[i..].starts_with(&[':', ':'])));
        let text = c[start..i].iter().collect();
        out.push(Tok {
            text,
            line,
            start,
            end: i,
        });
    }
    out
}

fn text(toks: &[Tok], k: usize) -> &str {
    toks.get(k).map_or("", |t| t.text.as_str())
}

fn seq(toks: &[Tok], k: usize, words: &str) -> bool {
    (words.split(' ').enumerate()).all(|(n, w)| text(toks, k + n) == w)
}

fn nesting(token: &str) -> i32 {
    match token {
        "{" | "[" | "(" => 1,
        "}" | "]" | ")" => -1,
        _ => 0,
    }
}

/// Blanks each `#[cfg(test)]` item; returns the names of out-of-line test
/// modules (`#[cfg(test)] mod tests;`), whose files are test code too.
fn blank_tests(c: &mut [char]) -> Vec<String> {
    let toks = tokens(c);
    let (mut names, mut i) = (Vec::new(), 0);
    while i < toks.len() {
        if seq(&toks, i, "# ! [ cfg ( test ) ]") {
            blank(c);
            break;
        }
        if !seq(&toks, i, "# [ cfg ( test ) ]") {
            i += 1;
            continue;
        }
        let (mut e, mut depth) = (i + 7, 0);
        while e < toks.len() {
            depth += nesting(&toks[e].text);
            e += 1;
            if depth == 0 && matches!(text(&toks, e - 1), ";" | "}") {
                break;
            }
        }
        if let [.., m, name, end] = &toks[i + 7..e] {
            if m.text == "mod" && end.text == ";" {
                names.push(name.text.clone());
            }
        }
        blank(&mut c[toks[i].start..toks[e - 1].end]);
        i = e;
    }
    names
}

/// Parses the `use` tree at token `i` under `path`; pushes each full path with its line.
fn use_tree(
    toks: &[Tok],
    mut i: usize,
    mut path: Vec<String>,
    out: &mut Vec<(usize, Vec<String>)>,
) -> usize {
    let mut line = toks.get(i).map_or(0, |t| t.line);
    loop {
        match text(toks, i) {
            "::" | "*" => i += 1,
            "as" => i += 2,
            "{" => {
                i += 1;
                while !matches!(text(toks, i), "}" | "") {
                    i = use_tree(toks, i, path.clone(), out);
                    if text(toks, i) != "," {
                        break;
                    }
                    i += 1;
                }
                return i + usize::from(text(toks, i) == "}");
            }
            w if w.starts_with(is_ident) => {
                line = toks[i].line;
                if w != "self" || path.is_empty() {
                    path.push(w.to_string());
                }
                i += 1;
            }
            _ => break,
        }
    }
    out.push((line, path));
    i
}

/// `crate::` and the absolute path, for a path into the crate seen from module `here`.
fn resolve(here: &[String], children: &BTreeSet<&str>, path: Vec<String>) -> Vec<String> {
    let ups = path.iter().take_while(|s| *s == "super").count();
    let (base, skip) = match path.first().map_or("", String::as_str) {
        "crate" => (&here[..0], 1),
        "self" => (here, 1),
        "super" => (&here[..here.len().saturating_sub(ups)], ups),
        w if children.contains(w) => (here, 0),
        _ => return path,
    };
    let mut absolute = vec!["crate".to_string()];
    absolute.extend(base.iter().chain(&path[skip..]).cloned());
    absolute
}

/// Every path the tokens refer to: `use` trees, and `crate::`, `super::`,
/// `self::` and child-module paths in code.
fn references(module: &[String], toks: &[Tok]) -> Vec<Ref> {
    let mods = toks.windows(2).filter(|w| w[0].text == "mod");
    let children: BTreeSet<&str> = mods.map(|w| w[1].text.as_str()).collect();
    let (mut refs, mut paths, mut here) = (Vec::new(), Vec::new(), module.to_vec());
    let (mut depth, mut inline, mut i) = (0, Vec::new(), 0); // inline: depth inside each `mod x {`
    let mut public = false;
    while i < toks.len() {
        let (word, before) = (text(toks, i), if i == 0 { "" } else { text(toks, i - 1) });
        let rooted = matches!(word, "crate" | "super" | "self") || children.contains(word);
        match word {
            "{" => depth += 1,
            "}" => {
                if inline.last() == Some(&depth) {
                    inline.pop();
                    here.pop();
                }
                depth -= 1;
            }
            "mod" if text(toks, i + 2) == "{" => {
                inline.push(depth + 1);
                here.push(text(toks, i + 1).to_string());
            }
            "use" => {
                public =
                    before == "pub" || (before == ")" && text(toks, i.saturating_sub(4)) == "pub");
                i = use_tree(toks, i + 1, Vec::new(), &mut paths) - 1;
            }
            _ if rooted && text(toks, i + 1) == "::" && !matches!(before, "::" | ".") => {
                let mut path = vec![word.to_string()];
                while text(toks, i + 1) == "::" && text(toks, i + 2).starts_with(is_ident) {
                    path.push(text(toks, i + 2).to_string());
                    i += 2;
                }
                paths.push((toks[i].line, path));
            }
            _ => {}
        }
        for (line, path) in paths.drain(..) {
            refs.push(Ref {
                line,
                path: resolve(&here, &children, path),
                public,
            });
        }
        public = false;
        i += 1;
    }
    refs
}

/// `src/a/b.rs` and `src/a/b/mod.rs` are `a::b`; `src/lib.rs` is the root.
fn module_of(path: &str) -> Vec<String> {
    let path = path.trim_start_matches("src/").trim_end_matches(".rs");
    let mut module: Vec<String> = path.split('/').map(String::from).collect();
    if matches!(module.last().map(String::as_str), Some("mod" | "lib")) {
        module.pop();
    }
    module
}

fn analyse(files: &[(String, String)]) -> Vec<File> {
    let (mut out, mut tests) = (Vec::new(), Vec::new());
    for (path, src) in files {
        let (mut code, module) = (strip(src), module_of(path));
        for name in blank_tests(&mut code) {
            tests.push([&module[..], &[name]].concat());
        }
        let refs = references(&module, &tokens(&code));
        let (path, code) = (path.clone(), code.into_iter().collect());
        out.push(File {
            path,
            module,
            code,
            refs,
        });
    }
    out.retain(|f: &File| !tests.iter().any(|t| f.module.starts_with(t)));
    out
}

/// Rule a: no reference to a module of a higher layer, nor to an unclassified one.
fn upward_arrows(files: &[File]) -> Vec<String> {
    let mut out = Vec::new();
    for f in files.iter().filter(|f| !f.module.is_empty()) {
        let from = match layer_of(&f.module[0]) {
            Ok(layer) => layer,
            Err(e) => {
                out.push(format!("{}: rule a: {e}", f.path));
                continue;
            }
        };
        for r in &f.refs {
            let Some(inside) = r.inside() else { continue };
            let at = format!("{}:{}: `{}`: rule a:", f.path, r.line, r.path.join("::"));
            match layer_of(inside.first().map_or("", String::as_str)) {
                Err(e) => out.push(format!("{at} {e}")),
                Ok(to) if to > from => out.push(format!(
                    "{at} the {} must not depend on the {}: a file may use only its own \
                     layer and lower ones (core < hub < blocking layer < runtime)",
                    from.name(),
                    to.name()
                )),
                Ok(_) => {}
            }
        }
    }
    out
}

/// Rules b and c: the files of `layer` never mention a `banned` name.
fn banned_names(files: &[File], layer: Layer, banned: &str, why: &str) -> Vec<String> {
    let mut out = BTreeMap::new();
    for f in files {
        if f.module.first().and_then(|m| layer_of(m).ok()) != Some(layer) {
            continue;
        }
        let lines = (1..).zip(f.code.lines().map(|l| l.trim().to_string()));
        let uses = f.refs.iter().map(|r| (r.line, r.path.join("::")));
        for (line, text) in lines.chain(uses) {
            let hay = format!("{text}::");
            for word in banned.split_whitespace() {
                let mut found = hay.match_indices(word).map(|(k, _)| &hay[..k]);
                if found.any(|before| !before.ends_with(is_ident)) {
                    let message = format!("{}:{line}: `{text}` mentions `{word}`: {why}", f.path);
                    out.entry((&f.path, line, word)).or_insert(message);
                }
            }
        }
    }
    out.into_values().collect()
}

/// The file that defines module `path`: the deepest of `a/b.rs`, `a/b/mod.rs`, `a.rs`, `a/mod.rs`.
fn file_of(path: &[String], files: &[File]) -> Option<usize> {
    let find = |p: &str| files.iter().position(|f| f.path == p);
    let deepest = (1..=path.len()).rev().find_map(|k| {
        let base = format!("src/{}", path[..k].join("/"));
        find(&format!("{base}.rs")).or_else(|| find(&format!("{base}/mod.rs")))
    });
    deepest.or_else(|| find("src/lib.rs"))
}

/// A module's `pub use` of its own child: its table of contents, not a
/// dependency. Paths through it lead to the child that defines the item.
fn reexport<'r>(f: &File, r: &'r Ref) -> Option<&'r [String]> {
    let inside = r.inside()?;
    let own_child = inside.len() > f.module.len() + 1 && inside.starts_with(&f.module);
    (r.public && own_child).then_some(inside)
}

/// Rule d: no files that reach each other through their references.
fn import_cycles(files: &[File]) -> Vec<String> {
    let (n, mut edges) = (files.len(), BTreeMap::new());
    let mut exported = BTreeMap::new(); // `a::Item` -> `a::child::Item`
    for f in files {
        for inside in f.refs.iter().filter_map(|r| reexport(f, r)) {
            let name = [&f.module[..], &inside[inside.len() - 1..]].concat();
            exported.insert(name, inside.to_vec());
        }
    }
    let target = |inside: &[String]| {
        let through = (1..=inside.len()).find_map(|k| {
            let child = exported.get(&inside[..k])?;
            Some([&child[..], &inside[k..]].concat())
        });
        file_of(through.as_deref().unwrap_or(inside), files)
    };
    for (a, f) in files.iter().enumerate() {
        for r in f.refs.iter().filter(|r| reexport(f, r).is_none()) {
            match r.inside().and_then(target) {
                Some(b) if b != a => {
                    let at = format!("{}:{}: `{}`", f.path, r.line, r.path.join("::"));
                    edges.entry((a, b)).or_insert(at);
                }
                _ => {}
            }
        }
    }
    let mut reach = vec![vec![false; n]; n];
    edges.keys().for_each(|&(a, b)| reach[a][b] = true);
    for k in 0..n {
        let via = reach[k].clone();
        for row in reach.iter_mut().filter(|row| row[k]) {
            row.iter_mut().zip(&via).for_each(|(cell, &v)| *cell |= v);
        }
    }
    let mut out = Vec::new();
    for (i, row) in reach.iter().enumerate() {
        let cyclic = |j: usize| row[j] && reach[j][i];
        let group: Vec<usize> = (i..n).filter(|&j| j == i || cyclic(j)).collect();
        if group.len() < 2 || (0..i).any(cyclic) {
            continue; // no cycle, or one reported from its first file
        }
        let names: Vec<&str> = group.iter().map(|&k| files[k].path.as_str()).collect();
        let mut cycle = format!("rule d: import cycle between {}: {D_WHY}", names.join(", "));
        for ((a, b), at) in &edges {
            if group.contains(a) && group.contains(b) {
                cycle += &format!("\n    {at} -> {}", files[*b].path);
            }
        }
        out.push(cycle);
    }
    out
}

fn check(rule: char, files: &[File]) -> Vec<String> {
    match rule {
        'a' => upward_arrows(files),
        'b' => banned_names(files, Layer::Core, CORE_BANNED, CORE_WHY),
        'c' => banned_names(files, Layer::Hub, HUB_BANNED, HUB_WHY),
        _ => import_cycles(files),
    }
}

/// Every `.rs` file under `src/`, as (`src/a/b.rs`, source).
fn read_src() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let (mut files, mut dirs) = (Vec::new(), vec![root.join("src")]);
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("src/ is readable").path();
            let relative = path.strip_prefix(root).expect("under the manifest dir");
            let name = relative.to_string_lossy().replace('\\', "/");
            if path.is_dir() {
                dirs.push(path);
            } else if name.ends_with(".rs") {
                files.push((name, std::fs::read_to_string(&path).expect("UTF-8 source")));
            }
        }
    }
    assert!(
        files.iter().any(|(p, _)| p == "src/lib.rs"),
        "found no src/lib.rs"
    );
    files.sort();
    files
}

fn assert_clean(rule: char) {
    let v = check(rule, &analyse(&read_src()));
    assert!(
        v.is_empty(),
        "{} violation(s):\n{}\n",
        v.len(),
        v.join("\n")
    );
}

#[test]
fn rule_a_no_layer_depends_on_a_higher_one() {
    assert_clean('a');
}

#[test]
fn rule_b_the_core_names_no_transport() {
    assert_clean('b');
}

#[test]
fn rule_c_the_hub_names_no_socket() {
    assert_clean('c');
}

#[test]
fn rule_d_no_import_cycle_between_files() {
    assert_clean('d');
}

/// The checker's own cases. Each starts `=== ` with what the rules must
/// report: `b2` is two violations of rule b, and every violation contains the
/// text after ` | `. Then its fake files, each `--- path` and its source.
const CASES: &str = r##"
=== b2 | src/frame.rs:2: `use std::net::TcpStream;`
--- src/frame.rs
use std::io;
use std::net::TcpStream;
=== b3 | src/protocol/x.rs:1:
--- src/protocol/x.rs
use std::{io, net, sync::{mpsc, Arc}, thread};
=== b0
--- src/error.rs
use std::io::{self, Read};
use std::sync::Arc;
=== a1 | `crate::server::X`: rule a: the hub must not depend on the runtime
--- src/hub/mod.rs
use crate::{frame, server::X};
=== c1 | `crate::server::X` mentions `crate::server`
--- src/hub/mod.rs
use crate::{frame, server::X};
=== a1 | `crate::connection::go`: rule a: the hub must not depend on the blocking layer
--- src/hub/t.rs
fn f() { super::super::connection::go() }
=== a1 | unknown module widget: add it to the layer table in tests/layering.rs
--- src/frame.rs
use crate::widget::W;
=== a0 c0
--- src/hub/mod.rs
use std::thread;
use crossbeam_channel::Sender;
use crate::frame::OpCode;
=== d1 | between src/error.rs, src/frame.rs
--- src/error.rs
use crate::frame::C;
--- src/frame.rs
use crate::error::E;
=== d0
--- src/hub/mod.rs
mod topic;
--- src/hub/topic.rs
use super::Hub;
=== d0
--- src/hub/mod.rs
mod topic;
pub use topic::Topic;
--- src/hub/topic.rs
use super::Hub;
=== d1 | between src/hub/mod.rs, src/hub/topic.rs
--- src/hub/mod.rs
mod topic;
fn f() -> topic::Topic { todo!() }
--- src/hub/topic.rs
use super::Hub;
=== d1 | between src/hub/a.rs, src/hub/b.rs
--- src/hub/mod.rs
mod a;
mod b;
pub use a::A;
pub(crate) use b::B;
--- src/hub/a.rs
use crate::hub::B;
--- src/hub/b.rs
use super::A;
=== b1 a0 d0 | src/frame.rs:15: `use std::net::Oops;` mentions `std::net`
--- src/frame.rs
//! Unlike `std::net::TcpStream`, this does no I/O.
/// See crate::server::Server and std::thread::spawn.
/* a block /* nested std::fs */ comment */
const A: &str = "std::net::TcpStream and \" crate::server";
const B: &str = r#"raw "std::thread" string"#;
const Q: char = '"'; const E: char = '\''; fn f<'a>(x: &'a str) -> &'a str { x }
mod inner { use super::Thing; }
#[cfg(test)]
mod tests {
    use std::thread;
    use crate::server::S;
}
#[cfg(test)]
mod more;
use std::net::Oops;
--- src/frame/more.rs
use crate::server::S;
"##;

#[test]
fn the_checker_flags_what_it_should_and_nothing_else() {
    for case in CASES.split("\n=== ").skip(1) {
        let (header, body) = case.split_once('\n').expect("a header line");
        let (expected, needle) = header.split_once(" | ").unwrap_or((header, ""));
        let fake = body
            .split("--- ")
            .skip(1)
            .map(|file| file.split_once('\n').unwrap());
        let files = analyse(&fake.map(|(p, s)| (p.into(), s.into())).collect::<Vec<_>>());
        for rule in expected.split(' ') {
            let count: usize = rule[1..].parse().expect("a rule letter and a count");
            let v = check(rule.chars().next().unwrap(), &files);
            let ok = v.len() == count && v.iter().all(|m| m.contains(needle));
            assert!(ok, "case `{header}`: rule {rule} reported {v:#?}");
        }
    }
}
