//! The key door's SigV4 check against requests a client no one here wrote signed: boto3 /
//! botocore 1.43 signing CodePipeline calls with a Pipewright key (`fixtures/botocore-signed.json`,
//! captured from botocore just before sending). Each verifies; any change to what was signed, a
//! wrong secret, another service's scope, a clock more than 15 minutes off, a body whose hash is
//! not the one claimed, or no signature at all is refused with AWS's exception.

use std::time::{Duration, SystemTime};

use pipewright_core::access::sigv4::{parse, verify, AuthError, SignedRequest, MAX_SKEW};
use proptest::prelude::*;
use serde_json::Value;

struct Captured {
    method: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Captured {
    fn request(&self) -> SignedRequest<'_> {
        SignedRequest {
            method: &self.method,
            path: "/",
            query: "",
            headers: &self.headers,
            body: &self.body,
        }
    }

    fn set(&mut self, name: &str, value: &str) {
        self.headers.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
        self.headers.push((name.to_string(), value.to_string()));
    }

    /// When botocore signed it.
    fn signed_at(&self) -> SystemTime {
        let date = self.request().header("x-amz-date").unwrap();
        let t = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ").unwrap();
        SystemTime::UNIX_EPOCH + Duration::from_secs(t.and_utc().timestamp() as u64)
    }
}

fn fixture() -> (String, String, Vec<Captured>) {
    let text = include_str!("fixtures/botocore-signed.json");
    let v: Value = serde_json::from_str(text).unwrap();
    let requests = v["requests"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Captured {
            method: r["method"].as_str().unwrap().to_string(),
            headers: r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect(),
            body: r["body"].as_str().unwrap().as_bytes().to_vec(),
        })
        .collect();
    (
        v["accessKeyId"].as_str().unwrap().to_string(),
        v["secretAccessKey"].as_str().unwrap().to_string(),
        requests,
    )
}

fn check(c: &Captured, secret: &str, now: SystemTime) -> Result<String, AuthError> {
    let request = c.request();
    let auth = parse(&request)?;
    verify(&request, &auth, secret, now)?;
    Ok(auth.access_key_id)
}

fn is_invalid_signature(r: Result<String, AuthError>) -> bool {
    matches!(r, Err(AuthError::InvalidSignature(_)))
}

#[test]
fn requests_botocore_signed_verify() {
    let (key, secret, requests) = fixture();
    assert_eq!(requests.len(), 3);
    for c in &requests {
        let at = c.signed_at();
        assert_eq!(check(c, &secret, at), Ok(key.clone()));
        // Within the skew, either way.
        assert_eq!(check(c, &secret, at + MAX_SKEW), Ok(key.clone()));
        assert_eq!(check(c, &secret, at - MAX_SKEW), Ok(key.clone()));
        let auth = parse(&c.request()).unwrap();
        assert_eq!(auth.region, "eu-west-1");
        assert_eq!(auth.service, "codepipeline");
    }
}

