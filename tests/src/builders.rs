//! Playing the part of the builders.
//!
//! `immutable_layered_ami`'s native builder launches an instance whose user data
//! provisions the image and powers it off. The emulator runs no user data, so
//! [`BuilderPlayer`] stops every running builder instance it sees, as the user data
//! would have. Real Packer needs AWS, so [`stand_in_packer`] writes a `packer` that
//! does to the emulator what Packer's amazon-ebs builder and manifest post-processor
//! would, and prints what Packer would, `-machine-readable` or not
//! (`tests/fixtures/layered-ami/fake_packer.py`).

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use aws_sdk_ec2::types::Filter;

use crate::local_aws::Account;
use crate::paths::repo_root;
use crate::terraform::Workdir;

/// Writes an executable stand-in for `packer` at `bin/packer` in `workdir` and returns
/// its path (for `build.command`). Each run appends its pid to `bin/pids` and its
/// arguments to `bin/invocations.log`, runs `before_build` (shell lines, with `dir`
/// (`bin`), the parsed `flags` (such as `-machine-readable`), `vars` (`-var K=V`
/// pairs) and `template` in scope), then becomes `fake_packer.py` with the same
/// arguments. `before_build` may export the stand-in's own settings
/// (`FAKE_PACKER_WAIT_FOR`, `FAKE_PACKER_PAUSE`, `FAKE_PACKER_TIMELINE`; see
/// `fake_packer.py`).
///
/// # Panics
/// When the script cannot be written.
pub fn stand_in_packer(workdir: &Workdir, before_build: &str) -> String {
    let fixture = repo_root().join("tests/fixtures/layered-ami");
    let script = format!(
        r#"#!/usr/bin/env bash
set -euo pipefail
dir="$(dirname "$0")"
echo "$$" >> "$dir/pids"
echo "$*" >> "$dir/invocations.log"
sub="$1"; shift
flags=()
vars=()
template=""
while (($#)); do
  case "$1" in
    -var) vars+=(-var "$2"); shift 2 ;;
    -*) flags+=("$1"); shift ;;
    *) template="$1"; shift ;;
  esac
done
{before_build}
exec "{repo}/scripts/local-aws" python "{fixture}/fake_packer.py" "$sub" "${{flags[@]}}" "${{vars[@]}}" "$template"
"#,
        repo = repo_root().display(),
        fixture = fixture.display()
    );
    workdir.write("bin/packer", &script);
    let path = workdir.path().join("bin/packer");
    use std::os::unix::fs::PermissionsExt;
    if let Err(e) = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)) {
        panic!("making {} executable: {e}", path.display());
    }
    path.display().to_string()
}

/// Tag the provider puts on builder instances (value: the layer).
pub const BUILDER_TAG: &str = "immutable:builder";

/// Stops running builder instances of one account until dropped.
#[derive(Debug)]
pub struct BuilderPlayer {
    done: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl BuilderPlayer {
    /// Starts polling `account` (every 100 ms) on a thread of its own.
    pub fn start(account: &Account) -> BuilderPlayer {
        let done = Arc::new(AtomicBool::new(false));
        let flag = done.clone();
        let account = account.clone();
        let thread = std::thread::spawn(move || {
            let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() else {
                eprintln!("builder player: no tokio runtime");
                return;
            };
            runtime.block_on(async {
                let ec2 = account.ec2().await;
                while !flag.load(Ordering::Relaxed) {
                    for id in builder_instances(&ec2, &["pending", "running"]).await.unwrap_or_default() {
                        let _ = ec2.stop_instances().instance_ids(id).send().await;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            });
        });
        BuilderPlayer { done, thread: Some(thread) }
    }
}

impl Drop for BuilderPlayer {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Ids of builder instances (by tag) in one of `states`.
pub async fn builder_instances(ec2: &aws_sdk_ec2::Client, states: &[&str]) -> anyhow::Result<Vec<String>> {
    let response = ec2
        .describe_instances()
        .filters(Filter::builder().name("tag-key").values(BUILDER_TAG).build())
        .filters(
            Filter::builder()
                .name("instance-state-name")
                .set_values(Some(states.iter().map(|s| s.to_string()).collect()))
                .build(),
        )
        .send()
        .await?;
    Ok(response
        .reservations()
        .iter()
        .flat_map(|r| r.instances())
        .filter_map(|i| i.instance_id().map(str::to_owned))
        .collect())
}
