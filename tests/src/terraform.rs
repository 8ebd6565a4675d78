//! Running the real Terraform CLI against the provider and the emulator.

use std::collections::hash_map::DefaultHasher;
use std::ffi::OsString;
use std::fmt;
use std::hash::{Hash, Hasher};
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};

use crate::local_aws::Account;
use crate::paths::{target_dir, try_provider_binary};

/// Source address under which the provider is installed for tests.
pub const PROVIDER_SOURCE: &str = "terraform.local/immutable/immutable";

/// Default limit for one Terraform command (`IMMUTABLE_TF_TIMEOUT_SECS` overrides).
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(600);

/// The Terraform CLI: `$TERRAFORM` or `/usr/local/bin/terraform`.
pub fn terraform_binary() -> PathBuf {
    std::env::var_os("TERRAFORM")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/local/bin/terraform"))
}

struct Mirror {
    dir: PathBuf,
    /// Why the provider is missing from the mirror, if it is.
    problem: Option<String>,
}

/// Directory of the provider filesystem mirror (Terraform's unpacked layout),
/// prepared once per process: it holds
/// `terraform.local/immutable/immutable/0.0.1/<os>_<arch>/terraform-provider-immutable`,
/// a symlink to [`provider_binary`](crate::provider_binary). When the provider is
/// unavailable the directory exists but is empty, so configurations that need
/// no provider still work.
pub fn provider_mirror() -> PathBuf {
    mirror().dir.clone()
}

fn mirror() -> &'static Mirror {
    static MIRROR: OnceLock<Mirror> = OnceLock::new();
    MIRROR.get_or_init(|| {
        let base = target_dir().join("immutable-tests").join("provider-mirror");
        match try_provider_binary().and_then(|bin| build_mirror(&base, &bin)) {
            Ok(dir) => Mirror { dir, problem: None },
            Err(err) => {
                let problem = format!("{err:#}");
                eprintln!("immutable-tests: provider not installed in the Terraform mirror: {problem}");
                let dir = base.join("empty");
                if let Err(err) = std::fs::create_dir_all(&dir) {
                    panic!("creating {}: {err}", dir.display());
                }
                Mirror { dir, problem: Some(problem) }
            }
        }
    })
}

fn build_mirror(base: &Path, bin: &Path) -> anyhow::Result<PathBuf> {
    let bin = bin.canonicalize().with_context(|| format!("resolving {}", bin.display()))?;
    // One mirror per provider binary path, so processes using different binaries
    // never rewrite each other's mirror.
    let mut hasher = DefaultHasher::new();
    bin.hash(&mut hasher);
    let dir = base.join(format!("{:016x}", hasher.finish()));
    let package = dir.join(PROVIDER_SOURCE).join(reported_version(&bin)?).join(platform());
    std::fs::create_dir_all(&package).with_context(|| format!("creating {}", package.display()))?;
    let link = package.join("terraform-provider-immutable");
    if std::fs::read_link(&link).ok().as_deref() != Some(bin.as_path()) {
        let tmp = package.join(format!(".link-{}", std::process::id()));
        let _ = std::fs::remove_file(&tmp);
        std::os::unix::fs::symlink(&bin, &tmp).with_context(|| format!("linking {}", tmp.display()))?;
        std::fs::rename(&tmp, &link).with_context(|| format!("creating {}", link.display()))?;
    }
    Ok(dir)
}

/// The version the provider binary reports (`terraform-provider-immutable 0.1.0`),
/// under which it is installed: the tests' configurations may pin it.
fn reported_version(bin: &Path) -> anyhow::Result<String> {
    let out =
        Command::new(bin).arg("--version").output().with_context(|| format!("running {}", bin.display()))?;
    let text = String::from_utf8_lossy(&out.stdout);
    match text.split_whitespace().collect::<Vec<_>>()[..] {
        [_, version] if out.status.success() => Ok(version.to_string()),
        _ => bail!("{} --version printed {:?}", bin.display(), text.trim()),
    }
}

/// Terraform's name for this platform, e.g. `linux_amd64`.
fn platform() -> String {
    let arch = match std::env::consts::ARCH {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" => "386",
        other => other,
    };
    format!("{}_{arch}", std::env::consts::OS)
}

/// What one Terraform command printed and how it ended.
#[derive(Debug, Clone)]
pub struct TfOutput {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl TfOutput {
    pub fn success(&self) -> bool {
        self.status.success()
    }

