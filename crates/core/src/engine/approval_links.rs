//! The signed approval links: what a link is bound to, the keys that sign it, and how a link is
//! checked.
//!
//! A link carries `<key id> "." base64url(claims JSON) "." base64url(HMAC-SHA256(key, domain ||
//! key id || "." || claims))`. The claims bind the pipeline, stage, action, pipeline execution,
//! the approval token, what the link does (approve, reject, or only show the approval: the
//! review link), the expiry (the action's start plus its timeout: the link dies with the action)
//! and the recipient (the topic the notice went to). The signature is checked in constant time
//! before the claims are even parsed. A link is single use because the decision completes the
//! action: every later use finds it no longer waiting.
//!
//! ## Keys and rotation
//!
//! The stack's link key is a Secrets Manager secret. Its current value signs; its current and
//! previous values (the `AWSCURRENT` and `AWSPREVIOUS` versions) verify, each found by the key
//! id the link names (a digest of the key: it tells nothing about it). Putting a new value into
//! the secret rotates the key: new links are signed with it within a minute, links already sent
//! keep working until they expire. Removing the `AWSPREVIOUS` label too revokes every link signed
//! before. Links made before key ids existed (`claims "." signature`, domain v1) are checked
//! against every key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::approvals::{ApprovalTarget, Decision, PendingApproval};

/// Domain separation for the signatures of links without a key id (the first format).
const LINK_DOMAIN_V1: &[u8] = b"pipewright-approval-link-v1\n";
/// Domain separation for the signatures of links with a key id.
const LINK_DOMAIN_V2: &[u8] = b"pipewright-approval-link-v2\n";
/// Domain separation for key ids.
const KEY_ID_DOMAIN: &[u8] = b"pipewright-approval-key-id\n";
/// The claims' format version.
const LINK_VERSION: u8 = 1;

/// A key that signs approval links, named by an id derived from it (the first 8 bytes of a
/// SHA-256 digest, in hex: public, in every link it signs).
#[derive(Clone, PartialEq, Eq)]
pub struct LinkKey {
    id: String,
    secret: Vec<u8>,
}

impl std::fmt::Debug for LinkKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LinkKey").field("id", &self.id).finish()
    }
}

impl LinkKey {
    /// The key with secret `secret`.
    pub fn new(secret: impl Into<Vec<u8>>) -> Self {
        let secret = secret.into();
        let mut digest = Sha256::new();
        digest.update(KEY_ID_DOMAIN);
        digest.update(&secret);
        let id = crate::hex::encode(&digest.finalize()[..8]);
        Self { id, secret }
    }

    /// The key's id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

/// The keys links are checked with: the current one (which also signs) and those before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKeys {
    /// Signs new links.
    pub current: LinkKey,
    /// Still verify the links they signed (the secret's previous version).
    pub previous: Vec<LinkKey>,
}

impl LinkKeys {
    /// One key, nothing before it.
    pub fn single(secret: impl Into<Vec<u8>>) -> Self {
        Self {
            current: LinkKey::new(secret),
            previous: Vec::new(),
        }
    }

    /// Every key, the current first.
    pub fn all(&self) -> impl Iterator<Item = &LinkKey> {
        std::iter::once(&self.current).chain(&self.previous)
    }

    /// The key named `id`.
    pub fn find(&self, id: &str) -> Option<&LinkKey> {
        self.all().find(|k| k.id == id)
    }
}

/// What a link does when the button on its page is pressed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum LinkPurpose {
    /// Approves.
    Approved,
    /// Rejects.
    Rejected,
    /// Shows the approval (`approvalReviewLink`, `consoleLink`) and decides nothing itself.
    Review,
}

impl LinkPurpose {
    /// The decision the link makes, if it makes one.
    pub fn decision(self) -> Option<Decision> {
        match self {
            Self::Approved => Some(Decision::Approved),
            Self::Rejected => Some(Decision::Rejected),
            Self::Review => None,
        }
    }
}

impl From<Decision> for LinkPurpose {
    fn from(d: Decision) -> Self {
        match d {
            Decision::Approved => Self::Approved,
            Decision::Rejected => Self::Rejected,
        }
    }
}

