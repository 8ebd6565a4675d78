//! `ssh_source_cidrs`: who may reach the build instance over SSH. How it resolves,
//! the warning for Packer 1.6's open default, every problem at its line, what real
//! Packer makes of the key, and that it leaves fingerprints alone.

use crate::support::{
    COMMIT, codegen, copy_tree, edit, example_dir, fixture, invalid_at, open_ssh, packer, stderr, stdout,
    with_packer,
};
use codegen::{Commit, Format};
use std::path::Path;
use std::process::Command;

fn cidrs(layers_file: &Path) -> Vec<(String, Vec<String>)> {
    let layers = codegen::layers::load(layers_file).expect("loads");
    layers.layers.iter().map(|l| (l.id.clone(), l.ssh_source_cidrs.clone())).collect()
}

fn warnings(layers_file: &Path) -> Vec<String> {
    let layers = codegen::layers::load(layers_file).expect("loads");
    layers.warnings.iter().map(ToString::to_string).collect()
}

#[test]
fn a_layers_own_list_replaces_the_default() {
    let strings = |list: &[&str]| list.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>();
    let default = strings(&["10.0.0.0/8", "192.168.0.0/16"]);
    assert_eq!(
        cidrs(&fixture("edge-cases").join("layers.toml")),
        [
            ("root".to_owned(), default.clone()),
            ("role".to_owned(), strings(&["172.16.0.0/12"])),
            ("app_v2".to_owned(), default),
        ]
    );
    assert!(warnings(&fixture("edge-cases").join("layers.toml")).is_empty());
}

#[test]
fn packer_1_6_warns_once_naming_every_layer_left_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&example_dir(), dir.path());
    let file = dir.path().join("layers.toml");
    open_ssh(&file);
    let warning = |layers: &str, which: &str| {
        format!(
            "{}:14:2: defaults.ssh_source_cidrs: Packer 1.6 opens SSH on the build {layers} to anyone \
             (0.0.0.0/0): set ssh_source_cidrs to the addresses Packer connects from (here or on the \
             {which}), or packer = \">= 1.10\" to let in only the public IP of the machine running Packer",
            file.display()
        )
    };
    assert_eq!(
        warnings(&file),
        [warning(
            "instances of layers \"ubuntu-1804\", \"jenkins-master\", \"jenkins-slave\", \"rails-base\", \
             \"demo-web-app\"",
            "layers"
        )]
    );
    for id in ["ubuntu-1804", "jenkins-master", "jenkins-slave", "rails-base"] {
        let line = format!("id = \"{id}\"\n");
        edit(&file, &line, &format!("{line}ssh_source_cidrs = [\"10.0.0.0/8\"]\n"));
    }
    assert_eq!(warnings(&file), [warning("instance of layer \"demo-web-app\"", "layer")]);
    // Anyone, said on purpose, is no oversight.
    edit(&file, "[defaults]\n", "[defaults]\nssh_source_cidrs = [\"0.0.0.0/0\"]\n");
    assert!(warnings(&file).is_empty());

    // Current Packer narrows SSH to the machine it runs on by itself.
    let current = with_packer(&example_dir(), ">= 1.10");
    assert!(warnings(&current.path().join("layers.toml")).is_empty());
}

#[test]
fn the_command_line_prints_the_warning_and_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&example_dir(), dir.path());
    open_ssh(&dir.path().join("layers.toml"));
    let output = codegen(dir.path(), &["packer", "--out", "out", "--commit", COMMIT]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(stdout(&output).lines().count(), 5);
    let err = stderr(&output);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("warning: layers.toml:14:2: defaults.ssh_source_cidrs: Packer 1.6 opens SSH"),
        "{err}"
    );
    let output = codegen(dir.path(), &["packer", "--out", "out", "--check"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).starts_with("warning: "), "{}", stderr(&output));
    // A plan writes no template, so it has nothing to warn about.
    let output = codegen(dir.path(), &["plan"]);
    assert!(output.status.success() && stderr(&output).is_empty(), "{}", stderr(&output));
}

#[test]
fn every_problem_with_the_settings_is_reported_where_it_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = r#"project = "p"

[defaults]
region = "eu-west-1"
instance_type = "t3.small"
ssh_username = "ubuntu"
ssh_source_cidrs = ["10.0.0.0/8", "10.0.0.0/8", "172.16.0.1/12"]
deprecate_after_days = 3651

[[layer]]
id = "a"
source = { owners = ["self"], name = "x-*" }
ssh_source_cidrs = ["fd00::/8", "10.0.0.0/40"]

