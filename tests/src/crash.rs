//! Killing Terraform or the provider at a chosen point of an apply.
//!
//! [`Account::hold`] asks the emulator to hold an account's requests for one action
//! (`scripts/emulator/holds.py`): the client blocks in that call,
//! so a test knows exactly where it is when it kills it. [`RunningTerraform`] runs
//! `terraform` in the background in a [`Workdir`] and finds its provider process.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::local_aws::Account;
use crate::requests::http_call;
use crate::terraform::{TfOutput, Workdir, terraform_binary};

/// When a held request stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Hold {
    /// Before the emulator serves it: the action has not happened.
    Before,
    /// After the emulator served it, before the answer: the action happened, the
    /// client does not know.
    After,
}

impl Account {
    /// Holds this account's next requests for `action` (`"ec2:CreateImage"`) until
    /// [`Account::release`].
    pub fn hold(&self, action: &str, when: Hold) -> anyhow::Result<()> {
        let when = match when {
            Hold::Before => "before",
            Hold::After => "after",
        };
        self.hold_call("POST", "", &format!("&action={action}&when={when}")).map(drop)
    }

    /// How many requests of `action` are held right now.
    pub fn held(&self, action: &str) -> anyhow::Result<u64> {
        let body = self.hold_call("GET", "", "")?;
        let counts: std::collections::BTreeMap<String, u64> =
            serde_json::from_str(&body).with_context(|| format!("held requests: {body}"))?;
        Ok(counts.get(action).copied().unwrap_or(0))
    }

    /// Ends every hold of this account. With `drop`, requests held before being
    /// served are answered with an error and never take effect.
    pub fn release(&self, drop: bool) -> anyhow::Result<()> {
        let extra = if drop { "&drop=1" } else { "" };
        self.hold_call("POST", "/release", extra).map(|_| ())
    }

    fn hold_call(&self, method: &str, path: &str, extra: &str) -> anyhow::Result<String> {
        let target = format!("/_immutable/hold{path}?account={}{extra}", self.id);
        http_call(&self.endpoint, method, &target)
            .with_context(|| format!("{method} {target} on the emulator at {}", self.endpoint))
    }

    /// How many `action` requests the emulator received for this account.
    pub fn count(&self, action: &str) -> u64 {
        match self.requests() {
            Ok(counts) => counts.get(action).copied().unwrap_or(0),
            Err(err) => panic!("reading request counts: {err:#}"),
        }
    }
}

