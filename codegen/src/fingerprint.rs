//! Layer fingerprints: [`conventions::fingerprint`] over a layer's settings
//! (canonical JSON) and the bytes of every file it provisions, named by their path
//! relative to the layers file, chained through the parent's fingerprint. Nothing
//! depends on where the checkout is, on file times or on the commit.
//!
//! A layer that bakes `immutable-agent` counts its agent settings and its unit file,
//! not the binary: that is built after generation (it is not there for `plan
//! --changed-since`, nor in a fresh checkout), and every build of it has other bytes.
//!
//! Of the Packer target, only what it changes in the image counts: current Packer's
//! templates make images whose instances require IMDSv2 (`imds_support`). The Packer
//! version, SSH access during the build and the deprecation time do not count.

use crate::Error;
use crate::layers::{Layer, Layers};
use crate::model::ProvisionerDef;
use std::collections::BTreeMap;
use std::path::Path;

/// The input name of a layer's settings; provisioned files are named by their
/// normalised relative path, which does not start with `:` in any sane image tree.
const SETTINGS: &str = ":settings";

/// Fingerprints of every layer, by id.
pub fn fingerprints(layers: &Layers) -> Result<BTreeMap<String, String>, Error> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    // `layers.layers` is parents first, so a parent's value is always there.
    for layer in &layers.layers {
        let parent = layer.parent.as_ref().and_then(|p| out.get(p)).cloned();
        let inputs = inputs(layers, layer)?;
        let named: Vec<(&str, &[u8])> = inputs.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
        out.insert(layer.id.clone(), conventions::fingerprint(parent.as_deref(), &named));
    }
    Ok(out)
}

/// A layer's own inputs: its settings, every provisioned file and the agent's unit.
pub fn inputs(layers: &Layers, layer: &Layer) -> Result<BTreeMap<String, Vec<u8>>, Error> {
    let mut inputs = BTreeMap::new();
    let imds_support = layers.target.is_current().then_some(crate::packer::IMDS_SUPPORT);
    let settings = Settings { project: &layers.project, layer, imds_support };
    let canonical = serde_json::to_vec(&settings).map_err(|e| Error::Internal(e.to_string()))?;
    inputs.insert(SETTINGS.to_owned(), canonical);
    for p in &layer.provisioners {
        for path in provisioned_paths(p) {
            add_path(&layers.dir, path.trim_end_matches('/'), &mut inputs, 0)?;
        }
    }
    if let Some(agent) = &layer.agent {
        add_path(&layers.dir, &agent.unit, &mut inputs, 0)?;
    }
    Ok(inputs)
}

/// The settings as hashed: field order fixed by the struct, maps sorted.
#[derive(serde::Serialize)]
struct Settings<'a> {
    project: &'a str,
    layer: &'a Layer,
    /// The AMI's `imds_support`, left out when the target sets none (Packer 1.6), so
    /// those fingerprints are what they were before targets existed.
    #[serde(skip_serializing_if = "Option::is_none")]
    imds_support: Option<&'static str>,
}

/// Paths a provisioner reads, relative to the layers file.
pub fn provisioned_paths(p: &ProvisionerDef) -> Vec<&str> {
    match p {
        ProvisionerDef::File { source, .. } => vec![source.as_str()],
        ProvisionerDef::Shell { scripts, .. } => scripts.iter().map(String::as_str).collect(),
        ProvisionerDef::SaltMasterless { local_state_tree, local_pillar_roots, .. } => {
            std::iter::once(local_state_tree.as_str()).chain(local_pillar_roots.as_deref()).collect()
        }
    }
}

fn add_path(
    dir: &Path,
    rel: &str,
    inputs: &mut BTreeMap<String, Vec<u8>>,
    depth: usize,
) -> Result<(), Error> {
    let full = dir.join(rel);
    let io = |e: std::io::Error| Error::Io { path: full.clone(), source: e };
    if depth > 64 {
        return Err(Error::Io {
            path: full.clone(),
            source: std::io::Error::other("directories nested too deep (a symlink loop?)"),
        });
    }
    let meta = std::fs::metadata(&full).map_err(io)?;
    if meta.is_dir() {
        let mut names = Vec::new();
        for entry in std::fs::read_dir(&full).map_err(io)? {
            let entry = entry.map_err(io)?;
            let name = entry.file_name().into_string().map_err(|n| Error::Io {
                path: full.join(&n),
                source: std::io::Error::other("file name is not UTF-8"),
            })?;
            names.push(name);
        }
        names.sort();
        for name in names {
            let child = if rel == "." { name } else { format!("{rel}/{name}") };
            add_path(dir, &child, inputs, depth + 1)?;
        }
    } else {
        inputs.insert(rel.to_owned(), std::fs::read(&full).map_err(io)?);
    }
    Ok(())
}
