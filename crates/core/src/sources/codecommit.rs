//! `Source/AWS/CodeCommit`: the action's configuration, the commit and its output variables,
//! and what a CodeCommit error answer means.

use std::collections::BTreeMap;
use std::fmt;

use super::{configuration_value, console_host, required, SourceError};
use crate::git_source::{self, Commit, OutputArtifactFormat};

/// A `Source/AWS/CodeCommit` action, read from its (resolved) configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeCommitSource {
    /// `RepositoryName`.
    pub repository: String,
    /// `BranchName`.
    pub branch: String,
}

impl CodeCommitSource {
    /// Read `RepositoryName`, `BranchName` and `OutputArtifactFormat` (`CODE_ZIP`, the default;
    /// `CODEBUILD_CLONE_REF` is refused, naming the key). `PollForSourceChanges` is the
    /// trigger's business. Errors name the key.
    pub fn from_configuration(
        configuration: &BTreeMap<String, String>,
    ) -> Result<Self, SourceError> {
        let get = |key: &str| configuration_value(configuration, key);
        let repository = get("RepositoryName").ok_or_else(|| required("RepositoryName"))?;
        if !is_codecommit_repository_name(repository) {
            return Err(SourceError::Configuration(format!(
                "configuration RepositoryName: `{repository}` is not a CodeCommit repository name (1 to 100 letters, digits, `-`, `_`, `.`)"
            )));
        }
        let branch = git_source::branch(
            get("BranchName").ok_or_else(|| required("BranchName"))?,
            "BranchName",
        )?;
        OutputArtifactFormat::parse(get("OutputArtifactFormat"))?.check()?;
        Ok(Self {
            repository: repository.to_string(),
            branch,
        })
    }
}

/// CodeCommit's repository names: 1 to 100 of `[A-Za-z0-9._-]`, not ending in `.git`.
pub fn is_codecommit_repository_name(name: &str) -> bool {
    (1..=100).contains(&name.len())
        && !name.ends_with(".git")
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// `GetCommit`'s answer, as a [`Commit`]: the dates (git's `<seconds> <±hhmm>`) as ISO-8601 in
/// UTC, the message cut at [`git_source::MAX_MESSAGE_CHARS`], and the commit's console page.
pub fn codecommit_commit(
    region: &str,
    repository: &str,
    commit_id: &str,
    message: Option<&str>,
    author_date: Option<&str>,
    committer_date: Option<&str>,
) -> Commit {
    let sha = commit_id.to_ascii_lowercase();
    Commit {
        html_url: Some(codecommit_commit_url(region, repository, &sha)),
        sha,
        // Git ends messages with a newline; CodePipeline's variable has none.
        message: git_source::cut(
            message.unwrap_or_default().trim_end_matches('\n'),
            git_source::MAX_MESSAGE_CHARS,
        ),
        author_date: author_date.map(git_date),
        committer_date: committer_date.map(git_date),
        api_url: None,
    }
}

/// A git date (`1484167798 -0800`, as CodeCommit's `UserInfo.date` gives it) as ISO-8601 in
/// UTC (`2017-01-11T20:49:58Z`); any other text is kept as it is.
pub fn git_date(raw: &str) -> String {
    let raw = raw.trim();
    let mut parts = raw.split_whitespace();
    let (Some(seconds), offset, None) = (parts.next(), parts.next(), parts.next()) else {
        return raw.to_string();
    };
    let offset_ok = offset.is_none_or(|o| {
        o.len() == 5 && o.starts_with(['+', '-']) && o[1..].chars().all(|c| c.is_ascii_digit())
    });
    match seconds.parse::<i64>() {
        // The seconds are UTC already; the offset only says where the author was.
        Ok(s) if offset_ok => crate::events::format_time(s as f64),
        _ => raw.to_string(),
    }
}

/// The commit's page in the CodeCommit console.
pub fn codecommit_commit_url(region: &str, repository: &str, commit_id: &str) -> String {
    format!(
        "https://{}/codesuite/codecommit/repositories/{repository}/commit/{commit_id}?region={region}",
        console_host(region)
    )
}

/// The output variables, as CodePipeline names them for CodeCommit: `CommitId`,
/// `CommitMessage`, `RepositoryName`, `BranchName`, `AuthorDate`, `CommitterDate`.
pub fn codecommit_output_variables(
    source: &CodeCommitSource,
    commit: &Commit,
) -> BTreeMap<String, String> {
    let mut vars = BTreeMap::from([
        ("CommitId".to_string(), commit.sha.clone()),
        ("CommitMessage".to_string(), commit.message.clone()),
        ("RepositoryName".to_string(), source.repository.clone()),
        ("BranchName".to_string(), source.branch.clone()),
    ]);
    if let Some(date) = &commit.author_date {
        vars.insert("AuthorDate".into(), date.clone());
    }
    if let Some(date) = &commit.committer_date {
        vars.insert("CommitterDate".into(), date.clone());
    }
    vars
}

/// One of the CodeCommit calls a source action makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CodeCommitCall<'a> {
    /// `GetBranch`.
    BranchHead(&'a str),
    /// `GetCommit`.
    Commit(&'a str),
    /// `GetFolder` (the folder).
    Folder(&'a str),
    /// `GetBlob` (the file's path).
    Blob(&'a str),
}

impl fmt::Display for CodeCommitCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BranchHead(b) => write!(f, "GetBranch (the head of branch `{b}`)"),
            Self::Commit(c) => write!(f, "GetCommit {c}"),
            Self::Folder(p) => write!(f, "GetFolder {p}"),
            Self::Blob(p) => write!(f, "GetBlob (file {p})"),
        }
    }
}

/// What a CodeCommit error answer means. `code` is the error's code (`BranchDoesNotExistException`,
/// ...), `status` the HTTP status when there was an answer, `message` what AWS said (or the
/// transport error).
pub fn codecommit_error(
    source: &CodeCommitSource,
    call: CodeCommitCall<'_>,
    code: Option<&str>,
    status: Option<u16>,
    message: &str,
) -> SourceError {
    let repo = &source.repository;
    let said = match code {
        Some(code) if !message.is_empty() => format!("{code}: {}", git_source::cut(message, 300)),
        Some(code) => code.to_string(),
        None => git_source::cut(message, 300),
    };
    let head = format!("CodeCommit repository {repo}: {call} failed: {said}");
    match (code.unwrap_or_default(), call) {
        ("RepositoryDoesNotExistException" | "InvalidRepositoryNameException", _) => {
            SourceError::Configuration(format!(
                "{head}; there is no repository {repo} in this account and region: check RepositoryName"
            ))
        }
        ("BranchDoesNotExistException" | "InvalidBranchNameException", _) => {
            SourceError::Configuration(format!(
                "{head}; repository {repo} has no branch `{}`: check BranchName",
                source.branch
            ))
        }
        (
            "CommitIdDoesNotExistException"
            | "CommitDoesNotExistException"
            | "InvalidCommitIdException"
            | "InvalidCommitException",
            CodeCommitCall::Commit(c) | CodeCommitCall::Folder(c),
        ) => SourceError::RevisionUnavailable(format!(
            "{head}; commit {c} is not in repository {repo}"
        )),
        ("AccessDeniedException" | "EncryptionKeyAccessDeniedException", _) => {
            SourceError::Permission(format!(
                "{head}; the action function may not read repository {repo} (codecommit:GetBranch, GetCommit, GetFolder, GetBlob, and its KMS key)"
            ))
        }
        _ if status == Some(403) => SourceError::Permission(format!(
            "{head}; the action function may not read repository {repo}"
        )),
        _ => SourceError::Failed(head),
    }
}
