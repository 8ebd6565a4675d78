//! `immutable-codegen`: one layers file in, a Packer template per layer out, with
//! the commit and the lineage in the AMI tags, and a build plan in waves.
//!
//! - [`layers::load`] reads and checks the layers file ([`model`] is its format);
//!   every problem is a [`Diagnostic`] naming file, line and key.
//! - [`fingerprint::fingerprints`] computes each layer's `Fingerprint`.
//! - [`packer`] renders the templates; [`generate`], [`write`] and [`check`] put them
//!   on disk or compare them with what is there.
//! - [`plan`] orders the layers in waves, optionally only the changed ones.
//!
//! The layers file names the Packer that runs the templates ([`layers::Target`]):
//! Packer 1.6 (JSON or HCL2), or current Packer (HCL2 for `packer init`).

pub mod diag;
pub mod fingerprint;
pub mod git;
pub mod hcl;
pub mod layers;
pub mod model;
pub mod packer;
pub mod plan;

pub use diag::Diagnostic;
pub use layers::{Layer, Layers};
pub use packer::Format;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The layers file is wrong; each diagnostic names file, line and key.
    #[error("{}", lines(.0))]
    Invalid(Vec<Diagnostic>),
    /// A bad command-line value (a commit that is not 40 hex digits, an unknown ref).
    #[error("{0}")]
    Usage(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error("{0}")]
    Git(String),
    #[error("internal error: {0}")]
    Internal(String),
}

fn lines(diagnostics: &[Diagnostic]) -> String {
    diagnostics.iter().map(ToString::to_string).collect::<Vec<_>>().join("\n")
}

impl Error {
    /// 2 for bad input (the layers file or an argument), 1 for anything else.
    pub fn exit_code(&self) -> u8 {
        match self {
            Error::Invalid(_) | Error::Usage(_) => 2,
            _ => 1,
        }
    }
}

/// The commit to write into templates.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Commit {
    /// This one (40 lower-case hex digits).
    Given(String),
    /// `git rev-parse HEAD` of the repository holding the layers file.
    Head,
    /// The commit already written in each template on disk, else `HEAD`: for
    /// `--check`, since committing the generated files moves `HEAD`.
    OnDiskElseHead,
}

/// One generated template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GeneratedFile {
    pub layer: String,
    /// Relative to the output folder, e.g. `ubuntu-1804/packer.json`.
    pub path: PathBuf,
    pub text: String,
}

/// Renders every layer's template for the output folder `out_dir` (paths to
/// provisioned files are written relative to each template).
pub fn generate(
    layers: &Layers,
    format: Format,
    commit: &Commit,
    out_dir: &Path,
) -> Result<Vec<GeneratedFile>, Error> {
    if let Commit::Given(c) = commit
        && !conventions::is_full_commit(c)
    {
        return Err(Error::Usage(format!("--commit {c:?}: a commit is 40 lower-case hex digits")));
    }
    layers.check_format(format)?;
    let fingerprints = fingerprint::fingerprints(layers)?;
    let mut head: Option<String> = None;
    let mut head_commit = || -> Result<String, Error> {
        if head.is_none() {
            head = Some(git::head_commit(&layers.dir)?);
        }
        Ok(head.clone().unwrap_or_default())
    };
    let mut files = Vec::new();
    for layer in &layers.layers {
        let path = packer::template_path(&layer.id, format);
        let template_dir = out_dir.join(&layer.id);
        let up = packer::relative(&template_dir, &layers.dir)
            .map_err(|e| Error::Io { path: template_dir, source: e })?;
        let commit = match commit {
            Commit::Given(c) => c.clone(),
            Commit::Head => head_commit()?,
            Commit::OnDiskElseHead => match commit_on_disk(&out_dir.join(&path), format) {
                Some(c) => c,
                None => head_commit()?,
            },
        };
        let cx = packer::Context { layers, fingerprints: &fingerprints, commit: &commit, up: &up };
        let text = match format {
            Format::Json => packer::json(&cx, layer).map_err(|e| Error::Internal(e.to_string()))?,
            Format::Hcl => packer::hcl(&cx, layer),
        };
        files.push(GeneratedFile { layer: layer.id.clone(), path, text });
    }
    Ok(files)
}

