//! Task tokens sealed at rest: whoever holds a Step Functions task token completes its task, so
//! the executions table never holds one in plain text. Each is encrypted (AES-256-GCM) with a
//! key only the functions that answer tokens can read (`TASK_TOKEN_KEY_SECRET`, the stack's
//! `pipewright/<stack>/task-token-key`): a principal that can read the table (a support role, a
//! backup, an export) learns nothing it could approve or fail an execution with.
//!
//! A sealed token reads `sealed:v1:<key id>:<base64url of nonce, ciphertext and tag>`. The key
//! id names the secret version that sealed it; the current and the previous version (a
//! rotation) both open. A token stored before sealing (no prefix) reads as it is.
//!
//! The execution store seals every `taskToken` and `holderToken` of a record when it writes it
//! and opens them when it reads it ([`seal_record`], [`open_record`]); a function without the
//! key (the trigger, the webhook) leaves sealed tokens sealed, and
//! [`crate::sfn::SfnTaskCallbacks`] refuses to send one.

use std::time::{Duration, Instant};

use aws_lc_rs::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM, NONCE_LEN};
use aws_lc_rs::rand::{SecureRandom, SystemRandom};
use aws_sdk_secretsmanager::error::ProvideErrorMetadata;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use serde_json::Value;
use tokio::sync::Mutex;

use crate::error_chain;

/// What every sealed token starts with.
pub const SEALED_PREFIX: &str = "sealed:v1:";

/// The record members that hold task tokens.
const TOKEN_MEMBERS: [&str; 2] = ["taskToken", "holderToken"];

/// How long keys read from the secret are used before it is read again (a rotation reaches
/// every warm function within this).
const KEYS_TTL: Duration = Duration::from_secs(300);

/// How old the keys read must be before a token of an unknown key has them read again.
const UNKNOWN_KEY_REFRESH: Duration = Duration::from_secs(5);

/// Bound to every sealed token, so a ciphertext of anything else never opens as one.
const AAD: &[u8] = b"pipewright task token";

/// Whether `token` is sealed.
pub fn is_sealed(token: &str) -> bool {
    token.starts_with(SEALED_PREFIX)
}

/// One version of the key.
struct TokenKey {
    id: String,
    key: LessSafeKey,
}

impl TokenKey {
    /// The key derived from secret value `secret` (HMAC-SHA256 of a fixed label, so the same
    /// secret could never serve as another key of the stack by accident).
    fn derive(secret: &[u8]) -> Self {
        let mac = aws_lc_rs::hmac::sign(
            &aws_lc_rs::hmac::Key::new(aws_lc_rs::hmac::HMAC_SHA256, secret),
            b"pipewright task token key v1",
        );
        let bytes = mac.as_ref();
        let id = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes);
        let unbound = UnboundKey::new(&AES_256_GCM, bytes).expect("32 bytes make an AES-256 key");
        Self {
            id: pipewright_core::hex::encode(&id.as_ref()[..4]),
            key: LessSafeKey::new(unbound),
        }
    }

    fn seal(&self, token: &str) -> Result<String, String> {
        let mut nonce = [0u8; NONCE_LEN];
        SystemRandom::new()
            .fill(&mut nonce)
            .map_err(|_| "no randomness for a nonce".to_string())?;
        let mut data = token.as_bytes().to_vec();
        self.key
            .seal_in_place_append_tag(
                Nonce::assume_unique_for_key(nonce),
                Aad::from(AAD),
                &mut data,
            )
            .map_err(|_| "sealing a task token failed".to_string())?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!(
            "{SEALED_PREFIX}{}:{}",
            self.id,
            URL_SAFE_NO_PAD.encode(out)
        ))
    }

    fn open(&self, body: &str) -> Result<String, String> {
        let bytes = URL_SAFE_NO_PAD
            .decode(body)
            .map_err(|_| "a sealed task token is not base64url".to_string())?;
        if bytes.len() < NONCE_LEN {
            return Err("a sealed task token is too short".into());
        }
        let (nonce, sealed) = bytes.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce)
            .map_err(|_| "a sealed task token has no nonce".to_string())?;
        let mut data = sealed.to_vec();
        let plain = self
            .key
            .open_in_place(nonce, Aad::from(AAD), &mut data)
            .map_err(|_| {
                format!(
                    "a task token sealed with key {} does not open (altered, or sealed by \
                     another stack)",
                    self.id
                )
            })?;
        String::from_utf8(plain.to_vec()).map_err(|_| "a task token is not text".to_string())
    }
}

/// The current key and the previous one.
struct Keys {
    current: TokenKey,
    previous: Option<TokenKey>,
    read: Instant,
}

/// Seals and opens task tokens with the key in a Secrets Manager secret.
pub struct TokenSeal {
    source: KeySource,
    keys: Mutex<Option<std::sync::Arc<Keys>>>,
}

enum KeySource {
    Secret {
        client: aws_sdk_secretsmanager::Client,
        secret_id: String,
    },
    #[cfg(test)]
    Fixed(Vec<u8>, Option<Vec<u8>>),
}

