//! Pipewright access keys and the gate: keys are made, listed (never with their secret),
//! rotated and revoked through the IAM door only; the key door accepts a request botocore signed
//! with a key the store holds, and refuses unknown, expired, revoked (after the cache's minute)
//! and wrongly signed ones with AWS's exceptions; a key's grant decides each operation.

use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pipewright_core::access::gate::{self, Door};
use pipewright_core::access::keys::{
    self, decode_request, handle_request, memory::MemoryKeyStore, AccessKey, CachedKeys,
    KeyRequest, KeyStore, CACHE_TTL,
};
use pipewright_core::access::policy::Grant;
use pipewright_core::access::sigv4::SignedRequest;
use serde_json::{json, Value};

const ADMIN: &str = "arn:aws:iam::123456789012:user/admin";

/// A predictable "random" source: each byte is the next value of one counter for the whole
/// test binary.
fn counter() -> impl FnMut(&mut [u8]) + Send {
    static NEXT: std::sync::atomic::AtomicU8 = std::sync::atomic::AtomicU8::new(0);
    |buf: &mut [u8]| {
        for b in buf {
            *b = NEXT.fetch_add(37, Ordering::SeqCst);
        }
    }
}

async fn run(store: &MemoryKeyStore, op: &str, body: Value, now: f64) -> Result<Value, String> {
    let request = decode_request(op, &body)?;
    handle_request(store, request, now, ADMIN, &mut counter())
        .await
        .map_err(|(kind, message)| format!("{kind}: {message}"))
}

#[test]
fn key_ids_look_like_aws_access_key_ids_and_secrets_are_40_characters() {
    let id = keys::new_access_key_id(&[255; 17]);
    assert_eq!(id.len(), 20);
    assert!(keys::is_key_id(&id), "{id}");
    assert!(!keys::is_key_id("AKIAIOSFODNN7EXAMPLE"));
    assert!(!keys::is_key_id("PWKshort"));
    assert_eq!(keys::new_secret(&[7; 30]).len(), 40);
}

#[test]
fn bad_key_requests_name_the_field_and_the_reason() {
    let cases = [
        (
            "CreateAccessKey",
            json!({"allow": ["codepipeline:Get*"]}),
            "name: required",
        ),
        (
            "CreateAccessKey",
            json!({"name": "a b", "allow": ["codepipeline:Get*"]}),
            "name:",
        ),
        ("CreateAccessKey", json!({"name": "ci"}), "allow: required"),
        (
            "CreateAccessKey",
            json!({"name": "ci", "allow": ["s3:GetObject"]}),
            "actions: \"s3:GetObject\"",
        ),
        (
            "CreateAccessKey",
            json!({"name": "ci", "allow": ["codepipeline:*"], "pipelines": []}),
            "pipelines:",
        ),
        (
            "CreateAccessKey",
            json!({"name": "ci", "allow": ["codepipeline:*"], "expiresInDays": 0}),
            "expiresInDays:",
        ),
        (
            "CreateAccessKey",
            json!({"name": "ci", "allow": ["codepipeline:*"], "expiresInDays": 99999}),
            "expiresInDays:",
        ),
        ("RevokeAccessKey", json!({}), "accessKeyId: required"),
        (
            "RevokeAccessKey",
            json!({"accessKeyId": "AKIAIOSFODNN7EXAMPLE"}),
            "accessKeyId: \"AKIA",
        ),
        (
            "RotateAccessKey",
            json!({"accessKeyId": keys::new_access_key_id(&[1; 17]), "oldKeyValidForSeconds": -1}),
            "oldKeyValidForSeconds:",
        ),
        ("MintEverything", json!({}), "unknown key operation"),
    ];
    for (op, body, expected) in cases {
        let err = decode_request(op, &body).expect_err(&format!("{op} {body}"));
        assert!(
            err.starts_with(expected) || err.contains(expected),
            "{op} {body}: {err}"
        );
    }
    assert_eq!(
        decode_request(
            "CreateAccessKey",
            &json!({"name": "ci", "allow": ["codepipeline:Get*"]})
        )
        .unwrap(),
        KeyRequest::Create {
            name: "ci".into(),
            grant: Grant {
                actions: vec!["codepipeline:Get*".into()],
                pipelines: vec!["*".into()],
            },
            expires_in_days: None,
        }
    );
}

