//! Pipewright access keys: the credentials of the key door.
//!
//! An [`AccessKey`] is an access key id (`PWK` + 17 characters, shaped like an AWS access key
//! id so every client accepts it), a secret, a name, a [`Grant`] and an optional expiry. The
//! [`KeyStore`] port keeps them (`pipewright-aws` keeps each in a Secrets Manager secret, so the
//! secret is encrypted at rest and readable by the api function alone); [`CachedKeys`] answers
//! the key door from memory for at most [`CACHE_TTL`], so a revoked key stops working within a
//! minute.
//!
//! Keys are made and changed only through the IAM door ([`KeyRequest`]): a key cannot mint keys.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::policy::{check_grant, Grant};
use crate::port_error::PortError;

/// How long a looked-up key (or its absence) is trusted before the store is asked again.
pub const CACHE_TTL: f64 = 60.0;

/// The most keys the cache remembers (unknown ids included); past it, it starts over.
const CACHE_CAPACITY: usize = 1024;

/// The prefix of every Pipewright access key id.
pub const KEY_ID_PREFIX: &str = "PWK";

/// How long a rotated key keeps working by default, so clients can switch (seconds).
pub const DEFAULT_ROTATION_GRACE: f64 = 3600.0;

/// The longest a key may live (`expiresInDays`).
pub const MAX_EXPIRES_IN_DAYS: u32 = 3650;

/// A key, with its secret.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AccessKey {
    /// `PWK...`, 20 characters.
    pub access_key_id: String,
    /// The secret access key (40 characters).
    pub secret_access_key: String,
    /// Who or what holds it.
    pub name: String,
    /// What it may do.
    pub grant: Grant,
    /// When it was made (seconds since the epoch).
    pub created: f64,
    /// When it stops working, if ever.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<f64>,
    /// Who made it (the IAM principal's ARN).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_by: Option<String>,
}

impl AccessKey {
    /// Whether the key works at `now`.
    pub fn is_valid_at(&self, now: f64) -> bool {
        self.expires.is_none_or(|e| now < e)
    }

    /// The key without its secret, as `keys list` shows it.
    pub fn summary(&self) -> serde_json::Value {
        let mut v = serde_json::json!({
            "accessKeyId": self.access_key_id,
            "name": self.name,
            "allow": self.grant.actions,
            "pipelines": self.grant.pipelines,
            "created": self.created,
        });
        if let Some(e) = self.expires {
            v["expires"] = e.into();
        }
        if let Some(by) = &self.created_by {
            v["createdBy"] = by.clone().into();
        }
        v
    }
}

/// Where keys are kept.
#[async_trait]
pub trait KeyStore: Send + Sync {
    /// The key `access_key_id`, if it exists.
    async fn get(&self, access_key_id: &str) -> Result<Option<AccessKey>, PortError>;
    /// Keep a new key (or replace one with the same id).
    async fn put(&self, key: &AccessKey) -> Result<(), PortError>;
    /// Every key.
    async fn list(&self) -> Result<Vec<AccessKey>, PortError>;
    /// Forget `access_key_id` for good; `false` when there was no such key.
    async fn delete(&self, access_key_id: &str) -> Result<bool, PortError>;
}

/// A cache in front of a [`KeyStore`], for the key door: a key or its absence is remembered for
/// [`CACHE_TTL`] seconds.
pub struct CachedKeys<S> {
    store: S,
    entries: Mutex<HashMap<String, (f64, Option<AccessKey>)>>,
}