    /// Whether an `Error: {summary}` diagnostic points at source line `line` (its
    /// excerpt shows that line, compared trimmed).
    pub fn has_error_at(&self, summary: &str, line: &str) -> bool {
        let heading = format!("Error: {summary}");
        diagnostic_blocks(&self.stderr).any(|b| first_line_is(b, &heading) && shows_source_line(b, line))
    }

    /// Panics with Terraform's output unless [`TfOutput::has_error_at`].
    pub fn assert_error_at(&self, summary: &str, line: &str) {
        assert!(
            self.has_error_at(summary, line),
            "expected \"Error: {summary}\" pointing at `{line}`:\n{self}"
        );
    }
}

/// Terraform's diagnostics in `stderr`, each from its `Error:`/`Warning:` line to
/// the next one. Lines may carry the `│` frame Terraform draws on terminals.
pub fn diagnostic_blocks(stderr: &str) -> impl Iterator<Item = &str> {
    let is_heading = |line: &str| {
        let line = line.trim_start_matches(['╷', '│', ' ']);
        line.starts_with("Error: ") || line.starts_with("Warning: ")
    };
    let mut starts: Vec<usize> = Vec::new();
    let mut offset = 0;
    for line in stderr.split_inclusive('\n') {
        if is_heading(line) {
            starts.push(offset);
        }
        offset += line.len();
    }
    let ends: Vec<usize> = starts.iter().skip(1).copied().chain([stderr.len()]).collect();
    starts.into_iter().zip(ends).map(move |(start, end)| &stderr[start..end])
}

/// Whether a diagnostic block starts with `heading` (`Error: Invalid Region`).
pub fn first_line_is(block: &str, heading: &str) -> bool {
    block
        .lines()
        .map(|l| l.trim_start_matches(['╷', '│']).trim())
        .find(|l| !l.is_empty())
        .is_some_and(|l| l == heading)
}

/// Whether the block's source excerpt (`  12:   region = "x"`) shows `line`.
pub fn shows_source_line(block: &str, line: &str) -> bool {
    block.lines().any(|l| {
        let l = l.trim_start_matches('│').trim();
        l.split_once(':').is_some_and(|(number, source)| {
            !number.is_empty() && number.bytes().all(|b| b.is_ascii_digit()) && source.trim() == line
        })
    })
}

impl fmt::Display for TfOutput {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "exit status: {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.status, self.stdout, self.stderr
        )
    }
}

/// A temporary Terraform working directory bound to one emulator account.
///
/// Terraform runs with its own CLI configuration (the provider comes from the
/// local mirror, nothing from the network), the account's AWS environment, and
/// none of the caller's `TF_*`/`AWS_*` variables. Set `IMMUTABLE_KEEP_WORKDIR=1`
/// to keep the directories for inspection.
pub struct Workdir {
    root: tempfile::TempDir,
    work: PathBuf,
    cli_config: PathBuf,
    account: Account,
    mirror_problem: Option<String>,
}

impl fmt::Debug for Workdir {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workdir").field("path", &self.work).field("account", &self.account.id).finish()
    }
}

impl Workdir {
    /// A fresh directory for `account`.
    ///
    /// # Panics
    /// When the temporary directory or the CLI configuration cannot be written.
    pub fn new(account: &Account) -> Workdir {
        match Workdir::try_new(account) {
            Ok(dir) => dir,
            Err(err) => panic!("creating a Terraform workdir: {err:#}"),
        }
    }

    fn try_new(account: &Account) -> anyhow::Result<Workdir> {
        let mirror = mirror();
        let mut root = tempfile::Builder::new().prefix("immutable-tf-").tempdir().context("temp dir")?;
        if std::env::var_os("IMMUTABLE_KEEP_WORKDIR").is_some_and(|v| !v.is_empty() && v != "0") {
            root.disable_cleanup(true);
            eprintln!("immutable-tests: keeping Terraform workdir {}", root.path().display());
        }
        let work = root.path().join("work");
        std::fs::create_dir(&work).context("creating work dir")?;
        let cli_config = root.path().join("cli.tfrc");
        std::fs::write(&cli_config, cli_config_text(&mirror.dir)).context("writing CLI config")?;
        Ok(Workdir {
            root,
            work,
            cli_config,
            account: account.clone(),
            mirror_problem: mirror.problem.clone(),
        })
    }

    /// The directory Terraform runs in.
    pub fn path(&self) -> &Path {
        &self.work
    }

