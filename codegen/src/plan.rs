//! The build plan: layers in waves (every parent in an earlier wave; the layers of
//! one wave can build in parallel), optionally only those whose fingerprint changed.

use crate::Error;
use crate::layers::Layers;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PlannedLayer {
    pub layer: String,
    pub parent: Option<String>,
    pub fingerprint: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// Waves in build order; layers sorted by id within a wave.
    pub waves: Vec<Vec<PlannedLayer>>,
    /// Layers left out because their fingerprint did not change (sorted).
    pub unchanged: Vec<String>,
}

impl Plan {
    /// Layer ids per wave.
    pub fn ids(&self) -> Vec<Vec<&str>> {
        self.waves.iter().map(|w| w.iter().map(|l| l.layer.as_str()).collect()).collect()
    }

    pub fn text(&self) -> String {
        let mut out = String::new();
        for (n, wave) in self.waves.iter().enumerate() {
            let ids: Vec<&str> = wave.iter().map(|l| l.layer.as_str()).collect();
            out.push_str(&format!("wave {}: {}\n", n + 1, ids.join(", ")));
        }
        if self.waves.is_empty() {
            out.push_str("nothing to build\n");
        }
        if !self.unchanged.is_empty() {
            out.push_str(&format!("unchanged: {}\n", self.unchanged.join(", ")));
        }
        out
    }
}

/// Waves over the layers `keep` selects. A kept layer whose parent is not kept goes
/// in the first wave (its parent's image already exists).
pub fn plan(layers: &Layers, fingerprints: &BTreeMap<String, String>, keep: &BTreeSet<String>) -> Plan {
    let mut wave_of: HashMap<&str, usize> = HashMap::new();
    let mut waves: Vec<Vec<PlannedLayer>> = Vec::new();
    // Parents come first in `layers.layers`.
    for layer in layers.layers.iter().filter(|l| keep.contains(&l.id)) {
        let wave = layer.parent.as_deref().and_then(|p| wave_of.get(p)).map_or(0, |w| w + 1);
        wave_of.insert(&layer.id, wave);
        if waves.len() <= wave {
            waves.resize_with(wave + 1, Vec::new);
        }
        waves[wave].push(PlannedLayer {
            layer: layer.id.clone(),
            parent: layer.parent.clone(),
            fingerprint: fingerprints.get(&layer.id).cloned().unwrap_or_default(),
        });
    }
    for wave in &mut waves {
        wave.sort_by(|a, b| a.layer.cmp(&b.layer));
    }
    let unchanged = layers.layers.iter().filter(|l| !keep.contains(&l.id)).map(|l| l.id.clone()).collect();
    let mut plan = Plan { waves, unchanged };
    plan.unchanged.sort();
    plan
}

/// Every layer.
pub fn all(layers: &Layers) -> BTreeSet<String> {
    layers.layers.iter().map(|l| l.id.clone()).collect()
}

/// Layers whose fingerprint differs from the one they had at git `rev` (new layers
/// included), and all their descendants. If the layers file did not exist or did not
/// load at `rev`, every layer counts as changed (`note` says why).
pub fn changed_since(
    layers: &Layers,
    fingerprints: &BTreeMap<String, String>,
    rev: &str,
) -> Result<(BTreeSet<String>, Option<String>), Error> {
    let snapshot = crate::git::snapshot(&layers.file, rev)?;
    let before = match &snapshot.file {
        None => return Ok((all(layers), Some(format!("{} did not exist at {rev}", layers.file.display())))),
        Some(file) => {
            match crate::layers::load(file).and_then(|old| crate::fingerprint::fingerprints(&old)) {
                Ok(before) => before,
                Err(e) => {
                    let note = format!(
                        "the layers file did not load at {rev}, so every layer counts as changed: {e}"
                    );
                    return Ok((all(layers), Some(note)));
                }
            }
        }
    };
    Ok((changed(layers, fingerprints, &before), None))
}

/// Layers whose fingerprint is not the one in `before`, and their descendants.
pub fn changed(
    layers: &Layers,
    now: &BTreeMap<String, String>,
    before: &BTreeMap<String, String>,
) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for layer in &layers.layers {
        let parent_changed = layer.parent.as_ref().is_some_and(|p| out.contains(p));
        if parent_changed || now.get(&layer.id) != before.get(&layer.id) {
            out.insert(layer.id.clone());
        }
    }
    out
}

/// Convenience for callers holding a path: load, fingerprint, plan.
pub fn plan_file(file: &Path, changed_since_rev: Option<&str>) -> Result<(Plan, Option<String>), Error> {
    let layers = crate::layers::load(file)?;
    let fingerprints = crate::fingerprint::fingerprints(&layers)?;
    let (keep, note) = match changed_since_rev {
        Some(rev) => changed_since(&layers, &fingerprints, rev)?,
        None => (all(&layers), None),
    };
    Ok((plan(&layers, &fingerprints, &keep), note))
}
