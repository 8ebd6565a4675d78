//! The local AWS emulator process and the accounts it serves.

use std::io::{BufRead, BufReader, Read};
use std::path::Path;
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, OnceLock, mpsc};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use aws_config::BehaviorVersion;
use aws_sdk_ec2::config::{Credentials, Region};

use crate::paths::repo_root;

/// Access key ids handed out by [`LocalAws::account`] are this prefix followed by
/// the 12-digit account id. The emulator (`scripts/emulator/fixes.py`)
/// maps such a key to that account, so every key is its own isolated account.
pub const ACCESS_KEY_PREFIX: &str = "AKIAMOTO";

/// Region used by every [`Account`].
const REGION: &str = "eu-west-1";

/// How long the first start may take: it may create the emulator's virtualenv.
const START_TIMEOUT: Duration = Duration::from_secs(600);

/// A running emulator, killed when dropped.
///
/// The emulator also exits by itself when its standard input (a pipe held by this
/// value) closes, so it never outlives the process that started it, even when
/// this value is never dropped (as with [`LocalAws::shared`]).
#[derive(Debug)]
pub struct LocalAws {
    endpoint: String,
    child: Mutex<Option<(Child, ChildStdin)>>,
}

impl LocalAws {
    /// Starts `scripts/local-aws serve` and waits for it to listen.
    pub fn start() -> anyhow::Result<LocalAws> {
        let root = repo_root();
        let script = root.join("scripts").join("local-aws");
        if !script.is_file() {
            bail!("{} not found (set IMMUTABLE_REPO_ROOT?)", script.display());
        }
        let venv_ready = venv_is_ready(&root);
        if !venv_ready {
            eprintln!(
                "local-aws: first start: creating the emulator's virtualenv (may take several minutes)"
            );
        }

        let mut child = Command::new("bash")
            .arg(&script)
            .arg("serve")
            .current_dir(&root)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .with_context(|| format!("spawning {} serve", script.display()))?;
        let stdin = child.stdin.take().context("emulator stdin")?;
        let stdout = child.stdout.take().context("emulator stdout")?;

        // Read stdout on a thread so that the wait can time out; the thread keeps
        // draining stdout afterwards.
        let (tx, rx) = mpsc::channel::<Result<String, String>>();
        std::thread::Builder::new()
            .name("local-aws-stdout".into())
            .spawn(move || read_listening_line(stdout, tx))
            .context("spawning stdout reader")?;

        let started = Instant::now();
        let mut next_note = Duration::from_secs(30);
        let endpoint = loop {
            match rx.recv_timeout(Duration::from_secs(1)) {
                Ok(Ok(endpoint)) => break endpoint,
                Ok(Err(reason)) => {
                    let status = stop_child(&mut child);
                    bail!("local AWS emulator failed to start: {reason} (exit status: {status})");
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = stop_child(&mut child);
                    bail!("local AWS emulator stopped before listening (exit status: {status})");
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Ok(Some(status)) = child.try_wait() {
                        bail!("local AWS emulator exited before listening: {status}");
                    }
                    let waited = started.elapsed();
                    if waited >= START_TIMEOUT {
                        stop_child(&mut child);
                        bail!("local AWS emulator did not start within {}s", START_TIMEOUT.as_secs());
                    }
                    if waited >= next_note {
                        eprintln!("local-aws: still starting after {}s", waited.as_secs());
                        next_note += Duration::from_secs(30);
                    }
                }
            }
        };
        if !venv_ready {
            eprintln!("local-aws: emulator listening on {endpoint} after {}s", started.elapsed().as_secs());
        }
        Ok(LocalAws { endpoint, child: Mutex::new(Some((child, stdin))) })
    }

    /// One emulator per process, started on first use and left running until
    /// the process exits.
    ///
    /// # Panics
    /// When the emulator cannot be started.
    pub fn shared() -> &'static LocalAws {
        static SHARED: OnceLock<Result<LocalAws, String>> = OnceLock::new();
        match SHARED.get_or_init(|| LocalAws::start().map_err(|err| format!("{err:#}"))) {
            Ok(aws) => aws,
            Err(err) => panic!("cannot start the local AWS emulator: {err}"),
        }
    }

    /// Base URL of the emulator, `http://127.0.0.1:PORT`.
    pub fn endpoint(&self) -> String {
        self.endpoint.clone()
    }

    /// A fresh account, distinct from every other account handed out by this
    /// process.
    pub fn account(&self) -> Account {
        Account::new(next_account_id(), &self.endpoint)
    }

    /// Stops the emulator now (also done on drop).
    pub fn stop(&self) {
        let taken = match self.child.lock() {
            Ok(mut guard) => guard.take(),
            Err(poisoned) => poisoned.into_inner().take(),
        };
        if let Some((mut child, stdin)) = taken {
            drop(stdin);
            stop_child(&mut child);
        }
    }
}

impl Drop for LocalAws {
    fn drop(&mut self) {
        self.stop();
    }
}

fn venv_is_ready(root: &Path) -> bool {
    let venv = match std::env::var_os("IMMUTABLE_VENV").filter(|v| !v.is_empty()) {
        Some(dir) => dir.into(),
        None => root.join("target").join("local-aws-venv"),
    };
    venv.join(".requirements.sha256").is_file()
}

