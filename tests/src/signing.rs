//! Requests to the control plane's doors as a client sends them: AWS JSON 1.1, signed with SigV4
//! by the AWS SDK's own signer (`aws-sigv4`) for a service (`codepipeline` on the key door,
//! `lambda` on the IAM door), with a key and a signing time of the test's choosing, so tests can
//! also send what a client should not (another service, a skewed clock, another secret).

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use serde_json::Value;

use crate::Stack;

/// Who signs, for which service, when.
#[derive(Debug, Clone)]
pub struct Signer {
    /// The access key id.
    pub access_key_id: String,
    /// Its secret.
    pub secret: String,
    /// The signing name: `codepipeline` or `lambda`.
    pub service: String,
    /// The signing time.
    pub time: SystemTime,
}

impl Signer {
    /// `access_key_id`/`secret` signing for `service` now.
    pub fn new(access_key_id: &str, secret: &str, service: &str) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret: secret.into(),
            service: service.into(),
            time: SystemTime::now(),
        }
    }

    /// The local stack's credentials (the emulator's, an admin key too) for `service`.
    pub fn local(service: &str) -> Self {
        Self::new(
            pipewright_local::LOCAL_ACCESS_KEY_ID,
            pipewright_local::LOCAL_SECRET_ACCESS_KEY,
            service,
        )
    }
}

/// POST `body` with `X-Amz-Target: target` to `url`, signed by `signer` (`None`: unsigned);
/// returns the status and the answer's JSON (`Null` when it is not JSON).
pub fn call(url: &str, target: &str, body: &Value, signer: Option<&Signer>) -> (u16, Value) {
    let payload = body.to_string();
    let host = url
        .split_once("://")
        .map_or(url, |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_string();
    let mut headers = vec![
        ("host".to_string(), host),
        (
            "content-type".to_string(),
            "application/x-amz-json-1.1".to_string(),
        ),
        ("x-amz-target".to_string(), target.to_string()),
    ];
    if let Some(signer) = signer {
        let identity =
            Credentials::new(&signer.access_key_id, &signer.secret, None, None, "e2e").into();
        let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
            .identity(&identity)
            .region(pipewright_aws::config::DEFAULT_REGION)
            .name(&signer.service)
            .time(signer.time)
            .settings(SigningSettings::default())
            .build()
            .expect("signing parameters")
            .into();
        let signable = SignableRequest::new(
            "POST",
            url,
            headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
            SignableBody::Bytes(payload.as_bytes()),
        )
        .expect("a signable request");
        let (instructions, _) = sign(signable, &params).expect("a signature").into_parts();
        headers.extend(
            instructions
                .headers()
                .map(|(k, v)| (k.to_string(), v.to_string())),
        );
    }
    let mut request = ureq::post(url);
    for (name, value) in headers.iter().filter(|(n, _)| n != "host") {
        request = request.header(name, value);
    }
    let mut response = request
        .config()
        .http_status_as_error(false)
        .build()
        .send(payload.as_bytes())
        .unwrap_or_else(|e| panic!("{target} to {url}: {e}"));
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (status, serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// A Pipewright access key made through the IAM door: `(access key id, secret)`.
pub fn create_key(
    stack: &Stack,
    name: &str,
    allow: &[&str],
    pipelines: &[&str],
) -> (String, String) {
    let (status, answer) = call(
        &stack.iam_endpoint,
        "Pipewright_20261207.CreateAccessKey",
        &serde_json::json!({ "name": name, "allow": allow, "pipelines": pipelines }),
        Some(&Signer::local("lambda")),
    );
    assert_eq!(status, 200, "CreateAccessKey: {answer}");
    let key = &answer["accessKey"];
    (
        key["accessKeyId"]
            .as_str()
            .expect("accessKeyId")
            .to_string(),
        key["secretAccessKey"]
            .as_str()
            .expect("secretAccessKey")
            .to_string(),
    )
}
