//! Verifying AWS Signature Version 4 on the key door: a request an unmodified AWS CLI, boto3,
//! SDK or Terraform signed for the service `codepipeline` with a Pipewright-issued key.
//!
//! [`parse`] reads the `Authorization` header (which key, which scope, which headers were
//! signed); the caller looks the key's secret up; [`verify`] recomputes the signature with the
//! AWS SDK's own signer (`aws-sigv4`) over exactly the headers the client signed, and compares it
//! in constant time. As AWS does, it also refuses a request signed more than 15 minutes from now,
//! a scope that is not `<date>/<region>/codepipeline/aws4_request` for the request's date, a
//! `x-amz-content-sha256` that is not the body's hash, and a signature that leaves out `host`,
//! `x-amz-date` or `x-amz-target` (the operation).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{sign, SignableBody, SignableRequest, SigningSettings};
use aws_sigv4::sign::v4;
use sha2::{Digest, Sha256};

/// The service name clients sign CodePipeline calls for.
pub const SERVICE: &str = "codepipeline";

/// How far a request's signing time may be from now (AWS: 15 minutes).
pub const MAX_SKEW: Duration = Duration::from_secs(15 * 60);

/// The only algorithm accepted.
const ALGORITHM: &str = "AWS4-HMAC-SHA256";

/// A request as the key door received it.
#[derive(Debug, Clone, Copy)]
pub struct SignedRequest<'a> {
    /// `POST`.
    pub method: &'a str,
    /// The path, as sent (`/`).
    pub path: &'a str,
    /// The raw query string, without `?` (usually empty).
    pub query: &'a str,
    /// Every header, names in any case.
    pub headers: &'a [(String, String)],
    /// The body's bytes.
    pub body: &'a [u8],
}

impl SignedRequest<'_> {
    /// The value of header `name` (any case), if sent once or more (values joined by `,`).
    pub fn header(&self, name: &str) -> Option<String> {
        let values: Vec<&str> = self
            .headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
            .collect();
        (!values.is_empty()).then(|| values.join(","))
    }
}

/// What the `Authorization` header says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authorization {
    /// The access key id.
    pub access_key_id: String,
    /// The scope's date, `YYYYMMDD`.
    pub date: String,
    /// The scope's region.
    pub region: String,
    /// The scope's service.
    pub service: String,
    /// The signed headers, lowercase, in the order sent.
    pub signed_headers: Vec<String>,
    /// The signature, lowercase hex.
    pub signature: String,
}

/// Why a request is refused, the AWS way (both answer HTTP 403).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// `UnrecognizedClientException`: no signature, or a key Pipewright did not issue (or
    /// revoked, or expired).
    #[error("UnrecognizedClientException: {0}")]
    Unrecognized(String),
    /// `InvalidSignatureException`: the signature does not match, is malformed, or is too old or
    /// too new.
    #[error("InvalidSignatureException: {0}")]
    InvalidSignature(String),
}

impl AuthError {
    /// The exception name (`__type`).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Unrecognized(_) => "UnrecognizedClientException",
            Self::InvalidSignature(_) => "InvalidSignatureException",
        }
    }

    /// The message, for the caller.
    pub fn message(&self) -> &str {
        match self {
            Self::Unrecognized(m) | Self::InvalidSignature(m) => m,
        }
    }

    /// An unknown key, in AWS's words.
    pub fn unknown_key() -> Self {
        Self::Unrecognized("The security token included in the request is invalid.".into())
    }
}

fn invalid(message: impl Into<String>) -> AuthError {
    AuthError::InvalidSignature(message.into())
}

