//! Reading a git source action's configuration: which repository and branch, the output
//! artifact's format, and where its token is.

use std::collections::BTreeMap;

use super::{GitSourceError, GitSourceKind};

/// CodeStarSourceConnection's `OutputArtifactFormat`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputArtifactFormat {
    /// `CODE_ZIP` (the default): a zip of the commit's files.
    CodeZip,
    /// `CODEBUILD_CLONE_REF`: a reference only CodeBuild actions can clone (refused here).
    CodeBuildCloneRef,
}

impl OutputArtifactFormat {
    /// The `OutputArtifactFormat` configuration (absent or blank: `CODE_ZIP`).
    pub fn parse(value: Option<&str>) -> Result<Self, GitSourceError> {
        match value.map(str::trim).filter(|v| !v.is_empty()) {
            None | Some("CODE_ZIP") => Ok(Self::CodeZip),
            Some("CODEBUILD_CLONE_REF") => Ok(Self::CodeBuildCloneRef),
            Some(other) => Err(GitSourceError::Configuration(format!(
                "configuration OutputArtifactFormat: `{other}` is neither CODE_ZIP nor CODEBUILD_CLONE_REF"
            ))),
        }
    }

    /// Refuse what a source action cannot produce: a `CODEBUILD_CLONE_REF` artifact is a
    /// reference only a CodeBuild action can use, and Pipewright runs no CodeBuild action.
    pub fn check(self) -> Result<(), GitSourceError> {
        match self {
            Self::CodeZip => Ok(()),
            Self::CodeBuildCloneRef => Err(GitSourceError::Configuration(
                "configuration OutputArtifactFormat: CODEBUILD_CLONE_REF makes an artifact only CodeBuild actions can use (they clone the repository), and Pipewright runs no CodeBuild action; use CODE_ZIP (the default)".into(),
            )),
        }
    }
}

/// Where the action's token comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// The Secrets Manager secret with this name (a connection's).
    Secret(String),
    /// The action's `OAuthToken` configuration (GitHub version 1).
    OAuthToken,
}

/// A git source action, read from its (resolved) configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitSource {
    /// Which action type.
    pub kind: GitSourceKind,
    /// The repository's owner (user or organization).
    pub owner: String,
    /// The repository's name.
    pub repo: String,
    /// The branch followed.
    pub branch: String,
    /// The connection (CodeStarSourceConnection).
    pub connection_arn: Option<String>,
    /// The output artifact's format.
    pub format: OutputArtifactFormat,
    /// Where the token is.
    pub token: TokenSource,
}

impl GitSource {
    /// Read the action's configuration (variables resolved). `secret_prefix` names where
    /// connection tokens are ([`DEFAULT_CONNECTION_SECRET_PREFIX`]). Errors name the key.
    ///
    /// [`DEFAULT_CONNECTION_SECRET_PREFIX`]: super::DEFAULT_CONNECTION_SECRET_PREFIX
    pub fn from_configuration(
        kind: GitSourceKind,
        configuration: &BTreeMap<String, String>,
        secret_prefix: &str,
    ) -> Result<Self, GitSourceError> {
        let get = |key: &str| {
            configuration
                .get(key)
                .map(|v| v.trim())
                .filter(|v| !v.is_empty())
        };
        let required = |key: &str| {
            get(key).ok_or_else(|| {
                GitSourceError::Configuration(format!("configuration {key} is required"))
            })
        };
        match kind {
            GitSourceKind::Connection => {
                let arn = required("ConnectionArn")?;
                let id = connection_id(arn)?;
                let (owner, repo) = parse_full_repository_id(required("FullRepositoryId")?)?;
                let format = OutputArtifactFormat::parse(get("OutputArtifactFormat"))?;
                Ok(Self {
                    kind,
                    owner,
                    repo,
                    branch: branch(required("BranchName")?, "BranchName")?,
                    connection_arn: Some(arn.to_string()),
                    format,
                    token: TokenSource::Secret(format!("{secret_prefix}{id}")),
                })
            }
            GitSourceKind::GitHubV1 => {
                let owner = name_part(required("Owner")?, "Owner")?;
                let repo = name_part(required("Repo")?, "Repo")?;
                required("OAuthToken")?;
                Ok(Self {
                    kind,
                    owner,
                    repo,
                    branch: branch(required("Branch")?, "Branch")?,
                    connection_arn: None,
                    format: OutputArtifactFormat::CodeZip,
                    token: TokenSource::OAuthToken,
                })
            }
        }
    }

    /// `owner/repo`.
    pub fn full_name(&self) -> String {
        format!("{}/{}", self.owner, self.repo)
    }

    /// Refuse what this action cannot produce (see [`OutputArtifactFormat::check`]).
    pub fn check_format(&self) -> Result<(), GitSourceError> {
        self.format.check()
    }
}

/// The id at the end of a connection ARN
/// (`arn:aws:codestar-connections:<region>:<account>:connection/<id>`, or `codeconnections`).
pub fn connection_id(arn: &str) -> Result<&str, GitSourceError> {
    let bad = |reason: &str| {
        GitSourceError::Configuration(format!(
            "configuration ConnectionArn: `{arn}` {reason} (arn:aws:codeconnections:<region>:<account>:connection/<id>)"
        ))
    };
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    if parts.len() != 6 || parts[0] != "arn" {
        return Err(bad("is not an ARN"));
    }
    if !matches!(parts[2], "codestar-connections" | "codeconnections") {
        return Err(bad("is not a connection ARN"));
    }
    let id = parts[5]
        .strip_prefix("connection/")
        .ok_or_else(|| bad("does not name a connection"))?;
    if id.is_empty()
        || !id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        return Err(bad("has no valid connection id"));
    }
    Ok(id)
}

/// `owner/repo` from `FullRepositoryId`.
pub fn parse_full_repository_id(full: &str) -> Result<(String, String), GitSourceError> {
    let mut parts = full.split('/');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(owner), Some(repo), None) => Ok((
            name_part(owner, "FullRepositoryId")?,
            name_part(
                repo.strip_suffix(".git").unwrap_or(repo),
                "FullRepositoryId",
            )?,
        )),
        _ => Err(GitSourceError::Configuration(format!(
            "configuration FullRepositoryId: `{full}` is not <owner>/<repository>"
        ))),
    }
}

/// An owner or repository name: letters, digits, `-`, `_` and `.` (GitHub's rules), so it goes
/// into a URL path as it is.
fn name_part(name: &str, key: &str) -> Result<String, GitSourceError> {
    let ok = !name.is_empty()
        && name != "."
        && name != ".."
        && name.len() <= 100
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(name.to_string())
    } else {
        Err(GitSourceError::Configuration(format!(
            "configuration {key}: `{name}` is not a repository owner or name (letters, digits, `-`, `_`, `.`)"
        )))
    }
}

/// A branch name as git allows it (no spaces, control characters, `..`, `~^:?*[\`).
pub(crate) fn branch(name: &str, key: &str) -> Result<String, GitSourceError> {
    let name = name.strip_prefix("refs/heads/").unwrap_or(name);
    let ok = !name.is_empty()
        && !name.contains("..")
        && !name.starts_with('/')
        && !name.ends_with('/')
        && !name
            .chars()
            .any(|c| c.is_control() || c == ' ' || "~^:?*[\\".contains(c));
    if ok {
        Ok(name.to_string())
    } else {
        Err(GitSourceError::Configuration(format!(
            "configuration {key}: `{name}` is not a branch name"
        )))
    }
}
