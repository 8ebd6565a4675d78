//! `examples/images`: its plan, its committed templates, and what real Packer says
//! of the templates in both formats.

use crate::support::{COMMIT, codegen, example_dir, repo_root, run_packer, stderr, stdout};
use codegen::{Commit, Format};

const LAYERS: [&str; 5] = ["ubuntu-1804", "jenkins-master", "jenkins-slave", "rails-base", "demo-web-app"];

#[test]
fn plan_waves_of_the_example() {
    let (plan, note) = codegen::plan::plan_file(&example_dir().join("layers.toml"), None).expect("plan");
    assert_eq!(note, None);
    assert_eq!(
        plan.ids(),
        vec![
            vec!["ubuntu-1804"],
            vec!["jenkins-master", "jenkins-slave", "rails-base"],
            vec!["demo-web-app"]
        ]
    );
    assert!(plan.unchanged.is_empty());

    let output = codegen(&example_dir(), &["plan"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "wave 1: ubuntu-1804\nwave 2: jenkins-master, jenkins-slave, rails-base\nwave 3: demo-web-app\n"
    );
    let output = codegen(&example_dir(), &["plan", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("plan --json is JSON");
    assert_eq!(json["waves"][1][2]["layer"], "rails-base");
    assert_eq!(json["waves"][2][0]["parent"], "rails-base");
    assert_eq!(json["waves"][0][0]["fingerprint"].as_str().map(str::len), Some(64));
}

#[test]
fn committed_templates_are_current() {
    // What CI runs: the commit in each file is kept, everything else must match.
    let output = codegen(
        &repo_root(),
        &["packer", "-f", "examples/images/layers.toml", "--out", "examples/images/out", "--check"],
    );
    assert!(
        output.status.success(),
        "examples/images/out is stale; run `cargo run -p codegen -- packer -f examples/images/layers.toml --out examples/images/out`:\n{}",
        stderr(&output)
    );
    for layer in LAYERS {
        assert!(example_dir().join("out").join(layer).join("packer.json").is_file(), "{layer}");
    }
}

#[test]
fn committed_schema_is_current() {
    let on_disk = std::fs::read_to_string(example_dir().join("layers.schema.json")).expect("schema");
    let output = codegen(&repo_root(), &["schema"]);
    assert!(output.status.success());
    assert_eq!(
        on_disk,
        stdout(&output),
        "run `cargo run -p codegen -- schema > examples/images/layers.schema.json`"
    );
    let schema: serde_json::Value = serde_json::from_str(&on_disk).expect("JSON");
    assert!(schema["properties"]["layer"].is_object(), "{schema}");
    assert!(schema["$defs"]["ProvisionerDef"].is_object(), "{schema}");
}

/// Generates the example in `format` into a folder outside the repository and runs
/// `packer validate` on every template from yet another folder, so relative paths
/// to provisioned files must resolve from the template itself.
fn validate(layers_file: &std::path::Path, format: Format) -> tempfile::TempDir {
    let layers = codegen::layers::load(layers_file).expect("fixture loads");
    let out = tempfile::tempdir().expect("tempdir");
    let files =
        codegen::generate(&layers, format, &Commit::Given(COMMIT.into()), out.path()).expect("generate");
    codegen::write(out.path(), &files).expect("write");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for file in &files {
        let path = out.path().join(&file.path);
        let path = path.to_str().expect("UTF-8 path");
        run_packer(elsewhere.path(), &["validate", path]);
        run_packer(
            elsewhere.path(),
            &["validate", "-var", &format!("commit={COMMIT}"), "-var", "parent=ami-0123456789abcdef0", path],
        );
        // What immutable_layered_ami passes when its provider has a profile and an
        // EC2 endpoint: the template declares every variable.
        run_packer(
            elsewhere.path(),
            &[
                "validate",
                "-var",
                "region=us-east-1",
                "-var",
                "profile=ops",
                "-var",
                "ec2_endpoint=http://127.0.0.1:5000",
                path,
            ],
        );
    }
    out
}

#[test]
fn json_templates_pass_packer_validate() {
    validate(&example_dir().join("layers.toml"), Format::Json);
    validate(&crate::support::fixture("edge-cases").join("layers.toml"), Format::Json);
}

#[test]
fn hcl_templates_pass_packer_validate_and_fmt() {
    for fixture in [example_dir(), crate::support::fixture("edge-cases")] {
        let out = validate(&fixture.join("layers.toml"), Format::Hcl);
        let layers = codegen::layers::load(&fixture.join("layers.toml")).expect("loads");
        for layer in &layers.layers {
            let path = out.path().join(&layer.id).join("packer.pkr.hcl");
            run_packer(out.path(), &["fmt", "-check", path.to_str().expect("UTF-8 path")]);
        }
    }
}

#[test]
fn packer_validate_rejects_a_template_whose_script_is_gone() {
    // The validation above is only worth something if Packer checks the paths.
    let dir = tempfile::tempdir().expect("tempdir");
    crate::support::copy_tree(&example_dir(), dir.path());
    let layers = codegen::layers::load(&dir.path().join("layers.toml")).expect("copy loads");
    let out = dir.path().join("hcl-out");
    let files =
        codegen::generate(&layers, Format::Hcl, &Commit::Given(COMMIT.into()), &out).expect("generate");
    codegen::write(&out, &files).expect("write");
    std::fs::remove_file(dir.path().join("scripts/base/harden.sh")).expect("rm");
    let output = std::process::Command::new(crate::support::packer())
        .args(["validate", "ubuntu-1804/packer.pkr.hcl"])
        .current_dir(&out)
        .env("CHECKPOINT_DISABLE", "1")
        .output()
        .expect("packer");
    assert!(!output.status.success());
    assert!(stdout(&output).contains("harden.sh"), "{}", stdout(&output));
}

#[test]
fn a_write_removes_the_templates_of_layers_that_left_the_file_and_only_those() {
    let layers = codegen::layers::load(&example_dir().join("layers.toml")).expect("example loads");
    let out = tempfile::tempdir().expect("tempdir");
    let files = codegen::generate(&layers, Format::Json, &Commit::Given(COMMIT.into()), out.path())
        .expect("generate");
    codegen::write(out.path(), &files).expect("write");
    // A layer generated earlier and since removed from the file, and a hand-written
    // template in the same folder.
    let retired = out.path().join("retired-layer");
    std::fs::create_dir(&retired).expect("mkdir");
    std::fs::copy(out.path().join("rails-base/packer.json"), retired.join("packer.json")).expect("copy");
    let handmade = out.path().join("handmade");
    std::fs::create_dir(&handmade).expect("mkdir");
    std::fs::write(handmade.join("packer.json"), "{\"builders\": []}\n").expect("write");

    let (removed, kept) = codegen::remove_stale(out.path(), Format::Json, &files).expect("remove");
    assert_eq!(removed, [retired.join("packer.json")]);
    assert_eq!(kept, [handmade.join("packer.json")]);
    assert!(!retired.exists(), "its emptied folder goes too");
    assert!(handmade.join("packer.json").is_file(), "a file not generated here stays");
    for file in &files {
        assert!(out.path().join(&file.path).is_file(), "current layers stay: {}", file.path.display());
    }
    let differences = codegen::check(out.path(), Format::Json, &files).expect("check");
    assert_eq!(differences, [codegen::Difference::Stale(handmade.join("packer.json"))]);
}
