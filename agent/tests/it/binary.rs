//! The real `immutable-agent` binary against the stand-ins: signals, exit codes, the
//! JSON lines on stdout, its memory.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::standin::*;

const SECOND: Duration = Duration::from_secs(1);

struct Agent {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
}

impl Agent {
    fn spawn(imds: &FakeImds, elb: &FakeElb, extra: &[&str]) -> Agent {
        Agent::start(command(imds, elb, extra))
    }

    fn start(mut command: Command) -> Agent {
        let mut child = command.stdout(Stdio::piped()).spawn().expect("spawn immutable-agent");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let stdout = child.stdout.take().expect("stdout");
        let collected = Arc::clone(&lines);
        thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                collected.lock().expect("lines").push(line);
            }
        });
        Agent { child, lines }
    }

    fn lines(&self) -> Vec<String> {
        self.lines.lock().expect("lines").clone()
    }

    fn events(&self) -> Vec<String> {
        self.lines()
            .iter()
            .filter_map(|l| serde_json::from_str::<Value>(l).ok())
            .map(|v| v["event"].as_str().unwrap_or("").to_owned())
            .collect()
    }

    fn expect(&self, event: &str) {
        let seen = wait_until(10 * SECOND, || self.events().iter().any(|e| e == event));
        assert!(seen, "no {event} from the binary: {:#?}", self.lines());
    }

    fn signal(&self, name: &str) {
        let sent = Command::new("kill").args([&format!("-{name}"), &self.child.id().to_string()]).status();
        assert!(sent.is_ok_and(|s| s.success()), "kill -{name}");
    }

    fn exit(&mut self, within: Duration) -> ExitStatus {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().expect("wait") {
                // Let the reader thread take the last lines.
                thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(Instant::now() < deadline, "still running after {within:?}: {:#?}", self.lines());
            thread::sleep(Duration::from_millis(5));
        }
    }

    fn rss_kib(&self) -> u64 {
        let status =
            std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).expect("/proc status");
        let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("VmRSS");
        line.split_whitespace().nth(1).and_then(|kib| kib.parse().ok()).expect("VmRSS in kB")
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(imds: &FakeImds, elb: &FakeElb, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_immutable-agent"));
    command
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("AWS_ACCESS_KEY_ID", ACCESS_KEY)
        .env("AWS_SECRET_ACCESS_KEY", SECRET_KEY)
        .env("IMMUTABLE_AGENT_POLL_INTERVAL", "20ms")
        .args(["--imds-endpoint", &imds.url(), "--elb-endpoint", &elb.url()])
        .args(extra)
        .stdin(Stdio::null())
        .stderr(Stdio::piped());
    command
}

/// Every stdout line is a JSON object with an RFC 3339 time, a level and an event.
fn assert_json_lines(lines: &[String]) {
    assert!(!lines.is_empty());
    for line in lines {
        let value: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}"));
        let time = value["time"].as_str().unwrap_or_else(|| panic!("no time: {line}"));
        assert!(agent::clock::parse_rfc3339(time).is_some(), "time {time:?}");
        assert!(matches!(value["level"].as_str(), Some("info" | "warn" | "error")), "{line}");
        assert!(value["event"].as_str().is_some_and(|e| !e.is_empty()), "{line}");
        assert!(value["message"].as_str().is_some(), "{line}");
    }
}

#[test]
fn the_binary_deregisters_on_a_notice_and_exits_0_on_sigterm() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut agent = Agent::spawn(&imds, &elb, &[]);
    agent.expect("polling");
    let rss = agent.rss_kib();
    eprintln!("immutable-agent VmRSS while polling: {rss} KiB");
    assert!(rss < 10 * 1024, "VmRSS {rss} KiB");

    imds.post_notice("terminate", Duration::from_secs(120));
    agent.expect("done");
    assert_eq!(elb.requests().len(), 2);

    let asked = Instant::now();
    agent.signal("TERM");
    let status = agent.exit(2 * SECOND);
    assert_eq!(status.code(), Some(0), "{status}");
    assert!(asked.elapsed() < SECOND, "exited {:?} after SIGTERM", asked.elapsed());
    let lines = agent.lines();
    assert_json_lines(&lines);
    let events = agent.events();
    for event in
        ["started", "instance", "target-groups", "credentials", "polling", "notice", "deregistered", "done"]
    {
        assert!(events.iter().any(|e| e == event), "no {event}: {events:?}");
    }
    assert_eq!(events[events.len() - 2..], ["signal", "stopped"]);
}

