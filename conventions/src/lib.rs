//! The conventions every part of the product agrees on: AMI tag keys, fleet tags,
//! commit and AMI-name rules. An AMI built from a generated Packer template must be
//! recognised by the provider, so both read these from here.

/// AMI tag keys, exactly as written on AWS.
pub mod ami_tags {
    /// Human name of the layer, e.g. `Ubuntu 18.04`.
    pub const NAME: &str = "Name";
    /// Layer id, e.g. `ubuntu-1804`.
    pub const LAYER: &str = "Layer";
    /// Full 40-hex git commit of the image sources.
    pub const COMMIT: &str = "Commit";
    /// Digest over the layer's own inputs and its parent's fingerprint.
    pub const FINGERPRINT: &str = "Fingerprint";
    /// Parent layer id; absent on a root layer.
    pub const PARENT_LAYER: &str = "ParentLayer";
    /// The AMI id the layer was built from.
    pub const PARENT_AMI: &str = "ParentAMI";
    /// Project name, for cost allocation.
    pub const PROJECT: &str = "Project";
    pub const MANAGED_BY: &str = "ManagedBy";
    /// The value of [`MANAGED_BY`] on everything this product creates.
    pub const MANAGED_BY_VALUE: &str = "immutable";
}

/// Tags on Spot Fleets and their instances.
/// Tag of a builder instance (the native builder's, or Packer's through the
/// templates' `run_tags`): the layer it builds. With the `Commit` tag it lets the next
/// apply of that layer terminate the builders a killed run left behind.
pub const BUILDER_TAG: &str = "immutable:builder";

pub mod fleet_tags {
    pub const APP: &str = "immutable:app";
    pub const GENERATION: &str = "immutable:generation";
    pub const AMI: &str = "immutable:ami";
    /// On the fleet only: the idempotency token of the configuration it was requested
    /// with, so that a fleet found by app and generation can be told apart from one
    /// that runs another configuration.
    pub const CONFIG: &str = "immutable:config";
    /// The identity of the Terraform object (an `immutable_app` in one state) that owns
    /// the fleet, its launch template and its instances. Another object never adopts,
    /// rolls over or cancels them.
    pub const OWNER: &str = "immutable:owner";
    /// On the fleet only, added when the apply that made it serve has finished: a fleet
    /// without it was left by an interrupted create, which the next create resumes.
    pub const COMMITTED: &str = "immutable:committed";
}

/// Tags on an app's instances for `immutable-agent`, readable through the instance
/// metadata (the launch template enables instance tags in metadata). Instance metadata
/// tag keys may hold letters, digits and `+ - = . , _ : @` (no `/`).
pub mod agent_tags {
    /// `immutable:target-group:<n>` (n = 0, 1, ...): the ARN of each target group the
    /// instance is registered in, one per tag (an ARN is too long to share a value).
    pub const TARGET_GROUP_PREFIX: &str = "immutable:target-group:";
    /// The longest deregistration delay of those target groups, in seconds: how long
    /// the agent lets the instance drain after leaving them.
    pub const DRAIN_SECONDS: &str = "immutable:drain-seconds";

    /// The tag key of the `index`th target group.
    pub fn target_group(index: usize) -> String {
        format!("{TARGET_GROUP_PREFIX}{index}")
    }

    /// Whether an instance may carry tag `key` with its tags readable in the instance
    /// metadata: AWS fails the launch of an instance whose tag keys break these rules
    /// when tags in metadata are allowed (Amazon EC2 User Guide, "View tags for your EC2
    /// instances using instance metadata").
    pub fn readable_in_metadata(key: &str) -> bool {
        !key.is_empty()
            && !matches!(key, "." | ".." | "_index")
            && key.chars().all(|c| c.is_ascii_alphanumeric() || "+-=.,_:@".contains(c))
    }
}

/// An AMI id: `ami-` and hex digits (8 or 17 on AWS today).
pub fn is_ami_id(text: &str) -> bool {
    text.strip_prefix("ami-").is_some_and(|hex| !hex.is_empty() && hex.bytes().all(|b| b.is_ascii_hexdigit()))
}

