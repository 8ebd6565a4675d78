//! When AWS cannot be reached or the credentials are missing, Terraform shows one
//! clear error, soon, and Ctrl-C ends the wait at once; no log level shows a secret.

use std::io::Read;
use std::net::{TcpListener, TcpStream};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tests::{LocalAws, RunningTerraform, Workdir, diagnostic_blocks, web_app_config};

/// An app: its plan makes several lookups at once (AMI, security groups, target
/// groups, instance profile, fleet role, instance types), each of which meets the
/// same failure.
fn config(provider: &str) -> String {
    format!(
        "{}\nprovider \"immutable\" {{\n{provider}\n}}\n",
        web_app_config("ami-0123456789abcdef0", 1, "5s", "")
    )
}

fn errors(stderr: &str) -> Vec<&str> {
    diagnostic_blocks(stderr)
        .filter(|b| b.trim_start_matches(['╷', '│', ' ', '\n']).starts_with("Error:"))
        .collect()
}

/// A loopback port where nothing listens.
fn closed_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("address").port()
}

/// A loopback endpoint that accepts connections and never answers.
struct Silent {
    port: u16,
    _held: Arc<Mutex<Vec<TcpStream>>>,
}

fn silent_endpoint() -> Silent {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("address").port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            // Read what comes, answer nothing.
            let mut reader = stream.try_clone().expect("clone stream");
            std::thread::spawn(move || {
                let mut buf = [0u8; 4096];
                while matches!(reader.read(&mut buf), Ok(n) if n > 0) {}
            });
            keep.lock().expect("held streams").push(stream);
        }
    });
    Silent { port, _held: held }
}

#[test]
fn a_refused_endpoint_fails_the_plan_at_once_with_one_error() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &config(""));
    workdir.init().expect("init");
    let endpoint = format!("http://127.0.0.1:{}", closed_port());
    let started = Instant::now();
    let plan = workdir
        .terraform_with_env(&["plan", "-no-color", "-input=false"], &[("AWS_ENDPOINT_URL", &endpoint)]);
    let took = started.elapsed();
    assert!(!plan.success(), "{plan}");
    let errors = errors(&plan.stderr);
    assert_eq!(errors.len(), 1, "one error for every request that met it:\n{plan}");
    assert!(errors[0].contains("AWS Endpoint Unreachable") && errors[0].contains(&endpoint), "{plan}");
    assert!(errors[0].contains("refused the connection"), "{plan}");
    eprintln!("a refused endpoint failed the plan after {took:?}");
    assert!(took < Duration::from_secs(15), "failed at once, not after minutes of retries: {took:?}");
}

#[test]
fn a_silent_endpoint_fails_within_the_attempt_timeout_and_ctrl_c_ends_the_wait() {
    let account = LocalAws::shared().account();
    let silent = silent_endpoint();
    let endpoint = format!("http://127.0.0.1:{}", silent.port);
    let env = [("AWS_ENDPOINT_URL", endpoint.as_str())];

    // Two retries of one second each: the plan gives up after three attempts and the
    // pauses between them (at most 1 s, then 2 s).
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &config("  attempt_timeout = \"1s\"\n  max_retries     = 2"));
    workdir.init().expect("init");
    let log = workdir.path().join("debug.log");
    let log_path = log.to_string_lossy().into_owned();
    let debug = [env[0], ("TF_LOG_PROVIDER", "debug"), ("TF_LOG_PATH", log_path.as_str())];
    let started = Instant::now();
    let plan = workdir.terraform_with_env(&["plan", "-no-color", "-input=false"], &debug);
    let took = started.elapsed();
    assert!(!plan.success(), "{plan}");
    let errors = errors(&plan.stderr);
    assert_eq!(errors.len(), 1, "{plan}");
    let logged = std::fs::read_to_string(&log).expect("debug log");
    let retries: Vec<&str> = logged.lines().filter(|l| l.contains("retrying AWS request")).collect();
    assert!(!retries.is_empty(), "retries are logged at debug");
    assert!(
        retries.iter().any(|l| l.contains("attempt=3") && l.contains(&endpoint) && l.contains("EC2.")),
        "with the operation, the attempt and the endpoint: {retries:?}"
    );
    assert!(errors[0].contains(&endpoint) && errors[0].contains("did not answer in time"), "{plan}");
    eprintln!("a silent endpoint failed the plan after {took:?}");
    assert!(took < Duration::from_secs(20), "3 attempts of 1 s and 2 pauses of at most 2 s: {took:?}");

    // With the defaults (60 s per attempt), Ctrl-C after 2 s ends the run at once.
    let waiting = Workdir::new(&account);
    waiting.write("main.tf", &config(""));
    waiting.init().expect("init");
    let mut run =
        RunningTerraform::start(&waiting, &["plan", "-no-color", "-input=false"], &env).expect("start");
    std::thread::sleep(Duration::from_secs(2));
    let interrupted = Instant::now();
    run.interrupt().expect("SIGINT");
    let out = run.wait(Duration::from_secs(30)).expect("terraform exits");
    let after = interrupted.elapsed();
    eprintln!("the plan ended {after:?} after Ctrl-C");
    assert!(!out.success(), "{out}");
    assert!(out.stderr.contains("Error: Stopped"), "the provider abandoned the plan:\n{out}");
    assert!(after < Duration::from_secs(2), "Ctrl-C ended the plan within 2 s, took {after:?}:\n{out}");
}

#[test]
fn missing_credentials_are_one_error_that_says_where_to_set_them() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &config(""));
    workdir.init().expect("init");
    let plan = workdir.terraform_env(
        &["plan", "-no-color", "-input=false"],
        &[],
        &["AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"],
    );
    assert!(!plan.success(), "{plan}");
    let errors = errors(&plan.stderr);
    assert_eq!(errors.len(), 1, "{plan}");
    assert!(errors[0].contains("AWS Credentials Unavailable"), "{plan}");
    assert!(errors[0].contains("AWS_ACCESS_KEY_ID") && errors[0].contains("AWS_PROFILE"), "{plan}");
    let everything = format!("{}{}", plan.stdout, plan.stderr);
    assert!(
        !everything.contains("DispatchFailure") && !everything.contains("CredentialsNotLoaded"),
        "{plan}"
    );
    assert_eq!(account.requests().expect("requests").len(), 0, "no request went out without credentials");
}

#[test]
fn no_log_level_shows_the_credentials() {
    let account = LocalAws::shared().account();
    let workdir = Workdir::new(&account);
    workdir.write("main.tf", &config(""));
    workdir.init().expect("init");
    let token = "IQoJb3JpZ2luX2VjELr-session-token-that-must-never-be-logged";
    let log = workdir.path().join("trace.log");
    let log_path = log.to_string_lossy().into_owned();
    let plan = workdir.terraform_with_env(
        &["plan", "-no-color", "-input=false"],
        &[("AWS_SESSION_TOKEN", token), ("TF_LOG", "trace"), ("TF_LOG_PATH", &log_path)],
    );
    // The image does not exist: the plan fails, after requests signed with the token.
    assert!(!plan.success(), "{plan}");
    assert!(account.requests().expect("requests").values().sum::<u64>() > 0, "requests were made");
    let text = std::fs::read_to_string(&log).expect("trace log");
    assert!(text.contains("provider configured"), "the provider's own lines are in the log");
    assert!(text.contains("aws_smithy_runtime"), "so are its dependencies' (at debug)");
    assert!(!text.contains(token), "the session token is never logged");
    assert!(!text.contains(&account.secret_access_key), "nor the secret key");
}
