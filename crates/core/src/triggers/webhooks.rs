//! Git host webhooks: which host sent a delivery, whether its signature holds, and what git
//! change it reports. Pure: the `webhook` function reads the secret and starts executions.
//! [`dispatch()`](crate::engine::webhooks::dispatch()) decides a whole delivery over the ports it is given.
//!
//! | host | event header | delivery id | authentication |
//! |---|---|---|---|
//! | GitHub | `X-GitHub-Event`: `push`, `pull_request`, `ping` | `X-GitHub-Delivery` | `X-Hub-Signature-256: sha256=<hex HMAC-SHA256(secret, raw body)>` |
//! | GitLab | `X-Gitlab-Event`: `Push Hook`, `Tag Push Hook`, `Merge Request Hook` | `X-Gitlab-Event-UUID` | `X-Gitlab-Token: <secret>` |
//! | Bitbucket Cloud | `X-Event-Key`: `repo:push`, `pullrequest:created` / `updated` / `fulfilled` / `rejected` | `X-Request-UUID` | `X-Hub-Signature: sha256=<hex HMAC-SHA256(secret, raw body)>` |
//!
//! Signatures and tokens are compared in constant time (`Mac::verify_slice`; a GitLab token is
//! compared through an HMAC of both sides, so neither its content nor its length leaks). A
//! signature of the wrong length (truncated) never verifies. GitLab's token does not cover the
//! body: a GitLab delivery altered in transit is caught by TLS, not here. A delivery without an id gets the
//! SHA-256 of its body as its id, so a redelivery of the same body is still recognised.

use std::collections::BTreeMap;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::{Digest, Sha256};

use crate::declaration::GitPullRequestEventType;

use super::filters::{ChangedFiles, GitChange, GitPullRequest, GitPush, GitRef};

/// Request headers, names in lower case (as Function URLs deliver them).
pub type Headers = BTreeMap<String, String>;

/// GitHub lists at most this many commits in the push payloads it documents; a push listing
/// this many may have had more, so its file list is treated as incomplete.
pub const GITHUB_COMMIT_LIMIT: usize = 20;

/// The git host a delivery came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitProvider {
    /// GitHub (github.com or GitHub Enterprise Server).
    GitHub,
    /// GitLab.
    GitLab,
    /// Bitbucket Cloud.
    Bitbucket,
}

impl GitProvider {
    /// `GitHub`, `GitLab`, `Bitbucket`.
    pub fn as_str(self) -> &'static str {
        match self {
            GitProvider::GitHub => "GitHub",
            GitProvider::GitLab => "GitLab",
            GitProvider::Bitbucket => "Bitbucket",
        }
    }

    /// The header carrying the signature (GitHub, Bitbucket) or the token (GitLab).
    pub fn signature_header(self) -> &'static str {
        match self {
            GitProvider::GitHub => "X-Hub-Signature-256",
            GitProvider::GitLab => "X-Gitlab-Token",
            GitProvider::Bitbucket => "X-Hub-Signature",
        }
    }
}

/// One delivery: who sent it, what event, its id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The git host.
    pub provider: GitProvider,
    /// The event header's value (`push`, `Push Hook`, `repo:push`, ...).
    pub event: String,
    /// The delivery id the host sent, or `sha256-<hex of the body>`.
    pub delivery_id: String,
    /// The SHA-256 of the signed body, hex: what de-duplicates deliveries ([`idempotency_key`]),
    /// so a captured body re-sent under a new delivery id starts nothing.
    pub body_sha256: String,
}

fn header<'h>(headers: &'h Headers, name: &str) -> Option<&'h str> {
    headers
        .get(&name.to_ascii_lowercase())
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// Which host sent this request, from its event header; `None` when it is no webhook delivery
/// of GitHub, GitLab or Bitbucket.
pub fn identify(headers: &Headers, body: &[u8]) -> Option<Delivery> {
    let (provider, event, id) = if let Some(event) = header(headers, "X-GitHub-Event") {
        (
            GitProvider::GitHub,
            event,
            header(headers, "X-GitHub-Delivery"),
        )
    } else if let Some(event) = header(headers, "X-Gitlab-Event") {
        (
            GitProvider::GitLab,
            event,
            header(headers, "X-Gitlab-Event-UUID")
                .or_else(|| header(headers, "X-Gitlab-Webhook-UUID")),
        )
    } else if let Some(event) = header(headers, "X-Event-Key") {
        (
            GitProvider::Bitbucket,
            event,
            header(headers, "X-Request-UUID"),
        )
    } else {
        return None;
    };
    let body_sha256 = crate::hex::encode(&Sha256::digest(body));
    Some(Delivery {
        provider,
        event: event.to_string(),
        delivery_id: id
            .map(str::to_string)
            .unwrap_or_else(|| format!("sha256-{body_sha256}")),
        body_sha256,
    })
}