/// A full git commit id: 40 lower-case hex digits.
pub fn is_full_commit(text: &str) -> bool {
    text.len() == 40 && text.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Why `name` is not a valid AMI name (3..=128 characters of `[A-Za-z0-9()[] ./'@_-]`),
/// or `None` when it is.
pub fn ami_name_problem(name: &str) -> Option<String> {
    let len = name.chars().count();
    if !(3..=128).contains(&len) {
        return Some(format!("AMI names have 3 to 128 characters, {name:?} has {len}"));
    }
    let allowed = |c: char| c.is_ascii_alphanumeric() || "()[] ./'@_-".contains(c);
    name.chars().find(|c| !allowed(*c)).map(|c| {
        format!("AMI names may contain letters, digits and ( ) [ ] space . / ' @ _ -, not {c:?} in {name:?}")
    })
}

/// The `Fingerprint` of a layer: a SHA-256 (64 lower-case hex digits) over the
/// layer's own inputs and its parent's fingerprint, so equal fingerprints mean the
/// same image content and any change upstream changes every descendant.
///
/// `inputs` are named byte strings (settings serialised canonically by the caller,
/// provisioned files by their path relative to the layers file); their order does
/// not matter. The encoding is versioned and length-prefixed, so no two different
/// input sets hash alike by concatenation.
pub fn fingerprint(parent: Option<&str>, inputs: &[(&str, &[u8])]) -> String {
    use sha2::{Digest, Sha256};
    let mut sorted: Vec<&(&str, &[u8])> = inputs.iter().collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0).then_with(|| a.1.cmp(b.1)));
    let mut hasher = Sha256::new();
    hasher.update(b"immutable-fingerprint-v1\0");
    let mut field = |bytes: &[u8]| {
        hasher.update((bytes.len() as u64).to_be_bytes());
        hasher.update(bytes);
    };
    field(parent.unwrap_or("").as_bytes());
    for (name, content) in sorted {
        field(name.as_bytes());
        field(content);
    }
    hasher.finalize().iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {

    #[test]
    fn tag_keys_readable_in_metadata_follow_aws_rules() {
        use super::agent_tags::readable_in_metadata as ok;
        assert!(ok("immutable:target-group:0"));
        assert!(ok("Team") && ok("a+b=c.d,e_f:g@h-i"));
        assert!(!ok("team/owner"), "no slash");
        assert!(!ok("cost center"), "no space");
        assert!(!ok(".") && !ok("..") && !ok("_index"));
        assert!(!ok(""));
    }

    use super::*;

    #[test]
    fn fingerprints_are_stable_and_sensitive() {
        let a = fingerprint(None, &[("layer", b"web"), ("files/setup.sh", b"echo hi")]);
        assert_eq!(a.len(), 64);
        assert_eq!(a, fingerprint(None, &[("files/setup.sh", b"echo hi"), ("layer", b"web")]), "order-free");
        assert_ne!(a, fingerprint(None, &[("layer", b"web"), ("files/setup.sh", b"echo hi!")]), "content");
        assert_ne!(a, fingerprint(Some(&a), &[("layer", b"web"), ("files/setup.sh", b"echo hi")]), "parent");
        assert_ne!(
            fingerprint(None, &[("ab", b"c")]),
            fingerprint(None, &[("a", b"bc")]),
            "length-prefixed, not concatenated"
        );
        // Pinned (computed independently): the value must not drift across versions or machines.
        assert_eq!(
            fingerprint(None, &[]),
            "22066a2c627d47d640c7cf43f33579a4f313d9e159f99bda217381d2f6d55528"
        );
        assert_eq!(
            fingerprint(None, &[("layer", b"web")]),
            "5736a4ecb4d1114b73a8df798dddce6fe381a25d5cbbbc213b4e30d87183acab"
        );
    }

    #[test]
    fn commits_must_be_full_lowercase_sha1() {
        assert!(is_full_commit("0123456789abcdef0123456789abcdef01234567"));
        assert!(!is_full_commit("0123456"));
        assert!(!is_full_commit("0123456789ABCDEF0123456789abcdef01234567"));
        assert!(!is_full_commit("0123456789abcdef0123456789abcdef0123456g"));
    }

    #[test]
    fn ami_names_follow_aws_rules() {
        assert_eq!(ami_name_problem("ubuntu-1804-1700000000"), None);
        assert_eq!(ami_name_problem("web (v2) [x] ./'@_-"), None);
        assert!(ami_name_problem("ab").is_some());
        assert!(ami_name_problem(&"a".repeat(129)).is_some());
        assert!(ami_name_problem("web:1").is_some_and(|p| p.contains("':'")));
    }
}