#[tokio::test]
async fn create_list_rotate_and_revoke() {
    let store = MemoryKeyStore::default();
    let now = 1_800_000_000.0;
    let made = run(
        &store,
        "CreateAccessKey",
        json!({"name": "deployer", "allow": ["codepipeline:StartPipelineExecution"], "pipelines": ["web-*"], "expiresInDays": 30}),
        now,
    )
    .await
    .unwrap();
    let key = &made["accessKey"];
    let id = key["accessKeyId"].as_str().unwrap().to_string();
    assert!(keys::is_key_id(&id));
    assert_eq!(key["secretAccessKey"].as_str().unwrap().len(), 40);
    assert_eq!(key["expires"], now + 30.0 * 86_400.0);
    assert_eq!(key["createdBy"], ADMIN);

    // The list never shows a secret.
    let listed = run(&store, "ListAccessKeys", json!({}), now).await.unwrap();
    assert_eq!(listed["accessKeys"].as_array().unwrap().len(), 1);
    assert!(!listed
        .to_string()
        .contains(key["secretAccessKey"].as_str().unwrap()));
    assert_eq!(listed["accessKeys"][0]["pipelines"], json!(["web-*"]));

    // Rotation: a new key with the same grant; the old one works for the grace period only.
    let rotated = run(
        &store,
        "RotateAccessKey",
        json!({"accessKeyId": id, "oldKeyValidForSeconds": 600}),
        now + 100.0,
    )
    .await
    .unwrap();
    let new_id = rotated["accessKey"]["accessKeyId"]
        .as_str()
        .unwrap()
        .to_string();
    assert_ne!(new_id, id);
    let old = store.get(&id).await.unwrap().unwrap();
    let new = store.get(&new_id).await.unwrap().unwrap();
    assert_eq!(new.grant, old.grant);
    assert_eq!(new.name, "deployer");
    assert_eq!(old.expires, Some(now + 700.0));
    assert!(old.is_valid_at(now + 699.0) && !old.is_valid_at(now + 700.0));
    assert_eq!(new.expires, Some(now + 100.0 + 30.0 * 86_400.0));

    // Revoke: gone; a second revoke says there is no such key.
    run(&store, "RevokeAccessKey", json!({"accessKeyId": id}), now)
        .await
        .unwrap();
    assert!(store.get(&id).await.unwrap().is_none());
    let again = run(&store, "RevokeAccessKey", json!({"accessKeyId": id}), now)
        .await
        .unwrap_err();
    assert!(
        again.starts_with("ResourceNotFoundException: accessKeyId"),
        "{again}"
    );
    let missing = run(&store, "RotateAccessKey", json!({"accessKeyId": id}), now)
        .await
        .unwrap_err();
    assert!(
        missing.starts_with("ResourceNotFoundException"),
        "{missing}"
    );
}

#[tokio::test]
async fn the_cache_answers_for_a_minute_then_asks_again() {
    let cache = CachedKeys::new(MemoryKeyStore::default());
    let key = sample_key(Grant::admin());
    cache.store().put(&key).await.unwrap();
    let t = 1_000.0;
    assert!(cache.get(&key.access_key_id, t).await.unwrap().is_some());
    assert!(cache
        .get(&key.access_key_id, t + CACHE_TTL - 1.0)
        .await
        .unwrap()
        .is_some());
    assert_eq!(cache.store().gets.load(Ordering::SeqCst), 1);
    // Revoked: still known from the cache until the minute is over, then gone.
    cache.store().delete(&key.access_key_id).await.unwrap();
    assert!(cache
        .get(&key.access_key_id, t + 30.0)
        .await
        .unwrap()
        .is_some());
    assert!(cache
        .get(&key.access_key_id, t + CACHE_TTL)
        .await
        .unwrap()
        .is_none());
    // An unknown id is remembered as unknown too (a flood of forged ids reaches the store once a
    // minute per id).
    for _ in 0..5 {
        assert!(cache
            .get("PWKNOSUCHKEY00000000", t + 61.0)
            .await
            .unwrap()
            .is_none());
    }
    assert_eq!(cache.store().gets.load(Ordering::SeqCst), 3);
}

fn sample_key(grant: Grant) -> AccessKey {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/botocore-signed.json")).unwrap();
    AccessKey {
        access_key_id: fixture["accessKeyId"].as_str().unwrap().into(),
        secret_access_key: fixture["secretAccessKey"].as_str().unwrap().into(),
        name: "ci".into(),
        grant,
        created: 0.0,
        expires: None,
        created_by: None,
    }
}