impl std::fmt::Debug for TokenSeal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match &self.source {
            KeySource::Secret { secret_id, .. } => f
                .debug_struct("TokenSeal")
                .field("secret", secret_id)
                .finish(),
            #[cfg(test)]
            KeySource::Fixed(..) => f.write_str("TokenSeal(fixed)"),
        }
    }
}

impl TokenSeal {
    /// The seal of the process environment (`TASK_TOKEN_KEY_SECRET`), if it has one.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Option<Self> {
        let secret_id = std::env::var("TASK_TOKEN_KEY_SECRET")
            .ok()
            .filter(|v| !v.trim().is_empty())?;
        Some(Self {
            source: KeySource::Secret {
                client: aws_sdk_secretsmanager::Client::new(sdk),
                secret_id,
            },
            keys: Mutex::new(None),
        })
    }

    #[cfg(test)]
    fn fixed(current: &[u8], previous: Option<&[u8]>) -> Self {
        Self {
            source: KeySource::Fixed(current.to_vec(), previous.map(<[u8]>::to_vec)),
            keys: Mutex::new(None),
        }
    }

    async fn keys(&self) -> Result<std::sync::Arc<Keys>, String> {
        let mut cached = self.keys.lock().await;
        if let Some(keys) = cached.as_ref().filter(|k| k.read.elapsed() < KEYS_TTL) {
            return Ok(keys.clone());
        }
        let (current, previous) = match &self.source {
            KeySource::Secret { client, secret_id } => {
                let current = read_version(client, secret_id, "AWSCURRENT")
                    .await?
                    .ok_or_else(|| format!("the task token key {secret_id} has no value"))?;
                (
                    current,
                    read_version(client, secret_id, "AWSPREVIOUS").await?,
                )
            }
            #[cfg(test)]
            KeySource::Fixed(current, previous) => (current.clone(), previous.clone()),
        };
        if current.len() < 32 {
            return Err("the task token key is shorter than 32 bytes".into());
        }
        let keys = std::sync::Arc::new(Keys {
            current: TokenKey::derive(&current),
            previous: previous
                .filter(|p| p.len() >= 32)
                .map(|p| TokenKey::derive(&p)),
            read: Instant::now(),
        });
        *cached = Some(keys.clone());
        Ok(keys)
    }

    /// `token` sealed with the current key (a token already sealed stays as it is).
    pub async fn seal(&self, token: &str) -> Result<String, String> {
        if is_sealed(token) {
            return Ok(token.to_string());
        }
        self.keys().await?.current.seal(token)
    }

    /// The token `stored` stands for (a token stored plain reads as it is).
    pub async fn open(&self, stored: &str) -> Result<String, OpenError> {
        let Some(rest) = stored.strip_prefix(SEALED_PREFIX) else {
            return Ok(stored.to_string());
        };
        let (id, body) = rest
            .split_once(':')
            .ok_or_else(|| OpenError::Token("a sealed task token has no key id".into()))?;
        let mut keys = self.keys().await.map_err(OpenError::Key)?;
        let known = |keys: &Keys| {
            keys.current.id == id || keys.previous.as_ref().is_some_and(|p| p.id == id)
        };
        if !known(&keys) && keys.read.elapsed() > UNKNOWN_KEY_REFRESH {
            // Sealed after a rotation this function has not seen yet: read the key again (at
            // most every few seconds, however many such tokens come).
            *self.keys.lock().await = None;
            keys = self.keys().await.map_err(OpenError::Key)?;
        }
        let key = [Some(&keys.current), keys.previous.as_ref()]
            .into_iter()
            .flatten()
            .find(|k| k.id == id)
            .ok_or_else(|| {
                OpenError::Token(format!(
                    "a task token was sealed with key {id}, which is not the current or the \
                     previous task token key"
                ))
            })?;
        key.open(body).map_err(OpenError::Token)
    }
}

async fn read_version(
    client: &aws_sdk_secretsmanager::Client,
    secret_id: &str,
    stage: &str,
) -> Result<Option<Vec<u8>>, String> {
    match client
        .get_secret_value()
        .secret_id(secret_id)
        .version_stage(stage)
        .send()
        .await
    {
        Ok(out) => Ok(Some(
            out.secret_string()
                .map(|s| s.as_bytes().to_vec())
                .or_else(|| out.secret_binary().map(|b| b.as_ref().to_vec()))
                .unwrap_or_default(),
        )),
        Err(e) if stage != "AWSCURRENT" && e.code() == Some("ResourceNotFoundException") => {
            Ok(None)
        }
        Err(e) => Err(error_chain(
            &format!("secretsmanager:GetSecretValue {secret_id} ({stage})"),
            &e,
        )),
    }
}

/// Seal every task token member of `record` (a record as JSON), at any depth.
pub async fn seal_record(seal: &TokenSeal, record: &mut Value) -> Result<(), String> {
    for token in token_members(record) {
        *token = seal.seal(token).await?;
    }
    Ok(())
}

