//! Which Terraform object owns an app's fleets (docs/design.md, "Ownership").
//!
//! Every app object has an owner id, made when it is created and kept in its state;
//! its fleets, launch templates and instances carry it (`immutable:owner`). The app
//! name alone does not decide: another state, or a second resource, may use the same
//! name. An object adopts, rolls over or cancels only fleets of its own owner id (or
//! fleets from before ownership). What a create finds under its app name decides what
//! it may do ([`assess_create`]).
//!
//! A create that replaces an object (`-replace`, or a change that forces replacement,
//! with `create_before_destroy`) runs beside the fleet of the object it replaces. The
//! plan learns it from Terraform: the update plan of the old object passes its owner
//! to the create's plan as private data ([`hint`]). The apply re-plans the create
//! without it, so the plan also leaves a note on this machine ([`Replacements`]).

use crate::aws::fleets::Fleet;
use std::collections::BTreeSet;
use std::path::PathBuf;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, SystemTime};

/// What a create finds of its app name, and may do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Found {
    /// No open fleet of the app name: a new app.
    Nothing,
    /// The fleet of the object being replaced: the new object runs beside it, under a
    /// new owner, from the next generation on.
    Beside { predecessor: String, generation: u64 },
    /// A fleet left by a create that was interrupted before it finished: the create
    /// resumes it, as its owner.
    Resume { owner: String },
    /// Fleets from before ownership: Terraform lost track of the app; adopted (or
    /// rolled over) as before.
    Legacy,
    /// Another object's app: the create must not touch it.
    Taken { owner: String, fleet_id: String },
}

/// What a create may do, given the open fleets of its app name and the owner of the
/// object it replaces, if it replaces one (`""` for an object from before ownership,
/// whose fleets carry no owner).
pub fn assess_create(open: &[Fleet], replacing: Option<&str>) -> Found {
    if open.is_empty() {
        return Found::Nothing;
    }
    let other = |f: &&Fleet| f.owner().is_some_and(|o| Some(o) != replacing);
    if let Some(taken) = open.iter().filter(other).find(|f| f.is_committed()) {
        return Found::Taken {
            owner: taken.owner().unwrap_or_default().to_owned(),
            fleet_id: taken.id.clone(),
        };
    }
    let newest =
        |fleets: Vec<&Fleet>| fleets.into_iter().max_by_key(|f| f.generation().unwrap_or(0)).cloned();
    let interrupted = newest(open.iter().filter(other).filter(|f| !f.is_committed()).collect());
    if let Some(fleet) = interrupted {
        return Found::Resume { owner: fleet.owner().unwrap_or_default().to_owned() };
    }
    match replacing {
        Some(predecessor) => Found::Beside {
            predecessor: predecessor.to_owned(),
            generation: open.iter().filter_map(Fleet::generation).max().unwrap_or(0) + 1,
        },
        None => Found::Legacy,
    }
}

/// The newest generation among the open fleets of `owner` (`None`: of fleets from
/// before ownership).
pub fn newest_generation(open: &[Fleet], owner: Option<&str>) -> Option<u64> {
    open.iter().filter(|f| f.owner() == owner).filter_map(Fleet::generation).max()
}

/// A new owner id: 16 hex digits, unique for practical purposes (not a secret).
pub fn new_owner() -> String {
    use std::hash::{BuildHasher, Hasher};
    let seed = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0);
    // Each RandomState carries keys drawn from the system's randomness.
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(seed);
    hasher.write_u32(std::process::id());
    format!("{:016x}", hasher.finish())
}

/// The private data an update plan hands to the create of a replacement: the owner of
/// the object being replaced.
pub fn hint(owner: &str) -> Vec<u8> {
    serde_json::json!({ "replacing_owner": owner }).to_string().into_bytes()
}

/// The owner a [`hint`] names.
pub fn read_hint(private: &[u8]) -> Option<String> {
    let value: serde_json::Value = serde_json::from_slice(private).ok()?;
    value.get("replacing_owner")?.as_str().map(str::to_owned)
}

/// Replacements planned on this machine, so that the apply (which re-plans the create
/// of a replacement without the plan's private data) knows the object it runs beside.
/// One small file each under the temporary directory, kept a day.
pub struct Replacements {
    dir: PathBuf,
}

impl Replacements {
    const KEEP: Duration = Duration::from_secs(24 * 3600);

    pub fn new() -> Self {
        Self { dir: std::env::temp_dir().join("terraform-provider-immutable-replacements") }
    }

    fn path(&self, region: &str, app: &str, owner: &str) -> PathBuf {
        use sha2::{Digest, Sha256};
        let digest = Sha256::digest(format!("{region}\0{app}\0{owner}").as_bytes());
        self.dir.join(digest.iter().take(16).map(|b| format!("{b:02x}")).collect::<String>())
    }

    /// Notes that the app `app` of `owner` is being replaced.
    pub fn record(&self, region: &str, app: &str, owner: &str) {
        let path = self.path(region, app, owner);
        let written = std::fs::create_dir_all(&self.dir).and_then(|()| std::fs::write(&path, owner));
        if let Err(e) = written {
            tracing::warn!("could not note the replacement of app {app} at {}: {e}", path.display());
        }
    }

