//! The error corpus: every file under `tests/errors/` is broken in one way and says,
//! on its first line (`# expect: LINE:COLUMN: KEY: MESSAGE`), what must be reported.

use crate::support::{codegen, crate_dir, stderr};
use std::path::PathBuf;

fn corpus() -> Vec<PathBuf> {
    let dir = crate_dir().join("tests/errors");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("tests/errors")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

fn expectation(file: &PathBuf) -> String {
    let text = std::fs::read_to_string(file).expect("read");
    let first = text.lines().next().unwrap_or_default();
    first
        .strip_prefix("# expect: ")
        .unwrap_or_else(|| panic!("{} has no `# expect:` line", file.display()))
        .to_owned()
}

#[test]
fn every_broken_file_is_reported_with_file_line_and_key() {
    let files = corpus();
    assert!(files.len() >= 10, "the corpus has {} files", files.len());
    let mut failures = Vec::new();
    for file in &files {
        let expected = format!("{}:{}", file.display(), expectation(file));
        match codegen::layers::load(file) {
            Ok(_) => failures.push(format!("{}: loaded without error", file.display())),
            Err(error) => {
                assert_eq!(error.exit_code(), 2, "{}", file.display());
                let actual = error.to_string();
                if actual != expected {
                    failures.push(format!("expected: {expected}\n  actual: {actual}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn the_binary_prints_the_diagnostic_and_exits_2() {
    let dir = crate_dir().join("tests/errors");
    let output = codegen(&dir, &["plan", "--layers", "unknown_parent.toml"]);
    assert_eq!(output.status.code(), Some(2));
    let expected = format!("error: unknown_parent.toml:{}", expectation(&dir.join("unknown_parent.toml")));
    assert_eq!(stderr(&output).trim(), expected);
}

#[test]
fn several_problems_are_all_reported_in_line_order() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("layers.toml");
    std::fs::write(
        &file,
        "project = \"p\"\n\n[[layer]]\nid = \"a\"\nparent = \"nope\"\n\n[[layer]]\nid = \"a:b\"\nparent = \"a\"\n",
    )
    .expect("write");
    let error = codegen::layers::load(&file).expect_err("broken");
    let codegen::Error::Invalid(diagnostics) = &error else { panic!("{error}") };
    let keys: Vec<(usize, &str)> = diagnostics.iter().map(|d| (d.line, d.key.as_str())).collect();
    assert_eq!(
        keys,
        [(4, "layer[0].id"), (5, "layer[0].parent"), (8, "layer[1].id"), (8, "layer[1].id"),],
        "{error}"
    );
}

#[test]
fn an_unreadable_layers_file_is_bad_input() {
    let output = codegen(&crate_dir(), &["plan", "--layers", "no/such/layers.toml"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(
        stderr(&output).contains("no/such/layers.toml: cannot read the layers file"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn no_prefix_of_a_layers_file_makes_the_reader_panic() {
    // Truncated files hit every syntax error path and odd spans in the diagnostics.
    let mut files = corpus();
    files.push(crate::support::example_dir().join("layers.toml"));
    for file in files {
        let text = std::fs::read_to_string(&file).expect("read");
        for end in (0..=text.len()).filter(|&i| text.is_char_boundary(i)) {
            if let Err(codegen::Error::Invalid(diagnostics)) = codegen::layers::parse(&file, &text[..end]) {
                assert!(!diagnostics.is_empty(), "{}: empty error at {end}", file.display());
                for d in &diagnostics {
                    assert!(d.line >= 1, "{}: {d}", file.display());
                }
            }
        }
    }
}