    /// The Terraform CLI configuration file used (`TF_CLI_CONFIG_FILE`).
    pub fn cli_config(&self) -> &Path {
        &self.cli_config
    }

    /// The account Terraform acts in.
    pub fn account(&self) -> &Account {
        &self.account
    }

    /// Writes `contents` to `name` (relative to [`Workdir::path`]).
    ///
    /// # Panics
    /// On I/O errors.
    pub fn write(&self, name: &str, contents: &str) {
        let path = self.work.join(name);
        if let Some(parent) = path.parent()
            && let Err(err) = std::fs::create_dir_all(parent)
        {
            panic!("creating {}: {err}", parent.display());
        }
        if let Err(err) = std::fs::write(&path, contents) {
            panic!("writing {}: {err}", path.display());
        }
    }

    /// The environment Terraform runs with (besides the inherited one, minus
    /// `TF_*`/`AWS_*`).
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("TF_CLI_CONFIG_FILE".to_string(), self.cli_config.to_string_lossy().into_owned()),
            ("CHECKPOINT_DISABLE".to_string(), "1".to_string()),
            ("TF_IN_AUTOMATION".to_string(), "1".to_string()),
            ("TF_INPUT".to_string(), "0".to_string()),
        ];
        env.extend(self.account.env());
        env
    }

    /// Runs `terraform ARGS` here.
    pub fn terraform(&self, args: &[&str]) -> TfOutput {
        self.terraform_with_env(args, &[])
    }

    /// Runs `terraform ARGS` here with `extra_env` added last (e.g. `TF_LOG`).
    ///
    /// # Panics
    /// When Terraform cannot be started.
    pub fn terraform_with_env(&self, args: &[&str], extra_env: &[(&str, &str)]) -> TfOutput {
        self.terraform_env(args, extra_env, &[])
    }

    /// Runs `terraform ARGS` here with `extra_env` added and the variables `unset`
    /// removed (e.g. the account's credentials).
    ///
    /// # Panics
    /// When Terraform cannot be started.
    pub fn terraform_env(&self, args: &[&str], extra_env: &[(&str, &str)], unset: &[&str]) -> TfOutput {
        let mut cmd = Command::new(terraform_binary());
        cmd.args(args).current_dir(&self.work).stdin(Stdio::null());
        for (key, _) in std::env::vars_os() {
            if is_scrubbed(&key) {
                cmd.env_remove(&key);
            }
        }
        cmd.envs(self.env());
        cmd.envs(extra_env.iter().copied());
        for key in unset {
            cmd.env_remove(key);
        }
        match run_with_timeout(cmd, timeout()) {
            Ok(out) => out,
            Err(err) => panic!("running terraform {}: {err:#}", args.join(" ")),
        }
    }

    /// Runs `terraform ARGS`, failing with its output unless it exits 0.
    pub fn run_ok(&self, args: &[&str]) -> anyhow::Result<TfOutput> {
        let out = self.terraform(args);
        if out.success() {
            return Ok(out);
        }
        let mut message = format!("terraform {} failed in {}\n{out}", args.join(" "), self.work.display());
        if let Some(problem) = &self.mirror_problem {
            message.push_str(&format!("\nnote: the provider is not installed in the mirror: {problem}"));
        }
        bail!(message)
    }

    /// `terraform init`.
    pub fn init(&self) -> anyhow::Result<TfOutput> {
        self.run_ok(&["init", "-no-color", "-input=false"])
    }

    /// `terraform apply -auto-approve`.
    pub fn apply(&self) -> anyhow::Result<TfOutput> {
        self.run_ok(&["apply", "-auto-approve", "-no-color", "-input=false"])
    }

    /// `terraform plan`.
    pub fn plan(&self) -> anyhow::Result<TfOutput> {
        self.run_ok(&["plan", "-no-color", "-input=false"])
    }

    /// `terraform plan -detailed-exitcode`: whether the plan has changes.
    pub fn plan_has_changes(&self) -> anyhow::Result<bool> {
        let args = ["plan", "-no-color", "-input=false", "-detailed-exitcode"];
        let out = self.terraform(&args);
        match out.status.code() {
            Some(0) => Ok(false),
            Some(2) => Ok(true),
            _ => bail!("terraform {} failed in {}\n{out}", args.join(" "), self.work.display()),
        }
    }

    /// `terraform destroy -auto-approve`.
    pub fn destroy(&self) -> anyhow::Result<TfOutput> {
        self.run_ok(&["destroy", "-auto-approve", "-no-color", "-input=false"])
    }

    /// `terraform output -json`, parsed: an object mapping each output name to
    /// `{"value": ..., "type": ..., "sensitive": ...}`.
    pub fn output_json(&self) -> anyhow::Result<serde_json::Value> {
        let out = self.run_ok(&["output", "-json", "-no-color"])?;
        serde_json::from_str(&out.stdout)
            .with_context(|| format!("parsing `terraform output -json`:\n{}", out.stdout))
    }

    /// The value of output `name` (from [`Workdir::output_json`]).
    pub fn output(&self, name: &str) -> anyhow::Result<serde_json::Value> {
        let outputs = self.output_json()?;
        outputs
            .get(name)
            .and_then(|o| o.get("value"))
            .cloned()
            .with_context(|| format!("no output {name:?} in {outputs}"))
    }

    /// Where the temporary directory is (parent of [`Workdir::path`]).
    pub fn root(&self) -> &Path {
        self.root.path()
    }
}