/// Open every task token member of `record`, at any depth. A token that does not open (sealed
/// with a key no longer kept, altered) stays sealed, so the record still reads and only
/// answering that task fails; a key that cannot be read now is an error (try again).
pub async fn open_record(seal: &TokenSeal, record: &mut Value) -> Result<(), String> {
    for token in token_members(record) {
        match seal.open(token).await {
            Ok(opened) => *token = opened,
            Err(OpenError::Key(e)) => return Err(e),
            Err(OpenError::Token(e)) => tracing::warn!(error = %e, "a task token stays sealed"),
        }
    }
    Ok(())
}

/// Why a sealed token did not open.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OpenError {
    /// The key could not be read (the same token may open later).
    Key(String),
    /// This token does not open with any key kept.
    Token(String),
}

impl std::fmt::Display for OpenError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Key(m) | Self::Token(m) => f.write_str(m),
        }
    }
}

/// The task token strings of `value`: every string member named in [`TOKEN_MEMBERS`].
fn token_members(value: &mut Value) -> Vec<&mut String> {
    let mut out = Vec::new();
    let mut stack = vec![value];
    while let Some(v) = stack.pop() {
        match v {
            Value::Object(map) => {
                for (k, member) in map.iter_mut() {
                    if TOKEN_MEMBERS.contains(&k.as_str()) {
                        if let Value::String(s) = member {
                            out.push(s);
                        }
                    } else {
                        stack.push(member);
                    }
                }
            }
            Value::Array(items) => stack.extend(items.iter_mut()),
            _ => {}
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef0123456789abcdef";
    const OTHER: &[u8] = b"fedcba9876543210fedcba9876543210fedcba9876543210";

    #[tokio::test]
    async fn tokens_seal_open_and_never_show() {
        let seal = TokenSeal::fixed(KEY, None);
        let token = "AQCEAAAAKgAAAAMAAAAAAAAAAcnQ5t0+/sfV+token";
        let sealed = seal.seal(token).await.unwrap();
        assert!(sealed.starts_with(SEALED_PREFIX), "{sealed}");
        assert!(!sealed.contains("token"), "{sealed}");
        assert_ne!(
            sealed,
            seal.seal(token).await.unwrap(),
            "a fresh nonce each time"
        );
        assert_eq!(seal.open(&sealed).await.unwrap(), token);
        assert_eq!(
            seal.seal(&sealed).await.unwrap(),
            sealed,
            "never sealed twice"
        );
        assert_eq!(
            seal.open(token).await.unwrap(),
            token,
            "a plain token reads as it is"
        );
        // Altered, or sealed by another key: refused, saying so.
        let mut altered = sealed.clone().into_bytes();
        let middle = altered.len() - 10;
        altered[middle] = if altered[middle] == b'A' { b'B' } else { b'A' };
        let altered = String::from_utf8(altered).unwrap();
        let err = seal.open(&altered).await.unwrap_err();
        assert!(
            matches!(&err, OpenError::Token(m) if m.contains("does not open")),
            "{err}"
        );
        let other = TokenSeal::fixed(OTHER, None);
        let err = other.open(&sealed).await.unwrap_err();
        assert!(
            err.to_string().contains("not the current or the previous"),
            "{err}"
        );
        // In a record it stays sealed: the record still reads.
        let mut record = json!({"taskToken": sealed.clone()});
        open_record(&other, &mut record).await.unwrap();
        assert_eq!(record["taskToken"], json!(sealed));
    }

    #[tokio::test]
    async fn after_a_rotation_the_previous_key_still_opens() {
        let before = TokenSeal::fixed(KEY, None);
        let sealed = before.seal("t-1").await.unwrap();
        let after = TokenSeal::fixed(OTHER, Some(KEY));
        assert_eq!(after.open(&sealed).await.unwrap(), "t-1");
        let fresh = after.seal("t-2").await.unwrap();
        assert_ne!(
            fresh.split(':').nth(2),
            sealed.split(':').nth(2),
            "another key id"
        );
        assert!(TokenSeal::fixed(b"short", None).seal("t").await.is_err());
    }

    #[tokio::test]
    async fn every_token_of_a_record_is_sealed_and_opened() {
        let seal = TokenSeal::fixed(KEY, None);
        let original = json!({
            "holder": "e1",
            "holderToken": "tok-holder",
            "waiting": [{"pipelineExecutionId": "e2", "taskToken": "tok-waiting"}],
            "superseded": [{"pipelineExecutionId": "e3", "taskToken": "tok-superseded", "by": "e2"}],
            "taskToken": null
        });
        let mut record = original.clone();
        seal_record(&seal, &mut record).await.unwrap();
        let text = record.to_string();
        assert!(!text.contains("tok-"), "{text}");
        assert_eq!(record["holder"], "e1");
        assert_eq!(record["taskToken"], Value::Null);
        open_record(&seal, &mut record).await.unwrap();
        assert_eq!(record, original);
    }
}
