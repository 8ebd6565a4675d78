//! The command line: `--check`, help, exit codes.

use crate::support::{COMMIT, codegen, copy_tree, fixture, stderr, stdout};

#[test]
fn check_passes_on_fresh_output_and_names_every_stale_file() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("edge-cases"), dir.path());
    let run = |args: &[&str]| codegen(dir.path(), args);

    let output = run(&["packer", "--out", "out", "--commit", COMMIT, "--check"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("out/root/packer.json: missing"), "{}", stderr(&output));

    let output = run(&["packer", "--out", "out", "--commit", COMMIT]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 3);
    let output = run(&["packer", "--out", "out", "--check"]);
    assert!(output.status.success(), "without --commit, each file's own commit is kept: {}", stderr(&output));

    // A hand edit, a changed input and a removed layer are all reported.
    let role = dir.path().join("out/role/packer.json");
    let text = std::fs::read_to_string(&role).expect("read");
    std::fs::write(&role, text.replace("c5.large", "c5.xlarge")).expect("write");
    std::fs::create_dir_all(dir.path().join("out/gone")).expect("mkdir");
    std::fs::write(dir.path().join("out/gone/packer.json"), "{}").expect("write");
    let output = run(&["packer", "--out", "out", "--check"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(err.contains("out/role/packer.json: differs"), "{err}");
    assert!(err.contains("out/gone/packer.json: no such layer"), "{err}");
    assert!(!err.contains("out/root/packer.json"), "{err}");

    // HCL output is checked separately from JSON.
    let output = run(&["packer", "--out", "out", "--format", "hcl", "--check", "--commit", COMMIT]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("out/app_v2/packer.pkr.hcl: missing"), "{}", stderr(&output));
}

#[test]
fn writing_twice_changes_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("minimal"), dir.path());
    let args = ["packer", "--out", "out", "--commit", COMMIT, "--format", "hcl"];
    assert!(codegen(dir.path(), &args).status.success());
    let path = dir.path().join("out/base/packer.pkr.hcl");
    let first = std::fs::read(&path).expect("read");
    let modified = std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime");
    assert!(codegen(dir.path(), &args).status.success());
    assert_eq!(std::fs::read(&path).expect("read"), first);
    assert_eq!(std::fs::metadata(&path).and_then(|m| m.modified()).expect("mtime"), modified);
}

#[test]
fn every_subcommand_has_help() {
    let dir = fixture("minimal");
    for sub in [&[][..], &["packer"], &["plan"], &["schema"]] {
        let mut args: Vec<&str> = sub.to_vec();
        args.push("--help");
        let output = codegen(&dir, &args);
        assert!(output.status.success(), "{args:?}");
        assert!(stdout(&output).contains("Usage: immutable-codegen"), "{args:?}: {}", stdout(&output));
    }
    let output = codegen(&dir, &["packer", "--help"]);
    for flag in ["--out", "--format", "--commit", "--check", "--layers"] {
        assert!(stdout(&output).contains(flag), "{flag}");
    }
}

#[test]
fn bad_arguments_exit_2() {
    let dir = fixture("minimal");
    let output = codegen(&dir, &["packer", "--out", "out", "--commit", "HEAD"]);
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("40 lower-case hex digits"), "{}", stderr(&output));
    let output = codegen(&dir, &["packer", "--out", "out", "--format", "yaml"]);
    assert_eq!(output.status.code(), Some(2));
}

#[test]
fn schema_is_json_schema_of_the_layers_file() {
    let output = codegen(&fixture("minimal"), &["schema"]);
    let schema: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema");
    assert_eq!(schema["required"], serde_json::json!(["project"]));
    let text = schema.to_string();
    for variant in ["\"file\"", "\"shell\"", "\"salt-masterless\""] {
        assert!(text.contains(variant), "{variant}");
    }
}
