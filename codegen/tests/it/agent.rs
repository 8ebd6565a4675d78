//! Layers that bake `immutable-agent`: how the option resolves, what the templates
//! install, what real Packer says of them, and how the option feeds the fingerprint.

use crate::support::{COMMIT, changed, copy_tree, edit, fixture, invalid_at, packer, run_packer, stdout};
use codegen::{Commit, Format, Layers};
use std::collections::BTreeMap;
use std::path::Path;

/// The fixture's default binary path, absent from the fixture itself.
const BINARY: &str = "build/immutable-agent";

/// A copy of the agent fixture in a temporary folder, with a stand-in binary where
/// the fixture expects the built one (`packer validate` checks that it exists).
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(&fixture("agent"), dir.path());
    std::fs::create_dir_all(dir.path().join("build")).expect("mkdir");
    std::fs::write(dir.path().join(BINARY), "#!/bin/sh\n# stand-in for immutable-agent\n").expect("write");
    dir
}

fn load(file: &Path) -> Layers {
    codegen::layers::load(file).expect("loads")
}

fn fingerprints(file: &Path) -> BTreeMap<String, String> {
    codegen::fingerprint::fingerprints(&load(file)).expect("fingerprints")
}

#[test]
fn the_option_resolves_over_defaults_and_built_in_paths() {
    let layers = load(&fixture("agent").join("layers.toml"));
    let agent = |id: &str| layers.get(id).and_then(|l| l.agent.clone());
    assert_eq!(agent("base"), None);
    let web = agent("web").expect("web bakes the agent");
    assert_eq!(web.binary, BINARY);
    assert_eq!(web.unit, "agent/immutable-agent.service");
    assert_eq!(web.options.as_deref(), Some("--poll-interval 5s"));
    let worker = agent("worker").expect("worker bakes the agent");
    assert_eq!((worker.binary.as_str(), worker.options), (BINARY, None));

    // No [defaults.agent]: next to the layers file; `false` and an empty option.
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(dir.path().join("immutable-agent.service"), "[Service]\n").expect("write");
    std::fs::create_dir(dir.path().join("units")).expect("mkdir");
    std::fs::write(dir.path().join("units/agent.service"), "[Service]\n").expect("write");
    let text = r#"project = "p"

[defaults]
region = "eu-west-1"
instance_type = "t3.small"
ssh_username = "ubuntu"

[[layer]]
id = "a"
source = { owners = ["self"], name = "x-*" }
agent = true

[[layer]]
id = "b"
parent = "a"
agent = false

[[layer]]
id = "c"
parent = "a"

[layer.agent]
binary = "./bin/../bin/immutable-agent"
unit = "units/agent.service"
options = "  "
"#;
    let layers = codegen::layers::parse(&dir.path().join("layers.toml"), text).expect("loads");
    let agent = |id: &str| layers.get(id).and_then(|l| l.agent.clone());
    let a = agent("a").expect("a bakes the agent");
    assert_eq!(
        (a.binary.as_str(), a.unit.as_str(), a.options),
        ("immutable-agent", "immutable-agent.service", None)
    );
    assert_eq!(agent("b"), None);
    let c = agent("c").expect("c bakes the agent");
    assert_eq!(
        (c.binary.as_str(), c.unit.as_str(), c.options),
        ("bin/immutable-agent", "units/agent.service", None)
    );
}

#[test]
fn every_problem_with_the_option_is_reported_where_it_was_written() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::create_dir(dir.path().join("bin")).expect("mkdir");
    let text = r#"project = "p"

[defaults]
region = "eu-west-1"
instance_type = "t3.small"
ssh_username = "ubuntu"
agent = { unit = "nowhere.service", options = "--say 'hi'" }

[[layer]]
id = "a"
source = { owners = ["self"], name = "x-*" }
agent = { binary = "/usr/local/bin/immutable-agent" }

[[layer]]
id = "b"
parent = "a"
agent = { binary = "bin", unit = "bin", options = "--ok" }
"#;
    let error = codegen::layers::parse(&dir.path().join("layers.toml"), text).expect_err("broken");
    let found = invalid_at(&error);
    assert_eq!(
        found,
        [
            (7, 11, "defaults.agent.unit"),
            (7, 37, "defaults.agent.options"),
            (12, 11, "layer[0].agent.binary"),
            (17, 11, "layer[1].agent.binary"),
            (17, 27, "layer[1].agent.unit"),
        ],
        "{error}"
    );
    let text = error.to_string();
    for expected in [
        "defaults.agent.unit: the agent unit \"nowhere.service\" does not exist",
        "defaults.agent.options: agent options may hold letters, digits, spaces and - _ . , : = / + @ (they are written through a shell into a systemd environment file), not '\\''",
        "layer[0].agent.binary: the agent binary \"/usr/local/bin/immutable-agent\" must be a relative path (from the layers file's folder); at build time, -var agent_binary=PATH takes any path",
        "layer[1].agent.binary: the agent binary \"bin\" is a directory",
        "layer[1].agent.unit: the agent unit \"bin\" is not a file",
    ] {
        assert!(text.contains(expected), "{expected}\nnot in:\n{text}");
    }
    // Layer `a` inherits the bad unit and options too, but each is reported once, where
    // it was written.
    assert_eq!(text.matches("nowhere.service").count(), 1, "{text}");
}