/// Polls `ready` every 10 ms until it holds; fails with `what` after `limit`.
pub fn wait_until(limit: Duration, what: &str, mut ready: impl FnMut() -> bool) -> anyhow::Result<()> {
    let started = Instant::now();
    while !ready() {
        if started.elapsed() >= limit {
            bail!("timed out after {}s waiting for {what}", limit.as_secs());
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    Ok(())
}

/// `terraform ARGS` running in the background in a [`Workdir`], in a process group
/// of its own (killed as a whole when dropped).
pub struct RunningTerraform {
    child: Child,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
    /// The provider process seen last (it may outlive Terraform).
    provider: Option<u32>,
}

impl RunningTerraform {
    /// Starts `terraform ARGS` in `workdir` with its environment plus `extra_env`.
    pub fn start(workdir: &Workdir, args: &[&str], extra_env: &[(&str, &str)]) -> anyhow::Result<Self> {
        let mut cmd = Command::new(terraform_binary());
        cmd.args(args).current_dir(workdir.path()).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if name.starts_with("TF_") || name.starts_with("AWS_") || name == "CHECKPOINT_DISABLE" {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(workdir.env()).envs(extra_env.iter().copied());
        cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
        let mut child = cmd.spawn().context("spawning terraform")?;
        let drain = |mut r: Box<dyn Read + Send>| {
            std::thread::spawn(move || {
                let mut buf = Vec::new();
                let _ = r.read_to_end(&mut buf);
                String::from_utf8_lossy(&buf).into_owned()
            })
        };
        let stdout = child.stdout.take().map(|s| drain(Box::new(s)));
        let stderr = child.stderr.take().map(|s| drain(Box::new(s)));
        Ok(RunningTerraform { child, stdout, stderr, provider: None })
    }

    /// Terraform's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// The `terraform-provider-immutable` process Terraform started, once it runs.
    pub fn provider_pid(&mut self) -> Option<u32> {
        let found = children(self.pid()).into_iter().find(|pid| is_provider(*pid));
        if found.is_some() {
            self.provider = found;
        }
        found
    }

    /// Waits for the provider process serving the apply (Terraform also starts one
    /// briefly for validation and planning, so the caller waits for its own marker
    /// first, then asks).
    pub fn wait_provider(&mut self, limit: Duration) -> anyhow::Result<u32> {
        let mut pid = None;
        wait_until(limit, "the provider process", || {
            pid = self.provider_pid();
            pid.is_some()
        })?;
        pid.context("provider process")
    }

    /// `kill -9` the provider process.
    pub fn kill_provider(&mut self) -> anyhow::Result<u32> {
        let pid = self.provider_pid().context("no provider process to kill")?;
        kill9(pid)?;
        Ok(pid)
    }

    /// Ctrl-C as a terminal sends it: SIGINT to Terraform's whole process group (the
    /// provider included).
    pub fn interrupt(&mut self) -> anyhow::Result<()> {
        self.provider_pid();
        let status = Command::new("kill")
            .args(["-INT", "--", &format!("-{}", self.child.id())])
            .status()
            .context("running kill")?;
        if !status.success() {
            bail!("kill -INT of process group {} failed: {status}", self.child.id());
        }
        Ok(())
    }

    /// `kill -9` Terraform itself (not its provider).
    pub fn kill_terraform(&mut self) -> anyhow::Result<()> {
        self.provider_pid();
        kill9(self.pid())
    }

    /// The provider process seen last, if any.
    pub fn last_provider(&self) -> Option<u32> {
        self.provider
    }

    /// Waits for Terraform to exit (at most `limit`, then kills its group).
    pub fn wait(mut self, limit: Duration) -> anyhow::Result<TfOutput> {
        let started = Instant::now();
        let status: ExitStatus = loop {
            if let Some(status) = self.child.try_wait()? {
                break status;
            }
            if started.elapsed() >= limit {
                self.kill_group();
                bail!("terraform did not exit within {}s", limit.as_secs());
            }
            std::thread::sleep(Duration::from_millis(20));
        };
        // The pipes close when every process holding them is gone; a provider that
        // outlives Terraform may keep them open, so do not wait on it forever.
        let collect = |handle: Option<JoinHandle<String>>| {
            let Some(handle) = handle else { return String::new() };
            let until = Instant::now() + Duration::from_secs(5);
            while !handle.is_finished() && Instant::now() < until {
                std::thread::sleep(Duration::from_millis(20));
            }
            if handle.is_finished() { handle.join().unwrap_or_default() } else { String::new() }
        };
        let stdout = collect(self.stdout.take());
        let stderr = collect(self.stderr.take());
        Ok(TfOutput { status, stdout, stderr })
    }

    fn kill_group(&mut self) {
        let _ = Command::new("kill")
            .args(["-KILL", "--", &format!("-{}", self.child.id())])
            .stderr(Stdio::null())
            .status();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for RunningTerraform {
    fn drop(&mut self) {
        if matches!(self.child.try_wait(), Ok(None)) || self.provider.is_some_and(is_alive) {
            self.kill_group();
        }
    }
}

/// `kill -9 PID`.
pub fn kill9(pid: u32) -> anyhow::Result<()> {
    let status = Command::new("kill").args(["-KILL", &pid.to_string()]).status().context("running kill")?;
    if !status.success() {
        bail!("kill -9 {pid} failed: {status}");
    }
    Ok(())
}

/// Whether process `pid` exists and is not a zombie.
pub fn is_alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Ok(stat) => stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().next()) != Some("Z"),
        Err(_) => false,
    }
}

/// The parent of process `pid`.
pub fn parent_of(pid: u32) -> Option<u32> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    stat.rsplit_once(')')?.1.split_whitespace().nth(1)?.parse().ok()
}

/// Live children of process `pid`.
pub fn children(pid: u32) -> Vec<u32> {
    let Ok(entries) = std::fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter(|p| parent_of(*p) == Some(pid) && is_alive(*p))
        .collect()
}

fn is_provider(pid: u32) -> bool {
    std::fs::read(format!("/proc/{pid}/cmdline"))
        .map(|c| String::from_utf8_lossy(&c).contains("terraform-provider-immutable"))
        .unwrap_or(false)
}
