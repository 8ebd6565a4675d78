//! Fingerprints: stable across checkouts, sensitive to exactly the inputs of a layer
//! and its ancestors; `plan --changed-since` built on them.

use crate::support::{codegen, copy_tree, example_dir, git, repo_with, stderr, stdout};
use std::collections::BTreeMap;
use std::path::Path;

fn fingerprints(layers_file: &Path) -> BTreeMap<String, String> {
    let layers = codegen::layers::load(layers_file).expect("loads");
    codegen::fingerprint::fingerprints(&layers).expect("fingerprints")
}

#[test]
fn same_inputs_same_fingerprints_on_another_checkout_path() {
    let original = fingerprints(&example_dir().join("layers.toml"));
    assert_eq!(original.len(), 5);
    let elsewhere = tempfile::tempdir().expect("tempdir");
    let copy = elsewhere.path().join("some/other/place");
    copy_tree(&example_dir(), &copy);
    assert_eq!(fingerprints(&copy.join("layers.toml")), original);
    // Twice in one place, too.
    assert_eq!(fingerprints(&copy.join("layers.toml")), original);
    // All different from each other.
    let distinct: std::collections::BTreeSet<&String> = original.values().collect();
    assert_eq!(distinct.len(), 5);
}

#[test]
fn one_byte_changes_the_layer_and_its_descendants_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&example_dir(), dir.path());
    let before = fingerprints(&dir.path().join("layers.toml"));

    // rails-base provisions files/rails/gemrc.
    let gemrc = dir.path().join("files/rails/gemrc");
    let mut bytes = std::fs::read(&gemrc).expect("read");
    bytes[0] ^= 1;
    std::fs::write(&gemrc, bytes).expect("write");
    let after = fingerprints(&dir.path().join("layers.toml"));

    let changed: Vec<&str> =
        before.keys().filter(|id| before[*id] != after[*id]).map(String::as_str).collect();
    assert_eq!(changed, ["demo-web-app", "rails-base"]);
}

#[test]
fn a_file_inside_a_provisioned_folder_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&example_dir(), dir.path());
    let before = fingerprints(&dir.path().join("layers.toml"));
    std::fs::write(dir.path().join("salt/jenkins-slave/jenkins/extra.sls"), "x: pkg.installed\n")
        .expect("write");
    let after = fingerprints(&dir.path().join("layers.toml"));
    let changed: Vec<&str> =
        before.keys().filter(|id| before[*id] != after[*id]).map(String::as_str).collect();
    assert_eq!(changed, ["jenkins-slave"]);
}

#[test]
fn a_setting_changes_the_fingerprint_but_the_commit_does_not() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&example_dir(), dir.path());
    let file = dir.path().join("layers.toml");
    let before = fingerprints(&file);
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, text.replace("instance_type = \"t3.medium\"", "instance_type = \"t3.large\""))
        .expect("write");
    let after = fingerprints(&file);
    let changed: Vec<&str> =
        before.keys().filter(|id| before[*id] != after[*id]).map(String::as_str).collect();
    assert_eq!(changed, ["jenkins-master"]);

    // Templates generated at two commits carry the same Fingerprint tags.
    let layers = codegen::layers::load(&file).expect("loads");
    let at = |c: &str| {
        codegen::generate(&layers, codegen::Format::Json, &codegen::Commit::Given(c.repeat(40)), dir.path())
            .expect("generate")
    };
    let (a, b) = (at("a"), at("b"));
    for (x, y) in a.iter().zip(&b) {
        assert_ne!(x.text, y.text);
        assert_eq!(x.text.replace(&"a".repeat(40), ""), y.text.replace(&"b".repeat(40), ""));
    }
}