/// What a link is bound to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkClaims {
    /// Format version.
    #[serde(rename = "v")]
    pub version: u8,
    /// Pipeline.
    #[serde(rename = "p")]
    pub pipeline_name: String,
    /// Stage.
    #[serde(rename = "s")]
    pub stage_name: String,
    /// Action.
    #[serde(rename = "a")]
    pub action_name: String,
    /// Pipeline execution.
    #[serde(rename = "e")]
    pub pipeline_execution_id: String,
    /// The approval token (action execution id).
    #[serde(rename = "t")]
    pub token: String,
    /// What the link does.
    #[serde(rename = "d")]
    pub purpose: LinkPurpose,
    /// Expiry, seconds since the epoch.
    #[serde(rename = "x")]
    pub expires: i64,
    /// Who the link was sent to (the notice's topic).
    #[serde(rename = "r")]
    pub recipient: String,
}

impl LinkClaims {
    /// The claims of the link for `pending` that does `purpose`, sent to `recipient`.
    pub fn new(
        pending: &PendingApproval,
        purpose: impl Into<LinkPurpose>,
        recipient: &str,
    ) -> Self {
        Self {
            version: LINK_VERSION,
            pipeline_name: pending.ids.pipeline_name.clone(),
            stage_name: pending.stage_name.clone(),
            action_name: pending.action_name.clone(),
            pipeline_execution_id: pending.ids.pipeline_execution_id.clone(),
            token: pending.token.clone(),
            purpose: purpose.into(),
            expires: pending.expires.floor() as i64,
            recipient: recipient.to_string(),
        }
    }

    /// The same link, doing `purpose` instead (the review page's buttons).
    pub fn with_purpose(&self, purpose: impl Into<LinkPurpose>) -> Self {
        Self {
            purpose: purpose.into(),
            ..self.clone()
        }
    }

    /// The approval the link decides.
    pub fn target(&self) -> ApprovalTarget {
        ApprovalTarget {
            pipeline_name: self.pipeline_name.clone(),
            stage_name: self.stage_name.clone(),
            action_name: self.action_name.clone(),
            pipeline_execution_id: Some(self.pipeline_execution_id.clone()),
        }
    }

    /// Who a decision through this link is recorded as.
    pub fn decided_by(&self) -> String {
        format!("approval link sent to {}", self.recipient)
    }
}

/// Why a link was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// Not a link this service makes.
    #[error("this is not an approval link")]
    Malformed,
    /// The signature does not match: the link was altered or forged.
    #[error("this approval link is not valid: it was altered or was not issued by Pipewright")]
    Forged,
    /// The key the link names is not one of the stack's keys.
    #[error(
        "this approval link is not valid: the key that signed it was revoked, or the link was \
         not issued by Pipewright"
    )]
    UnknownKey,
    /// Past its expiry.
    #[error("this approval link expired at {0}")]
    Expired(String),
}

fn mac(domain: &[u8], secret: &[u8], parts: &[&str]) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(secret)
        .expect("HMAC-SHA256 takes a key of any length");
    mac.update(domain);
    for (i, part) in parts.iter().enumerate() {
        if i > 0 {
            mac.update(b".");
        }
        mac.update(part.as_bytes());
    }
    mac
}

/// The signed token of a link (what goes into its `t` query parameter), signed with `key`.
pub fn sign_link(key: &LinkKey, claims: &LinkClaims) -> String {
    let payload = B64.encode(serde_json::to_vec(claims).expect("claims serialize"));
    let signature = mac(LINK_DOMAIN_V2, &key.secret, &[&key.id, &payload]).finalize();
    format!(
        "{}.{payload}.{}",
        key.id,
        B64.encode(signature.into_bytes())
    )
}

/// The key id a link names (`None` for a link of the first format, or garbage).
pub fn link_key_id(link: &str) -> Option<&str> {
    let mut parts = link.trim().split('.');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(id), Some(_), Some(_), None) => Some(id),
        _ => None,
    }
}