    /// Whether a plan on this machine noted the replacement of `owner`'s app `app`
    /// within the last day.
    pub fn planned(&self, region: &str, app: &str, owner: &str) -> bool {
        let path = self.path(region, app, owner);
        std::fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|at| at.elapsed().is_ok_and(|age| age < Self::KEEP))
    }

    /// Forgets the note once the replacement is done.
    pub fn forget(&self, region: &str, app: &str, owner: &str) {
        let _ = std::fs::remove_file(self.path(region, app, owner));
    }
}

impl Default for Replacements {
    fn default() -> Self {
        Self::new()
    }
}

/// Plans of new apps in this Terraform run, by region and name: two resources of one
/// configuration with the same `name` are planned by the same process in the same
/// run. A run starts with the provider's configuration ([`new_run`]), so a
/// long-lived process (debug mode) does not see the next run's plan of the same app
/// as a second resource.
static PLANNED: Mutex<BTreeSet<(String, String)>> = Mutex::new(BTreeSet::new());

/// Records the plan of a new app named `app`; `false` when another one was planned
/// under this name in this run.
pub fn first_plan_of(region: &str, app: &str) -> bool {
    PLANNED.lock().unwrap_or_else(PoisonError::into_inner).insert((region.to_owned(), app.to_owned()))
}

/// Starts a Terraform run (each plan and apply configures the provider first).
pub fn new_run() {
    PLANNED.lock().unwrap_or_else(PoisonError::into_inner).clear();
}

#[cfg(test)]
mod tests {
    use super::*;
    use conventions::fleet_tags;
    use std::collections::BTreeMap;

    fn fleet(id: &str, generation: u64, owner: Option<&str>, committed: bool) -> Fleet {
        let mut tags = BTreeMap::from([
            (fleet_tags::APP.to_owned(), "web".to_owned()),
            (fleet_tags::GENERATION.to_owned(), generation.to_string()),
        ]);
        if let Some(owner) = owner {
            tags.insert(fleet_tags::OWNER.to_owned(), owner.to_owned());
        }
        if committed {
            tags.insert(fleet_tags::COMMITTED.to_owned(), "true".to_owned());
        }
        Fleet {
            id: id.into(),
            state: "active".into(),
            activity: None,
            target_capacity: 1,
            on_demand_capacity: 0,
            fulfilled_capacity: 1.0,
            tags,
            launch_template_id: None,
            instance_types: Vec::new(),
            subnet_ids: Vec::new(),
            allocation_strategy: None,
            fleet_role: None,
            target_group_arns: Vec::new(),
        }
    }

    #[test]
    fn a_create_never_takes_another_objects_app() {
        assert_eq!(assess_create(&[], None), Found::Nothing);
        let theirs = fleet("sfr-a", 3, Some("a"), true);
        assert_eq!(
            assess_create(std::slice::from_ref(&theirs), None),
            Found::Taken { owner: "a".into(), fleet_id: "sfr-a".into() }
        );
        // The replacement of that very object runs beside it, one generation on.
        assert_eq!(
            assess_create(std::slice::from_ref(&theirs), Some("a")),
            Found::Beside { predecessor: "a".into(), generation: 4 }
        );
        // The replacement of another object still finds this one taken.
        assert!(matches!(assess_create(std::slice::from_ref(&theirs), Some("b")), Found::Taken { .. }));
    }

    #[test]
    fn an_interrupted_create_is_resumed_and_old_fleets_keep_their_ways() {
        let interrupted = fleet("sfr-i", 1, Some("i"), false);
        assert_eq!(
            assess_create(std::slice::from_ref(&interrupted), None),
            Found::Resume { owner: "i".into() }
        );
        // An interrupted replacement, found by the next attempt of the same replacement.
        let old = fleet("sfr-a", 3, Some("a"), true);
        let next = fleet("sfr-n", 4, Some("n"), false);
        assert_eq!(assess_create(&[old, next], Some("a")), Found::Resume { owner: "n".into() });
        assert_eq!(assess_create(&[fleet("sfr-l", 2, None, false)], None), Found::Legacy);
        // The replacement of an object from before ownership runs beside its fleets.
        assert_eq!(
            assess_create(&[fleet("sfr-l", 2, None, false)], Some("")),
            Found::Beside { predecessor: String::new(), generation: 3 }
        );
        assert_eq!(newest_generation(&[fleet("sfr-l", 2, None, false), interrupted], None), Some(2));
    }

    #[test]
    fn hints_and_notes_round_trip() {
        assert_eq!(read_hint(&hint("abc")).as_deref(), Some("abc"));
        assert_eq!(read_hint(b""), None);
        let notes = Replacements {
            dir: std::env::temp_dir().join(format!("immutable-notes-{}", std::process::id())),
        };
        assert!(!notes.planned("eu-west-1", "web", "abc"));
        notes.record("eu-west-1", "web", "abc");
        assert!(notes.planned("eu-west-1", "web", "abc"));
        assert!(!notes.planned("eu-west-1", "api", "abc"));
        notes.forget("eu-west-1", "web", "abc");
        assert!(!notes.planned("eu-west-1", "web", "abc"));
        let _ = std::fs::remove_dir_all(&notes.dir);
        assert_ne!(new_owner(), new_owner());
        assert_eq!(new_owner().len(), 16);
    }

    #[test]
    fn a_second_plan_of_one_name_is_seen() {
        assert!(first_plan_of("test-region-1", "dup"));
        assert!(!first_plan_of("test-region-1", "dup"));
        assert!(first_plan_of("test-region-1", "other"));
    }
}