/// Why a delivery's signature was refused. The messages never show a signature or a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signature (or token) header.
    #[error("the request has no {0} header")]
    Missing(&'static str),
    /// The header is not `sha256=` and 64 hex digits.
    #[error("the {0} header is not `sha256=` followed by 64 hex digits")]
    Malformed(&'static str),
    /// It does not match: another secret, or the body was changed after signing.
    #[error("the {0} header does not match: wrong secret, or the body was changed after signing")]
    Mismatch(&'static str),
}

type HmacSha256 = Hmac<Sha256>;

fn hmac(key: &[u8]) -> HmacSha256 {
    <HmacSha256 as KeyInit>::new_from_slice(key).expect("HMAC takes keys of any length")
}

/// `sha256=<hex HMAC-SHA256(secret, body)>`: the signature GitHub (`X-Hub-Signature-256`) and
/// Bitbucket (`X-Hub-Signature`) send.
pub fn sign(secret: &[u8], body: &[u8]) -> String {
    let mut mac = hmac(secret);
    mac.update(body);
    format!(
        "sha256={}",
        crate::hex::encode(&mac.finalize().into_bytes())
    )
}

/// Check the delivery's signature (GitHub, Bitbucket) or token (GitLab) against `secret`, in
/// constant time. An empty secret verifies nothing.
pub fn verify_signature(
    provider: GitProvider,
    headers: &Headers,
    body: &[u8],
    secret: &[u8],
) -> Result<(), SignatureError> {
    let name = provider.signature_header();
    let value = header(headers, name).ok_or(SignatureError::Missing(name))?;
    if secret.is_empty() {
        return Err(SignatureError::Mismatch(name));
    }
    match provider {
        GitProvider::GitLab => {
            // Compare HMACs of both under one key: fixed length, constant time.
            const DOMAIN: &[u8] = b"pipewright gitlab token";
            let mut given = hmac(DOMAIN);
            given.update(value.as_bytes());
            let mut expected = hmac(DOMAIN);
            expected.update(secret);
            given
                .verify_slice(&expected.finalize().into_bytes())
                .map_err(|_| SignatureError::Mismatch(name))
        }
        GitProvider::GitHub | GitProvider::Bitbucket => {
            let digest = value
                .strip_prefix("sha256=")
                .filter(|h| h.len() == 64)
                .and_then(crate::hex::decode)
                .ok_or(SignatureError::Malformed(name))?;
            let mut mac = hmac(secret);
            mac.update(body);
            mac.verify_slice(&digest)
                .map_err(|_| SignatureError::Mismatch(name))
        }
    }
}

/// What a verified delivery asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookEvent {
    /// A ping (GitHub sends one when the webhook is created): answer 200.
    Ping,
    /// An event that starts nothing (an issue comment, a label on a pull request, ...); why.
    Ignored(String),
    /// Git changes (one, or several for a Bitbucket push of several refs).
    Changes(Vec<GitChange>),
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn required(v: &Value, pointer: &str) -> Result<String, String> {
    text(v, pointer).ok_or_else(|| {
        format!(
            "the payload has no `{}`",
            pointer.trim_start_matches('/').replace('/', ".")
        )
    })
}

fn is_zero_sha(sha: &str) -> bool {
    !sha.is_empty() && sha.bytes().all(|b| b == b'0')
}

/// The union of `added`, `modified` and `removed` over `commits`, in first-seen order; `None`
/// when a commit lacks those lists.
fn commit_files(commits: &[Value]) -> Option<Vec<String>> {
    let mut files: Vec<String> = Vec::new();
    for commit in commits {
        for list in ["added", "modified", "removed"] {
            for path in commit.get(list)?.as_array()? {
                let path = path.as_str()?.to_string();
                if !files.contains(&path) {
                    files.push(path);
                }
            }
        }
    }
    Some(files)
}

/// Read a verified delivery's body.
pub fn parse_event(delivery: &Delivery, body: &[u8]) -> Result<WebhookEvent, String> {
    let event = delivery.event.as_str();
    let ignored = || {
        Ok(WebhookEvent::Ignored(format!(
            "{} event `{event}` starts nothing",
            delivery.provider.as_str()
        )))
    };
    match (delivery.provider, event) {
        (GitProvider::GitHub, "ping") => return Ok(WebhookEvent::Ping),
        (GitProvider::GitHub, "push" | "pull_request")
        | (GitProvider::GitLab, "Push Hook" | "Tag Push Hook" | "Merge Request Hook")
        | (GitProvider::Bitbucket, "repo:push") => {}
        (GitProvider::Bitbucket, e) if e.starts_with("pullrequest:") => {}
        _ => return ignored(),
    }
    let payload: Value =
        serde_json::from_slice(body).map_err(|e| format!("the body is not JSON: {e}"))?;
    match (delivery.provider, event) {
        (GitProvider::GitHub, "push") => github_push(&payload),
        (GitProvider::GitHub, _) => github_pull_request(&payload),
        (GitProvider::GitLab, "Merge Request Hook") => gitlab_merge_request(&payload),
        (GitProvider::GitLab, _) => gitlab_push(&payload),
        (GitProvider::Bitbucket, "repo:push") => bitbucket_push(&payload),
        (GitProvider::Bitbucket, e) => bitbucket_pull_request(e, &payload),
    }
}

fn reference(full: &str) -> Result<GitRef, WebhookEvent> {
    GitRef::parse(full)
        .ok_or_else(|| WebhookEvent::Ignored(format!("`{full}` is neither a branch nor a tag")))
}

fn github_push(p: &Value) -> Result<WebhookEvent, String> {
    let reference = match reference(&required(p, "/ref")?) {
        Ok(r) => r,
        Err(ignored) => return Ok(ignored),
    };
    let after = text(p, "/after").unwrap_or_default();
    let deleted = p.get("deleted").and_then(Value::as_bool).unwrap_or(false) || is_zero_sha(&after);
    let commits = p
        .get("commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let files = if deleted {
        ChangedFiles::Known(Vec::new())
    } else if commits.is_empty() {
        ChangedFiles::Unknown(
            "the payload lists no commits (a new branch or tag, or a forced push)".into(),
        )
    } else if commits.len() >= GITHUB_COMMIT_LIMIT {
        ChangedFiles::Unknown(format!(
            "GitHub lists at most {GITHUB_COMMIT_LIMIT} commits of a push and this one lists {}",
            commits.len()
        ))
    } else {
        match commit_files(&commits) {
            Some(files) => ChangedFiles::Known(files),
            None => ChangedFiles::Unknown("a commit of the payload lists no files".into()),
        }
    };
    Ok(WebhookEvent::Changes(vec![GitChange::Push(GitPush {
        repository: required(p, "/repository/full_name")?,
        reference,
        commit_id: if deleted { String::new() } else { after },
        commit_message: text(p, "/head_commit/message"),
        deleted,
        files,
    })]))
}

/// The head repository of a pull request into `base` when it is another one (a fork), from the
/// payload's `head` (the head repository object) and `base` (its name): a head that names another
/// repository, or none (GitHub reports a deleted fork as `null`), is a fork; a payload that does
/// not describe the head repository at all says nothing (the same repository).
fn fork(head: Option<&Value>, base: Option<String>) -> Option<String> {
    let head = head?;
    match (head.get("full_name").and_then(Value::as_str), base) {
        (Some(head), Some(base)) if head.eq_ignore_ascii_case(&base) => None,
        (Some(head), _) => Some(head.to_string()),
        (None, _) => Some("a repository the payload does not name (a deleted fork)".into()),
    }
}

fn github_pull_request(p: &Value) -> Result<WebhookEvent, String> {
    let action = required(p, "/action")?;
    let event = match action.as_str() {
        "opened" | "reopened" => GitPullRequestEventType::Open,
        "synchronize" => GitPullRequestEventType::Updated,
        "closed" => GitPullRequestEventType::Closed,
        other => {
            return Ok(WebhookEvent::Ignored(format!(
                "GitHub pull_request action `{other}` starts nothing (opened, reopened, synchronize and closed do)"
            )))
        }
    };
    Ok(WebhookEvent::Changes(vec![GitChange::PullRequest(
        GitPullRequest {
            repository: required(p, "/repository/full_name")?,
            event,
            number: p
                .pointer("/pull_request/number")
                .or_else(|| p.get("number"))
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            source_branch: required(p, "/pull_request/head/ref")?,
            destination_branch: required(p, "/pull_request/base/ref")?,
            commit_id: required(p, "/pull_request/head/sha")?,
            title: text(p, "/pull_request/title"),
            files: ChangedFiles::Unknown("pull request payloads list no files".into()),
            from_fork: fork(
                p.pointer("/pull_request/head/repo"),
                text(p, "/pull_request/base/repo/full_name")
                    .or_else(|| text(p, "/repository/full_name")),
            ),
        },
    )]))
}

fn gitlab_push(p: &Value) -> Result<WebhookEvent, String> {
    let reference = match reference(&required(p, "/ref")?) {
        Ok(r) => r,
        Err(ignored) => return Ok(ignored),
    };
    let after = text(p, "/after").unwrap_or_default();
    let deleted = is_zero_sha(&after);
    let commit_id = if deleted {
        String::new()
    } else {
        text(p, "/checkout_sha").unwrap_or_else(|| after.clone())
    };
    let commits = p
        .get("commits")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let total = p
        .get("total_commits_count")
        .and_then(Value::as_u64)
        .map_or(commits.len(), |n| n as usize);
    let files = if deleted {
        ChangedFiles::Known(Vec::new())
    } else if commits.is_empty() {
        ChangedFiles::Unknown(
            "the payload lists no commits (a new branch or tag, or a forced push)".into(),
        )
    } else if total > commits.len() {
        ChangedFiles::Unknown(format!(
            "GitLab lists {} of the push's {total} commits",
            commits.len()
        ))
    } else {
        match commit_files(&commits) {
            Some(files) => ChangedFiles::Known(files),
            None => ChangedFiles::Unknown("a commit of the payload lists no files".into()),
        }
    };
    let commit_message = commits
        .iter()
        .find(|c| c.get("id").and_then(Value::as_str) == Some(commit_id.as_str()))
        .and_then(|c| text(c, "/message"));
    Ok(WebhookEvent::Changes(vec![GitChange::Push(GitPush {
        repository: required(p, "/project/path_with_namespace")?,
        reference,
        commit_id,
        commit_message,
        deleted,
        files,
    })]))
}

fn gitlab_merge_request(p: &Value) -> Result<WebhookEvent, String> {
    let action = text(p, "/object_attributes/action").unwrap_or_default();
    let event = match action.as_str() {
        "open" | "reopen" => GitPullRequestEventType::Open,
        // `update` also reports title and label changes; `oldrev` is there only when commits
        // were pushed.
        "update" if p.pointer("/object_attributes/oldrev").is_some() => {
            GitPullRequestEventType::Updated
        }
        "close" | "merge" => GitPullRequestEventType::Closed,
        other => {
            return Ok(WebhookEvent::Ignored(format!(
                "GitLab merge request action `{other}` starts nothing (open, reopen, update with new commits, close and merge do)"
            )))
        }
    };
    Ok(WebhookEvent::Changes(vec![GitChange::PullRequest(
        GitPullRequest {
            repository: required(p, "/project/path_with_namespace")?,
            event,
            number: p
                .pointer("/object_attributes/iid")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            source_branch: required(p, "/object_attributes/source_branch")?,
            destination_branch: required(p, "/object_attributes/target_branch")?,
            commit_id: required(p, "/object_attributes/last_commit/id")?,
            title: text(p, "/object_attributes/title"),
            files: ChangedFiles::Unknown("merge request payloads list no files".into()),
            from_fork: match (
                p.pointer("/object_attributes/source_project_id")
                    .and_then(Value::as_u64),
                p.pointer("/object_attributes/target_project_id")
                    .and_then(Value::as_u64),
            ) {
                (Some(source), Some(target)) if source != target => Some(
                    text(p, "/object_attributes/source/path_with_namespace")
                        .unwrap_or_else(|| format!("project {source}")),
                ),
                _ => None,
            },
        },
    )]))
}

fn bitbucket_ref(kind: Option<String>, name: Option<String>) -> Option<GitRef> {
    match (kind.as_deref(), name) {
        (Some("branch" | "named_branch"), Some(n)) => Some(GitRef::Branch(n)),
        (Some("tag"), Some(n)) => Some(GitRef::Tag(n)),
        _ => None,
    }
}

fn bitbucket_push(p: &Value) -> Result<WebhookEvent, String> {
    let repository = required(p, "/repository/full_name")?;
    let changes = p
        .pointer("/push/changes")
        .and_then(Value::as_array)
        .ok_or("the payload has no `push.changes`")?;
    let mut out = Vec::new();
    for change in changes {
        let new = change.get("new").filter(|n| !n.is_null());
        let (side, deleted) = match new {
            Some(n) => (n, false),
            None => match change.get("old").filter(|o| !o.is_null()) {
                Some(o) => (o, true),
                None => continue,
            },
        };
        let Some(reference) = bitbucket_ref(text(side, "/type"), text(side, "/name")) else {
            continue;
        };
        out.push(GitChange::Push(GitPush {
            repository: repository.clone(),
            reference,
            commit_id: if deleted {
                String::new()
            } else {
                text(side, "/target/hash").unwrap_or_default()
            },
            commit_message: text(side, "/target/message"),
            deleted,
            files: if deleted {
                ChangedFiles::Known(Vec::new())
            } else {
                ChangedFiles::Unknown("Bitbucket push payloads list no files".into())
            },
        }));
    }
    if out.is_empty() {
        return Ok(WebhookEvent::Ignored(
            "the push changes no branch or tag".into(),
        ));
    }
    Ok(WebhookEvent::Changes(out))
}

fn bitbucket_pull_request(event: &str, p: &Value) -> Result<WebhookEvent, String> {
    let kind = match event {
        "pullrequest:created" => GitPullRequestEventType::Open,
        "pullrequest:updated" => GitPullRequestEventType::Updated,
        "pullrequest:fulfilled" | "pullrequest:rejected" => GitPullRequestEventType::Closed,
        other => {
            return Ok(WebhookEvent::Ignored(format!(
                "Bitbucket event `{other}` starts nothing (pullrequest:created, updated, fulfilled and rejected do)"
            )))
        }
    };
    Ok(WebhookEvent::Changes(vec![GitChange::PullRequest(
        GitPullRequest {
            repository: required(p, "/repository/full_name")?,
            event: kind,
            number: p
                .pointer("/pullrequest/id")
                .and_then(Value::as_u64)
                .unwrap_or_default(),
            source_branch: required(p, "/pullrequest/source/branch/name")?,
            destination_branch: required(p, "/pullrequest/destination/branch/name")?,
            commit_id: required(p, "/pullrequest/source/commit/hash")?,
            title: text(p, "/pullrequest/title"),
            files: ChangedFiles::Unknown("pull request payloads list no files".into()),
            from_fork: fork(
                p.pointer("/pullrequest/source/repository"),
                text(p, "/pullrequest/destination/repository/full_name")
                    .or_else(|| text(p, "/repository/full_name")),
            ),
        },
    )]))
}

/// The text of `ExecutionTrigger.triggerDetail` for a change from a delivery.
pub fn trigger_detail(delivery: &Delivery, change: &GitChange) -> String {
    let commit = change.commit_id();
    let short = commit.get(..12).unwrap_or(commit);
    format!(
        "{} {} at {short} (delivery {})",
        delivery.provider.as_str(),
        change,
        delivery.delivery_id
    )
}

/// The idempotency key of starting `pipeline` for change `index` of a delivery: the same
/// delivery, redelivered, sent concurrently or replayed under another delivery id, starts the
/// pipeline once.
pub fn idempotency_key(delivery: &Delivery, pipeline: &str, index: usize) -> String {
    let provider = delivery.provider.as_str().to_ascii_lowercase();
    // GitHub and Bitbucket sign the body, not the delivery id: a replayed body is the same
    // change, whatever id it comes with (a host's own redelivery too). GitLab signs nothing (its
    // token is static) and its push bodies carry no time, so a tag deleted and pushed again at
    // the same commit sends the same body: there the delivery id tells deliveries apart.
    let body = if delivery.body_sha256.is_empty() || delivery.provider == GitProvider::GitLab {
        delivery.delivery_id.clone()
    } else {
        format!("sha256-{}", delivery.body_sha256)
    };
    match index {
        0 => format!("webhook/{provider}/{body}/{pipeline}"),
        i => format!("webhook/{provider}/{body}/{pipeline}/{i}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const SECRET: &[u8] = b"It's a Secret to Everybody";

    fn headers(pairs: &[(&str, &str)]) -> Headers {
        pairs
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.to_string()))
            .collect()
    }

    /// The body of a sample Function URL event in `events/`.
    fn sample_body(name: &str) -> String {
        let text = match name {
            "github-push" => include_str!("../../../../events/webhook-github-push.json"),
            "gitlab-push" => include_str!("../../../../events/webhook-gitlab-push.json"),
            "bitbucket-push" => include_str!("../../../../events/webhook-bitbucket-push.json"),
            _ => unreachable!(),
        };
        let event: Value = serde_json::from_str(text).unwrap();
        event["body"].as_str().unwrap().to_string()
    }

    #[test]
    fn githubs_documented_signature() {
        // GitHub's documentation: secret "It's a Secret to Everybody", payload "Hello, World!".
        assert_eq!(
            sign(SECRET, b"Hello, World!"),
            "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17"
        );
    }

    #[test]
    fn signatures_are_checked() {
        let body = br#"{"zen":"Keep it logically awesome."}"#;
        let good = sign(SECRET, body);
        let gh = |sig: &str| headers(&[("X-GitHub-Event", "ping"), ("X-Hub-Signature-256", sig)]);
        let bb = |sig: &str| headers(&[("X-Event-Key", "repo:push"), ("X-Hub-Signature", sig)]);
        let gl =
            |token: &str| headers(&[("X-Gitlab-Event", "Push Hook"), ("X-Gitlab-Token", token)]);
        use GitProvider::*;
        use SignatureError::*;
        let truncated = &good[..good.len() - 2];
        let upper = good.to_ascii_uppercase().replace("SHA256=", "sha256=");
        type Row<'a> = (
            GitProvider,
            Headers,
            &'a [u8],
            &'a [u8],
            Result<(), SignatureError>,
        );
        let table: Vec<Row> = vec![
            (GitHub, gh(&good), body, SECRET, Ok(())),
            (GitHub, gh(&upper), body, SECRET, Ok(())),
            (
                GitHub,
                headers(&[("X-GitHub-Event", "ping")]),
                body,
                SECRET,
                Err(Missing("X-Hub-Signature-256")),
            ),
            // GitHub's SHA-1 header alone is not enough.
            (
                GitHub,
                headers(&[("X-GitHub-Event", "ping"), ("X-Hub-Signature", &good)]),
                body,
                SECRET,
                Err(Missing("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                gh(truncated),
                body,
                SECRET,
                Err(Malformed("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                gh(&good[7..]),
                body,
                SECRET,
                Err(Malformed("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                gh("sha1=0123"),
                body,
                SECRET,
                Err(Malformed("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                gh(&good),
                br#"{"zen":"Keep it logically awesome!"}"#,
                SECRET,
                Err(Mismatch("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                gh(&good),
                body,
                b"another secret",
                Err(Mismatch("X-Hub-Signature-256")),
            ),
            (
                GitHub,
                gh(&good),
                body,
                b"",
                Err(Mismatch("X-Hub-Signature-256")),
            ),
            (Bitbucket, bb(&good), body, SECRET, Ok(())),
            (
                Bitbucket,
                bb(&good),
                b"{}",
                SECRET,
                Err(Mismatch("X-Hub-Signature")),
            ),
            (
                Bitbucket,
                headers(&[("X-Event-Key", "repo:push")]),
                body,
                SECRET,
                Err(Missing("X-Hub-Signature")),
            ),
            (
                GitLab,
                gl("It's a Secret to Everybody"),
                body,
                SECRET,
                Ok(()),
            ),
            (
                GitLab,
                gl("It's a Secret to Everybod"),
                body,
                SECRET,
                Err(Mismatch("X-Gitlab-Token")),
            ),
            (
                GitLab,
                gl("It's a Secret to Everybody!"),
                body,
                SECRET,
                Err(Mismatch("X-Gitlab-Token")),
            ),
            (
                GitLab,
                headers(&[("X-Gitlab-Event", "Push Hook")]),
                body,
                SECRET,
                Err(Missing("X-Gitlab-Token")),
            ),
        ];
        for (i, (provider, h, body, secret, expected)) in table.into_iter().enumerate() {
            assert_eq!(
                verify_signature(provider, &h, body, secret),
                expected,
                "row {i}"
            );
        }
        // The messages never show the signature.
        let err = verify_signature(GitHub, &gh(truncated), body, SECRET).unwrap_err();
        assert!(!err.to_string().contains(truncated));
    }

    #[test]
    fn deliveries_are_identified_by_their_event_header() {
        let d = identify(
            &headers(&[
                ("X-GitHub-Event", "push"),
                ("X-GitHub-Delivery", "72d3162e"),
            ]),
            b"{}",
        )
        .unwrap();
        assert_eq!(
            (d.provider, d.event.as_str(), d.delivery_id.as_str()),
            (GitProvider::GitHub, "push", "72d3162e")
        );
        let d = identify(
            &headers(&[
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Event-UUID", "u-1"),
            ]),
            b"{}",
        )
        .unwrap();
        assert_eq!(
            (d.provider, d.delivery_id.as_str()),
            (GitProvider::GitLab, "u-1")
        );
        let d = identify(
            &headers(&[("X-Event-Key", "repo:push"), ("X-Request-UUID", "r-1")]),
            b"{}",
        )
        .unwrap();
        assert_eq!(
            (d.provider, d.delivery_id.as_str()),
            (GitProvider::Bitbucket, "r-1")
        );
        // Without an id: the body's digest, the same for the same body.
        let a = identify(&headers(&[("X-Gitlab-Event", "Push Hook")]), b"{}").unwrap();
        let b = identify(&headers(&[("X-Gitlab-Event", "Push Hook")]), b"{}").unwrap();
        assert!(a.delivery_id.starts_with("sha256-") && a.delivery_id == b.delivery_id);
        assert_eq!(
            identify(&headers(&[("Content-Type", "application/json")]), b"{}"),
            None
        );
    }

    fn delivery(provider: GitProvider, event: &str) -> Delivery {
        Delivery {
            provider,
            event: event.into(),
            delivery_id: "d-1".into(),
            body_sha256: String::new(),
        }
    }

    fn single(event: WebhookEvent) -> GitChange {
        match event {
            WebhookEvent::Changes(mut c) if c.len() == 1 => c.remove(0),
            other => panic!("not one change: {other:?}"),
        }
    }

    #[test]
    fn the_sample_pushes_read_as_pushes() {
        let gh = single(
            parse_event(
                &delivery(GitProvider::GitHub, "push"),
                sample_body("github-push").as_bytes(),
            )
            .unwrap(),
        );
        let GitChange::Push(p) = gh else { panic!() };
        assert_eq!(p.repository, "pipewright/app");
        assert_eq!(p.reference, GitRef::Branch("main".into()));
        assert_eq!(p.commit_id, "4b2c2f0a8e3d1c5b7a9f6e4d2c0b8a6f4e2d0c9b");
        assert_eq!(
            p.files,
            ChangedFiles::Known(vec![
                "src/lib.rs".into(),
                "README.md".into(),
                "docs/old.md".into()
            ])
        );
        assert!(!p.deleted);

        let gl = single(
            parse_event(
                &delivery(GitProvider::GitLab, "Push Hook"),
                sample_body("gitlab-push").as_bytes(),
            )
            .unwrap(),
        );
        let GitChange::Push(p) = gl else { panic!() };
        assert_eq!(p.repository, "pipewright/app");
        assert_eq!(p.reference, GitRef::Branch("main".into()));
        assert_eq!(p.commit_id, "da1560886d4f094c3e6c9ef40349f7d38b5d27d7");
        assert_eq!(
            p.files,
            ChangedFiles::Known(vec!["src/lib.rs".into(), "CHANGELOG.md".into()])
        );
        assert_eq!(p.commit_message.as_deref(), Some("fixed readme\n"));

        let bb = single(
            parse_event(
                &delivery(GitProvider::Bitbucket, "repo:push"),
                sample_body("bitbucket-push").as_bytes(),
            )
            .unwrap(),
        );
        let GitChange::Push(p) = bb else { panic!() };
        assert_eq!(p.repository, "pipewright/app");
        assert_eq!(p.reference, GitRef::Branch("main".into()));
        assert_eq!(p.commit_id, "709d658dc5b6d6afcd46049c2f332ee3f515a67d");
        assert!(matches!(p.files, ChangedFiles::Unknown(_)));
    }

    #[test]
    fn pushes_in_detail() {
        let gh = |payload: Value| {
            parse_event(
                &delivery(GitProvider::GitHub, "push"),
                payload.to_string().as_bytes(),
            )
        };
        let base = || {
            json!({"ref": "refs/heads/main", "after": "abc", "deleted": false,
                   "repository": {"full_name": "o/r"},
                   "commits": [{"id": "abc", "added": ["a"], "modified": ["b", "a"], "removed": ["c"]}]})
        };
        let GitChange::Push(p) = single(gh(base()).unwrap()) else {
            panic!()
        };
        assert_eq!(
            p.files,
            ChangedFiles::Known(vec!["a".into(), "b".into(), "c".into()])
        );
        // Tags.
        let mut tag = base();
        tag["ref"] = json!("refs/tags/v1.0");
        let GitChange::Push(p) = single(gh(tag).unwrap()) else {
            panic!()
        };
        assert_eq!(p.reference, GitRef::Tag("v1.0".into()));
        // Deletions.
        let mut del = base();
        del["deleted"] = json!(true);
        del["after"] = json!("0000000000000000000000000000000000000000");
        let GitChange::Push(p) = single(gh(del).unwrap()) else {
            panic!()
        };
        assert!(p.deleted && p.commit_id.is_empty());
        // No commits, 20 commits, a commit without lists: the files are unknown.
        let mut none = base();
        none["commits"] = json!([]);
        let GitChange::Push(p) = single(gh(none).unwrap()) else {
            panic!()
        };
        assert!(matches!(p.files, ChangedFiles::Unknown(ref why) if why.contains("no commits")));
        let mut many = base();
        many["commits"] = json!(vec![
            json!({"id": "x", "added": [], "modified": ["m"], "removed": []});
            20
        ]);
        let GitChange::Push(p) = single(gh(many).unwrap()) else {
            panic!()
        };
        assert!(matches!(p.files, ChangedFiles::Unknown(ref why) if why.contains("at most 20")));
        let mut bare = base();
        bare["commits"] = json!([{"id": "x"}]);
        let GitChange::Push(p) = single(gh(bare).unwrap()) else {
            panic!()
        };
        assert!(matches!(p.files, ChangedFiles::Unknown(_)));
        // Other refs and broken payloads.
        let mut pull = base();
        pull["ref"] = json!("refs/pull/3/head");
        assert!(matches!(gh(pull).unwrap(), WebhookEvent::Ignored(_)));
        let mut anonymous = base();
        anonymous["repository"] = json!({});
        assert_eq!(
            gh(anonymous).unwrap_err(),
            "the payload has no `repository.full_name`"
        );
        assert!(
            parse_event(&delivery(GitProvider::GitHub, "push"), b"not json")
                .unwrap_err()
                .contains("not JSON")
        );

        // GitLab says how many commits there were.
        let gl = |payload: Value| {
            parse_event(
                &delivery(GitProvider::GitLab, "Push Hook"),
                payload.to_string().as_bytes(),
            )
        };
        let truncated = json!({"ref": "refs/heads/main", "after": "abc", "checkout_sha": "abc",
            "project": {"path_with_namespace": "g/s/p"}, "total_commits_count": 31,
            "commits": vec![json!({"id": "x", "added": [], "modified": ["m"], "removed": []}); 20]});
        let GitChange::Push(p) = single(gl(truncated).unwrap()) else {
            panic!()
        };
        assert!(
            matches!(p.files, ChangedFiles::Unknown(ref why) if why == "GitLab lists 20 of the push's 31 commits")
        );
        let deleted = json!({"ref": "refs/tags/v1", "after": "0000000000000000000000000000000000000000",
            "checkout_sha": null, "project": {"path_with_namespace": "g/p"}, "commits": []});
        let GitChange::Push(p) = single(
            parse_event(
                &delivery(GitProvider::GitLab, "Tag Push Hook"),
                deleted.to_string().as_bytes(),
            )
            .unwrap(),
        ) else {
            panic!()
        };
        assert!(p.deleted);
        assert_eq!(p.reference, GitRef::Tag("v1".into()));

        // Bitbucket: one change per ref; a deletion; tags.
        let bb = json!({"repository": {"full_name": "w/r"}, "push": {"changes": [
            {"new": {"type": "branch", "name": "main", "target": {"hash": "h1"}}, "old": null},
            {"new": null, "old": {"type": "branch", "name": "gone", "target": {"hash": "h0"}}},
            {"new": {"type": "tag", "name": "v2", "target": {"hash": "h2"}}, "old": null}
        ]}});
        let WebhookEvent::Changes(changes) = parse_event(
            &delivery(GitProvider::Bitbucket, "repo:push"),
            bb.to_string().as_bytes(),
        )
        .unwrap() else {
            panic!()
        };
        assert_eq!(changes.len(), 3);
        assert!(
            matches!(&changes[1], GitChange::Push(p) if p.deleted && p.reference == GitRef::Branch("gone".into()))
        );
        assert!(
            matches!(&changes[2], GitChange::Push(p) if p.reference == GitRef::Tag("v2".into()) && p.commit_id == "h2")
        );
    }

    #[test]
    fn deliveries_are_told_apart_by_what_their_host_signs() {
        let body = br#"{"ref": "refs/tags/v1"}"#;
        let key = |provider_headers: &[(&str, &str)]| {
            let d = identify(&headers(provider_headers), body).unwrap();
            idempotency_key(&d, "p", 0)
        };
        // GitHub signs the body: the same body under another delivery id is a replay.
        assert_eq!(
            key(&[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "a")]),
            key(&[("X-GitHub-Event", "push"), ("X-GitHub-Delivery", "b")])
        );
        // GitLab signs nothing and its push bodies carry no time: its delivery id counts.
        assert_ne!(
            key(&[
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Event-UUID", "a")
            ]),
            key(&[
                ("X-Gitlab-Event", "Push Hook"),
                ("X-Gitlab-Event-UUID", "b")
            ])
        );
    }

    #[test]
    fn pull_requests_from_forks_are_told_apart() {
        let fork_of = |provider: GitProvider, event: &str, payload: Value| match parse_event(
            &delivery(provider, event),
            payload.to_string().as_bytes(),
        )
        .unwrap()
        {
            WebhookEvent::Changes(c) => match &c[0] {
                GitChange::PullRequest(p) => p.from_fork.clone(),
                other => panic!("{other:?}"),
            },
            other => panic!("{other:?}"),
        };
        let gh = |head_repo: Value| {
            json!({"action": "opened", "number": 4, "repository": {"full_name": "o/r"},
                "pull_request": {"number": 4, "head": {"ref": "x", "sha": "h", "repo": head_repo},
                                 "base": {"ref": "main", "repo": {"full_name": "o/r"}}}})
        };
        let github = GitProvider::GitHub;
        assert_eq!(
            fork_of(github, "pull_request", gh(json!({"full_name": "o/r"}))),
            None
        );
        assert_eq!(
            fork_of(github, "pull_request", gh(json!({"full_name": "O/R"}))),
            None
        );
        assert_eq!(
            fork_of(
                github,
                "pull_request",
                gh(json!({"full_name": "mallory/r"}))
            ),
            Some("mallory/r".into())
        );
        assert!(
            fork_of(github, "pull_request", gh(Value::Null)).is_some(),
            "a deleted fork"
        );
        let gl = |source: u64| {
            json!({"object_kind": "merge_request", "project": {"path_with_namespace": "g/p"},
                "object_attributes": {"action": "open", "iid": 9, "source_branch": "f",
                    "target_branch": "main", "last_commit": {"id": "c"},
                    "source_project_id": source, "target_project_id": 1,
                    "source": {"path_with_namespace": "mallory/p"}}})
        };
        assert_eq!(
            fork_of(GitProvider::GitLab, "Merge Request Hook", gl(1)),
            None
        );
        assert_eq!(
            fork_of(GitProvider::GitLab, "Merge Request Hook", gl(2)),
            Some("mallory/p".into())
        );
        let bb = |source: &str| {
            json!({"repository": {"full_name": "w/r"}, "pullrequest": {"id": 2,
                "source": {"branch": {"name": "f"}, "commit": {"hash": "abc123"},
                           "repository": {"full_name": source}},
                "destination": {"branch": {"name": "main"}, "repository": {"full_name": "w/r"}}}})
        };
        let bitbucket = GitProvider::Bitbucket;
        assert_eq!(fork_of(bitbucket, "pullrequest:created", bb("w/r")), None);
        assert_eq!(
            fork_of(bitbucket, "pullrequest:created", bb("mallory/r")),
            Some("mallory/r".into())
        );
    }

    #[test]
    fn pull_requests_map_to_codepipelines_events() {
        use GitPullRequestEventType::*;
        let gh = |action: &str| {
            let payload = json!({"action": action, "number": 4, "repository": {"full_name": "o/r"},
                "pull_request": {"number": 4, "title": "t", "head": {"ref": "feature/x", "sha": "h"}, "base": {"ref": "main"}}});
            parse_event(
                &delivery(GitProvider::GitHub, "pull_request"),
                payload.to_string().as_bytes(),
            )
            .unwrap()
        };
        let gl = |action: &str, oldrev: bool| {
            let mut attrs = json!({"action": action, "iid": 9, "source_branch": "f", "target_branch": "main", "last_commit": {"id": "c"}});
            if oldrev {
                attrs["oldrev"] = json!("b");
            }
            let payload = json!({"object_kind": "merge_request", "project": {"path_with_namespace": "g/p"}, "object_attributes": attrs});
            parse_event(
                &delivery(GitProvider::GitLab, "Merge Request Hook"),
                payload.to_string().as_bytes(),
            )
            .unwrap()
        };
        let bb = |event: &str| {
            let payload = json!({"repository": {"full_name": "w/r"}, "pullrequest": {"id": 2, "title": "t",
                "source": {"branch": {"name": "f"}, "commit": {"hash": "abc123"}}, "destination": {"branch": {"name": "main"}}}});
            parse_event(
                &delivery(GitProvider::Bitbucket, event),
                payload.to_string().as_bytes(),
            )
            .unwrap()
        };
        let event_of = |e: WebhookEvent| match e {
            WebhookEvent::Changes(c) => match &c[0] {
                GitChange::PullRequest(p) => Some(p.event),
                _ => None,
            },
            _ => None,
        };
        let table: Vec<(WebhookEvent, Option<GitPullRequestEventType>)> = vec![
            (gh("opened"), Some(Open)),
            (gh("reopened"), Some(Open)),
            (gh("synchronize"), Some(Updated)),
            (gh("closed"), Some(Closed)),
            (gh("labeled"), None),
            (gl("open", false), Some(Open)),
            (gl("update", true), Some(Updated)),
            (gl("update", false), None),
            (gl("merge", false), Some(Closed)),
            (gl("close", false), Some(Closed)),
            (gl("approved", false), None),
            (bb("pullrequest:created"), Some(Open)),
            (bb("pullrequest:updated"), Some(Updated)),
            (bb("pullrequest:fulfilled"), Some(Closed)),
            (bb("pullrequest:rejected"), Some(Closed)),
            (bb("pullrequest:approved"), None),
        ];
        for (i, (event, expected)) in table.into_iter().enumerate() {
            assert_eq!(event_of(event), expected, "row {i}");
        }
        let GitChange::PullRequest(p) = single(gh("opened")) else {
            panic!()
        };
        assert_eq!(
            (
                p.number,
                p.source_branch.as_str(),
                p.destination_branch.as_str(),
                p.commit_id.as_str()
            ),
            (4, "feature/x", "main", "h")
        );
    }

    #[test]
    fn pings_and_other_events() {
        assert_eq!(
            parse_event(&delivery(GitProvider::GitHub, "ping"), b"{}").unwrap(),
            WebhookEvent::Ping
        );
        for (provider, event) in [
            (GitProvider::GitHub, "issues"),
            (GitProvider::GitLab, "Note Hook"),
            (GitProvider::Bitbucket, "repo:fork"),
        ] {
            // Not even parsed: any body will do.
            let e = parse_event(&delivery(provider, event), b"not json").unwrap();
            assert!(
                matches!(e, WebhookEvent::Ignored(ref why) if why.contains(event)),
                "{e:?}"
            );
        }
    }

    #[test]
    fn the_sample_events_are_signed_with_the_sample_secret() {
        for name in ["github-push", "gitlab-push", "bitbucket-push"] {
            let text = match name {
                "github-push" => include_str!("../../../../events/webhook-github-push.json"),
                "gitlab-push" => include_str!("../../../../events/webhook-gitlab-push.json"),
                _ => include_str!("../../../../events/webhook-bitbucket-push.json"),
            };
            let event: Value = serde_json::from_str(text).unwrap();
            let h: Headers = event["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().unwrap().to_string()))
                .collect();
            let body = event["body"].as_str().unwrap().as_bytes();
            let d = identify(&h, body).unwrap();
            assert_eq!(
                verify_signature(d.provider, &h, body, b"pipewright-sample-webhook-secret"),
                Ok(()),
                "{name}"
            );
        }
    }

    #[test]
    fn keys_and_details() {
        let d = delivery(GitProvider::GitHub, "push");
        assert_eq!(idempotency_key(&d, "app", 0), "webhook/github/d-1/app");
        assert_eq!(idempotency_key(&d, "app", 2), "webhook/github/d-1/app/2");
        let change = GitChange::Push(GitPush {
            repository: "o/r".into(),
            reference: GitRef::Branch("main".into()),
            commit_id: "0123456789abcdef".into(),
            commit_message: None,
            deleted: false,
            files: ChangedFiles::Known(vec![]),
        });
        assert_eq!(
            trigger_detail(&d, &change),
            "GitHub push to branch `main` of o/r at 0123456789ab (delivery d-1)"
        );
    }
}