/// The `commit` variable's default in a template we generated, if readable.
pub fn commit_on_disk(path: &Path, format: Format) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    let commit = match format {
        Format::Json => {
            let value: serde_json::Value = serde_json::from_str(&text).ok()?;
            value.get("variables")?.get("commit")?.as_str()?.to_owned()
        }
        Format::Hcl => {
            let block = text.split("variable \"commit\" {").nth(1)?.split('}').next()?;
            let line = block.lines().find(|l| l.trim_start().starts_with("default "))?;
            line.split('"').nth(1)?.to_owned()
        }
    };
    conventions::is_full_commit(&commit).then_some(commit)
}

/// Writes the templates under `out_dir`, leaving identical files untouched.
pub fn write(out_dir: &Path, files: &[GeneratedFile]) -> Result<(), Error> {
    for file in files {
        let path = out_dir.join(&file.path);
        if std::fs::read_to_string(&path).is_ok_and(|old| old == file.text) {
            continue;
        }
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| Error::Io { path: parent.to_path_buf(), source: e })?;
        }
        std::fs::write(&path, &file.text).map_err(|e| Error::Io { path: path.clone(), source: e })?;
    }
    Ok(())
}

/// How the output folder differs from what would be generated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Difference {
    Missing(PathBuf),
    Differs(PathBuf),
    /// A template of a layer that is no longer in the layers file.
    Stale(PathBuf),
}

impl std::fmt::Display for Difference {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Difference::Missing(p) => write!(f, "{}: missing", p.display()),
            Difference::Differs(p) => {
                write!(f, "{}: differs from what the layers file generates", p.display())
            }
            Difference::Stale(p) => write!(f, "{}: no such layer in the layers file any more", p.display()),
        }
    }
}

/// Compares `out_dir` with `files`; paths in the result include `out_dir`.
pub fn check(out_dir: &Path, format: Format, files: &[GeneratedFile]) -> Result<Vec<Difference>, Error> {
    let mut differences = Vec::new();
    for file in files {
        let path = out_dir.join(&file.path);
        match std::fs::read_to_string(&path) {
            Ok(text) if text == file.text => {}
            Ok(_) => differences.push(Difference::Differs(path)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => differences.push(Difference::Missing(path)),
            Err(e) => return Err(Error::Io { path, source: e }),
        }
    }
    differences.extend(stale_templates(out_dir, format, files).into_iter().map(Difference::Stale));
    Ok(differences)
}

/// Templates under `out_dir` of layers that `files` no longer has.
fn stale_templates(out_dir: &Path, format: Format, files: &[GeneratedFile]) -> Vec<PathBuf> {
    let generated: BTreeMap<&str, ()> = files.iter().map(|f| (f.layer.as_str(), ())).collect();
    let Ok(entries) = std::fs::read_dir(out_dir) else { return Vec::new() };
    let mut stale: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_str().is_none_or(|n| !generated.contains_key(n)))
        .map(|e| e.path().join(format.file_name()))
        .filter(|p| p.is_file())
        .collect();
    stale.sort();
    stale
}

/// Removes the templates of layers that left the layers file (and their folders, once
/// empty), so that no one builds a layer that no longer exists. Only files this tool
/// generated are removed (they say so in their first lines); others are left and
/// returned in the second list.
pub fn remove_stale(
    out_dir: &Path,
    format: Format,
    files: &[GeneratedFile],
) -> Result<(Vec<PathBuf>, Vec<PathBuf>), Error> {
    let (mut removed, mut kept) = (Vec::new(), Vec::new());
    for path in stale_templates(out_dir, format, files) {
        let text = std::fs::read_to_string(&path).map_err(|e| Error::Io { path: path.clone(), source: e })?;
        let head: String = text.chars().take(600).collect();
        if !head.contains(packer::GENERATED_MARK) {
            kept.push(path);
            continue;
        }
        std::fs::remove_file(&path).map_err(|e| Error::Io { path: path.clone(), source: e })?;
        if let Some(dir) = path.parent() {
            // Only when empty: anything else in it is not ours.
            let _ = std::fs::remove_dir(dir);
        }
        removed.push(path);
    }
    Ok((removed, kept))
}