/// Read the request's `Authorization` header.
pub fn parse(request: &SignedRequest<'_>) -> Result<Authorization, AuthError> {
    let Some(header) = request.header("authorization") else {
        return Err(AuthError::Unrecognized(
            "Missing Authentication Token: sign the request with SigV4 for the service \
             codepipeline, using a Pipewright access key"
                .into(),
        ));
    };
    let rest = header
        .trim()
        .strip_prefix(ALGORITHM)
        .filter(|r| r.starts_with(' '))
        .ok_or_else(|| {
            AuthError::Unrecognized(format!(
                "Authorization: only {ALGORITHM} signatures are accepted"
            ))
        })?;
    let mut credential = None;
    let mut signed_headers = None;
    let mut signature = None;
    for part in rest.split(',') {
        let part = part.trim();
        let (key, value) = part
            .split_once('=')
            .ok_or_else(|| invalid(format!("Authorization: {part:?} is not key=value")))?;
        let slot = match key {
            "Credential" => &mut credential,
            "SignedHeaders" => &mut signed_headers,
            "Signature" => &mut signature,
            other => return Err(invalid(format!("Authorization: unknown component {other}"))),
        };
        if slot.replace(value.to_string()).is_some() {
            return Err(invalid(format!("Authorization: {key} is given twice")));
        }
    }
    let credential =
        credential.ok_or_else(|| invalid("Authorization: the Credential is missing"))?;
    let scope: Vec<&str> = credential.split('/').collect();
    let [access_key_id, date, region, service, terminator] = scope[..] else {
        return Err(invalid(format!(
            "Credential {credential:?} is not <key>/<date>/<region>/<service>/aws4_request"
        )));
    };
    if access_key_id.is_empty() {
        return Err(AuthError::Unrecognized(
            "the Credential names no access key".into(),
        ));
    }
    if terminator != "aws4_request" {
        return Err(invalid(format!(
            "Credential should be scoped with a valid terminator: 'aws4_request', not '{terminator}'."
        )));
    }
    let signed_headers: Vec<String> = signed_headers
        .ok_or_else(|| invalid("Authorization: SignedHeaders is missing"))?
        .split(';')
        .map(str::to_ascii_lowercase)
        .collect();
    let signature = signature.ok_or_else(|| invalid("Authorization: the Signature is missing"))?;
    if signature.len() != 64 || !signature.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(invalid("the Signature is not 64 hexadecimal digits"));
    }
    Ok(Authorization {
        access_key_id: access_key_id.to_string(),
        date: date.to_string(),
        region: region.to_string(),
        service: service.to_string(),
        signed_headers,
        signature: signature.to_ascii_lowercase(),
    })
}

/// What a door expects of a signature: the service it is scoped to and the headers it must
/// cover.
#[derive(Debug, Clone, Copy)]
pub struct Expect<'a> {
    /// The signing name, e.g. `codepipeline`.
    pub service: &'a str,
    /// Headers the signature must cover (lowercase).
    pub signed_headers: &'a [&'a str],
}

/// The key door: service `codepipeline`; `host`, `x-amz-date` and the operation
/// (`x-amz-target`) signed.
pub const KEY_DOOR: Expect<'static> = Expect {
    service: SERVICE,
    signed_headers: &["host", "x-amz-date", "x-amz-target"],
};

/// A Function URL with `AuthType: AWS_IAM`: service `lambda`; `host` and `x-amz-date` signed.
pub const FUNCTION_URL: Expect<'static> = Expect {
    service: "lambda",
    signed_headers: &["host", "x-amz-date"],
};

/// Check that `request`, whose `Authorization` is `auth`, was signed with `secret` (the secret of
/// `auth.access_key_id`) for the key door ([`KEY_DOOR`]) within [`MAX_SKEW`] of `now`.
pub fn verify(
    request: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &str,
    now: SystemTime,
) -> Result<(), AuthError> {
    verify_as(request, auth, secret, now, KEY_DOOR)
}

