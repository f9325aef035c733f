//! The gate in front of the control plane: who is calling (through which door), and whether
//! they may do what they ask, before anything is read or written.
//!
//! - **The IAM door** (the `AWS_IAM` Function URL): AWS checked the SigV4 signature for the
//!   service `lambda` and that the caller may invoke the URL; the caller is the IAM principal in
//!   the request context. Its own IAM policies then decide each operation
//!   ([`authorize_by_policies`], [`super::principals`]); with `InvokeOnly`, whoever IAM lets
//!   through holds every permission ([`Grant::admin`]). Keys are managed here only.
//! - **The key door** (the `NONE` Function URL): the request must be signed for the service
//!   `codepipeline` with a Pipewright access key ([`super::sigv4`]); the key's [`Grant`] decides.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::keys::{CachedKeys, KeyStore};
use super::policy::{self, Grant};
use super::principals::{CachedPolicies, Verdict};
use super::sigv4::{self, AuthError, SignedRequest};

/// Which door a request came through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Door {
    /// The `AWS_IAM` Function URL.
    Iam,
    /// The `NONE` Function URL.
    Key,
}

impl Door {
    /// `iam` or `key`, as the access log and `API_DOOR` name it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Iam => "iam",
            Self::Key => "key",
        }
    }

    /// The door named `name` (`iam`, `key`).
    pub fn parse(name: &str) -> Option<Self> {
        match name {
            "iam" => Some(Self::Iam),
            "key" => Some(Self::Key),
            _ => None,
        }
    }
}

/// Who is calling, and what they may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Caller {
    /// The door.
    pub door: Door,
    /// The IAM principal's ARN, or `pipewright-key/<name>/<access key id>`.
    pub principal: String,
    /// What the caller may do.
    pub grant: Grant,
}

/// A refusal before any operation ran: the exception name, the message, the HTTP status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// `UnrecognizedClientException`, `InvalidSignatureException`, `AccessDeniedException`.
    pub kind: &'static str,
    /// Why.
    pub message: String,
    /// 403 for authentication, 400 for authorization (as CodePipeline answers).
    pub status: u16,
}

impl From<AuthError> for Refusal {
    fn from(e: AuthError) -> Self {
        Self {
            kind: e.kind(),
            message: e.message().to_string(),
            status: 403,
        }
    }
}

impl Refusal {
    fn denied(message: String) -> Self {
        Self {
            kind: "AccessDeniedException",
            message,
            status: 400,
        }
    }
}

/// Who sent a request through the IAM door: `principal` is the ARN AWS put in the request
/// context (`None`: the request did not come through IAM, which only a misconfigured URL
/// allows, so it is refused).
pub fn iam_caller(principal: Option<&str>) -> Result<Caller, Refusal> {
    match principal.filter(|p| !p.is_empty()) {
        Some(p) => Ok(Caller {
            door: Door::Iam,
            principal: p.to_string(),
            grant: Grant::admin(),
        }),
        None => Err(AuthError::Unrecognized(
            "the IAM door received a request that IAM did not authenticate (the Function URL \
             must have AuthType AWS_IAM)"
                .into(),
        )
        .into()),
    }
}

/// Who signed `request` on the key door, at `now`: its key must exist, be valid and have signed
/// it.
pub async fn key_caller<S: KeyStore>(
    keys: &CachedKeys<S>,
    request: &SignedRequest<'_>,
    now: SystemTime,
) -> Result<Caller, Refusal> {
    let auth = sigv4::parse(request)?;
    let seconds = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or(Duration::ZERO)
        .as_secs_f64();
    let key = keys
        .get(&auth.access_key_id, seconds)
        .await
        .map_err(|e| Refusal {
            kind: "ServiceUnavailableException",
            message: format!("the key store did not answer: {e}"),
            status: 503,
        })?
        .filter(|k| k.is_valid_at(seconds))
        .ok_or_else(AuthError::unknown_key)?;
    sigv4::verify(request, &auth, &key.secret_access_key, now)?;
    Ok(Caller {
        door: Door::Key,
        principal: format!("pipewright-key/{}/{}", key.name, key.access_key_id),
        grant: key.grant,
    })
}

/// Whether `caller` may run control-plane `operation` with request `body` (`arn` makes a
/// pipeline's ARN for the refusal).
pub fn authorize_operation(
    caller: &Caller,
    operation: &str,
    body: &Value,
    arn: impl Fn(&str) -> String,
) -> Result<(), Refusal> {
    policy::authorize(&caller.grant, &caller.principal, operation, body, arn)
        .map_err(Refusal::denied)
}

/// Whether the IAM policies of `caller` (through the IAM door) allow `action` on `resource` at
/// `now` ([`super::principals`]).
pub async fn authorize_by_policies(
    policies: &CachedPolicies,
    caller: &Caller,
    action: &str,
    resource: &str,
    now: f64,
) -> Result<(), Refusal> {
    match policies
        .check(&caller.principal, action, resource, now)
        .await
    {
        Ok(Verdict::Allowed) => Ok(()),
        Ok(Verdict::Denied(reason)) => Err(Refusal::denied(format!(
            "{}: {reason}",
            policy::denied_message(&caller.principal, action, resource)
        ))),
        Err(e) => Err(Refusal {
            kind: "ServiceUnavailableException",
            message: format!("IAM did not answer the policy check: {e}"),
            status: 503,
        }),
    }
}

/// Whether `caller` may manage keys: through the IAM door, with `codepipeline:*` on every
/// pipeline. A key can never mint keys.
pub fn authorize_key_management(caller: &Caller, operation: &str) -> Result<(), Refusal> {
    let action = format!("pipewright:{operation}");
    if caller.door != Door::Iam {
        return Err(Refusal::denied(format!(
            "{}: Pipewright access keys are managed through the IAM door only (a key cannot \
             manage keys)",
            policy::denied_message(&caller.principal, &action, "*")
        )));
    }
    if caller.grant != Grant::admin() {
        return Err(Refusal::denied(policy::denied_message(
            &caller.principal,
            &action,
            "*",
        )));
    }
    Ok(())
}

/// The access log's line for one call: who, through which door, what, on which pipeline,
/// allowed or not (never a secret or a signature).
pub fn access_record(
    door: Door,
    principal: Option<&str>,
    operation: &str,
    body: &Value,
    outcome: Result<(), &str>,
) -> Value {
    serde_json::json!({
        "door": door.as_str(),
        "principal": principal.unwrap_or("-"),
        "operation": operation,
        "pipeline": policy::pipeline_of(operation, body),
        "allowed": outcome.is_ok(),
        "refusal": outcome.err(),
    })
}
