//! Git source actions: `Source/AWS/CodeStarSourceConnection` and `Source/ThirdParty/GitHub`
//! (version 1) hand on one commit of a repository as their output artifact.
//!
//! The commit is fetched through the GitHub REST API at a configurable base URL (github.com,
//! GitHub Enterprise Server's `https://<host>/api/v3`, or any server answering the same paths,
//! such as a test's):
//!
//! 1. the commit: the execution's `COMMIT_ID` source revision (a webhook's pushed commit, a
//!    StartPipelineExecution `sourceRevisions` override) when there is one, else the head of
//!    the action's branch;
//! 2. `GET {base}/repos/{owner}/{repo}/commits/{ref}`: the commit's id, message and dates;
//! 3. `GET {base}/repos/{owner}/{repo}/tarball/{sha}` (redirects followed): the archive, whose
//!    files, without GitHub's top-level `<owner>-<repo>-<sha>/` folder, become the artifact.
//!
//! Everything that needs no I/O is decided here: reading the action's configuration, where
//! its token is, the URLs, the commit JSON, the output variables and revision, which archive
//! paths go into the artifact, and what an HTTP failure means for the user. The `action`
//! function does the HTTP and archive work.
//!
//! The parts: `configuration` (the action's configuration), `secret` (tokens and connection
//! secrets), `api` (URLs, redirects, HTTP errors), `commit` (the pinned commit, the commit
//! JSON, output variables) and `archive` (artifact paths, size limits); everything is
//! re-exported here.

mod api;
mod archive;
mod commit;
mod configuration;
mod secret;

pub use api::{
    api_message, http_error, keeps_authorization, origin, redirect_target, ApiCall, GitApi,
    MAX_REDIRECTS,
};
pub use archive::{archive_too_large, content_too_large, ArchivePaths};
pub(crate) use commit::cut;
pub use commit::{
    check_pinned, is_commit_id, output_variables, parse_commit, pinned_commit, revision_summary,
    Commit,
};
pub(crate) use configuration::branch;
pub use configuration::{
    connection_id, parse_full_repository_id, GitSource, OutputArtifactFormat, TokenSource,
};
pub use secret::{ConnectionSecret, Token};

use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId};
use crate::execution::FailureType;

/// The API base URL when the stack sets none: github.com's REST API.
pub const DEFAULT_API_BASE_URL: &str = "https://api.github.com";

/// A connection's token is the Secrets Manager secret `<prefix><connection id>`.
pub const DEFAULT_CONNECTION_SECRET_PREFIX: &str = "pipewright/connections/";

/// The largest archive downloaded: CodePipeline's limit on git source artifacts (1 GB).
pub const MAX_ARCHIVE_BYTES: u64 = 1 << 30;

/// The most bytes an archive may expand to (an archive that expands without bound is refused).
pub const MAX_CONTENT_BYTES: u64 = 4 << 30;

/// The longest commit message kept in a variable or revision summary (longer ones are cut, with
/// `...` at the end).
pub const MAX_MESSAGE_CHARS: usize = 4096;

/// Which git source action.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GitSourceKind {
    /// `Source/AWS/CodeStarSourceConnection`: the token is the connection's secret.
    Connection,
    /// `Source/ThirdParty/GitHub` version 1: the token is the `OAuthToken` configuration.
    GitHubV1,
}

impl GitSourceKind {
    /// The kind of a git source action type; `None` for any other type.
    pub fn of(id: &ActionTypeId) -> Option<Self> {
        match (
            id.category,
            id.owner,
            id.provider.as_str(),
            id.version.as_str(),
        ) {
            (ActionCategory::Source, ActionOwner::Aws, "CodeStarSourceConnection", "1") => {
                Some(Self::Connection)
            }
            (ActionCategory::Source, ActionOwner::ThirdParty, "GitHub", "1") => {
                Some(Self::GitHubV1)
            }
            _ => None,
        }
    }
}

/// Why a source action (git, CodeCommit, ECR: see also [`crate::sources`]) cannot fetch its
/// revision, by CodePipeline's failure types.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GitSourceError {
    /// The configuration cannot work (`ConfigurationError`).
    #[error("{0}")]
    Configuration(String),
    /// The git host refused the token, or AWS refused access (`PermissionError`).
    #[error("{0}")]
    Permission(String),
    /// The commit asked for does not exist (`RevisionUnavailable`).
    #[error("{0}")]
    RevisionUnavailable(String),
    /// The fetch failed (`JobFailed`).
    #[error("{0}")]
    Failed(String),
}

impl GitSourceError {
    /// CodePipeline's name for the failure.
    pub fn code(&self) -> FailureType {
        match self {
            Self::Configuration(_) => FailureType::ConfigurationError,
            Self::Permission(_) => FailureType::PermissionError,
            Self::RevisionUnavailable(_) => FailureType::RevisionUnavailable,
            Self::Failed(_) => FailureType::JobFailed,
        }
    }
}

#[cfg(test)]
mod tests;