fn cli_config_text(mirror: &Path) -> String {
    let mirror = hcl_string(&mirror.to_string_lossy());
    let source = hcl_string(PROVIDER_SOURCE);
    let host = PROVIDER_SOURCE.split('/').next().unwrap_or(PROVIDER_SOURCE);
    let exclude = hcl_string(&format!("{host}/*/*"));
    format!(
        r#"disable_checkpoint = true

provider_installation {{
  filesystem_mirror {{
    path    = {mirror}
    include = [{source}]
  }}
  direct {{
    exclude = [{exclude}]
  }}
}}
"#
    )
}

/// `s` as a quoted HCL string.
fn hcl_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '$' => out.push_str("$$"),
            '%' => out.push_str("%%"),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn is_scrubbed(key: &OsString) -> bool {
    let key = key.to_string_lossy();
    key.starts_with("TF_") || key.starts_with("AWS_") || key == "CHECKPOINT_DISABLE"
}

fn timeout() -> Duration {
    std::env::var("IMMUTABLE_TF_TIMEOUT_SECS")
        .ok()
        .and_then(|v| v.parse().ok())
        .map(Duration::from_secs)
        .unwrap_or(DEFAULT_TIMEOUT)
}

/// Runs `cmd` in its own process group, collecting its output; on timeout the
/// whole group (Terraform and its provider plugins) is killed.
fn run_with_timeout(mut cmd: Command, limit: Duration) -> anyhow::Result<TfOutput> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped()).process_group(0);
    let program = cmd.get_program().to_string_lossy().into_owned();
    let mut child = cmd.spawn().with_context(|| format!("spawning {program}"))?;
    let stdout = child.stdout.take().context("stdout")?;
    let stderr = child.stderr.take().context("stderr")?;
    let read_all = |mut r: Box<dyn Read + Send>| {
        std::thread::spawn(move || {
            let mut buf = Vec::new();
            let _ = r.read_to_end(&mut buf);
            String::from_utf8_lossy(&buf).into_owned()
        })
    };
    let out_reader = read_all(Box::new(stdout));
    let err_reader = read_all(Box::new(stderr));

    let started = Instant::now();
    let mut timed_out = false;
    let status = loop {
        if let Some(status) = child.try_wait().context("waiting for terraform")? {
            break status;
        }
        if started.elapsed() >= limit {
            timed_out = true;
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", child.id())])
                .stderr(Stdio::null())
                .status();
            let _ = child.kill();
            break child.wait().context("waiting for terraform")?;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let stdout = out_reader.join().unwrap_or_default();
    let mut stderr = err_reader.join().unwrap_or_default();
    if timed_out {
        stderr.push_str(&format!("\n[killed after {}s: timeout]\n", limit.as_secs()));
    }
    Ok(TfOutput { status, stdout, stderr })
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn cli_config_names_the_mirror() {
        let text = cli_config_text(Path::new("/tmp/m\"x"));
        assert!(text.contains(r#"path    = "/tmp/m\"x""#), "{text}");
        assert!(text.contains(r#"include = ["terraform.local/immutable/immutable"]"#), "{text}");
        assert!(text.contains(r#"exclude = ["terraform.local/*/*"]"#), "{text}");
    }

    #[test]
    fn platform_is_terraform_style() {
        let p = platform();
        assert!(p.starts_with("linux_") || p.starts_with("macos_"), "{p}");
        assert!(!p.contains("x86_64"), "{p}");
    }
}
