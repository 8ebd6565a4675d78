//! The signer against AWS's Signature Version 4 test suite (aws-sig-v4-test-suite,
//! https://docs.aws.amazon.com/general/latest/gr/signature-v4-test-suite.html):
//! credentials AKIDEXAMPLE / wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, region
//! us-east-1, service `service`, 2015-08-30T12:36:00Z. Each case is named after its
//! folder in the suite; the expected values are its `.creq`, `.sts` and `.authz` files.

use std::time::{Duration, UNIX_EPOCH};

use agent::sigv4::{Signer, Unsigned};

const TOKEN: &str = "AQoDYXdzEPT//////////wEXAMPLEtc764bNrC9SAPBSM22wDOk4x4HIZ8j4FZTwdQWLWsKWHGBuFqwAeMicRXmxfpSPfIeoIYRqTflfKD8YUuwthAx7mSEI/qkPpKPi/kMcGdQrmGdeehM4IC1NtBmUpp2wUE8phUZampKsburEDy0KPkyQDYwT7WZ0wq5VSXDvp75YU9HFvlRd8Tx6q6fE8YQcHNVXAkiY9q6d+xo0rKwT38xVqr7ZD0u0iPPkUL64lIZbqBAz+scqKmlzm8FDrypNC9Yjc8fPOLn9FX9KSYvKTr4rvx3iSIlTJabIQwj2ICCR/oLxBA==";

struct Case {
    name: &'static str,
    method: &'static str,
    query: &'static str,
    headers: &'static [(&'static str, &'static str)],
    body: &'static str,
    token: Option<&'static str>,
    /// The `.creq` and `.sts` files, where checked.
    canonical_request: Option<&'static str>,
    string_to_sign: Option<&'static str>,
    /// The `.authz` file.
    authorization: &'static str,
}

const HOST: (&str, &str) = ("Host", "example.amazonaws.com");

fn sign(case: &Case) -> agent::sigv4::Signed {
    let signer = Signer {
        access_key_id: "AKIDEXAMPLE",
        secret_access_key: "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
        session_token: case.token,
        region: "us-east-1",
        service: "service",
    };
    let unsigned = Unsigned {
        method: case.method,
        path: "/",
        query: case.query,
        headers: case.headers,
        body: case.body.as_bytes(),
    };
    signer.sign(&unsigned, UNIX_EPOCH + Duration::from_secs(1_440_938_160))
}

#[test]
fn the_aws_signature_v4_test_suite() {
    let cases = [
        Case {
            name: "get-vanilla",
            method: "GET",
            query: "",
            headers: &[HOST],
            body: "",
            token: None,
            canonical_request: Some(
                "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n\
                 e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            string_to_sign: Some(
                "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
                 bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63",
            ),
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;x-amz-date, \
                Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        },
        Case {
            name: "post-x-www-form-urlencoded",
            method: "POST",
            query: "",
            headers: &[("Content-Type", "application/x-www-form-urlencoded"), HOST],
            body: "Param1=value1",
            token: None,
            canonical_request: Some(
                "POST\n/\n\ncontent-type:application/x-www-form-urlencoded\nhost:example.amazonaws.com\n\
                 x-amz-date:20150830T123600Z\n\ncontent-type;host;x-amz-date\n\
                 9095672bbd1f56dfc5b65f3e153adc8731a4a654192329106275f4c7b24d0b6e",
            ),
            string_to_sign: Some(
                "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
                 42a5e5bb34198acb3e84da4f085bb7927f2bc277ca766e6d19c73c2154021281",
            ),
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=content-type;host;x-amz-date, \
                Signature=ff11897932ad3f4e8b18135d722051e5ac45fc38421b1da7b9d196a0fe09473a",
        },
        Case {
            name: "post-vanilla-query",
            method: "POST",
            query: "Param1=value1",
            headers: &[HOST],
            body: "",
            token: None,
            canonical_request: Some(
                "POST\n/\nParam1=value1\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\n\
                 host;x-amz-date\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
            ),
            string_to_sign: Some(
                "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
                 9d659678c1756bb3113e2ce898845a0a79dbbc57b740555917687f1b3340fbbd",
            ),
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;x-amz-date, \
                Signature=28038455d6de14eafc1f9222cf5aa6f1a96197d7deb8263271d420d138af7f11",
        },
        Case {
            name: "get-vanilla-query-order-key-case",
            method: "GET",
            query: "Param2=value2&Param1=value1",
            headers: &[HOST],
            body: "",
            token: None,
            canonical_request: None,
            string_to_sign: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;x-amz-date, \
                Signature=b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500",
        },
        Case {
            name: "get-header-value-trim",
            method: "GET",
            query: "",
            headers: &[HOST, ("My-Header1", " value1"), ("My-Header2", " \"a   b   c\"")],
            body: "",
            token: None,
            canonical_request: None,
            string_to_sign: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;my-header1;my-header2;x-amz-date, \
                Signature=acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736",
        },
        Case {
            name: "post-header-key-sort",
            method: "POST",
            query: "",
            headers: &[HOST, ("My-Header1", "value1")],
            body: "",
            token: None,
            canonical_request: None,
            string_to_sign: None,
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;my-header1;x-amz-date, \
                Signature=c5410059b04c1ee005303aed430f6e6645f61f4dc9e1461ec8f8916fdf18852c",
        },
        Case {
            name: "post-sts-token/post-sts-header-before",
            method: "POST",
            query: "",
            headers: &[HOST],
            body: "",
            token: Some(TOKEN),
            canonical_request: None,
            string_to_sign: Some(
                "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n\
                 c237e1b440d4c63c32ca95b5b99481081cb7b13c7e40434868e71567c1a882f6",
            ),
            authorization: "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, \
                SignedHeaders=host;x-amz-date;x-amz-security-token, \
                Signature=85d96828115b5dc0cfc3bd16ad9e210dd772bbebba041836c64533a82be05ead",
        },
    ];
    for case in &cases {
        let signed = sign(case);
        if let Some(canonical_request) = case.canonical_request {
            assert_eq!(signed.canonical_request, canonical_request, "{}: .creq", case.name);
        }
        if let Some(string_to_sign) = case.string_to_sign {
            assert_eq!(signed.string_to_sign, string_to_sign, "{}: .sts", case.name);
        }
        assert_eq!(signed.authorization(), case.authorization, "{}: .authz", case.name);
        let date = signed.headers.iter().find(|(n, _)| n == "X-Amz-Date").map(|(_, v)| v.as_str());
        assert_eq!(date, Some("20150830T123600Z"), "{}", case.name);
        let token = signed.headers.iter().find(|(n, _)| n == "X-Amz-Security-Token").map(|(_, v)| v.as_str());
        assert_eq!(token, case.token, "{}", case.name);
    }
}