fn read_listening_line(stdout: impl Read, tx: mpsc::Sender<Result<String, String>>) {
    let mut reader = BufReader::new(stdout);
    let mut line = String::new();
    let mut reported = false;
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => break,
            Ok(_) => {
                if reported {
                    continue;
                }
                if let Some(endpoint) = line.trim().strip_prefix("listening on ") {
                    reported = true;
                    let _ = tx.send(Ok(endpoint.trim().to_string()));
                } else {
                    eprintln!("local-aws: {}", line.trim_end());
                }
            }
            Err(err) => {
                if !reported {
                    let _ = tx.send(Err(format!("reading its stdout: {err}")));
                }
                break;
            }
        }
    }
}

fn stop_child(child: &mut Child) -> String {
    let _ = child.kill();
    match child.wait() {
        Ok(status) => status.to_string(),
        Err(err) => format!("unknown ({err})"),
    }
}

/// Account ids: a per-process base derived from the pid, plus a counter.
fn next_account_id() -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let base = 100_000_000_000 + u64::from(std::process::id() % 1_000_000) * 100_000;
    format!("{:012}", base + n % 100_000)
}

/// Credentials and settings of one isolated emulator account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// The 12-digit account id (also the owner id of the account's AMIs).
    pub id: String,
    pub access_key_id: String,
    pub secret_access_key: String,
    pub region: String,
    /// Base URL of the emulator.
    pub endpoint: String,
}

impl Account {
    /// The account `id` (12 digits) on the emulator at `endpoint`.
    pub fn new(id: impl Into<String>, endpoint: impl Into<String>) -> Account {
        let id = id.into();
        assert!(
            id.len() == 12 && id.bytes().all(|b| b.is_ascii_digit()),
            "account id must be 12 digits: {id}"
        );
        Account {
            access_key_id: format!("{ACCESS_KEY_PREFIX}{id}"),
            secret_access_key: format!("local-secret-{id}"),
            id,
            region: REGION.to_string(),
            endpoint: endpoint.into(),
        }
    }

    /// Environment for a process (Terraform, the provider, the AWS CLI) that
    /// should talk to this account, and ignore the user's own AWS settings.
    pub fn env(&self) -> Vec<(String, String)> {
        [
            ("AWS_ACCESS_KEY_ID", self.access_key_id.as_str()),
            ("AWS_SECRET_ACCESS_KEY", self.secret_access_key.as_str()),
            ("AWS_REGION", self.region.as_str()),
            ("AWS_DEFAULT_REGION", self.region.as_str()),
            ("AWS_ENDPOINT_URL", self.endpoint.as_str()),
            ("AWS_EC2_METADATA_DISABLED", "true"),
            ("AWS_CONFIG_FILE", EMPTY_FILE),
            ("AWS_SHARED_CREDENTIALS_FILE", EMPTY_FILE),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
    }

    /// An EC2 client for this account.
    pub async fn ec2(&self) -> aws_sdk_ec2::Client {
        aws_sdk_ec2::Client::new(&self.sdk_config().await)
    }

    /// Shared SDK configuration for this account (for building other clients).
    pub async fn sdk_config(&self) -> aws_config::SdkConfig {
        // The emulator speaks plain HTTP on loopback, so no TLS provider is needed
        // (and none is tied to whichever crypto backend the workspace selects).
        let http = aws_smithy_http_client::Builder::new().build_http();
        let credentials = Credentials::new(
            self.access_key_id.clone(),
            self.secret_access_key.clone(),
            None,
            None,
            "immutable-tests",
        );
        aws_config::defaults(BehaviorVersion::latest())
            .profile_files(empty_profile_files())
            .region(Region::new(self.region.clone()))
            .credentials_provider(credentials)
            .endpoint_url(self.endpoint.clone())
            .http_client(http)
            .load()
            .await
    }
}

/// Stands in for the AWS config and credentials files: always exists, always
/// empty.
const EMPTY_FILE: &str = "/dev/null";

#[allow(deprecated)] // the non-deprecated path lives in aws-runtime, not a dependency here
fn empty_profile_files() -> aws_config::profile::profile_file::ProfileFiles {
    use aws_config::profile::profile_file::{ProfileFileKind, ProfileFiles};
    ProfileFiles::builder()
        .with_file(ProfileFileKind::Config, EMPTY_FILE)
        .with_file(ProfileFileKind::Credentials, EMPTY_FILE)
        .build()
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn account_ids_are_distinct_12_digit_numbers() {
        let a = next_account_id();
        let b = next_account_id();
        assert_ne!(a, b);
        for id in [&a, &b] {
            assert_eq!(id.len(), 12, "{id}");
            assert!(id.bytes().all(|c| c.is_ascii_digit()), "{id}");
            assert_ne!(id, "123456789012");
        }
        let account = Account::new(a.clone(), "http://127.0.0.1:1");
        assert_eq!(account.access_key_id, format!("AKIAMOTO{a}"));
        assert_eq!(account.access_key_id.len(), 20);
    }

    #[test]
    fn env_points_at_the_emulator() {
        let account = Account::new("100000000001", "http://127.0.0.1:5");
        let env = account.env();
        let get = |k: &str| env.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str());
        assert_eq!(get("AWS_ENDPOINT_URL"), Some("http://127.0.0.1:5"));
        assert_eq!(get("AWS_REGION"), Some("eu-west-1"));
        assert_eq!(get("AWS_EC2_METADATA_DISABLED"), Some("true"));
    }
}
