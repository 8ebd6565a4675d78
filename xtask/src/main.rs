//! Project automation, run as `cargo xtask <command>`.

mod bench;
mod bench_agent;
mod bench_codegen;
mod bench_cpu;
mod bench_plan;
mod bench_rollout;
mod bench_throttled;
mod bench_timed;
mod demo;
mod demo_layers;
mod release;
mod test_cmd;

use anyhow::{Context as _, Result, bail};
use std::path::{Path, PathBuf};
use std::process::Command;

const USAGE: &str = "\
cargo xtask <command>

Commands:
  demo    build the provider, start the local AWS emulator, seed an AMI lineage and
          terraform apply examples/terraform/lineage against it
  demo-layers
          build the AMI lineage of examples/terraform/layered with immutable_layered_ami
          (native builder) against the local AWS emulator
  test    install what the tests need (Packer, python3-venv with apt when root; the
          emulator's virtualenv), build the provider and run every test binary (unit,
          end-to-end, docs freshness), ending with one line of what passed and failed
  docs    regenerate docs/ from the provider's schemas and examples/
  release build the provider for linux_amd64 and linux_arm64 and write what a provider
          registry serves (a zip per platform, SHA256SUMS, manifest.json) and a
          filesystem-mirror layout for `terraform init -plugin-dir`
  install build the provider and put it in Terraform's implicit filesystem mirror
          (~/.terraform.d/plugins)
  bench   measure the provider (start-up, schema latency, memory, plan time over 1 to
          100 apps and its AWS requests, rollout overhead, codegen, immutable-agent's
          size and memory) against baselines
          taken in the same run; `cargo xtask bench --help` for running a subset
";

/// Errors are one readable paragraph on stderr, never a backtrace.
fn main() -> std::process::ExitCode {
    match run_command() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

fn run_command() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest = args.get(1..).unwrap_or_default();
    match args.first().map(String::as_str) {
        Some("test") => test(rest),
        Some("docs") => docs(),
        Some("demo") => demo::run(),
        Some("demo-layers") => demo_layers::run(),
        Some("bench") => bench::run(rest),
        Some("release") => release::release(rest),
        Some("install") => release::install(rest),
        Some("help" | "--help" | "-h") | None => {
            print!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).parent().map(Path::to_path_buf).unwrap_or_default()
}

fn cargo() -> Command {
    let mut command = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    command.current_dir(repo_root());
    command
}

fn run(mut command: Command) -> Result<()> {
    let status = command.status().with_context(|| format!("running {command:?}"))?;
    if !status.success() {
        bail!("{command:?} failed: {status}");
    }
    Ok(())
}

#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Profile {
    Debug,
    Release,
}

/// Builds the provider binary; tests and the demo use the debug build, benchmarks
/// the release build.
pub fn build_provider(profile: Profile) -> Result<PathBuf> {
    let mut command = cargo();
    command.args(["build", "--quiet", "-p", "provider", "--bin", "terraform-provider-immutable"]);
    if profile == Profile::Release {
        command.arg("--release");
    }
    run(command)?;
    let dir = if profile == Profile::Release { "release" } else { "debug" };
    let binary = tests::target_dir().join(dir).join("terraform-provider-immutable");
    if !binary.exists() {
        bail!("built the provider but found no binary at {}", binary.display());
    }
    Ok(binary)
}

fn test(extra: &[String]) -> Result<()> {
    test_cmd::ensure_packages()?;
    // The emulator's virtualenv (created once, reused after).
    let mut setup = Command::new(repo_root().join("scripts/local-aws"));
    setup.arg("setup");
    run(setup).context("setting up the local AWS emulator")?;
    let binary = build_provider(Profile::Debug)?;
    eprintln!("provider binary: {}", binary.display());
    let tally = test_cmd::run_suite(&binary, extra)?;
    println!("\ntests: {} passed, {} failed", tally.passed, tally.failed);
    if tally.failed > 0 {
        bail!("{} test(s) failed, in: {}", tally.failed, tally.failing.join("; "));
    }
    Ok(())
}

fn docs() -> Result<()> {
    let root = repo_root();
    for (path, content) in provider::docs::pages() {
        let target = root.join(&path);
        if let Some(dir) = target.parent() {
            std::fs::create_dir_all(dir)?;
        }
        std::fs::write(&target, content)?;
        println!("wrote {path}");
    }
    Ok(())
}