#[test]
fn encrypt_boot_is_on_unless_a_layer_opts_out_and_counts() {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&example_dir(), dir.path());
    let file = dir.path().join("layers.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let with = |extra: &str| {
        let layer = "id = \"rails-base\"\n";
        std::fs::write(&file, text.replace(layer, &format!("{layer}{extra}"))).expect("write");
        let layers = codegen::layers::load(&file).expect("loads");
        let encrypted: Vec<(String, bool)> =
            layers.layers.iter().map(|l| (l.id.clone(), l.encrypt_boot)).collect();
        (fingerprints(&file), encrypted)
    };
    let (default, encrypted) = with("");
    assert!(encrypted.iter().all(|(_, on)| *on), "{encrypted:?}");
    // Saying the default changes nothing.
    assert_eq!(with("encrypt_boot = true\n").0, default);
    // Opting out: another image, so another fingerprint, for the layer and its descendants.
    let (opted_out, encrypted) = with("encrypt_boot = false\n");
    let off: Vec<&str> = encrypted.iter().filter(|(_, on)| !on).map(|(id, _)| id.as_str()).collect();
    assert_eq!(off, ["rails-base"]);
    let changed: Vec<&str> =
        default.keys().filter(|id| default[*id] != opted_out[*id]).map(String::as_str).collect();
    assert_eq!(changed, ["demo-web-app", "rails-base"]);
    // `[defaults]` opts every layer out; a layer's own setting wins.
    let text = text.replace("[defaults]\n", "[defaults]\nencrypt_boot = false\n");
    std::fs::write(&file, &text).expect("write");
    let layers = codegen::layers::load(&file).expect("loads");
    assert!(layers.layers.iter().all(|l| !l.encrypt_boot));
    let layer = "id = \"rails-base\"\n";
    std::fs::write(&file, text.replace(layer, &format!("{layer}encrypt_boot = true\n"))).expect("write");
    let layers = codegen::layers::load(&file).expect("loads");
    let on: Vec<&str> = layers.layers.iter().filter(|l| l.encrypt_boot).map(|l| l.id.as_str()).collect();
    assert_eq!(on, ["rails-base"]);
}

#[test]
fn plan_changed_since_keeps_changed_layers_and_descendants() {
    let repo = repo_with(&example_dir());
    let images = repo.path().join("images");
    let first = git(repo.path(), &["rev-parse", "HEAD"]);

    // Nothing changed since HEAD.
    let output = codegen(&images, &["plan", "--changed-since", "HEAD"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "nothing to build\nunchanged: demo-web-app, jenkins-master, jenkins-slave, rails-base, ubuntu-1804\n"
    );

    // The Ruby install script changed: rails-base and demo-web-app rebuild, in waves
    // of their own (ubuntu-1804 is there already).
    std::fs::write(images.join("scripts/rails/install-ruby.sh"), "#!/bin/sh\necho ruby 3\n").expect("write");
    git(repo.path(), &["commit", "-q", "-am", "ruby 3"]);
    let output = codegen(&images, &["plan", "--changed-since", &first]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        stdout(&output),
        "wave 1: rails-base\nwave 2: demo-web-app\nunchanged: jenkins-master, jenkins-slave, ubuntu-1804\n"
    );

    // Uncommitted changes count too: the working tree is compared with REF.
    std::fs::write(images.join("scripts/base/harden.sh"), "#!/bin/sh\n").expect("write");
    let output = codegen(&images, &["plan", "--changed-since", "HEAD", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    let waves: Vec<Vec<&str>> = json["waves"]
        .as_array()
        .expect("waves")
        .iter()
        .map(|w| w.as_array().expect("wave").iter().filter_map(|l| l["layer"].as_str()).collect())
        .collect();
    assert_eq!(
        waves,
        [vec!["ubuntu-1804"], vec!["jenkins-master", "jenkins-slave", "rails-base"], vec!["demo-web-app"]]
    );

    // An unknown ref is bad input.
    let output = codegen(&images, &["plan", "--changed-since", "no-such-ref"]);
    assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
}

#[test]
fn a_layers_file_new_since_ref_changes_everything() {
    let repo = repo_with(&crate::support::fixture("minimal"));
    let images = repo.path().join("images");
    copy_tree(&example_dir(), &repo.path().join("new"));
    let output = codegen(&repo.path().join("new"), &["plan", "--changed-since", "HEAD"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(stderr(&output).contains("did not exist at HEAD"), "{}", stderr(&output));
    assert!(stdout(&output).starts_with("wave 1: ubuntu-1804\n"), "{}", stdout(&output));
    drop(images);
}
