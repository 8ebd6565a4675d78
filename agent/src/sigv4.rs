//! AWS Signature Version 4 for a request with its body in hand ("Create a signed AWS
//! API request", AWS Identity and Access Management User Guide,
//! https://docs.aws.amazon.com/IAM/latest/UserGuide/create-signed-request.html).
//! Paths are signed as they are sent (no dot-segment normalization: the agent only
//! sends `/`); the query is decoded and re-encoded in canonical order.

use std::time::SystemTime;

use hmac::{Hmac, Mac};
use sha2::{Digest, Sha256};

use crate::clock;

const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// Who signs, and for which region and service.
pub struct Signer<'a> {
    pub access_key_id: &'a str,
    pub secret_access_key: &'a str,
    /// Signed as the `X-Amz-Security-Token` header.
    pub session_token: Option<&'a str>,
    pub region: &'a str,
    pub service: &'a str,
}

/// A request to sign: `headers` are the request's own, `Host` among them.
pub struct Unsigned<'a> {
    pub method: &'a str,
    pub path: &'a str,
    /// The raw query string, without `?`.
    pub query: &'a str,
    pub headers: &'a [(&'a str, &'a str)],
    pub body: &'a [u8],
}

#[derive(Debug)]
pub struct Signed {
    pub canonical_request: String,
    pub string_to_sign: String,
    /// Hex.
    pub signature: String,
    /// Headers to add to the request: `X-Amz-Date`, `X-Amz-Security-Token` with a
    /// session token, and `Authorization`.
    pub headers: Vec<(String, String)>,
}

impl Signed {
    pub fn authorization(&self) -> &str {
        self.headers.iter().find(|(n, _)| n == "Authorization").map_or("", |(_, v)| v.as_str())
    }
}

impl Signer<'_> {
    pub fn sign(&self, request: &Unsigned<'_>, time: SystemTime) -> Signed {
        let (date, stamp) = clock::amz_date(time);
        let mut added = vec![("X-Amz-Date".to_owned(), stamp.clone())];
        if let Some(token) = self.session_token {
            added.push(("X-Amz-Security-Token".to_owned(), token.to_owned()));
        }

        let mut headers: Vec<(String, String)> = request
            .headers
            .iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .chain(added.iter().cloned())
            .map(|(name, value)| (name.to_ascii_lowercase(), canonical_value(&value)))
            .collect();
        headers.sort_by(|a, b| a.0.cmp(&b.0));
        let mut merged: Vec<(String, String)> = Vec::with_capacity(headers.len());
        for (name, value) in headers {
            match merged.last_mut() {
                Some((last, values)) if *last == name => {
                    values.push(',');
                    values.push_str(&value);
                }
                _ => merged.push((name, value)),
            }
        }
        let canonical_headers: String = merged.iter().map(|(n, v)| format!("{n}:{v}\n")).collect();
        let signed_headers = merged.iter().map(|(n, _)| n.as_str()).collect::<Vec<_>>().join(";");

        let path = if request.path.is_empty() { "/" } else { request.path };
        let canonical_request = format!(
            "{}\n{}\n{}\n{canonical_headers}\n{signed_headers}\n{}",
            request.method,
            uri_encode(path, false),
            canonical_query(request.query),
            hex(&Sha256::digest(request.body)),
        );
        let scope = format!("{date}/{}/{}/aws4_request", self.region, self.service);
        let string_to_sign =
            format!("{ALGORITHM}\n{stamp}\n{scope}\n{}", hex(&Sha256::digest(canonical_request.as_bytes())));

        let key = [date.as_str(), self.region, self.service, "aws4_request"]
            .iter()
            .fold(format!("AWS4{}", self.secret_access_key).into_bytes(), |key, part| {
                hmac(&key, part.as_bytes())
            });
        let signature = hex(&hmac(&key, string_to_sign.as_bytes()));

        added.push((
            "Authorization".to_owned(),
            format!(
                "{ALGORITHM} Credential={}/{scope}, SignedHeaders={signed_headers}, Signature={signature}",
                self.access_key_id
            ),
        ));
        Signed { canonical_request, string_to_sign, signature, headers: added }
    }
}

/// Trimmed, with runs of spaces as one.
fn canonical_value(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for word in value.split(' ').filter(|w| !w.is_empty()) {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word.trim_matches(|c: char| c.is_ascii_whitespace()));
    }
    out
}

fn canonical_query(query: &str) -> String {
    let mut pairs: Vec<(String, String)> = query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
            (uri_encode(&percent_decode(key), true), uri_encode(&percent_decode(value), true))
        })
        .collect();
    pairs.sort();
    pairs.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&")
}

/// RFC 3986 encoding as SigV4 wants it: everything but unreserved characters (and
/// `/` unless `encode_slash`) as `%XX`, upper-case.
pub fn uri_encode(text: &str, encode_slash: bool) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) || (b == b'/' && !encode_slash) {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex_at = |j: usize| bytes.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (bytes[i], hex_at(i + 1), hex_at(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hmac(key: &[u8], data: &[u8]) -> Vec<u8> {
    // HMAC takes keys of any length.
    let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(key) else { return Vec::new() };
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
