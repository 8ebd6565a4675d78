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
pub mod fleet_tags {
    pub const APP: &str = "immutable:app";
    pub const GENERATION: &str = "immutable:generation";
    pub const AMI: &str = "immutable:ami";
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

#[cfg(test)]
mod tests {
    use super::*;

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