/// Check a link's signature (in constant time) with the key it names, then its claims and
/// expiry.
pub fn verify_link(keys: &LinkKeys, link: &str, now: f64) -> Result<LinkClaims, LinkError> {
    let parts: Vec<&str> = link.trim().split('.').collect();
    let payload = match parts.as_slice() {
        [id, payload, signature] => {
            let key = keys.find(id).ok_or(LinkError::UnknownKey)?;
            let signature = B64.decode(signature).map_err(|_| LinkError::Malformed)?;
            mac(LINK_DOMAIN_V2, &key.secret, &[id, payload])
                .verify_slice(&signature)
                .map_err(|_| LinkError::Forged)?;
            *payload
        }
        [payload, signature] => {
            let signature = B64.decode(signature).map_err(|_| LinkError::Malformed)?;
            // Every key is tried, each in constant time; which one matched is not told apart.
            let matched = keys.all().fold(false, |found, key| {
                let ok = mac(LINK_DOMAIN_V1, &key.secret, &[payload])
                    .verify_slice(&signature)
                    .is_ok();
                found | ok
            });
            if !matched {
                return Err(LinkError::Forged);
            }
            *payload
        }
        _ => return Err(LinkError::Malformed),
    };
    let bytes = B64.decode(payload).map_err(|_| LinkError::Malformed)?;
    let claims: LinkClaims = serde_json::from_slice(&bytes).map_err(|_| LinkError::Malformed)?;
    if claims.version != LINK_VERSION {
        return Err(LinkError::Malformed);
    }
    if now >= claims.expires as f64 {
        return Err(LinkError::Expired(crate::events::format_time(
            claims.expires as f64,
        )));
    }
    Ok(claims)
}