impl<S: KeyStore> CachedKeys<S> {
    /// A cache over `store`.
    pub fn new(store: S) -> Self {
        Self {
            store,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The store behind the cache.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// The key `access_key_id` as known at `now` (at most [`CACHE_TTL`] old).
    pub async fn get(&self, access_key_id: &str, now: f64) -> Result<Option<AccessKey>, PortError> {
        if let Some((at, key)) = self.lock().get(access_key_id) {
            if now - at < CACHE_TTL && now >= *at {
                return Ok(key.clone());
            }
        }
        let key = self.store.get(access_key_id).await?;
        let mut entries = self.lock();
        if entries.len() >= CACHE_CAPACITY {
            entries.clear();
        }
        entries.insert(access_key_id.to_string(), (now, key.clone()));
        Ok(key)
    }

    /// Forget what the cache holds about `access_key_id` (this process changed it).
    pub fn forget(&self, access_key_id: &str) {
        self.lock().remove(access_key_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (f64, Option<AccessKey>)>> {
        self.entries.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// A new access key id from 17 random bytes: `PWK` + 17 characters of A–Z and 2–7.
pub fn new_access_key_id(random: &[u8; 17]) -> String {
    const ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut id = String::from(KEY_ID_PREFIX);
    id.extend(random.iter().map(|b| ALPHABET[usize::from(b % 32)] as char));
    id
}

/// A new secret from 30 random bytes: 40 characters of base64 (`+` and `/` included, as AWS's).
pub fn new_secret(random: &[u8; 30]) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(random)
}

/// Whether `id` has the shape of a Pipewright access key id.
pub fn is_key_id(id: &str) -> bool {
    id.len() == 20
        && id.starts_with(KEY_ID_PREFIX)
        && id[KEY_ID_PREFIX.len()..]
            .bytes()
            .all(|b| b.is_ascii_uppercase() || (b'2'..=b'7').contains(&b))
}

/// The key-management operations (IAM door only): `X-Amz-Target: Pipewright_20261207.<Op>`.
pub const TARGET_PREFIX: &str = "Pipewright_20261207.";

/// A key-management request, decoded.
#[derive(Debug, Clone, PartialEq)]
pub enum KeyRequest {
    /// Make a key.
    Create {
        /// Who or what will hold it.
        name: String,
        /// What it may do.
        grant: Grant,
        /// Days until it stops working.
        expires_in_days: Option<u32>,
    },
    /// Every key, without secrets.
    List,
    /// Revoke a key for good.
    Revoke {
        /// The key.
        access_key_id: String,
    },
    /// A new key with the same name and grant; the old one works for `grace_seconds` more.
    Rotate {
        /// The key to replace.
        access_key_id: String,
        /// How long the old key keeps working.
        grace_seconds: f64,
    },
}

/// Decode key-management operation `operation` with JSON `body`. `Err` names the field and the
/// reason.
pub fn decode_request(operation: &str, body: &serde_json::Value) -> Result<KeyRequest, String> {
    let text = |field: &str| -> Result<String, String> {
        body.get(field)
            .and_then(serde_json::Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| format!("{field}: required, a string"))
    };
    let strings = |field: &str| -> Result<Vec<String>, String> {
        match body.get(field) {
            None => Err(format!("{field}: required, a list of strings")),
            Some(v) => v
                .as_array()
                .and_then(|a| a.iter().map(|s| s.as_str().map(str::to_string)).collect())
                .ok_or_else(|| format!("{field}: must be a list of strings")),
        }
    };
    let key_id = || -> Result<String, String> {
        let id = text("accessKeyId")?;
        if is_key_id(&id) {
            Ok(id)
        } else {
            Err(format!(
                "accessKeyId: {id:?} is not a Pipewright access key id (PWK...)"
            ))
        }
    };
    match operation {
        "CreateAccessKey" => {
            let name = text("name")?;
            if name.is_empty()
                || name.len() > 64
                || !name
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.@+=".contains(c))
            {
                return Err(format!(
                    "name: {name:?} must be 1 to 64 letters, digits or -_.@+="
                ));
            }
            let pipelines = match body.get("pipelines") {
                None => vec!["*".to_string()],
                Some(_) => strings("pipelines")?,
            };
            let grant = Grant {
                actions: strings("allow")?,
                pipelines,
            };
            check_grant(&grant)?;
            let expires_in_days = match body.get("expiresInDays") {
                None | Some(serde_json::Value::Null) => None,
                Some(v) => match v.as_u64() {
                    Some(d) if (1..=u64::from(MAX_EXPIRES_IN_DAYS)).contains(&d) => {
                        Some(d as u32)
                    }
                    _ => {
                        return Err(format!(
                            "expiresInDays: must be a whole number of days from 1 to {MAX_EXPIRES_IN_DAYS}"
                        ))
                    }
                },
            };
            Ok(KeyRequest::Create {
                name,
                grant,
                expires_in_days,
            })
        }
        "ListAccessKeys" => Ok(KeyRequest::List),
        "RevokeAccessKey" => Ok(KeyRequest::Revoke {
            access_key_id: key_id()?,
        }),
        "RotateAccessKey" => {
            let grace_seconds = match body.get("oldKeyValidForSeconds") {
                None | Some(serde_json::Value::Null) => DEFAULT_ROTATION_GRACE,
                Some(v) => match v.as_u64() {
                    Some(s) if s <= 7 * 86_400 => s as f64,
                    _ => {
                        return Err(
                            "oldKeyValidForSeconds: must be a whole number of seconds from 0 to 604800 (7 days)"
                                .into(),
                        )
                    }
                },
            };
            Ok(KeyRequest::Rotate {
                access_key_id: key_id()?,
                grace_seconds,
            })
        }
        other => Err(format!("unknown key operation {other:?}")),
    }
}

/// Carry out a key-management request. `random` fills buffers with secure random bytes;
/// `caller` is the IAM principal. `Err` is `(exception name, message)`.
pub async fn handle_request(
    store: &dyn KeyStore,
    request: KeyRequest,
    now: f64,
    caller: &str,
    random: &mut (dyn FnMut(&mut [u8]) + Send),
) -> Result<serde_json::Value, (&'static str, String)> {
    let unavailable = |e: PortError| ("ServiceUnavailableException", format!("key store: {e}"));
    let mut mint = |name: String, grant: Grant, expires: Option<f64>| {
        let mut id = [0u8; 17];
        let mut secret = [0u8; 30];
        random(&mut id);
        random(&mut secret);
        AccessKey {
            access_key_id: new_access_key_id(&id),
            secret_access_key: new_secret(&secret),
            name,
            grant,
            created: now,
            expires,
            created_by: Some(caller.to_string()),
        }
    };
    let shown = |key: &AccessKey| {
        let mut v = key.summary();
        v["secretAccessKey"] = key.secret_access_key.clone().into();
        serde_json::json!({ "accessKey": v })
    };
    match request {
        KeyRequest::Create {
            name,
            grant,
            expires_in_days,
        } => {
            let expires = expires_in_days.map(|d| now + f64::from(d) * 86_400.0);
            let key = mint(name, grant, expires);
            store.put(&key).await.map_err(unavailable)?;
            Ok(shown(&key))
        }
        KeyRequest::List => {
            let mut keys = store.list().await.map_err(unavailable)?;
            keys.sort_by(|a, b| a.name.cmp(&b.name).then(a.created.total_cmp(&b.created)));
            Ok(serde_json::json!({
                "accessKeys": keys.iter().map(AccessKey::summary).collect::<Vec<_>>()
            }))
        }
        KeyRequest::Revoke { access_key_id } => {
            // Asked first: a store may report deleting what is gone as done.
            let exists = store
                .get(&access_key_id)
                .await
                .map_err(unavailable)?
                .is_some();
            if exists && store.delete(&access_key_id).await.map_err(unavailable)? {
                Ok(serde_json::json!({}))
            } else {
                Err(not_found(&access_key_id))
            }
        }
        KeyRequest::Rotate {
            access_key_id,
            grace_seconds,
        } => {
            let Some(mut old) = store.get(&access_key_id).await.map_err(unavailable)? else {
                return Err(not_found(&access_key_id));
            };
            // The new key lives as long as the old one was meant to, measured from now.
            let expires = old.expires.map(|e| now + (e - old.created).max(0.0));
            let key = mint(old.name.clone(), old.grant.clone(), expires);
            store.put(&key).await.map_err(unavailable)?;
            let until = now + grace_seconds;
            old.expires = Some(old.expires.map_or(until, |e| e.min(until)));
            store.put(&old).await.map_err(unavailable)?;
            let mut answer = shown(&key);
            answer["oldAccessKey"] = old.summary();
            Ok(answer)
        }
    }
}

fn not_found(access_key_id: &str) -> (&'static str, String) {
    (
        "ResourceNotFoundException",
        format!("accessKeyId: no access key {access_key_id}"),
    )
}

/// Keys in memory, for tests.
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use super::*;

    /// A [`KeyStore`] in a map; counts the `get`s it answered.
    #[derive(Default)]
    pub struct MemoryKeyStore {
        keys: Mutex<HashMap<String, AccessKey>>,
        /// How many times `get` was called.
        pub gets: std::sync::atomic::AtomicUsize,
    }

    #[async_trait]
    impl KeyStore for MemoryKeyStore {
        async fn get(&self, id: &str) -> Result<Option<AccessKey>, PortError> {
            self.gets.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(self.keys.lock().unwrap().get(id).cloned())
        }
        async fn put(&self, key: &AccessKey) -> Result<(), PortError> {
            self.keys
                .lock()
                .unwrap()
                .insert(key.access_key_id.clone(), key.clone());
            Ok(())
        }
        async fn list(&self) -> Result<Vec<AccessKey>, PortError> {
            Ok(self.keys.lock().unwrap().values().cloned().collect())
        }
        async fn delete(&self, id: &str) -> Result<bool, PortError> {
            Ok(self.keys.lock().unwrap().remove(id).is_some())
        }
    }
}
