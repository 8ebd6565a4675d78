//! Paths, a temporary git repository, and running the binary and Packer.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

pub const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

pub fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

pub fn repo_root() -> PathBuf {
    crate_dir().parent().map(Path::to_path_buf).unwrap_or_else(crate_dir)
}

pub fn fixture(name: &str) -> PathBuf {
    crate_dir().join("tests/fixtures").join(name)
}

pub fn example_dir() -> PathBuf {
    repo_root().join("examples/images")
}

/// Where a layers file that does not load is wrong: `(line, column, key)` of each
/// diagnostic, in order. Panics unless the error is the invalid-input one (exit code 2).
pub fn invalid_at(error: &codegen::Error) -> Vec<(usize, usize, &str)> {
    assert_eq!(error.exit_code(), 2);
    let codegen::Error::Invalid(diagnostics) = error else { panic!("{error}") };
    diagnostics.iter().map(|d| (d.line, d.column, d.key.as_str())).collect()
}

/// The layer ids whose fingerprint differs between `before` and `after`.
pub fn changed(before: &BTreeMap<String, String>, after: &BTreeMap<String, String>) -> Vec<String> {
    before.keys().filter(|id| before.get(*id) != after.get(*id)).cloned().collect()
}

/// Replaces the first `from` in `file` with `to`; `from` must be there.
pub fn edit(file: &Path, from: &str, to: &str) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(text.contains(from), "{from:?} not in {}", file.display());
    std::fs::write(file, text.replacen(from, to, 1)).expect("write");
}

/// The example's `ssh_source_cidrs` line, which narrows SSH for all its layers.
pub const EXAMPLE_SSH_CIDRS: &str = "ssh_source_cidrs = [\"10.0.0.0/8\"]\n";

/// Takes the example's `ssh_source_cidrs` out of the copy of its layers file at `file`,
/// leaving every layer's SSH open as Packer's default has it.
pub fn open_ssh(file: &Path) {
    let text = std::fs::read_to_string(file).expect("read");
    assert!(text.contains(EXAMPLE_SSH_CIDRS), "{EXAMPLE_SSH_CIDRS:?} not in {}", file.display());
    std::fs::write(file, text.replacen(EXAMPLE_SSH_CIDRS, "", 1)).expect("write");
}

/// Runs `immutable-codegen` with `args` in `cwd`.
pub fn codegen(cwd: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_immutable-codegen"))
        .current_dir(cwd)
        .args(args)
        .output()
        .expect("running immutable-codegen")
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Copies a folder tree (files only).
pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).expect("mkdir");
    for entry in std::fs::read_dir(from).expect("read_dir") {
        let entry = entry.expect("entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).expect("copy");
        }
    }
}

pub fn git(dir: &Path, args: &[&str]) -> String {
    let output = Command::new("git")
        .current_dir(dir)
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "commit.gpgsign=false"])
        .args(args)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("HOME", dir)
        .output()
        .expect("running git");
    assert!(output.status.success(), "git {args:?}: {}", stderr(&output));
    stdout(&output).trim().to_owned()
}

/// A copy of `fixture_dir` whose layers file targets the Packer `packer` names (set
/// right after its `project`).
pub fn with_packer(fixture_dir: &Path, packer: &str) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    copy_tree(fixture_dir, dir.path());
    let file = dir.path().join("layers.toml");
    let text = std::fs::read_to_string(&file).expect("read");
    let at = text.find("\nproject = ").expect("a project line") + 1;
    let end = at + text[at..].find('\n').expect("end of line") + 1;
    let text = format!("{}packer = {packer:?}\n{}", &text[..end], &text[end..]);
    std::fs::write(&file, text).expect("write");
    dir
}

/// A new repository holding a copy of `fixture` under `images/`, committed.
pub fn repo_with(fixture_dir: &Path) -> tempfile::TempDir {
    let repo = tempfile::tempdir().expect("tempdir");
    git(repo.path(), &["init", "-q", "-b", "main"]);
    copy_tree(fixture_dir, &repo.path().join("images"));
    git(repo.path(), &["add", "."]);
    git(repo.path(), &["commit", "-q", "-m", "images"]);
    repo
}

/// The `packer` binary: `$PACKER`, else `packer` on the PATH. `.ci/run` installs it.
pub fn packer() -> PathBuf {
    std::env::var_os("PACKER").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("packer"))
}

/// Runs `packer <args>` in `cwd`; panics with Packer's output on failure.
pub fn run_packer(cwd: &Path, args: &[&str]) {
    let output = Command::new(packer())
        .current_dir(cwd)
        .args(args)
        // Validation needs no AWS access: no credentials, no region lookup, and a
        // plugin check-point call that is switched off.
        .env("CHECKPOINT_DISABLE", "1")
        .env("PACKER_CACHE_DIR", cwd.join(".packer-cache"))
        .output()
        .unwrap_or_else(|e| panic!("cannot run {} (install packer 1.6+): {e}", packer().display()));
    assert!(output.status.success(), "packer {args:?} failed:\n{}{}", stdout(&output), stderr(&output));
}