#[test]
fn anything_changed_or_wrong_is_refused() {
    let (_, secret, requests) = fixture();
    let at = requests[1].signed_at();
    let fresh = || fixture().2.remove(1);

    // A wrong secret.
    let wrong = check(&requests[1], "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEZ", at);
    let Err(AuthError::InvalidSignature(message)) = wrong else {
        panic!("{wrong:?}")
    };
    assert!(message.contains("does not match"), "{message}");

    // Another operation under the same signature (GetPipeline → DeletePipeline).
    let mut c = fresh();
    c.set("X-Amz-Target", "CodePipeline_20150709.DeletePipeline");
    assert!(is_invalid_signature(check(&c, &secret, at)));

    // Another pipeline in the body.
    let mut c = fresh();
    c.body = br#"{"name": "my-pipe.line@2"}"#.to_vec();
    assert!(is_invalid_signature(check(&c, &secret, at)));

    // Another host.
    let mut c = fresh();
    c.set("host", "evil.example");
    assert!(is_invalid_signature(check(&c, &secret, at)));

    // A clock more than 15 minutes off, either way.
    for now in [
        at + MAX_SKEW + Duration::from_secs(1),
        at - MAX_SKEW - Duration::from_secs(1),
    ] {
        let r = check(&requests[1], &secret, now);
        let Err(AuthError::InvalidSignature(message)) = &r else {
            panic!("{r:?}")
        };
        assert!(message.contains("15 minutes"), "{message}");
    }

    // Scoped to another service (as a client signing for `lambda` would be).
    let mut c = fresh();
    let header = c.request().header("authorization").unwrap();
    c.set(
        "Authorization",
        &header.replace("/codepipeline/", "/lambda/"),
    );
    let r = check(&c, &secret, at);
    let Err(AuthError::InvalidSignature(message)) = &r else {
        panic!("{r:?}")
    };
    assert!(message.contains("'codepipeline'"), "{message}");

    // A scope date that is not the request's.
    let mut c = fresh();
    let header = c.request().header("authorization").unwrap();
    let date = &c.request().header("x-amz-date").unwrap()[..8];
    c.set("Authorization", &header.replace(date, "20200101"));
    assert!(is_invalid_signature(check(&c, &secret, at)));

    // A payload hash that is not the body's.
    let mut c = fresh();
    c.set(
        "x-amz-content-sha256",
        "0000000000000000000000000000000000000000000000000000000000000000",
    );
    assert!(is_invalid_signature(check(&c, &secret, at)));

    // A signature that leaves host out.
    let mut c = fresh();
    let header = c.request().header("authorization").unwrap();
    c.set(
        "Authorization",
        &header.replace("content-type;host;", "content-type;"),
    );
    let r = check(&c, &secret, at);
    let Err(AuthError::InvalidSignature(message)) = &r else {
        panic!("{r:?}")
    };
    assert!(message.contains("'host'"), "{message}");

    // A signature that leaves the operation (X-Amz-Target) out.
    let mut c = fresh();
    let header = c.request().header("authorization").unwrap();
    c.set("Authorization", &header.replace(";x-amz-target,", ","));
    let r = check(&c, &secret, at);
    let Err(AuthError::InvalidSignature(message)) = &r else {
        panic!("{r:?}")
    };
    assert!(message.contains("'x-amz-target'"), "{message}");

    // No signature at all; another algorithm.
    let mut c = fresh();
    c.headers
        .retain(|(k, _)| !k.eq_ignore_ascii_case("authorization"));
    assert!(matches!(
        check(&c, &secret, at),
        Err(AuthError::Unrecognized(_))
    ));
    let mut c = fresh();
    c.set("Authorization", "AWS AKID:c2lnbmF0dXJl");
    assert!(matches!(
        check(&c, &secret, at),
        Err(AuthError::Unrecognized(_))
    ));
    assert_eq!(
        AuthError::unknown_key().kind(),
        "UnrecognizedClientException"
    );
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Whatever an untrusted caller puts in the headers, parsing and verifying answer (a refusal
    /// or, for the untouched request, acceptance) and never panic.
    #[test]
    fn arbitrary_authorization_headers_are_refused_cleanly(
        header in "\\PC{0,200}",
        date in "[0-9TZ]{0,20}",
    ) {
        let (_, secret, mut requests) = fixture();
        let c = &mut requests[0];
        let at = c.signed_at();
        c.set("Authorization", &header);
        c.set("X-Amz-Date", &date);
        let r = check(c, &secret, at);
        prop_assert!(r.is_err(), "{header:?} {date:?} accepted");
    }

    /// Flipping any one byte of the body is refused.
    #[test]
    fn any_changed_body_byte_is_refused(index in any::<prop::sample::Index>(), flip in 1u8..=255) {
        let (_, secret, mut requests) = fixture();
        let c = &mut requests[2];
        let at = c.signed_at();
        let i = index.index(c.body.len());
        c.body[i] ^= flip;
        prop_assert!(is_invalid_signature(check(c, &secret, at)));
    }
}