/// The first request of the fixture (botocore's ListPipelines) and when it was signed.
fn signed_list_pipelines() -> (String, Vec<(String, String)>, Vec<u8>, SystemTime) {
    let fixture: Value =
        serde_json::from_str(include_str!("fixtures/botocore-signed.json")).unwrap();
    let r = &fixture["requests"][0];
    let headers: Vec<(String, String)> = r["headers"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
        .collect();
    let date = headers
        .iter()
        .find(|(k, _)| k == "X-Amz-Date")
        .unwrap()
        .1
        .clone();
    let t = chrono::NaiveDateTime::parse_from_str(&date, "%Y%m%dT%H%M%SZ").unwrap();
    let at = UNIX_EPOCH + Duration::from_secs(t.and_utc().timestamp() as u64);
    (
        r["method"].as_str().unwrap().into(),
        headers,
        r["body"].as_str().unwrap().as_bytes().to_vec(),
        at,
    )
}

#[tokio::test]
async fn the_key_door_knows_the_signer_by_its_key_and_refuses_the_rest() {
    let (method, headers, body, at) = signed_list_pipelines();
    let request = SignedRequest {
        method: &method,
        path: "/",
        query: "",
        headers: &headers,
        body: &body,
    };

    // Unknown key.
    let empty = CachedKeys::new(MemoryKeyStore::default());
    let refused = gate::key_caller(&empty, &request, at).await.unwrap_err();
    assert_eq!(
        (refused.kind, refused.status),
        ("UnrecognizedClientException", 403)
    );

    // Known: the caller is the key, with its grant.
    let grant = Grant {
        actions: vec!["codepipeline:List*".into()],
        pipelines: vec!["*".into()],
    };
    let known = CachedKeys::new(MemoryKeyStore::default());
    known.store().put(&sample_key(grant.clone())).await.unwrap();
    let caller = gate::key_caller(&known, &request, at).await.unwrap();
    assert_eq!(caller.door, Door::Key);
    assert_eq!(caller.grant, grant);
    assert!(
        caller.principal.starts_with("pipewright-key/ci/PWK"),
        "{}",
        caller.principal
    );
    gate::authorize_operation(&caller, "ListPipelines", &json!({}), |n| n.to_string()).unwrap();
    let denied =
        gate::authorize_operation(&caller, "DeletePipeline", &json!({"name": "web"}), |n| {
            format!("arn:aws:codepipeline:eu-west-1:123456789012:{n}")
        })
        .unwrap_err();
    assert_eq!((denied.kind, denied.status), ("AccessDeniedException", 400));
    assert!(
        denied.message.contains("codepipeline:DeletePipeline")
            && denied
                .message
                .contains("arn:aws:codepipeline:eu-west-1:123456789012:web"),
        "{}",
        denied.message
    );
    // A key never manages keys.
    let refused = gate::authorize_key_management(&caller, "CreateAccessKey").unwrap_err();
    assert!(
        refused.message.contains("IAM door only"),
        "{}",
        refused.message
    );

    // Expired: unknown, as AWS says of an inactive key.
    let mut expired = sample_key(Grant::admin());
    expired.expires = Some(1.0);
    let old = CachedKeys::new(MemoryKeyStore::default());
    old.store().put(&expired).await.unwrap();
    let refused = gate::key_caller(&old, &request, at).await.unwrap_err();
    assert_eq!(refused.kind, "UnrecognizedClientException");

    // Another secret: the signature does not match.
    let mut other = sample_key(Grant::admin());
    other.secret_access_key = "another-secret-of-forty-characters-00000".into();
    let wrong = CachedKeys::new(MemoryKeyStore::default());
    wrong.store().put(&other).await.unwrap();
    let refused = gate::key_caller(&wrong, &request, at).await.unwrap_err();
    assert_eq!(
        (refused.kind, refused.status),
        ("InvalidSignatureException", 403)
    );

    // Twenty minutes later: too old.
    let refused = gate::key_caller(&known, &request, at + Duration::from_secs(1200))
        .await
        .unwrap_err();
    assert_eq!(refused.kind, "InvalidSignatureException");
}

#[test]
fn the_iam_door_takes_the_principal_iam_authenticated() {
    let caller = gate::iam_caller(Some(ADMIN)).unwrap();
    assert_eq!(caller.door, Door::Iam);
    assert_eq!(caller.grant, Grant::admin());
    gate::authorize_key_management(&caller, "CreateAccessKey").unwrap();
    // No principal: the URL was not AWS_IAM; nothing is trusted.
    let refused = gate::iam_caller(None).unwrap_err();
    assert_eq!(refused.kind, "UnrecognizedClientException");
}

#[test]
fn the_access_record_names_who_what_and_the_outcome_and_no_secret() {
    let body = json!({"name": "web", "clientRequestToken": "t"});
    let line = gate::access_record(
        Door::Key,
        Some("pipewright-key/ci/PWKEXAMPLE0000000001"),
        "StartPipelineExecution",
        &body,
        Err("AccessDeniedException"),
    );
    assert_eq!(line["pipeline"], "web");
    assert_eq!(line["allowed"], false);
    assert_eq!(line["door"], "key");
    assert_eq!(line["refusal"], "AccessDeniedException");
}
