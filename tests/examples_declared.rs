//! Every example is built and linted: `examples/Cargo.toml` (the
//! `boardcast-examples` package) turns Cargo's discovery of examples off,
//! so an `examples/*.rs` it does not declare would be silently left out of
//! `cargo build --examples`, `cargo test` and clippy.

use std::collections::BTreeSet;
use std::path::Path;

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
