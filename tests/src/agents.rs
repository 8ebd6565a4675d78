//! `immutable-agent` processes standing in for the ones on an app's instances: each
//! reads its instance's metadata from the emulator (`/_immutable/imds/<instance>`) and
//! calls the emulator's ELB, with the instance profile's credentials as on the instance
//! (none of the caller's AWS keys). Each logs its JSON lines to a file of its own.

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use anyhow::Context as _;

use crate::local_aws::Account;
use crate::paths::agent_binary;

struct Agent {
    instance: String,
    child: Child,
    log: PathBuf,
}

/// Running agents, killed when dropped ([`Agents::stop`] ends them as systemd would).
pub struct Agents {
    running: Vec<Agent>,
    logs: tempfile::TempDir,
}

impl Agents {
    /// One agent per instance of `account`, polling every `poll` (e.g. `"250ms"`). With
    /// `drain_hook`, each runs a hook that counts its runs ([`Agents::hooks`]).
    pub fn start(
        account: &Account,
        instances: &[String],
        poll: &str,
        drain_hook: bool,
    ) -> anyhow::Result<Agents> {
        let binary = agent_binary()?;
        let logs = tempfile::Builder::new().prefix("immutable-agents-").tempdir().context("a log folder")?;
        let endpoint = account.endpoint.trim_end_matches('/').to_owned();
        let mut agents = Agents { running: Vec::new(), logs };
        for id in instances {
            let log = agents.logs.path().join(format!("{id}.log"));
            let mut command = Command::new(&binary);
            command
                .args(["--imds-endpoint", &format!("{endpoint}/_immutable/imds/{id}")])
                .args(["--elb-endpoint", &endpoint, "--poll-interval", poll])
                .env_remove("AWS_ACCESS_KEY_ID")
                .env_remove("AWS_SECRET_ACCESS_KEY")
                .env_remove("AWS_SESSION_TOKEN")
                .stdout(std::fs::File::create(&log).with_context(|| format!("creating {}", log.display()))?)
                .stderr(Stdio::null());
            if drain_hook {
                let hook = agents.logs.path().join(format!("{id}.hook"));
                command.args(["--drain-hook", &format!("echo drained >> {}", hook.display())]);
            }
            let child = command.spawn().with_context(|| format!("starting {}", binary.display()))?;
            agents.running.push(Agent { instance: id.clone(), child, log });
        }
        Ok(agents)
    }

    /// The events the agent of `instance` logged so far: its complete lines, each a JSON
    /// object (a line being written is left for the next call).
    ///
    /// # Panics
    /// When `instance` has no agent, or a complete line is not JSON.
    pub fn events(&self, instance: &str) -> Vec<serde_json::Value> {
        let agent = self.running.iter().find(|a| a.instance == instance).expect("an agent of the instance");
        std::fs::read_to_string(&agent.log)
            .unwrap_or_default()
            .split_inclusive('\n')
            .filter(|line| line.ends_with('\n'))
            .map(|line| {
                serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"))
            })
            .collect()
    }

    /// How many events `event` the agent of `instance` logged.
    pub fn logged(&self, instance: &str, event: &str) -> usize {
        self.events(instance).iter().filter(|e| e["event"] == event).count()
    }

    /// How many times the drain hook ran on `instance`.
    pub fn hooks(&self, instance: &str) -> usize {
        std::fs::read_to_string(self.logs.path().join(format!("{instance}.hook")))
            .unwrap_or_default()
            .lines()
            .count()
    }

    /// SIGTERM to each, as systemd stops them; their exit codes.
    pub fn stop(mut self) -> Vec<Option<i32>> {
        for agent in &self.running {
            let _ = Command::new("kill").args(["-TERM", &agent.child.id().to_string()]).status();
        }
        self.running.iter_mut().map(|a| a.child.wait().ok().and_then(|s| s.code())).collect()
    }
}

impl Drop for Agents {
    fn drop(&mut self) {
        for agent in &mut self.running {
            let _ = agent.child.kill();
            let _ = agent.child.wait();
        }
    }
}