#[test]
fn the_binary_exits_0_on_sigint_while_polling() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let mut agent = Agent::spawn(&imds, &elb, &["--poll-interval", "5s"]);
    agent.expect("polling");
    agent.signal("INT");
    assert_eq!(agent.exit(SECOND).code(), Some(0));
    assert_json_lines(&agent.lines());
    assert_eq!(agent.events().last().map(String::as_str), Some("stopped"));
}

#[test]
fn a_configuration_error_is_one_line_and_exit_2() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let output =
        command(&imds, &elb, &["--poll-interval", "5x"]).stdout(Stdio::piped()).output().expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(output.stdout.is_empty());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("immutable-agent: --poll-interval \"5x\": invalid duration"), "{stderr}");
    assert!(imds.seen().is_empty(), "nothing asked of IMDS");
}

#[test]
fn an_imdsv1_only_endpoint_exits_2_with_an_error_line() {
    let imds = FakeImds::spot("0");
    imds.set_mode(Mode::V1Only(405));
    let elb = FakeElb::start();
    let mut agent = Agent::spawn(&imds, &elb, &[]);
    assert_eq!(agent.exit(5 * SECOND).code(), Some(2));
    let lines = agent.lines();
    assert_json_lines(&lines);
    let last: Value = serde_json::from_str(lines.last().expect("a line")).expect("JSON");
    assert_eq!((last["level"].as_str(), last["event"].as_str()), (Some("error"), Some("imdsv2-unsupported")));
}

#[test]
fn an_on_demand_instance_exits_0() {
    let imds = FakeImds::spot("0");
    imds.state().life_cycle = "on-demand".into();
    let elb = FakeElb::start();
    let mut agent = Agent::spawn(&imds, &elb, &[]);
    assert_eq!(agent.exit(5 * SECOND).code(), Some(0));
    assert_eq!(agent.events(), ["started", "on-demand"]);
}

#[test]
fn help_and_version() {
    let imds = FakeImds::spot("0");
    let elb = FakeElb::start();
    let help = command(&imds, &elb, &["--help"]).stdout(Stdio::piped()).output().expect("run");
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--drain-hook COMMAND"));
    let version = command(&imds, &elb, &["--version"]).stdout(Stdio::piped()).output().expect("run");
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("immutable-agent "));
}

/// HTTPS to ELB through rustls and the system's trust store, here a file named by
/// `SSL_CERT_FILE` that holds the stand-in's self-signed certificate.
#[test]
fn the_binary_speaks_https_to_elb_trusting_the_system_store() {
    let certified = rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let dir = tempfile::tempdir().expect("temp dir");
    let trust = dir.path().join("ca.pem");
    std::fs::write(&trust, certified.cert.pem()).expect("write the trust store");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("protocol versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server configuration");

    let imds = FakeImds::spot("0");
    let elb = FakeElb::start_with(Some(Arc::new(tls)));
    let mut trusting = command(&imds, &elb, &[]);
    trusting.env("SSL_CERT_FILE", &trust).env_remove("SSL_CERT_DIR");
    let mut agent = Agent::start(trusting);
    agent.expect("polling");
    imds.post_notice("terminate", Duration::from_secs(120));
    agent.expect("done");
    let requests = elb.requests();
    assert_eq!(requests.len(), 2, "{:#?}", agent.lines());
    assert_eq!(
        requests[0].header("Host").map(str::to_owned),
        Some(format!("localhost:{}", elb.server.port()))
    );
    assert_eq!(agent.events().iter().filter(|e| *e == "deregistered").count(), 2);
    agent.signal("TERM");
    assert_eq!(agent.exit(2 * SECOND).code(), Some(0));

    // With no trusted root at all nothing could ever be deregistered: a setup error.
    let elb_untrusted = FakeElb::start_with(elb.server.tls.clone());
    let imds = FakeImds::spot("0");
    let mut untrusting = command(&imds, &elb_untrusted, &[]);
    let empty = tempfile::tempdir().expect("temp dir");
    std::fs::write(empty.path().join("empty.pem"), "").expect("write");
    untrusting.env("SSL_CERT_FILE", empty.path().join("empty.pem")).env("SSL_CERT_DIR", empty.path());
    let mut agent = Agent::start(untrusting);
    agent.expect("setup-failed");
    assert_eq!(agent.exit(2 * SECOND).code(), Some(2));
}
