//! IAM names to ARNs (instance profiles, roles): users refer to them by name, as the
//! deploy scripts this provider replaces searched AWS by the names of assets.

use super::{AwsError, OrNotFound};

/// AWS's answer for an IAM name that names nothing.
pub const NOT_FOUND: &[&str] = &["NoSuchEntity"];

/// The name in `name_or_arn` (`arn:aws:iam::1:instance-profile/web` names `web`).
fn name_of(name_or_arn: &str) -> &str {
    name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
}

/// The ARN of instance profile `name_or_arn`; `None` when it does not exist.
pub async fn instance_profile_arn(
    iam: &aws_sdk_iam::Client,
    name_or_arn: &str,
) -> Result<Option<String>, AwsError> {
    let name = name_of(name_or_arn);
    let out = iam
        .get_instance_profile()
        .instance_profile_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up instance profile {name:?}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| out.instance_profile().map(|p| p.arn().to_owned())))
}

/// The ARN of role `name_or_arn`; `None` when it does not exist.
pub async fn role_arn(iam: &aws_sdk_iam::Client, name_or_arn: &str) -> Result<Option<String>, AwsError> {
    let name = name_of(name_or_arn);
    let out = iam
        .get_role()
        .role_name(name)
        .send()
        .await
        .map_err(|e| AwsError::new(format!("looking up role {name:?}"), &e))
        .or_not_found(NOT_FOUND)?;
    Ok(out.and_then(|out| out.role().map(|r| r.arn().to_owned())))
}

/// Whether the roles of instance profile `profile` may call
/// `elasticloadbalancing:DeregisterTargets` on every one of `target_groups`, as far as
/// their identity policies (inline and attached) allow it; `None` when IAM cannot be
/// read (no permission) or the profile is gone. Conditions, permission boundaries and
/// explicit denies are not weighed: an `Allow` that matches counts.
pub async fn may_deregister(
    iam: &aws_sdk_iam::Client,
    profile: &str,
    target_groups: &[String],
) -> Result<Option<bool>, AwsError> {
    let name = name_of(profile);
    let readable =
        |e: AwsError| if e.is(&["AccessDenied", "AccessDeniedException"]) { Ok(None) } else { Err(e) };
    let found = match iam.get_instance_profile().instance_profile_name(name).send().await {
        Ok(out) => out.instance_profile().cloned(),
        Err(e) => match readable(AwsError::new(format!("reading instance profile {name:?}"), &e)) {
            Ok(_) => return Ok(None),
            Err(e) if e.is(NOT_FOUND) => return Ok(None),
            Err(e) => return Err(e),
        },
    };
    let Some(found) = found else { return Ok(None) };
    let mut documents = Vec::new();
    for role in found.roles() {
        let role = role.role_name();
        let read =
            async {
                let inline = iam
                    .list_role_policies()
                    .role_name(role)
                    .send()
                    .await
                    .map_err(|e| AwsError::new(format!("listing the policies of role {role:?}"), &e))?;
                for policy in inline.policy_names() {
                    let out =
                        iam.get_role_policy().role_name(role).policy_name(policy).send().await.map_err(
                            |e| AwsError::new(format!("reading policy {policy:?} of role {role:?}"), &e),
                        )?;
                    documents.push(out.policy_document().to_owned());
                }
                let attached =
                    iam.list_attached_role_policies().role_name(role).send().await.map_err(|e| {
                        AwsError::new(format!("listing the policies attached to role {role:?}"), &e)
                    })?;
                for policy in attached.attached_policies() {
                    let Some(arn) = policy.policy_arn() else { continue };
                    let out = iam
                        .get_policy()
                        .policy_arn(arn)
                        .send()
                        .await
                        .map_err(|e| AwsError::new(format!("reading policy {arn}"), &e))?;
                    let Some(version) = out.policy().and_then(|p| p.default_version_id()) else { continue };
                    let out =
                        iam.get_policy_version().policy_arn(arn).version_id(version).send().await.map_err(
                            |e| AwsError::new(format!("reading policy {arn} version {version}"), &e),
                        )?;
                    if let Some(document) = out.policy_version().and_then(|v| v.document()) {
                        documents.push(document.to_owned());
                    }
                }
                Ok::<_, AwsError>(())
            };
        if let Err(e) = read.await {
            return readable(e);
        }
    }
    let statements: Vec<serde_json::Value> = documents
        .iter()
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(&percent_decode(d)).ok())
        .flat_map(|doc| match &doc["Statement"] {
            serde_json::Value::Array(items) => items.clone(),
            one @ serde_json::Value::Object(_) => vec![one.clone()],
            _ => Vec::new(),
        })
        .collect();
    Ok(Some(target_groups.iter().all(|group| {
        statements.iter().any(|s| {
            s["Effect"] == "Allow"
                && strings(&s["Action"]).iter().any(|a| glob(&a.to_ascii_lowercase(), DEREGISTER))
                && strings(&s["Resource"]).iter().any(|r| glob(r, group))
        })
    })))
}

const DEREGISTER: &str = "elasticloadbalancing:deregistertargets";

/// A policy element that is a string or a list of strings.
fn strings(value: &serde_json::Value) -> Vec<String> {
    match value {
        serde_json::Value::String(s) => vec![s.clone()],
        serde_json::Value::Array(items) => {
            items.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect()
        }
        _ => Vec::new(),
    }
}

/// IAM's wildcard match: `*` any run of characters, `?` any one.
fn glob(pattern: &str, text: &str) -> bool {
    let (p, t): (Vec<char>, Vec<char>) = (pattern.chars().collect(), text.chars().collect());
    let (mut pi, mut ti, mut star, mut mark) = (0, 0, None, 0);
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|c| *c == '*')
}

/// IAM returns policy documents URL-encoded (RFC 3986): `%XX` escapes only.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |at: usize| bytes.get(at).and_then(|b| char::from(*b).to_digit(16));
        if bytes[i] == b'%'
            && let (Some(high), Some(low)) = (hex(i + 1), hex(i + 2))
        {
            out.push(u8::try_from(high * 16 + low).unwrap_or(b'?'));
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_as_iam_matches_them() {
        assert!(glob("elasticloadbalancing:*", DEREGISTER));
        assert!(glob("*", DEREGISTER));
        assert!(glob("elasticloadbalancing:deregister*", DEREGISTER));
        assert!(!glob("elasticloadbalancing:register*", DEREGISTER));
        let arn = "arn:aws:elasticloadbalancing:eu-west-1:1:targetgroup/web/abc";
        assert!(glob("arn:aws:elasticloadbalancing:*:*:targetgroup/web/*", arn));
        assert!(!glob("arn:aws:elasticloadbalancing:*:*:targetgroup/api/*", arn));
        assert!(glob("arn:aws:elasticloadbalancing:eu-west-?:1:targetgroup/web/abc", arn));
    }

    #[test]
    fn policy_documents_are_url_decoded() {
        assert_eq!(percent_decode("%7B%22Effect%22%3A%22Allow%22%7D"), r#"{"Effect":"Allow"}"#);
        assert_eq!(percent_decode(r#"{"a":"b+c"}"#), r#"{"a":"b+c"}"#, "plain JSON stays as it is");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(percent_decode("%é%4"), "%é%4", "no escape, no panic");
    }
}
