//! Validators more than one schema of the provider uses: AMI ids, commits and the tag
//! keys users may set.

use tfplugin::schema::Validator;
use tfplugin::value::Value;

/// An AMI id.
pub fn ami_id() -> Validator {
    Validator::new("An AMI id (`ami-` and hex digits).", |value, path, diags| {
        if let Value::String(id) = value
            && !conventions::is_ami_id(id)
        {
            diags.error_at(
                path.clone(),
                "Invalid AMI Id",
                format!("{path} must be an AMI id such as \"ami-0123456789abcdef0\", got {id:?}"),
            );
        }
    })
}

/// A full 40-character git commit.
pub fn commit() -> Validator {
    Validator::new("A full 40-character git commit id.", |value, path, diags| {
        if let Value::String(s) = value
            && !conventions::is_full_commit(s)
        {
            diags.error_at(
                path.clone(),
                "Invalid Commit",
                format!("{path} must be a full 40-character lower-case git commit id, got {s:?}"),
            );
        }
    })
}

/// Tag keys a user may set: not AWS's (`aws:`) nor the provider's (`immutable:`), nor
/// one of `owned`, the keys the resource sets itself.
pub fn user_tags(owned: &'static [&'static str]) -> Validator {
    let mut description = "Keys may not start with `aws:` or `immutable:`".to_owned();
    if !owned.is_empty() {
        let keys: Vec<String> = owned.iter().map(|k| format!("`{k}`")).collect();
        description.push_str(&format!(", nor be {}", keys.join(", ")));
    }
    description.push('.');
    Validator::new(description, move |value, path, diags| {
        let Value::Map(tags) = value else { return };
        for key in tags.keys() {
            let lower = key.to_ascii_lowercase();
            let problem = if lower.starts_with("aws:") {
                "keys starting with aws: are reserved by AWS"
            } else if lower.starts_with("immutable:") {
                "keys starting with immutable: are the provider's"
            } else if owned.contains(&key.as_str()) {
                "the resource sets this tag itself"
            } else {
                continue;
            };
            let at = path.clone().push_key(key.clone());
            diags.error_at(at, "Reserved Tag Key", format!("tag key {key:?}: {problem}"));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;
    use tfplugin::diag::Diagnostics;
    use tfplugin::path::AttributePath;

    fn problems(validator: &Validator, value: Value) -> Vec<String> {
        let mut diags = Diagnostics::new();
        validator.check(&value, &AttributePath::attr("x"), &mut diags);
        diags
            .iter()
            .map(|d| {
                format!(
                    "{} at {}",
                    d.summary,
                    d.attribute.as_ref().map(ToString::to_string).unwrap_or_default()
                )
            })
            .collect()
    }

    #[test]
    fn one_rule_for_ami_ids() {
        let check = ami_id();
        assert!(problems(&check, "ami-0123456789abcdef0".into()).is_empty());
        assert!(problems(&check, "ami-12345678".into()).is_empty());
        for bad in ["image-1", "ami-", "ami-xyz", "AMI-1234"] {
            assert_eq!(problems(&check, bad.into()), ["Invalid AMI Id at x"], "{bad}");
        }
    }

    #[test]
    fn reserved_keys_are_named_on_their_path() {
        let check = user_tags(&["Layer"]);
        let tags = |keys: &[&str]| {
            Value::Map(keys.iter().map(|k| ((*k).to_owned(), Value::from("v"))).collect::<BTreeMap<_, _>>())
        };
        assert!(problems(&check, tags(&["Team", "Project"])).is_empty());
        assert_eq!(
            problems(&check, tags(&["AWS:x", "immutable:app", "Layer"])),
            [
                "Reserved Tag Key at x[\"AWS:x\"]",
                "Reserved Tag Key at x[\"Layer\"]",
                "Reserved Tag Key at x[\"immutable:app\"]"
            ]
        );
    }
}
