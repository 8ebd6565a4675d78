//! `packer = ">= 1.10"`: templates for current Packer. HCL2 only, with the command
//! line's default format following the setting; what the target does to the
//! fingerprints; and what the Packer 1.6 of these tests makes of such a template.

use crate::support::{
    COMMIT, changed, codegen, copy_tree, edit, example_dir, fixture, invalid_at, packer, stderr, stdout,
    with_packer,
};
use codegen::{Commit, Format};
use std::collections::BTreeMap;
use std::path::Path;
use std::process::Command;

fn fingerprints(layers_file: &Path) -> BTreeMap<String, String> {
    let layers = codegen::layers::load(layers_file).expect("loads");
    codegen::fingerprint::fingerprints(&layers).expect("fingerprints")
}

#[test]
fn json_is_refused_at_the_line_of_the_setting() {
    let layers = codegen::layers::load(&fixture("current").join("layers.toml")).expect("loads");
    let out = tempfile::tempdir().expect("tempdir");
    let error = codegen::generate(&layers, Format::Json, &Commit::Given(COMMIT.into()), out.path())
        .expect_err("no JSON for current Packer");
    let found = invalid_at(&error);
    assert_eq!(found, [(5, 1, "packer")], "{error}");
    assert!(error.to_string().contains("HCL2 only"), "{error}");

    // The command line says the same, writes nothing, and exits 2.
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("current"), dir.path());
    let output = codegen(dir.path(), &["packer", "--out", "out", "--format", "json", "--commit", COMMIT]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
    assert_eq!(
        stderr(&output).trim(),
        "error: layers.toml:5:1: packer: templates for Packer 1.10 and later are HCL2 only: a JSON \
         template cannot declare the amazon plugin (`required_plugins`) that this Packer no longer \
         bundles; use --format hcl (the default with this setting)"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn without_format_the_command_line_writes_what_the_target_takes() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("current"), dir.path());
    let output = codegen(dir.path(), &["packer", "--out", "out", "--commit", COMMIT]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "out/base/packer.pkr.hcl\nout/web/packer.pkr.hcl\n");
    assert_eq!(stderr(&output), "", "every layer's SSH is narrowed: no warning");
    let output = codegen(dir.path(), &["packer", "--out", "out", "--check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(!dir.path().join("out/base/packer.json").exists());

    // Packer 1.6 keeps JSON as the default.
    let dir = with_packer(&fixture("minimal"), "1.6");
    let output = codegen(dir.path(), &["packer", "--out", "out", "--commit", COMMIT]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output), "out/base/packer.json\n");
}

#[test]
fn the_target_counts_in_fingerprints_through_imds_support_only() {
    let original = fingerprints(&example_dir().join("layers.toml"));
    // Saying the default changes nothing.
    let explicit = with_packer(&example_dir(), "1.6");
    assert_eq!(fingerprints(&explicit.path().join("layers.toml")), original);

    // Current Packer's images require IMDSv2: every layer is another image.
    let current = with_packer(&example_dir(), ">= 1.10");
    let file = current.path().join("layers.toml");
    let on_current = fingerprints(&file);
    assert_eq!(changed(&original, &on_current).len(), original.len());

    // A higher minimum version, a deprecation time and SSH access are no part of
    // the image.
    edit(&file, "packer = \">= 1.10\"", "packer = \">= 1.11.2\"");
    assert_eq!(fingerprints(&file), on_current);
    edit(&file, "[defaults]\n", "[defaults]\ndeprecate_after_days = 30\n");
    assert_eq!(fingerprints(&file), on_current);
    edit(&file, "ssh_source_cidrs = [\"10.0.0.0/8\"]", "ssh_source_cidrs = [\"192.168.0.0/16\"]");
    assert_eq!(fingerprints(&file), on_current);
    edit(&file, "id = \"rails-base\"\n", "id = \"rails-base\"\ndeprecate_after_days = 7\n");
    assert_eq!(fingerprints(&file), on_current);
    let layers = codegen::layers::load(&file).expect("loads");
    let days: Vec<(&str, Option<u32>)> =
        layers.layers.iter().map(|l| (l.id.as_str(), l.deprecate_after_days)).collect();
    assert_eq!(
        days,
        [
            ("ubuntu-1804", Some(30)),
            ("jenkins-master", Some(30)),
            ("jenkins-slave", Some(30)),
            ("rails-base", Some(7)),
            ("demo-web-app", Some(30))
        ]
    );
    // They do change the templates.
    let text = crate::snapshots::generated(&file, Format::Hcl, &Commit::Given(COMMIT.into()));
    assert_eq!(text.matches("deprecate_at        = timeadd(timestamp(), \"720h\")").count(), 4, "{text}");
    assert_eq!(text.matches("deprecate_at        = timeadd(timestamp(), \"168h\")").count(), 1, "{text}");
    assert!(!text.contains("source_public_ip"), "{text}");
}

/// `packer version`: major and minor.
fn packer_version() -> Option<(u32, u32)> {
    let output = Command::new(packer()).arg("version").env("CHECKPOINT_DISABLE", "1").output().ok()?;
    let text = stdout(&output);
    let version = text.split_whitespace().find_map(|w| w.strip_prefix('v'))?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    Some((parts.next()??, parts.next()??))
}

#[test]
fn packer_fmt_keeps_them_and_an_older_packer_refuses_them_by_version() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("current"), dir.path());
    let layers = codegen::layers::load(&dir.path().join("layers.toml")).expect("loads");
    let out = dir.path().join("out");
    let files =
        codegen::generate(&layers, Format::Hcl, &Commit::Given(COMMIT.into()), &out).expect("generate");
    codegen::write(&out, &files).expect("write");
    for file in &files {
        let path = out.join(&file.path);
        let path = path.to_str().expect("UTF-8 path");
        // Formatting is syntax alone, which any HCL2 Packer checks.
        crate::support::run_packer(dir.path(), &["fmt", "-check", path]);
        let Some(version) = packer_version() else { panic!("cannot read `packer version`") };
        if version >= (1, 10) {
            // Validating needs the plugin, which `packer init` would download.
            continue;
        }
        // The Packer of these tests: it stops at required_version, before it builds
        // anything with keys it does not know.
        let output = Command::new(packer())
            .current_dir(dir.path())
            .args(["validate", path])
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("packer");
        let said = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!output.status.success(), "{said}");
        assert!(said.contains("Unsupported Packer Core version") && said.contains(">= 1.11.2"), "{said}");
    }
}
