//! Every example is built and linted: `examples/Cargo.toml` (the
//! `boardcast-examples` package) turns Cargo's discovery of examples off,
//! so an `examples/*.rs` it does not declare would be silently left out of
//! `cargo build --examples`, `cargo test` and clippy. And the examples
//! need none of the test-only crates: a first `cargo run --example
//! dashboard` does not build them.

use std::collections::BTreeSet;
use std::path::Path;
use std::process::Command;

/// The `path`s of the manifest's `[[example]]` tables.
fn declared(manifest: &str) -> BTreeSet<String> {
    let mut paths = BTreeSet::new();
    let mut in_example = false;
    for line in manifest.lines().map(str::trim) {
        if line.starts_with('[') {
            in_example = line == "[[example]]";
        } else if let Some(value) = line.strip_prefix("path").map(str::trim_start) {
            if in_example {
                if let Some(value) = value.strip_prefix('=') {
                    paths.insert(value.trim().trim_matches('"').to_string());
                }
            }
        }
    }
    paths
}

#[test]
fn every_example_is_declared_in_examples_cargo_toml() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples");
    let manifest = std::fs::read_to_string(dir.join("Cargo.toml")).expect("examples/Cargo.toml");
    let declared = declared(&manifest);
    let files: BTreeSet<String> = std::fs::read_dir(&dir)
        .expect("examples/")
        .map(|entry| entry.expect("an entry of examples/").file_name())
        .filter_map(|name| name.into_string().ok())
        .filter(|name| name.ends_with(".rs"))
        .collect();
    assert!(files.contains("dashboard.rs"), "{files:?}");
    let missing: Vec<_> = files.difference(&declared).collect();
    assert!(
        missing.is_empty(),
        "not declared in examples/Cargo.toml (add an [[example]] with its name and path): \
         {missing:?}"
    );
    let gone: Vec<_> = declared.difference(&files).collect();
    assert!(
        gone.is_empty(),
        "examples/Cargo.toml declares missing files: {gone:?}"
    );
}

#[test]
fn the_parser_reads_only_example_tables() {
    let manifest = "[package]\nname = \"x\"\n[[example]]\nname = \"a\"\npath = \"a.rs\"\n\
                    test = true\n[[bin]]\npath = \"b.rs\"\n[[example]]\npath=\"c.rs\"\n";
    assert_eq!(
        declared(manifest),
        BTreeSet::from(["a.rs".into(), "c.rs".into()])
    );
}

#[test]
fn the_examples_build_no_test_only_crate() {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let tree = Command::new(cargo)
        .args(["tree", "--quiet", "--locked", "-p", "boardcast-examples"])
        .args(["--all-features", "-e", "normal,build", "--prefix", "none"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
        .expect("run cargo tree");
    let tree = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.contains("boardcast v"),
        "cargo tree printed no tree: {tree}"
    );
    // The dev-dependencies of the root package, and what they bring.
    for test_only in ["proptest", "tungstenite", "syn"] {
        assert!(
            !tree
                .lines()
                .any(|l| l.starts_with(&format!("{test_only} v"))),
            "the examples depend on {test_only}: a first run would build it\n{tree}"
        );
    }
}