#[test]
fn the_json_template_uploads_installs_and_enables_the_agent() {
    let layers = load(&fixture("agent").join("layers.toml"));
    let out = fixture("agent").join("out");
    let files =
        codegen::generate(&layers, Format::Json, &Commit::Given(COMMIT.into()), &out).expect("generate");
    let template = |id: &str| -> serde_json::Value {
        let file = files.iter().find(|f| f.layer == id).expect("generated");
        serde_json::from_str(&file.text).expect("JSON")
    };

    let base = template("base");
    assert_eq!(
        base["variables"],
        serde_json::json!({
            "commit": COMMIT, "parent": "", "region": "eu-west-1", "profile": "", "ec2_endpoint": ""
        })
    );
    assert!(base.get("provisioners").is_none(), "{base}");

    let web = template("web");
    assert_eq!(web["variables"]["agent_binary"], "{{template_dir}}/../../build/immutable-agent");
    assert_eq!(web["variables"]["agent_unit"], "{{template_dir}}/../../agent/immutable-agent.service");
    let provisioners = web["provisioners"].as_array().expect("provisioners");
    assert_eq!(provisioners.len(), 4, "the layer's own, then the agent's three: {web}");
    assert_eq!(provisioners[0]["inline"][0], "echo web", "the layer's own provisioners run first");
    assert_eq!(
        provisioners[1],
        serde_json::json!({ "type": "file", "source": "{{user `agent_binary`}}", "destination": "/tmp/immutable-agent" })
    );
    assert_eq!(
        provisioners[2],
        serde_json::json!({ "type": "file", "source": "{{user `agent_unit`}}", "destination": "/tmp/immutable-agent.service" })
    );
    assert_eq!(
        provisioners[3],
        serde_json::json!({
            "type": "shell",
            "inline": [
                "install -D -m 0755 /tmp/immutable-agent /usr/local/bin/immutable-agent",
                "install -D -m 0644 /tmp/immutable-agent.service /etc/systemd/system/immutable-agent.service",
                "mkdir -p /etc/default && echo 'IMMUTABLE_AGENT_OPTIONS=\"--poll-interval 5s\"' > /etc/default/immutable-agent",
                "rm -f /tmp/immutable-agent /tmp/immutable-agent.service",
                "systemctl enable immutable-agent"
            ],
            "execute_command": "sudo sh -e '{{ .Path }}'"
        })
    );
    let commands = provisioners[3]["inline"].to_string();
    assert!(!commands.contains("--now") && !commands.contains("systemctl start"), "enabled, not started");

    // No options: an inherited options file does not survive into this image.
    let worker = template("worker");
    assert_eq!(worker["provisioners"][2]["inline"][2], "rm -f /etc/default/immutable-agent");
}

/// Generates the fixture copy in `format` into `out` and runs `packer validate` on
/// every template from another folder, with `extra` arguments.
fn validate_all(images: &Path, format: Format, out: &Path, extra: &[&str]) {
    let layers = load(&images.join("layers.toml"));
    let files = codegen::generate(&layers, format, &Commit::Given(COMMIT.into()), out).expect("generate");
    codegen::write(out, &files).expect("write");
    let elsewhere = tempfile::tempdir().expect("tempdir");
    for file in &files {
        let path = out.join(&file.path);
        let mut args = vec!["validate"];
        args.extend_from_slice(extra);
        args.push(path.to_str().expect("UTF-8 path"));
        run_packer(elsewhere.path(), &args);
        if format == Format::Hcl {
            run_packer(elsewhere.path(), &["fmt", "-check", path.to_str().expect("UTF-8 path")]);
        }
    }
}

/// `packer validate ARGS` in `cwd`: whether it passed, and what it printed.
fn try_validate(cwd: &Path, args: &[&str]) -> (bool, String) {
    let output = std::process::Command::new(packer())
        .current_dir(cwd)
        .arg("validate")
        .args(args)
        .env("CHECKPOINT_DISABLE", "1")
        .env("PACKER_CACHE_DIR", cwd.join(".packer-cache"))
        .output()
        .expect("packer");
    (output.status.success(), format!("{}{}", stdout(&output), String::from_utf8_lossy(&output.stderr)))
}

