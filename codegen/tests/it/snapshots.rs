//! Snapshots of the generated templates, one per fixture and format.

use crate::support::{COMMIT, example_dir, fixture, repo_with, with_packer};
use codegen::{Commit, Format};
use std::path::Path;

/// Every template of `layers_file` for an output folder `out` next to it, as one text.
pub fn generated(layers_file: &Path, format: Format, commit: &Commit) -> String {
    let layers = codegen::layers::load(layers_file).expect("fixture loads");
    let out = layers_file.parent().expect("folder").join("out");
    let files = codegen::generate(&layers, format, commit, &out).expect("generate");
    files.iter().map(|f| format!("==> {} <==\n{}", f.path.display(), f.text)).collect::<Vec<_>>().join("\n")
}

fn format_name(format: Format) -> &'static str {
    match format {
        Format::Json => "json",
        Format::Hcl => "hcl",
    }
}

#[test]
fn templates_of_every_fixture() {
    let fixtures = [
        ("minimal", fixture("minimal").join("layers.toml")),
        ("edge_cases", fixture("edge-cases").join("layers.toml")),
        ("example", example_dir().join("layers.toml")),
        ("agent", fixture("agent").join("layers.toml")),
    ];
    for (name, file) in &fixtures {
        for format in [Format::Json, Format::Hcl] {
            let text = generated(file, format, &Commit::Given(COMMIT.into()));
            insta::assert_snapshot!(format!("{name}_{}", format_name(format)), text);
        }
    }
}

#[test]
fn templates_for_current_packer() {
    // HCL2 only. The example as it is but for `packer = ">= 1.10"`: next to its
    // Packer 1.6 snapshot, the difference is what the target adds.
    let example = with_packer(&example_dir(), ">= 1.10");
    let fixtures = [
        ("current", fixture("current").join("layers.toml")),
        ("example_current", example.path().join("layers.toml")),
    ];
    for (name, file) in &fixtures {
        let text = generated(file, Format::Hcl, &Commit::Given(COMMIT.into()));
        insta::assert_snapshot!(format!("{name}_hcl"), text);
    }
}

#[test]
fn the_commit_comes_from_git_head() {
    let repo = repo_with(&fixture("minimal"));
    let head = crate::support::git(repo.path(), &["rev-parse", "HEAD"]);
    let file = repo.path().join("images/layers.toml");
    let text = generated(&file, Format::Hcl, &Commit::Head);
    assert!(text.contains(&format!("default     = \"{head}\"")), "{text}");
    // The commit changes with every run of this test: redact it.
    insta::with_settings!({ filters => vec![(r"\b[0-9a-f]{40}\b", "[commit]")] }, {
        insta::assert_snapshot!("minimal_hcl_from_git_head", text);
    });
}

#[test]
fn no_repository_no_silent_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::copy_tree(&fixture("minimal"), dir.path());
    let layers = codegen::layers::load(&dir.path().join("layers.toml")).expect("loads");
    let error =
        codegen::generate(&layers, Format::Json, &Commit::Head, &dir.path().join("out")).expect_err("no git");
    assert_eq!(error.exit_code(), 1);
    assert!(error.to_string().contains("pass --commit"), "{error}");

    let bad = codegen::generate(&layers, Format::Json, &Commit::Given("abc123".into()), dir.path())
        .expect_err("short");
    assert_eq!(bad.exit_code(), 2);
}