/// [`verify`], for what `expect` says (the local IAM door checks [`FUNCTION_URL`]).
pub fn verify_as(
    request: &SignedRequest<'_>,
    auth: &Authorization,
    secret: &str,
    now: SystemTime,
    expect: Expect<'_>,
) -> Result<(), AuthError> {
    if auth.service != expect.service {
        return Err(invalid(format!(
            "Credential should be scoped to correct service: '{}'.",
            expect.service
        )));
    }
    for &required in expect.signed_headers {
        if !auth.signed_headers.iter().any(|h| h == required) {
            return Err(invalid(format!(
                "'{required}' must be a signed header (SignedHeaders: {})",
                auth.signed_headers.join(";")
            )));
        }
    }
    let amz_date = request
        .header("x-amz-date")
        .ok_or_else(|| invalid("the X-Amz-Date header is missing"))?;
    let time = parse_amz_date(&amz_date).ok_or_else(|| {
        invalid(format!(
            "X-Amz-Date {amz_date:?} is not YYYYMMDD'T'HHMMSS'Z'"
        ))
    })?;
    if !amz_date.starts_with(&auth.date) || auth.date.len() != 8 {
        return Err(invalid(format!(
            "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from \
             HTTP: '{}' != '{}'",
            auth.date,
            &amz_date[..amz_date.len().min(8)]
        )));
    }
    let skew = match now.duration_since(time) {
        Ok(behind) => behind,
        Err(ahead) => ahead.duration(),
    };
    if skew > MAX_SKEW {
        return Err(invalid(format!(
            "Signature expired or not yet valid: {amz_date} is more than 15 minutes from the \
             server's time {}",
            format_amz_date(now)
        )));
    }
    let body_hash = crate::hex::encode(&Sha256::digest(request.body));
    if let Some(claimed) = request.header("x-amz-content-sha256") {
        if claimed != body_hash {
            return Err(invalid(
                "The provided 'x-amz-content-sha256' header does not match what was computed.",
            ));
        }
    }
    // Exactly the headers the client signed (the signer adds x-amz-date from the time).
    let mut headers = Vec::new();
    for name in &auth.signed_headers {
        if name == "x-amz-date" {
            continue;
        }
        let value = request
            .header(name)
            .ok_or_else(|| invalid(format!("the signed header {name} is not in the request")))?;
        headers.push((name.clone(), value));
    }
    let uri = if request.query.is_empty() {
        request.path.to_string()
    } else {
        format!("{}?{}", request.path, request.query)
    };
    let identity =
        Credentials::new(&auth.access_key_id, secret, None, None, "pipewright-key").into();
    let mut settings = SigningSettings::default();
    // Sign what the client signed, nothing excluded, nothing added.
    settings.excluded_headers = Some(Vec::new());
    let params: aws_sigv4::http_request::SigningParams<'_> = v4::SigningParams::builder()
        .identity(&identity)
        .region(&auth.region)
        .name(expect.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|e| invalid(format!("cannot compute the signature: {e}")))?
        .into();
    let signable = SignableRequest::new(
        request.method,
        uri,
        headers.iter().map(|(k, v)| (k.as_str(), v.as_str())),
        SignableBody::Bytes(request.body),
    )
    .map_err(|e| invalid(format!("cannot read the request to sign it: {e}")))?;
    let expected = sign(signable, &params)
        .map_err(|e| invalid(format!("cannot compute the signature: {e}")))?
        .signature()
        .to_string();
    if constant_time_eq(expected.as_bytes(), auth.signature.as_bytes()) {
        Ok(())
    } else {
        Err(invalid(
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        ))
    }
}

/// Equal, in time that does not depend on where the inputs differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    use subtle::ConstantTimeEq;
    a.len() == b.len() && bool::from(a.ct_eq(b))
}

/// `20261207T022429Z` as a time.
fn parse_amz_date(text: &str) -> Option<SystemTime> {
    let parsed = chrono::NaiveDateTime::parse_from_str(text, "%Y%m%dT%H%M%SZ").ok()?;
    let seconds = u64::try_from(parsed.and_utc().timestamp()).ok()?;
    Some(SystemTime::UNIX_EPOCH + Duration::from_secs(seconds))
}

fn format_amz_date(time: SystemTime) -> String {
    chrono::DateTime::<chrono::Utc>::from(time)
        .format("%Y%m%dT%H%M%SZ")
        .to_string()
}