/// `base` with `?t=<link>` (or `&t=`) appended.
pub fn link_url(base: &str, link: &str) -> String {
    let separator = if base.contains('?') { '&' } else { '?' };
    format!("{base}{separator}t={link}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::tests::pending;

    const KEY: &[u8] = b"0123456789abcdef0123456789abcdef";

    fn keys() -> LinkKeys {
        LinkKeys::single(KEY)
    }

    #[test]
    fn a_signed_link_verifies_and_carries_its_claims_and_key_id() {
        let claims = LinkClaims::new(&pending(), Decision::Approved, "topic");
        let link = sign_link(&keys().current, &claims);
        assert_eq!(link_key_id(&link), Some(keys().current.id()));
        assert_eq!(keys().current.id().len(), 16);
        assert_eq!(verify_link(&keys(), &link, 1_100.0), Ok(claims.clone()));
        assert_eq!(
            claims.target().pipeline_execution_id.as_deref(),
            Some("exec-1")
        );
        assert_eq!(claims.expires, 1_600);
    }

    #[test]
    fn any_flipped_character_is_refused() {
        let link = sign_link(
            &keys().current,
            &LinkClaims::new(&pending(), Decision::Rejected, "t"),
        );
        let bytes = link.as_bytes();
        for i in 0..bytes.len() {
            let mut changed = bytes.to_vec();
            changed[i] = if changed[i] == b'A' { b'B' } else { b'A' };
            let changed = String::from_utf8(changed).unwrap();
            if changed == link {
                continue;
            }
            let result = verify_link(&keys(), &changed, 1_100.0);
            assert!(
                matches!(
                    result,
                    Err(LinkError::Forged | LinkError::Malformed | LinkError::UnknownKey)
                ),
                "position {i}: {result:?}"
            );
        }
    }

    #[test]
    fn a_link_signed_with_another_key_is_refused() {
        let other = LinkKey::new(&b"another key"[..]);
        let link = sign_link(
            &other,
            &LinkClaims::new(&pending(), Decision::Approved, "t"),
        );
        assert_eq!(
            verify_link(&keys(), &link, 1_100.0),
            Err(LinkError::UnknownKey)
        );
        // Naming the stack's key id does not help: the signature is the other key's.
        let (_, rest) = link.split_once('.').unwrap();
        let renamed = format!("{}.{rest}", keys().current.id());
        assert_eq!(
            verify_link(&keys(), &renamed, 1_100.0),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn after_a_rotation_old_links_verify_until_the_previous_key_is_removed() {
        let old = LinkKey::new(KEY);
        let new = LinkKey::new(&b"the next key, also 32 bytes long"[..]);
        let claims = LinkClaims::new(&pending(), Decision::Approved, "t");
        let old_link = sign_link(&old, &claims);
        let rotated = LinkKeys {
            current: new.clone(),
            previous: vec![old],
        };
        assert_eq!(
            verify_link(&rotated, &old_link, 1_100.0),
            Ok(claims.clone())
        );
        let new_link = sign_link(&rotated.current, &claims);
        assert_ne!(link_key_id(&new_link), link_key_id(&old_link));
        assert_eq!(
            verify_link(&rotated, &new_link, 1_100.0),
            Ok(claims.clone())
        );
        // Revoke-all: the previous version's label removed.
        let revoked = LinkKeys {
            current: new,
            previous: vec![],
        };
        assert_eq!(
            verify_link(&revoked, &old_link, 1_100.0),
            Err(LinkError::UnknownKey)
        );
        assert_eq!(verify_link(&revoked, &new_link, 1_100.0), Ok(claims));
    }

    #[test]
    fn links_of_the_first_format_verify_against_any_key() {
        let claims = LinkClaims::new(&pending(), Decision::Approved, "t");
        let payload = B64.encode(serde_json::to_vec(&claims).unwrap());
        let signature = B64.encode(
            mac(LINK_DOMAIN_V1, KEY, &[&payload])
                .finalize()
                .into_bytes(),
        );
        let legacy = format!("{payload}.{signature}");
        assert_eq!(link_key_id(&legacy), None);
        let rotated = LinkKeys {
            current: LinkKey::new(&b"the next key, also 32 bytes long"[..]),
            previous: vec![LinkKey::new(KEY)],
        };
        assert_eq!(verify_link(&rotated, &legacy, 1_100.0), Ok(claims));
        assert_eq!(
            verify_link(&LinkKeys::single(&b"x"[..]), &legacy, 1_100.0),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn claims_changed_and_re_encoded_do_not_keep_the_signature() {
        let key = keys().current;
        let link = sign_link(&key, &LinkClaims::new(&pending(), Decision::Approved, "t"));
        let signature = link.rsplit_once('.').unwrap().1;
        let mut other = LinkClaims::new(&pending(), Decision::Approved, "t");
        other.pipeline_execution_id = "exec-2".into();
        let payload = B64.encode(serde_json::to_vec(&other).unwrap());
        assert_eq!(
            verify_link(
                &keys(),
                &format!("{}.{payload}.{signature}", key.id()),
                1_100.0
            ),
            Err(LinkError::Forged)
        );
        // Nor does turning a review link into an approve link.
        let review = LinkClaims::new(&pending(), LinkPurpose::Review, "t");
        let review_link = sign_link(&key, &review);
        let signature = review_link.rsplit_once('.').unwrap().1;
        let approve =
            B64.encode(serde_json::to_vec(&review.with_purpose(Decision::Approved)).unwrap());
        assert_eq!(
            verify_link(
                &keys(),
                &format!("{}.{approve}.{signature}", key.id()),
                1_100.0
            ),
            Err(LinkError::Forged)
        );
    }

    #[test]
    fn an_expired_link_is_refused_after_its_signature_is_checked() {
        let link = sign_link(
            &keys().current,
            &LinkClaims::new(&pending(), Decision::Approved, "t"),
        );
        assert!(matches!(
            verify_link(&keys(), &link, 1_600.0),
            Err(LinkError::Expired(t)) if t == "1970-01-01T00:26:40Z"
        ));
        assert_eq!(
            verify_link(&LinkKeys::single(&b"x"[..]), &link, 9e9),
            Err(LinkError::UnknownKey)
        );
    }

    #[test]
    fn garbage_is_malformed() {
        for bad in ["", "abc", "abc.", ".abc", "a.b.c", "%%%.%%%", "a.b.c.d"] {
            assert!(
                matches!(
                    verify_link(&keys(), bad, 0.0),
                    Err(LinkError::Malformed | LinkError::Forged | LinkError::UnknownKey)
                ),
                "{bad}"
            );
        }
    }

    #[test]
    fn a_key_never_shows_its_secret_in_debug_output() {
        let text = format!("{:?}", LinkKey::new(KEY));
        assert!(!text.contains("0123456789abcdef"), "{text}");
    }

    #[test]
    fn link_urls_keep_existing_queries() {
        assert_eq!(link_url("https://a/", "x.y"), "https://a/?t=x.y");
        assert_eq!(link_url("https://a/?k=1", "x.y"), "https://a/?k=1&t=x.y");
    }
}