[[layer]]
id = "b"
parent = "a"
ssh_source_cidrs = []
"#;
    let error = codegen::layers::parse(&dir.path().join("layers.toml"), text).expect_err("broken");
    let found = invalid_at(&error);
    assert_eq!(
        found,
        [
            (7, 35, "defaults.ssh_source_cidrs[1]"),
            (7, 49, "defaults.ssh_source_cidrs[2]"),
            (8, 1, "defaults.deprecate_after_days"),
            (8, 1, "defaults.deprecate_after_days"),
            (13, 21, "layer[0].ssh_source_cidrs[0]"),
            (13, 33, "layer[0].ssh_source_cidrs[1]"),
            (18, 1, "layer[1].ssh_source_cidrs"),
        ],
        "{error}"
    );
    let text = error.to_string();
    for expected in [
        "defaults.ssh_source_cidrs[1]: \"10.0.0.0/8\" repeats the block of \"10.0.0.0/8\"",
        "defaults.ssh_source_cidrs[2]: \"172.16.0.1/12\" has address bits set past its /12 prefix: the block is \"172.16.0.0/12\"",
        "defaults.deprecate_after_days: deprecate_after_days is a number of days from 1 to 3650 (AWS deprecates at most 10 years ahead), not 3651",
        "defaults.deprecate_after_days: deprecate_after_days needs packer = \">= 1.10\"",
        "layer[0].ssh_source_cidrs[0]: \"fd00::/8\" is an IPv6 block: Packer 1.6 hands every block to AWS as an IPv4 range",
        "layer[0].ssh_source_cidrs[1]: \"10.0.0.0/40\" is not a CIDR block: the prefix length of this address is 0 to 32, not \"40\"",
        "layer[1].ssh_source_cidrs: list at least one CIDR block",
    ] {
        assert!(text.contains(expected), "{expected}\nnot in:\n{text}");
    }
    // Layer `b` inherits nothing wrong: only its own empty list is reported for it.
    assert_eq!(text.matches("layer[1]").count(), 1, "{text}");

    // With current Packer, IPv6 blocks and deprecation are fine; a wrong `packer`
    // is reported alone, without the problems that depend on it.
    let text = text_with_packer(">= 1.10", "fd00::/8", 90);
    assert!(codegen::layers::parse(&dir.path().join("layers.toml"), &text).is_ok());
    let text = text_with_packer("1.10", "fd00::/8", 90);
    let error = codegen::layers::parse(&dir.path().join("layers.toml"), &text).expect_err("broken");
    let codegen::Error::Invalid(diagnostics) = &error else { panic!("{error}") };
    let keys: Vec<&str> = diagnostics.iter().map(|d| d.key.as_str()).collect();
    assert_eq!(keys, ["packer"], "{error}");
}

fn text_with_packer(packer: &str, cidr: &str, days: u32) -> String {
    format!(
        "project = \"p\"\npacker = \"{packer}\"\n\n[defaults]\nregion = \"eu-west-1\"\ninstance_type = \
         \"t3.small\"\nssh_username = \"ubuntu\"\ndeprecate_after_days = {days}\n\n[[layer]]\nid = \"a\"\n\
         source = {{ owners = [\"self\"], name = \"x-*\" }}\nssh_source_cidrs = [\"{cidr}\"]\n"
    )
}

#[test]
fn the_settings_leave_fingerprints_alone() {
    for packer in ["1.6", ">= 1.10"] {
        let dir = with_packer(&example_dir(), packer);
        let file = dir.path().join("layers.toml");
        open_ssh(&file);
        let layers = codegen::layers::load(&file).expect("loads");
        let before = codegen::fingerprint::fingerprints(&layers).expect("fingerprints");
        edit(&file, "[defaults]\n", "[defaults]\nssh_source_cidrs = [\"10.0.0.0/8\"]\n");
        edit(
            &file,
            "id = \"rails-base\"\n",
            "id = \"rails-base\"\nssh_source_cidrs = [\"192.168.0.0/16\"]\n",
        );
        let layers = codegen::layers::load(&file).expect("loads");
        assert_eq!(codegen::fingerprint::fingerprints(&layers).expect("fingerprints"), before, "{packer}");
    }
}

#[test]
fn packer_1_6_takes_the_blocks_as_its_own_setting() {
    // The fixture's templates pass `packer validate` (see `example`); here a broken
    // block in them must fail it, so Packer reads the key rather than ignores it.
    for format in [Format::Json, Format::Hcl] {
        let layers = codegen::layers::load(&fixture("edge-cases").join("layers.toml")).expect("loads");
        let out = tempfile::tempdir().expect("tempdir");
        let files =
            codegen::generate(&layers, format, &Commit::Given(COMMIT.into()), out.path()).expect("generate");
        codegen::write(out.path(), &files).expect("write");
        let root = out.path().join("root").join(format.file_name());
        let text = std::fs::read_to_string(&root).expect("read");
        assert!(text.contains("\"192.168.0.0/16\""), "{text}");
        std::fs::write(&root, text.replace("\"192.168.0.0/16\"", "\"192.168.0.0/33\"")).expect("write");
        let output = Command::new(packer())
            .current_dir(out.path())
            .args(["validate", root.to_str().expect("UTF-8 path")])
            .env("CHECKPOINT_DISABLE", "1")
            .output()
            .expect("packer");
        let said = format!("{}{}", stdout(&output), stderr(&output));
        assert!(!output.status.success(), "{format:?}: {said}");
        assert!(said.contains("temporary_security_group_source_cidrs"), "{format:?}: {said}");
    }
}
