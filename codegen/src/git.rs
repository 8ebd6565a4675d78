//! The little git the generator needs: the commit of the image sources, and the
//! layers file and its files as they were at another commit.

use crate::Error;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

fn git(dir: &Path, args: &[&str]) -> Result<String, Error> {
    let output = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| Error::Git(format!("cannot run git: {e}")))?;
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        return Err(Error::Git(format!("git {} in {}: {}", args.join(" "), dir.display(), stderr.trim())));
    }
    Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
}

/// `git rev-parse HEAD` of the repository holding `dir`.
pub fn head_commit(dir: &Path) -> Result<String, Error> {
    git(dir, &["rev-parse", "--verify", "HEAD^{commit}"]).map_err(|e| {
        Error::Git(format!(
            "no commit for the image sources (pass --commit, or run inside a git repository): {e}"
        ))
    })
}

/// A temporary copy of the repository's tree at `rev`, and where `file` (a path in
/// the working tree) is inside it. `None` when the file did not exist at `rev`.
pub struct Snapshot {
    pub dir: tempfile::TempDir,
    pub file: Option<PathBuf>,
}

/// Extracts the tree of `rev` (`git archive | tar -x`): nothing in the repository
/// or its worktree list changes, so it is safe next to other work in the checkout.
pub fn snapshot(file: &Path, rev: &str) -> Result<Snapshot, Error> {
    let dir = match file.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let commit = git(&dir, &["rev-parse", "--verify", "--end-of-options", &format!("{rev}^{{commit}}")])
        .map_err(|_| {
            Error::Usage(format!(
                "--changed-since {rev:?}: not a commit of the repository holding {}",
                file.display()
            ))
        })?;
    let prefix = git(&dir, &["rev-parse", "--show-prefix"])?;
    let name = file.file_name().ok_or_else(|| Error::Usage(format!("{} is not a file", file.display())))?;
    let in_repo = Path::new(&prefix).join(name);
    let top = git(&dir, &["rev-parse", "--show-toplevel"])?;

    let tmp = tempfile::tempdir().map_err(|e| Error::Io { path: std::env::temp_dir(), source: e })?;
    let mut archive = Command::new("git")
        .arg("-C")
        .arg(&top)
        .args(["archive", "--format=tar", &commit])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| Error::Git(format!("cannot run git archive: {e}")))?;
    let stdout = archive.stdout.take().ok_or_else(|| Error::Internal("git archive has no stdout".into()))?;
    let tar = Command::new("tar")
        .arg("-x")
        .arg("-C")
        .arg(tmp.path())
        .stdin(stdout)
        .output()
        .map_err(|e| Error::Git(format!("cannot run tar: {e}")))?;
    let archived = archive.wait_with_output().map_err(|e| Error::Git(format!("git archive: {e}")))?;
    if !archived.status.success() || !tar.status.success() {
        return Err(Error::Git(format!(
            "extracting {commit}: {} {}",
            String::from_utf8_lossy(&archived.stderr).trim(),
            String::from_utf8_lossy(&tar.stderr).trim()
        )));
    }
    let copied = tmp.path().join(in_repo);
    Ok(Snapshot { file: copied.is_file().then_some(copied), dir: tmp })
}
