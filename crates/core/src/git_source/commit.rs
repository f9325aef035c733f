//! The commit: the one an execution pins, the API's commit JSON, and what the action records
//! about it (output variables, revision summary).

use std::collections::BTreeMap;

use serde_json::Value;

use super::{GitApi, GitSource, GitSourceError, GitSourceKind, MAX_MESSAGE_CHARS};
use crate::execution::SourceRevisionOverride;

/// The commit the execution pins for this action: the value of its `COMMIT_ID` source revision
/// override, if any. `overrides` are the action's own. Any other revision type is refused.
pub fn pinned_commit(
    overrides: &[SourceRevisionOverride],
) -> Result<Option<String>, GitSourceError> {
    let mut pinned = None;
    for o in overrides {
        if o.revision_type != "COMMIT_ID" {
            return Err(GitSourceError::Configuration(format!(
                "source revision override {} does not apply to a git source (use COMMIT_ID)",
                o.revision_type
            )));
        }
        let sha = o.revision_value.trim();
        if !is_commit_id(sha) {
            return Err(GitSourceError::Configuration(format!(
                "source revision override COMMIT_ID: `{sha}` is not a commit id (7 to 64 hexadecimal digits)"
            )));
        }
        pinned = Some(sha.to_ascii_lowercase());
    }
    Ok(pinned)
}

/// 7 to 64 hexadecimal digits (an abbreviated or full SHA-1 / SHA-256 commit id).
pub fn is_commit_id(s: &str) -> bool {
    (7..=64).contains(&s.len()) && s.chars().all(|c| c.is_ascii_hexdigit())
}

/// A commit, from the API's commit JSON.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Commit {
    /// The full commit id.
    pub sha: String,
    /// The message (cut at [`MAX_MESSAGE_CHARS`]).
    pub message: String,
    /// When it was authored (ISO-8601).
    pub author_date: Option<String>,
    /// When it was committed (ISO-8601).
    pub committer_date: Option<String>,
    /// The commit's page (`html_url`).
    pub html_url: Option<String>,
    /// The commit's API URL (`url`).
    pub api_url: Option<String>,
}

/// Read `GET .../commits/{ref}`'s answer.
pub fn parse_commit(body: &[u8]) -> Result<Commit, GitSourceError> {
    let bad = |what: &str| {
        GitSourceError::Failed(format!(
            "the git host's answer for the commit is not a commit: {what}"
        ))
    };
    let json: Value = serde_json::from_slice(body).map_err(|_| bad("not JSON"))?;
    let text = |pointer: &str| {
        json.pointer(pointer)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    let sha = text("/sha").ok_or_else(|| bad("no `sha`"))?;
    if !is_commit_id(&sha) {
        return Err(bad("`sha` is not a commit id"));
    }
    Ok(Commit {
        sha: sha.to_ascii_lowercase(),
        message: cut(
            &text("/commit/message").unwrap_or_default(),
            MAX_MESSAGE_CHARS,
        ),
        author_date: text("/commit/author/date"),
        committer_date: text("/commit/committer/date"),
        html_url: text("/html_url"),
        api_url: text("/url"),
    })
}

/// `s` cut to at most `max` characters (with `...` at the end when cut).
pub(crate) fn cut(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_string();
    }
    let mut out: String = s.chars().take(max.saturating_sub(3)).collect();
    out.push_str("...");
    out
}

/// Check that the commit the host answered with is the one pinned (`pinned` may be
/// abbreviated).
pub fn check_pinned(
    source: &GitSource,
    pinned: &str,
    commit: &Commit,
) -> Result<(), GitSourceError> {
    if commit.sha.starts_with(pinned) {
        Ok(())
    } else {
        Err(GitSourceError::RevisionUnavailable(format!(
            "repository {}: asked for commit {pinned}, the git host answered with {}",
            source.full_name(),
            commit.sha
        )))
    }
}

/// The action's output variables, as CodePipeline names them.
///
/// CodeStarSourceConnection: `CommitId`, `BranchName`, `AuthorDate`, `CommitMessage`,
/// `FullRepositoryName`, `ConnectionArn`. GitHub version 1: `CommitId`, `BranchName`,
/// `AuthorDate`, `CommitMessage`, `CommitterDate`, `CommitUrl`, `RepositoryName`.
pub fn output_variables(source: &GitSource, commit: &Commit) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        ("CommitId".to_string(), commit.sha.clone()),
        ("BranchName".to_string(), source.branch.clone()),
        ("CommitMessage".to_string(), commit.message.clone()),
    ]);
    if let Some(date) = &commit.author_date {
        vars.insert("AuthorDate".into(), date.clone());
    }
    match source.kind {
        GitSourceKind::Connection => {
            vars.insert("FullRepositoryName".into(), source.full_name());
            if let Some(arn) = &source.connection_arn {
                vars.insert("ConnectionArn".into(), arn.clone());
            }
        }
        GitSourceKind::GitHubV1 => {
            vars.insert("RepositoryName".into(), source.repo.clone());
            if let Some(date) = &commit.committer_date {
                vars.insert("CommitterDate".into(), date.clone());
            }
            if let Some(url) = &commit.api_url {
                vars.insert("CommitUrl".into(), url.clone());
            }
        }
    }
    vars
}

/// The revision summary CodePipeline records: for a connection, the JSON
/// `{"ProviderType":"GitHub","CommitMessage":"..."}`; for GitHub version 1, the message.
pub fn revision_summary(source: &GitSource, api: &GitApi, commit: &Commit) -> String {
    match source.kind {
        GitSourceKind::Connection => serde_json::json!({
            "ProviderType": api.provider_type(),
            "CommitMessage": commit.message,
        })
        .to_string(),
        GitSourceKind::GitHubV1 => commit.message.clone(),
    }
}
