//! `cargo xtask test`: sets up what the suite needs on a fresh Debian machine (Packer,
//! Python's venv module), builds the provider, runs every test binary even when one
//! fails, and ends with one summary line of what passed and what failed.

use anyhow::{Context as _, Result, bail};
use std::io::{BufRead as _, BufReader};
use std::process::{Command, Stdio};

/// Debian packages the suite needs, with the check that says whether one is there.
fn missing_packages() -> Vec<&'static str> {
    let mut missing = Vec::new();
    let ok = |program: &str, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    };
    if !ok("packer", &["version"]) {
        missing.push("packer");
    }
    // Debian's own python3 needs this for `python3 -m venv` (the emulator's virtualenv).
    if !ok("python3", &["-c", "import ensurepip, venv"]) {
        missing.push("python3-venv");
    }
    missing
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|out| String::from_utf8_lossy(&out.stdout).trim() == "0")
}

/// Installs the missing packages with apt when running as root; otherwise stops before
/// building anything, with the one command to run.
pub fn ensure_packages() -> Result<()> {
    let missing = missing_packages();
    if missing.is_empty() {
        return Ok(());
    }
    apt_install(&missing, "the tests need", "cargo xtask test")?;
    let still = missing_packages();
    if !still.is_empty() {
        bail!("installed {}, but {} still does not run", missing.join(" "), still.join(" "));
    }
    Ok(())
}

/// Installs Debian `packages` with apt-get when running as root (the package lists are
/// updated first, retried a few times); otherwise fails with the one command to run
/// and the `xtask` command to run after it. `need` starts the message: "the tests need".
pub fn apt_install(packages: &[&str], need: &str, again: &str) -> Result<()> {
    let list = packages.join(" ");
    if !is_root() {
        bail!(
            "{need} {list}, which is not installed; run `sudo apt-get install -y {list}` and then `{again}` again"
        );
    }
    eprintln!("installing {list} (apt-get)");
    let apt = |args: &[&str]| -> Result<()> {
        let status = Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .status()
            .context("running apt-get")?;
        if !status.success() {
            bail!("`apt-get {}` failed ({status})", args.join(" "));
        }
        Ok(())
    };
    let mut updated = Err(anyhow::anyhow!("not tried"));
    for attempt in 1..=3 {
        updated = apt(&["update", "-q"]);
        if updated.is_ok() {
            break;
        }
        std::thread::sleep(std::time::Duration::from_secs(5 * attempt));
    }
    updated.context("updating the package lists")?;
    let mut install = vec!["install", "-y", "-q", "--no-install-recommends"];
    install.extend(packages.iter().copied());
    apt(&install)
}

/// What the test binaries reported.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Tally {
    pub passed: u64,
    pub failed: u64,
    /// The binaries with a failure ("unittests src/lib.rs (provider)"), in order.
    pub failing: Vec<String>,
}

impl Tally {
    /// Reads one line of `cargo test`'s output.
    pub fn line(&mut self, current: &mut String, line: &str) {
        let trimmed = line.trim();
        if let Some(rest) = trimmed.strip_prefix("Running ") {
            rest.clone_into(current);
        } else if let Some(rest) = trimmed.strip_prefix("Doc-tests ") {
            *current = format!("doc tests of {rest}");
        } else if let Some(result) = trimmed.strip_prefix("test result: ") {
            let number = |word: &str| {
                result
                    .split(';')
                    .find_map(|part| {
                        part.trim().strip_suffix(word).map(|n| n.trim().rsplit(' ').next().unwrap_or(""))
                    })
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or(0)
            };
            let (passed, failed) = (number(" passed"), number(" failed"));
            self.passed += passed;
            self.failed += failed;
            if failed > 0 || result.starts_with("FAILED") {
                self.failing.push(current.clone());
            }
        }
    }
}

/// Runs `cargo test` over the workspace without stopping at the first failing binary;
/// its output goes through as it comes.
pub fn run_suite(provider_binary: &std::path::Path, extra: &[String]) -> Result<Tally> {
    let mut command = super::cargo();
    command
        .args(["test", "--workspace", "--all-targets", "--no-fail-fast"])
        .args(extra)
        .env("IMMUTABLE_PROVIDER_BIN", provider_binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().context("running cargo test")?;
    // The results come on stdout, cargo's "Running <binary>" lines on stderr: both are
    // read as they come, in one stream of lines, and passed through.
    let (lines, received) = std::sync::mpsc::channel::<(bool, String)>();
    let stdout = child.stdout.take().context("cargo test's output")?;
    let stderr = child.stderr.take().context("cargo test's messages")?;
    let out = lines.clone();
    let readers = [
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = out.send((false, line));
            }
        }),
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                let _ = lines.send((true, line));
            }
        }),
    ];
    let mut tally = Tally::default();
    let mut current = String::new();
    for (is_err, line) in received {
        if is_err {
            eprintln!("{line}");
        } else {
            println!("{line}");
        }
        tally.line(&mut current, &line);
    }
    for reader in readers {
        let _ = reader.join();
    }
    let status = child.wait().context("waiting for cargo test")?;
    if !status.success() && tally.failed == 0 {
        bail!("cargo test failed ({status}) before any test failed: see its output above (a build error?)");
    }
    Ok(tally)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_tallied_per_binary() {
        let output = "\
     Running unittests src/lib.rs (target/debug/deps/provider-1)
test result: ok. 70 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 5.45s
     Running tests/it/main.rs (target/debug/deps/it-2)
test result: FAILED. 108 passed; 2 failed; 0 ignored; 0 measured; 0 filtered out; finished in 299.81s
   Doc-tests tfplugin
test result: ok. 0 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out; finished in 0.00s
";
        let mut tally = Tally::default();
        let mut current = String::new();
        for line in output.lines() {
            tally.line(&mut current, line);
        }
        assert_eq!(tally.passed, 178);
        assert_eq!(tally.failed, 2);
        assert_eq!(tally.failing, ["tests/it/main.rs (target/debug/deps/it-2)"]);
    }
}