#[test]
fn templates_with_the_agent_pass_packer_validate_in_both_formats() {
    for format in [Format::Json, Format::Hcl] {
        let images = fixture_copy();
        let out = tempfile::tempdir().expect("tempdir");
        validate_all(images.path(), format, out.path(), &[]);
        validate_all(
            images.path(),
            format,
            out.path(),
            &["-var", &format!("commit={COMMIT}"), "-var", "parent=ami-0123456789abcdef0"],
        );

        // Packer checks that the binary is there: without it, validation fails and
        // names it, so the passes above mean something.
        std::fs::remove_file(images.path().join(BINARY)).expect("rm");
        let web = out.path().join("web").join(format.file_name());
        let web = web.to_str().expect("UTF-8 path");
        let (ok, said) = try_validate(out.path(), &[web]);
        assert!(!ok && said.contains("immutable-agent"), "{format:?}: {said}");

        // A pipeline points the variables elsewhere (relative to Packer's folder, or
        // absolute).
        let built = tempfile::tempdir().expect("tempdir");
        std::fs::write(built.path().join("immutable-agent"), "#!/bin/sh\n").expect("write");
        std::fs::write(built.path().join("agent.service"), "[Service]\n").expect("write");
        let binary = format!("agent_binary={}", built.path().join("immutable-agent").display());
        let (ok, said) =
            try_validate(built.path(), &["-var", &binary, "-var", "agent_unit=agent.service", web]);
        assert!(ok, "{format:?}: {said}");
        let (ok, said) =
            try_validate(built.path(), &["-var", &binary, "-var", "agent_unit=missing.service", web]);
        assert!(!ok && said.contains("missing.service"), "{format:?}: {said}");
    }
}

#[test]
fn the_option_changes_the_fingerprint_of_its_layer_and_descendants_only() {
    let images = fixture_copy();
    let file = images.path().join("layers.toml");
    // A child of `web`, so that descendants are seen to follow.
    let text = std::fs::read_to_string(&file).expect("read");
    std::fs::write(&file, format!("{text}\n[[layer]]\nid = \"web-canary\"\nparent = \"web\"\n"))
        .expect("write");
    let mut before = fingerprints(&file);

    let mut step = |from: &str, to: &str, expected: &[&str]| {
        edit(&file, from, to);
        let after = fingerprints(&file);
        assert_eq!(changed(&before, &after), expected, "{from:?} -> {to:?}");
        before = after;
    };
    step("--poll-interval 5s", "--poll-interval 10s", &["web", "web-canary"]);
    step("agent = { options = \"--poll-interval 10s\" }", "agent = false", &["web", "web-canary"]);
    step("agent = false", "agent = true", &["web", "web-canary"]);
    // [defaults.agent] counts for every layer that bakes the agent, and only for those.
    step(
        "binary = \"build/immutable-agent\"",
        "binary = \"build/agent/immutable-agent\"",
        &["web", "web-canary", "worker"],
    );

    // The unit's content counts; the binary's does not (it is rebuilt at will, and is
    // not there when a plan looks at an older commit).
    let unit = images.path().join("agent/immutable-agent.service");
    std::fs::write(&unit, "[Service]\nExecStart=/usr/local/bin/immutable-agent --verbose\n").expect("write");
    let after = fingerprints(&file);
    assert_eq!(changed(&before, &after), ["web", "web-canary", "worker"]);
    std::fs::create_dir_all(images.path().join("build/agent")).expect("mkdir");
    std::fs::write(images.path().join("build/agent/immutable-agent"), "other bytes").expect("write");
    assert_eq!(fingerprints(&file), after);
}

#[test]
fn agent_false_is_the_same_image_as_no_agent() {
    let images = fixture_copy();
    let file = images.path().join("layers.toml");
    let with_true = load(&file);
    edit(&file, "agent = true", "agent = false");
    let with_false = fingerprints(&file);
    edit(&file, "agent = false", "");
    let without = fingerprints(&file);
    assert_eq!(with_false, without);
    assert_ne!(
        with_false["worker"],
        codegen::fingerprint::fingerprints(&with_true).expect("fingerprints")["worker"]
    );
}

#[test]
fn the_schema_describes_the_option() {
    let schema = codegen::model::json_schema();
    let layer = &schema["$defs"]["LayerDef"]["properties"]["agent"];
    assert!(layer.to_string().contains("AgentDef"), "{layer}");
    let agent_def = schema["$defs"]["AgentDef"].to_string();
    assert!(agent_def.contains("boolean") && agent_def.contains("AgentSettings"), "{agent_def}");
    let settings = &schema["$defs"]["AgentSettings"]["properties"];
    for key in ["binary", "unit", "options"] {
        assert!(settings[key].is_object(), "{key}: {settings}");
    }
    assert!(schema["$defs"]["Defaults"]["properties"]["agent"].to_string().contains("AgentSettings"));
}
