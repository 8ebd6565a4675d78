//! The provider binary as a go-plugin: handshake, mutual TLS, debug mode, and what a
//! person running it by hand sees.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;
use tests::{LayerSeed, LocalAws, Workdir, provider_binary, seed_lineage};
use tfplugin::client::{self, Identity, PluginProcess};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime")
}

#[test]
fn running_by_hand_explains_what_the_binary_is() {
    let out = Command::new(provider_binary())
        .env_remove("TF_PLUGIN_MAGIC_COOKIE")
        .output()
        .expect("run provider binary");
    assert_eq!(out.status.code(), Some(1), "exit status");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("is a Terraform provider plugin"), "{stderr}");
    assert!(stderr.contains("source = \"terraform.local/immutable/immutable\""), "{stderr}");
    assert!(stderr.contains("--debug"), "{stderr}");
    assert!(out.stdout.is_empty(), "nothing on stdout, which go-plugin would parse");
}

#[test]
fn refuses_protocol_versions_it_does_not_speak() {
    let out = Command::new(provider_binary())
        .env("TF_PLUGIN_MAGIC_COOKIE", tfplugin::plugin::MAGIC_COOKIE_VALUE)
        .env("PLUGIN_PROTOCOL_VERSIONS", "4,5")
        .output()
        .expect("run provider binary");
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("speaks plugin protocol 6"), "{stderr}");
}

#[test]
fn handshake_offers_protocol_6_over_mutual_tls() {
    runtime().block_on(async {
        let plugin = PluginProcess::start(&provider_binary(), &[]).await.expect("plugin starts");
        let h = &plugin.handshake;
        assert_eq!((h.core_version, h.protocol_version), (1, 6));
        assert_eq!((h.network.as_str(), h.protocol.as_str()), ("tcp", "grpc"));
        assert!(h.address.starts_with("127.0.0.1:"), "{}", h.address);
        assert!(h.server_cert.is_some(), "AutoMTLS: the handshake carries the server certificate");
        assert!(plugin.health().await.expect("health check"), "serving");
        let (_, data_sources) = plugin.schema_type_names().await.expect("schema");
        assert!(data_sources.contains(&"immutable_ami".to_owned()), "{data_sources:?}");
        let status = plugin.shutdown().await.expect("shutdown");
        assert!(status.success(), "exits cleanly on GRPCController.Shutdown: {status}");
    });
}

#[test]
fn refuses_clients_without_terraforms_certificate() {
    runtime().block_on(async {
        let terraform = Identity::generate().expect("identity");
        let plugin =
            PluginProcess::start_as(&provider_binary(), &[], terraform.clone()).await.expect("plugin starts");
        let address = plugin.handshake.address.clone();
        let server_cert = plugin.handshake.server_cert.clone().expect("server cert");

        // The announced identity works...
        let good = client::connect(&address, server_cert.clone(), Some(terraform)).await.expect("connect");
        assert!(client::health(&good).await.expect("health with Terraform's certificate"));

        // ...no certificate, or another self-signed one, does not.
        let stranger = Identity::generate().expect("identity");
        for (who, identity) in [("no certificate", None), ("another certificate", Some(stranger))] {
            let attempt = async {
                let channel = client::connect(&address, server_cert.clone(), identity).await?;
                client::health(&channel).await
            };
            let result =
                tokio::time::timeout(Duration::from_secs(20), attempt).await.expect("answer in time");
            assert!(result.is_err(), "a client with {who} must be refused, got {result:?}");
        }

        // The plugin still serves its real client afterwards.
        assert!(plugin.health().await.expect("health"));
        plugin.shutdown().await.expect("shutdown");
    });
}

#[test]
fn debug_mode_serves_terraform_through_reattach() {
    let aws = LocalAws::shared();
    let account = aws.account();
    let ami = runtime().block_on(async {
        let ec2 = account.ec2().await;
        tests::core_infra(&account).await.expect("core infrastructure");
        seed_lineage(&ec2, &[LayerSeed::new("debugged", "Debugged", "d".repeat(40))]).await.remove(0)
    });

    let mut child = Command::new(provider_binary())
        .arg("--debug")
        .envs(account.env())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start provider in debug mode");
    let stdout = child.stdout.take().expect("stdout");
    let reattach = BufReader::new(stdout)
        .lines()
        .map_while(Result::ok)
        .find_map(|line| {
            line.trim()
                .strip_prefix("export TF_REATTACH_PROVIDERS='")
                .map(|v| v.trim_end_matches('\'').to_owned())
        })
        .expect("debug mode prints TF_REATTACH_PROVIDERS");
    let parsed: serde_json::Value = serde_json::from_str(&reattach).expect("reattach value is JSON");
    let entry = &parsed["terraform.local/immutable/immutable"];
    assert_eq!(entry["ProtocolVersion"], 6, "{parsed}");
    assert_eq!(entry["Addr"]["Network"], "tcp", "{parsed}");

    // One process serves every run: the plan and the apply of a new app (whose
    // duplicate-name check must not see the apply's plan as a second resource), and
    // the plan after.
    let workdir = Workdir::new(&account);
    workdir.write(
        "main.tf",
        &(tests::web_app_config(&ami, 1, "5s", "")
            + r#"
data "immutable_ami" "x" {
  layer = "debugged"
}
output "layer" {
  value = data.immutable_ami.x.lineage[0].layer
}
"#),
    );
    let env = [("TF_REATTACH_PROVIDERS", reattach.as_str())];
    let init = workdir.terraform_with_env(&["init", "-no-color"], &env);
    assert!(init.success(), "{init}");
    let apply = workdir.terraform_with_env(&["apply", "-auto-approve", "-no-color"], &env);
    let plan = workdir.terraform_with_env(&["plan", "-no-color", "-detailed-exitcode"], &env);
    let _ = child.kill();
    let _ = child.wait();
    assert!(apply.success(), "{apply}");
    assert!(apply.stdout.contains("layer = \"debugged\""), "{apply}");
    assert!(apply.stdout.contains("1 added"), "{apply}");
    assert_eq!(plan.status.code(), Some(0), "nothing left to change:\n{plan}");
}
