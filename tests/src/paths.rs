//! Where the repository, the cargo target directory and the provider binary are.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;

use anyhow::{Context, bail};

/// Name of the provider executable (and of its cargo `[[bin]]` target).
const PROVIDER_BIN_NAME: &str = "terraform-provider-immutable";

/// The repository root: `$IMMUTABLE_REPO_ROOT` if set, else the parent of this
/// crate's manifest directory.
pub fn repo_root() -> PathBuf {
    if let Some(root) = std::env::var_os("IMMUTABLE_REPO_ROOT").filter(|v| !v.is_empty()) {
        return PathBuf::from(root);
    }
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir).to_path_buf()
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the repository
/// root when relative) or `<repo>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR").filter(|v| !v.is_empty()) {
        Some(dir) => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() { dir } else { repo_root().join(dir) }
        }
        None => repo_root().join("target"),
    }
}

static CHOSEN: OnceLock<PathBuf> = OnceLock::new();

/// Makes this process use `binary` as the provider (e.g. a release build for
/// benchmarks). Must be called before the first use; later calls are ignored.
pub fn use_provider_binary(binary: PathBuf) {
    let _ = CHOSEN.set(binary);
}

/// The provider binary, as [`try_provider_binary`], panicking when it cannot be
/// had.
pub fn provider_binary() -> PathBuf {
    match try_provider_binary() {
        Ok(path) => path,
        Err(err) => panic!("provider binary unavailable: {err:#}"),
    }
}

/// The provider binary: `$IMMUTABLE_PROVIDER_BIN` if set; otherwise the provider
/// is built once per process with `cargo build -p provider` into the usual target
/// directory and `<target>/debug/terraform-provider-immutable` is returned.
pub fn try_provider_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(bin) = CHOSEN.get() {
        return Ok(bin.clone());
    }
    if let Some(bin) = std::env::var_os("IMMUTABLE_PROVIDER_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("IMMUTABLE_PROVIDER_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    BUILT
        .get_or_init(|| build_provider().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

fn build_provider() -> anyhow::Result<PathBuf> {
    let cargo = std::env::var_os("CARGO").filter(|v| !v.is_empty()).unwrap_or_else(|| "cargo".into());
    let root = repo_root();
    let output = Command::new(&cargo)
        .args(["build", "--quiet", "-p", "provider", "--bin", PROVIDER_BIN_NAME])
        .current_dir(&root)
        .env("CARGO_TARGET_DIR", target_dir())
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("running {} build", cargo.to_string_lossy()))?;
    if !output.status.success() {
        bail!(
            "`cargo build -p provider --bin {PROVIDER_BIN_NAME}` failed ({}):\n{}{}",
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let bin = target_dir().join("debug").join(PROVIDER_BIN_NAME);
    if !bin.is_file() {
        bail!("cargo build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

const AGENT_BIN_NAME: &str = "immutable-agent";

/// The `immutable-agent` binary: `$IMMUTABLE_AGENT_BIN` if set; otherwise built once
/// per process with `cargo build -p agent` into the usual target directory.
pub fn agent_binary() -> anyhow::Result<PathBuf> {
    static BUILT: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    if let Some(bin) = std::env::var_os("IMMUTABLE_AGENT_BIN").filter(|v| !v.is_empty()) {
        let bin = PathBuf::from(bin);
        if !bin.is_file() {
            bail!("IMMUTABLE_AGENT_BIN={} is not a file", bin.display());
        }
        return Ok(bin);
    }
    BUILT
        .get_or_init(|| {
            let cargo = std::env::var_os("CARGO").filter(|v| !v.is_empty()).unwrap_or_else(|| "cargo".into());
            let output = Command::new(&cargo)
                .args(["build", "--quiet", "-p", "agent", "--bin", AGENT_BIN_NAME])
                .current_dir(repo_root())
                .env("CARGO_TARGET_DIR", target_dir())
                .stdin(Stdio::null())
                .output()
                .map_err(|e| format!("running {} build: {e}", cargo.to_string_lossy()))?;
            if !output.status.success() {
                return Err(format!(
                    "`cargo build -p agent --bin {AGENT_BIN_NAME}` failed ({}):\n{}",
                    output.status,
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            let bin = target_dir().join("debug").join(AGENT_BIN_NAME);
            if bin.is_file() {
                Ok(bin)
            } else {
                Err(format!("cargo build succeeded but {} is missing", bin.display()))
            }
        })
        .clone()
        .map_err(anyhow::Error::msg)
}
