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

use std::collections::BTreeMap;
use std::fmt;

use serde_json::Value;

use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId};
use crate::execution::SourceRevisionOverride;

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
    pub fn code(&self) -> &'static str {
        match self {
            Self::Configuration(_) => "ConfigurationError",
            Self::Permission(_) => "PermissionError",
            Self::RevisionUnavailable(_) => "RevisionUnavailable",
            Self::Failed(_) => "JobFailed",
        }
    }
}

impl GitSource {
    /// Read the action's configuration (variables resolved). `secret_prefix` names where
    /// connection tokens are ([`DEFAULT_CONNECTION_SECRET_PREFIX`]). Errors name the key.
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

/// A token, kept out of `Debug` output and logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Token(String);

impl Token {
    /// A token; `None` when blank.
    pub fn new(value: &str) -> Option<Self> {
        let value = value.trim();
        (!value.is_empty()).then(|| Self(value.to_string()))
    }

    /// The token itself, for the `Authorization` header only.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Token {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Token(****)")
    }
}

/// What a connection's secret holds: the token alone, or a JSON object
/// `{"token": "...", "apiBaseUrl": "..."}` (the base URL of the connection's host, for a
/// GitHub Enterprise Server connection in a stack whose default is github.com).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionSecret {
    /// The token.
    pub token: Token,
    /// The connection's own API base URL.
    pub api_base_url: Option<String>,
}

impl ConnectionSecret {
    /// Read a secret's value; `name` is only for the error (the value never appears in one).
    pub fn parse(name: &str, value: &str) -> Result<Self, GitSourceError> {
        let value = value.trim();
        if value.starts_with('{') {
            let json: Value = serde_json::from_str(value).map_err(|_| {
                GitSourceError::Configuration(format!(
                    "the connection secret {name} starts with `{{` but is not a JSON object"
                ))
            })?;
            let token = json
                .get("token")
                .and_then(Value::as_str)
                .and_then(Token::new)
                .ok_or_else(|| {
                    GitSourceError::Configuration(format!(
                        "the connection secret {name} has no `token`"
                    ))
                })?;
            let api_base_url = json
                .get("apiBaseUrl")
                .and_then(Value::as_str)
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string);
            return Ok(Self {
                token,
                api_base_url,
            });
        }
        let token = Token::new(value).ok_or_else(|| {
            GitSourceError::Configuration(format!("the connection secret {name} is empty"))
        })?;
        Ok(Self {
            token,
            api_base_url: None,
        })
    }
}

/// The GitHub REST API at one base URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitApi {
    base: String,
}

impl GitApi {
    /// The API at `base` (`http://` or `https://`, no query; trailing `/` ignored).
    pub fn new(base: &str) -> Result<Self, GitSourceError> {
        let trimmed = base.trim().trim_end_matches('/');
        let rest = trimmed
            .strip_prefix("https://")
            .or_else(|| trimmed.strip_prefix("http://"));
        match rest {
            Some(rest)
                if !rest.is_empty()
                    && !rest.starts_with('/')
                    && !rest.contains(['?', '#', ' ', '@']) =>
            {
                Ok(Self {
                    base: trimmed.to_string(),
                })
            }
            _ => {
                // A URL with user information may hold a credential: never echo it.
                let shown = if base.contains('@') {
                    "(a URL with user information, not shown)".to_string()
                } else {
                    format!("`{base}`")
                };
                Err(GitSourceError::Configuration(format!(
                    "the git API base URL {shown} is not an http(s) URL without query or user \
                     information (e.g. {DEFAULT_API_BASE_URL})"
                )))
            }
        }
    }

    /// The base URL, without a trailing `/`.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `GET` this for the commit `reference` (a branch name or a commit id) of `owner/repo`.
    pub fn commit_url(&self, source: &GitSource, reference: &str) -> String {
        format!(
            "{}/repos/{}/{}/commits/{}",
            self.base,
            source.owner,
            source.repo,
            encode_ref(reference)
        )
    }

    /// `GET` this for the gzipped tar archive of commit `sha` (GitHub answers with a redirect).
    pub fn tarball_url(&self, source: &GitSource, sha: &str) -> String {
        format!(
            "{}/repos/{}/{}/tarball/{}",
            self.base, source.owner, source.repo, sha
        )
    }

    /// CodePipeline's `ProviderType` for a connection to this host: `GitHub` for github.com,
    /// `GitHubEnterpriseServer` for any other.
    pub fn provider_type(&self) -> &'static str {
        if self.base == DEFAULT_API_BASE_URL {
            "GitHub"
        } else {
            "GitHubEnterpriseServer"
        }
    }
}

/// Percent-encode a git reference for a URL path, keeping `/` (GitHub takes `feature/x` as is).
fn encode_ref(reference: &str) -> String {
    let mut out = String::with_capacity(reference.len());
    for b in reference.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~' | b'/') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The most redirects followed for one request (GitHub answers an archive request with one).
pub const MAX_REDIRECTS: usize = 5;

/// `scheme://host[:port]` of an absolute `http(s)` URL.
pub fn origin(url: &str) -> Option<&str> {
    let scheme_end = url.find("://")? + 3;
    let scheme = &url[..scheme_end];
    if scheme != "http://" && scheme != "https://" {
        return None;
    }
    let end = url[scheme_end..]
        .find(['/', '?', '#'])
        .map_or(url.len(), |i| scheme_end + i);
    (end > scheme_end).then(|| &url[..end])
}

/// Where a redirect from `current` to `location` goes: `location` when it is an absolute
/// `http(s)` URL, else a path on `current`'s origin. `None` for anything else.
pub fn redirect_target(current: &str, location: &str) -> Option<String> {
    let location = location.trim();
    if origin(location).is_some() {
        return Some(location.to_string());
    }
    if location.starts_with('/') && !location.starts_with("//") {
        return Some(format!("{}{location}", origin(current)?));
    }
    None
}

/// Whether a request that went from `from` to `to` may keep its `Authorization` header: only
/// on the same origin (a redirect to another host, such as GitHub's archive host, carries its
/// own credentials).
pub fn keeps_authorization(from: &str, to: &str) -> bool {
    matches!((origin(from), origin(to)), (Some(a), Some(b)) if a.eq_ignore_ascii_case(b))
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

/// Where an archive entry goes in the artifact: its path without the archive's single top-level
/// folder (`<owner>-<repo>-<sha>/`, the same for every entry). `None` for the folder itself and
/// for pax header entries (`pax_global_header`).
#[derive(Debug, Default)]
pub struct ArchivePaths {
    top: Option<String>,
}

impl ArchivePaths {
    /// The artifact path of archive entry `path`; an entry outside the top-level folder is an
    /// error (the archive is not one of a commit).
    pub fn relative(&mut self, path: &str) -> Result<Option<String>, GitSourceError> {
        let path = path.trim_start_matches("./");
        if path.is_empty() || path == "pax_global_header" {
            return Ok(None);
        }
        let (first, rest) = match path.split_once('/') {
            Some((first, rest)) => (first, rest.trim_start_matches('/')),
            None => (path, ""),
        };
        match &self.top {
            None => self.top = Some(first.to_string()),
            Some(top) if top == first => {}
            Some(top) => {
                return Err(GitSourceError::Failed(format!(
                    "the archive is not one of a commit: `{path}` is outside its folder `{top}/`"
                )))
            }
        }
        let rest = rest.trim_end_matches('/');
        Ok((!rest.is_empty()).then(|| rest.to_string()))
    }
}

/// One of the API calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ApiCall<'a> {
    /// The head of the branch.
    BranchHead(&'a str),
    /// A commit by id.
    Commit(&'a str),
    /// A commit's archive.
    Archive(&'a str),
}

impl fmt::Display for ApiCall<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::BranchHead(b) => write!(f, "reading the head of branch `{b}`"),
            Self::Commit(sha) => write!(f, "reading commit {sha}"),
            Self::Archive(sha) => write!(f, "downloading the archive of commit {sha}"),
        }
    }
}

/// What an HTTP error answer means. `message` is GitHub's `message` field when the body had one
/// (see [`api_message`]); `rate_limited` when `x-ratelimit-remaining` was `0`.
pub fn http_error(
    source: &GitSource,
    api: &GitApi,
    call: ApiCall<'_>,
    status: u16,
    message: Option<&str>,
    rate_limited: bool,
) -> GitSourceError {
    let repo = source.full_name();
    let said = message
        .map(|m| format!(": {}", cut(m, 200)))
        .unwrap_or_default();
    let head = format!(
        "repository {repo} at {}: {call} failed with HTTP {status}{said}",
        api.base()
    );
    let token_hint = match &source.token {
        TokenSource::Secret(name) => format!("the token in secret {name}"),
        TokenSource::OAuthToken => "the OAuthToken configuration".to_string(),
    };
    match (status, call) {
        (401, _) => GitSourceError::Permission(format!(
            "{head}; the git host refused {token_hint} (wrong, expired or revoked)"
        )),
        (403 | 429, _) if rate_limited || status == 429 => GitSourceError::Failed(format!(
            "{head}; the API rate limit for the token is spent, retry later"
        )),
        (403, _) => GitSourceError::Permission(format!(
            "{head}; {token_hint} may not read this repository"
        )),
        // GitHub answers 422 ("No commit found for SHA") for a branch it does not know.
        (404 | 422, ApiCall::BranchHead(b)) => GitSourceError::Configuration(format!(
            "{head}; no repository {repo} with a branch `{b}` is visible to {token_hint}: check FullRepositoryId (or Owner/Repo) and the branch"
        )),
        (404 | 422, ApiCall::Commit(sha) | ApiCall::Archive(sha)) => {
            GitSourceError::RevisionUnavailable(format!(
                "{head}; commit {sha} is not in repository {repo} (or the repository is not visible to {token_hint})"
            ))
        }
        (409, _) => GitSourceError::Configuration(format!("{head}; the repository is empty")),
        _ => GitSourceError::Failed(head),
    }
}

/// GitHub's `message` from an error answer's body, if it has one.
pub fn api_message(body: &[u8]) -> Option<String> {
    let json: Value = serde_json::from_slice(body).ok()?;
    json.get("message")
        .and_then(Value::as_str)
        .map(|m| m.trim().to_string())
        .filter(|m| !m.is_empty())
}

/// The archive is larger than `limit` bytes.
pub fn archive_too_large(source: &GitSource, sha: &str, limit: u64) -> GitSourceError {
    GitSourceError::Failed(format!(
        "repository {}: the archive of commit {sha} is larger than {limit} bytes, the most a git source artifact may be",
        source.full_name()
    ))
}

/// The archive expands to more than `limit` bytes.
pub fn content_too_large(source: &GitSource, sha: &str, limit: u64) -> GitSourceError {
    GitSourceError::Failed(format!(
        "repository {}: the files of commit {sha} come to more than {limit} bytes",
        source.full_name()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    const ARN: &str = "arn:aws:codeconnections:us-east-1:123456789012:connection/7d2469ff-514a-4e4f-9003-5ca4a43cdc41";
    const SHA: &str = "4b2c2f0a8e3d1c5b7a9f6e4d2c0b8a6f4e2d0c9b";

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn connection() -> GitSource {
        GitSource::from_configuration(
            GitSourceKind::Connection,
            &config(&[
                ("ConnectionArn", ARN),
                ("FullRepositoryId", "acme/app"),
                ("BranchName", "main"),
            ]),
            DEFAULT_CONNECTION_SECRET_PREFIX,
        )
        .unwrap()
    }

    fn github_v1() -> GitSource {
        GitSource::from_configuration(
            GitSourceKind::GitHubV1,
            &config(&[
                ("Owner", "acme"),
                ("Repo", "app"),
                ("Branch", "release/1.x"),
                ("OAuthToken", "ghp_secret"),
            ]),
            DEFAULT_CONNECTION_SECRET_PREFIX,
        )
        .unwrap()
    }

    fn commit() -> Commit {
        parse_commit(
            serde_json::json!({
                "sha": SHA,
                "url": format!("https://api.github.com/repos/acme/app/commits/{SHA}"),
                "html_url": format!("https://github.com/acme/app/commit/{SHA}"),
                "commit": {
                    "message": "Fix the build\n\nlonger text",
                    "author": {"name": "A", "email": "a@example.com", "date": "2026-11-20T10:00:00Z"},
                    "committer": {"name": "C", "email": "c@example.com", "date": "2026-11-20T10:05:00Z"}
                }
            })
            .to_string()
            .as_bytes(),
        )
        .unwrap()
    }

    #[test]
    fn kinds_come_from_the_action_type() {
        let id = |category, owner, provider: &str, version: &str| ActionTypeId {
            category,
            owner,
            provider: provider.into(),
            version: version.into(),
        };
        use ActionCategory::*;
        use ActionOwner::*;
        assert_eq!(
            GitSourceKind::of(&id(Source, Aws, "CodeStarSourceConnection", "1")),
            Some(GitSourceKind::Connection)
        );
        assert_eq!(
            GitSourceKind::of(&id(Source, ThirdParty, "GitHub", "1")),
            Some(GitSourceKind::GitHubV1)
        );
        assert_eq!(
            GitSourceKind::of(&id(Source, ThirdParty, "GitHub", "2")),
            None
        );
        assert_eq!(GitSourceKind::of(&id(Source, Aws, "S3", "1")), None);
    }

    #[test]
    fn a_connection_source_reads_its_configuration() {
        let s = connection();
        assert_eq!((s.owner.as_str(), s.repo.as_str()), ("acme", "app"));
        assert_eq!(s.full_name(), "acme/app");
        assert_eq!(s.branch, "main");
        assert_eq!(s.format, OutputArtifactFormat::CodeZip);
        assert_eq!(
            s.token,
            TokenSource::Secret(
                "pipewright/connections/7d2469ff-514a-4e4f-9003-5ca4a43cdc41".into()
            )
        );
        assert!(s.check_format().is_ok());
    }

    #[test]
    fn a_github_v1_source_reads_its_configuration() {
        let s = github_v1();
        assert_eq!(s.full_name(), "acme/app");
        assert_eq!(s.branch, "release/1.x");
        assert_eq!(s.token, TokenSource::OAuthToken);
        assert_eq!(s.connection_arn, None);
    }

    /// A table row: the action kind, its configuration, what the error says.
    type ConfigCase<'a> = (GitSourceKind, &'a [(&'a str, &'a str)], &'a str);

    #[test]
    fn configuration_errors_name_the_key() {
        let cases: &[ConfigCase] = &[
            (
                GitSourceKind::Connection,
                &[("FullRepositoryId", "a/b"), ("BranchName", "main")],
                "configuration ConnectionArn is required",
            ),
            (
                GitSourceKind::Connection,
                &[("ConnectionArn", "nope"), ("FullRepositoryId", "a/b"), ("BranchName", "m")],
                "configuration ConnectionArn: `nope` is not an ARN",
            ),
            (
                GitSourceKind::Connection,
                &[
                    ("ConnectionArn", "arn:aws:s3:::bucket/connection"),
                    ("FullRepositoryId", "a/b"),
                    ("BranchName", "m"),
                ],
                "is not a connection ARN",
            ),
            (
                GitSourceKind::Connection,
                &[("ConnectionArn", ARN), ("FullRepositoryId", "just-a-name"), ("BranchName", "m")],
                "configuration FullRepositoryId: `just-a-name` is not <owner>/<repository>",
            ),
            (
                GitSourceKind::Connection,
                &[("ConnectionArn", ARN), ("FullRepositoryId", "group/sub/repo"), ("BranchName", "m")],
                "is not <owner>/<repository>",
            ),
            (
                GitSourceKind::Connection,
                &[("ConnectionArn", ARN), ("FullRepositoryId", "a/b c"), ("BranchName", "m")],
                "configuration FullRepositoryId: `b c` is not a repository owner or name",
            ),
            (
                GitSourceKind::Connection,
                &[("ConnectionArn", ARN), ("FullRepositoryId", "a/b"), ("BranchName", "a..b")],
                "configuration BranchName: `a..b` is not a branch name",
            ),
            (
                GitSourceKind::Connection,
                &[
                    ("ConnectionArn", ARN),
                    ("FullRepositoryId", "a/b"),
                    ("BranchName", "m"),
                    ("OutputArtifactFormat", "TARBALL"),
                ],
                "configuration OutputArtifactFormat: `TARBALL` is neither CODE_ZIP nor CODEBUILD_CLONE_REF",
            ),
            (
                GitSourceKind::GitHubV1,
                &[("Owner", "a"), ("Repo", "b"), ("Branch", "m")],
                "configuration OAuthToken is required",
            ),
            (
                GitSourceKind::GitHubV1,
                &[("Owner", "a"), ("Repo", "b"), ("Branch", "  "), ("OAuthToken", "t")],
                "configuration Branch is required",
            ),
        ];
        for (kind, pairs, want) in cases {
            let err = GitSource::from_configuration(*kind, &config(pairs), "p/").unwrap_err();
            assert_eq!(err.code(), "ConfigurationError", "{pairs:?}");
            assert!(err.to_string().contains(want), "{pairs:?}: {err}");
        }
    }

    #[test]
    fn codebuild_clone_ref_is_refused_naming_the_key() {
        let s = GitSource::from_configuration(
            GitSourceKind::Connection,
            &config(&[
                ("ConnectionArn", ARN),
                ("FullRepositoryId", "acme/app"),
                ("BranchName", "main"),
                ("OutputArtifactFormat", "CODEBUILD_CLONE_REF"),
            ]),
            "p/",
        )
        .unwrap();
        let err = s.check_format().unwrap_err();
        assert_eq!(err.code(), "ConfigurationError");
        assert!(
            err.to_string()
                .starts_with("configuration OutputArtifactFormat: CODEBUILD_CLONE_REF"),
            "{err}"
        );
    }

    #[test]
    fn connection_ids_come_from_both_arn_services() {
        assert_eq!(
            connection_id("arn:aws:codestar-connections:eu-west-1:1:connection/abc-123").unwrap(),
            "abc-123"
        );
        assert_eq!(
            connection_id("arn:aws-cn:codeconnections:cn-north-1:1:connection/x").unwrap(),
            "x"
        );
        assert!(connection_id("arn:aws:codeconnections:r:1:host/x").is_err());
        assert!(connection_id("arn:aws:codeconnections:r:1:connection/../x").is_err());
        assert!(connection_id("arn:aws:codeconnections:r:1:connection/").is_err());
    }

    #[test]
    fn full_repository_ids_split_into_owner_and_repo() {
        assert_eq!(
            parse_full_repository_id("Acme-Corp/my.app_2").unwrap(),
            ("Acme-Corp".into(), "my.app_2".into())
        );
        assert_eq!(
            parse_full_repository_id("acme/app.git").unwrap(),
            ("acme".into(), "app".into())
        );
        for bad in [
            "", "/", "a/", "/b", "a/b/c", "../b", "a/..", "a/b?x", "a/%2e",
        ] {
            assert!(parse_full_repository_id(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn the_pinned_commit_is_the_commit_id_override() {
        let o = |t: &str, v: &str| SourceRevisionOverride {
            action_name: "Src".into(),
            revision_type: t.into(),
            revision_value: v.into(),
        };
        assert_eq!(pinned_commit(&[]).unwrap(), None);
        assert_eq!(
            pinned_commit(&[o("COMMIT_ID", &SHA.to_uppercase())]).unwrap(),
            Some(SHA.to_string())
        );
        assert_eq!(
            pinned_commit(&[o("COMMIT_ID", "4b2c2f0")]).unwrap(),
            Some("4b2c2f0".into())
        );
        let err = pinned_commit(&[o("S3_OBJECT_VERSION_ID", "v1")]).unwrap_err();
        assert_eq!(err.code(), "ConfigurationError");
        assert!(err.to_string().contains("S3_OBJECT_VERSION_ID"), "{err}");
        for bad in ["main", "4b2c2f", "4b2c2f0/../x", &"a".repeat(65)] {
            assert!(pinned_commit(&[o("COMMIT_ID", bad)]).is_err(), "{bad}");
        }
    }

    #[test]
    fn urls_are_built_on_the_base() {
        let s = connection();
        let api = GitApi::new("https://ghe.example.com/api/v3/").unwrap();
        assert_eq!(api.base(), "https://ghe.example.com/api/v3");
        assert_eq!(
            api.commit_url(&s, "feature/new thing#1"),
            "https://ghe.example.com/api/v3/repos/acme/app/commits/feature/new%20thing%231"
        );
        assert_eq!(
            api.tarball_url(&s, SHA),
            format!("https://ghe.example.com/api/v3/repos/acme/app/tarball/{SHA}")
        );
        assert_eq!(api.provider_type(), "GitHubEnterpriseServer");
        assert_eq!(
            GitApi::new(DEFAULT_API_BASE_URL).unwrap().provider_type(),
            "GitHub"
        );
        assert_eq!(
            GitApi::new("http://127.0.0.1:8080").unwrap().base(),
            "http://127.0.0.1:8080"
        );
        for bad in [
            "",
            "ftp://x",
            "https://",
            "https:///x",
            "api.github.com",
            "https://x?y=1",
            "https://u:p@x",
        ] {
            let err = GitApi::new(bad).unwrap_err();
            assert_eq!(err.code(), "ConfigurationError", "{bad}");
        }
        // A credential in the URL is never echoed.
        let err = GitApi::new("https://user:ghp_secret@ghe.example.com").unwrap_err();
        assert!(!err.to_string().contains("ghp_secret"), "{err}");
    }

    #[test]
    fn redirects_resolve_and_drop_the_token_off_origin() {
        let from = "https://api.github.com/repos/a/b/tarball/abc";
        assert_eq!(origin(from), Some("https://api.github.com"));
        assert_eq!(
            origin("http://127.0.0.1:8080"),
            Some("http://127.0.0.1:8080")
        );
        assert_eq!(origin("ftp://x/y"), None);
        assert_eq!(origin("https:///y"), None);
        assert_eq!(
            redirect_target(
                from,
                "https://codeload.github.com/a/b/legacy.tar.gz/abc?token=x"
            )
            .as_deref(),
            Some("https://codeload.github.com/a/b/legacy.tar.gz/abc?token=x")
        );
        assert_eq!(
            redirect_target("http://127.0.0.1:9/x/y", "/archive/1.tar.gz").as_deref(),
            Some("http://127.0.0.1:9/archive/1.tar.gz")
        );
        assert_eq!(redirect_target(from, "//evil.example/x"), None);
        assert_eq!(redirect_target(from, "relative/path"), None);
        assert_eq!(redirect_target(from, "file:///etc/passwd"), None);
        assert!(keeps_authorization(from, "https://API.github.com/other"));
        assert!(!keeps_authorization(from, "https://codeload.github.com/x"));
        assert!(!keeps_authorization(from, "http://api.github.com/x"));
    }

    #[test]
    fn commits_are_read_from_the_api_json() {
        let c = commit();
        assert_eq!(c.sha, SHA);
        assert_eq!(c.message, "Fix the build\n\nlonger text");
        assert_eq!(c.author_date.as_deref(), Some("2026-11-20T10:00:00Z"));
        assert_eq!(c.committer_date.as_deref(), Some("2026-11-20T10:05:00Z"));
        assert_eq!(
            c.html_url.as_deref(),
            Some(format!("https://github.com/acme/app/commit/{SHA}").as_str())
        );
        for bad in [&b"not json"[..], b"{}", br#"{"sha": "xyz"}"#, br#"[1]"#] {
            let err = parse_commit(bad).unwrap_err();
            assert_eq!(err.code(), "JobFailed");
        }
        let long = serde_json::json!({"sha": SHA, "commit": {"message": "x".repeat(5000)}});
        let c = parse_commit(long.to_string().as_bytes()).unwrap();
        assert_eq!(c.message.chars().count(), MAX_MESSAGE_CHARS);
        assert!(c.message.ends_with("..."));
        assert_eq!(c.author_date, None);
    }

    #[test]
    fn the_answer_must_be_the_pinned_commit() {
        let s = connection();
        assert!(check_pinned(&s, "4b2c2f0", &commit()).is_ok());
        let err = check_pinned(&s, "0000000", &commit()).unwrap_err();
        assert_eq!(err.code(), "RevisionUnavailable");
    }

    #[test]
    fn connection_variables_are_codepipelines() {
        let vars = output_variables(&connection(), &commit());
        let want = BTreeMap::from([
            ("CommitId".to_string(), SHA.to_string()),
            ("BranchName".to_string(), "main".to_string()),
            ("AuthorDate".to_string(), "2026-11-20T10:00:00Z".to_string()),
            (
                "CommitMessage".to_string(),
                "Fix the build\n\nlonger text".to_string(),
            ),
            ("FullRepositoryName".to_string(), "acme/app".to_string()),
            ("ConnectionArn".to_string(), ARN.to_string()),
        ]);
        assert_eq!(vars, want);
    }

    #[test]
    fn github_v1_variables_are_codepipelines() {
        let vars = output_variables(&github_v1(), &commit());
        let keys: Vec<&str> = vars.keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "AuthorDate",
                "BranchName",
                "CommitId",
                "CommitMessage",
                "CommitUrl",
                "CommitterDate",
                "RepositoryName"
            ]
        );
        assert_eq!(vars["BranchName"], "release/1.x");
        assert_eq!(vars["RepositoryName"], "app");
        assert_eq!(vars["CommitterDate"], "2026-11-20T10:05:00Z");
        assert_eq!(
            vars["CommitUrl"],
            format!("https://api.github.com/repos/acme/app/commits/{SHA}")
        );
    }

    #[test]
    fn revision_summaries_are_codepipelines() {
        let api = GitApi::new(DEFAULT_API_BASE_URL).unwrap();
        let summary = revision_summary(&connection(), &api, &commit());
        let json: Value = serde_json::from_str(&summary).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"ProviderType": "GitHub", "CommitMessage": "Fix the build\n\nlonger text"})
        );
        assert_eq!(
            revision_summary(&github_v1(), &api, &commit()),
            "Fix the build\n\nlonger text"
        );
    }

    #[test]
    fn archive_paths_lose_the_top_level_folder() {
        let mut paths = ArchivePaths::default();
        let top = "acme-app-4b2c2f0";
        assert_eq!(paths.relative("pax_global_header").unwrap(), None);
        assert_eq!(paths.relative(&format!("{top}/")).unwrap(), None);
        assert_eq!(
            paths
                .relative(&format!("{top}/README.md"))
                .unwrap()
                .as_deref(),
            Some("README.md")
        );
        assert_eq!(
            paths.relative(&format!("{top}/src/")).unwrap().as_deref(),
            Some("src")
        );
        assert_eq!(
            paths
                .relative(&format!("./{top}/src/main.rs"))
                .unwrap()
                .as_deref(),
            Some("src/main.rs")
        );
        let err = paths.relative("other/README.md").unwrap_err();
        assert_eq!(err.code(), "JobFailed");
        assert!(err.to_string().contains("outside its folder"), "{err}");
    }

    #[test]
    fn tokens_stay_out_of_debug_output() {
        let secret = ConnectionSecret::parse("s", " ghp_abc \n").unwrap();
        assert_eq!(secret.token.expose(), "ghp_abc");
        assert_eq!(secret.api_base_url, None);
        assert!(!format!("{secret:?}").contains("ghp_abc"));
        let secret = ConnectionSecret::parse(
            "s",
            r#"{"token": "ghp_x", "apiBaseUrl": "https://ghe.example.com/api/v3"}"#,
        )
        .unwrap();
        assert_eq!(secret.token.expose(), "ghp_x");
        assert_eq!(
            secret.api_base_url.as_deref(),
            Some("https://ghe.example.com/api/v3")
        );
        for (bad, want) in [
            ("", "is empty"),
            ("{not json", "not a JSON object"),
            (r#"{"apiBaseUrl": "x"}"#, "has no `token`"),
        ] {
            let err = ConnectionSecret::parse("pipewright/connections/x", bad).unwrap_err();
            assert!(err.to_string().contains(want), "{bad}: {err}");
            assert!(err.to_string().contains("pipewright/connections/x"));
        }
    }

    #[test]
    fn http_failures_say_what_and_why() {
        let s = connection();
        let api = GitApi::new("https://ghe.example.com/api/v3").unwrap();
        let table: &[(ApiCall, u16, bool, &str, &str)] = &[
            (
                ApiCall::BranchHead("main"),
                401,
                false,
                "PermissionError",
                "refused the token in secret pipewright/connections/",
            ),
            (ApiCall::Archive(SHA), 403, true, "JobFailed", "rate limit"),
            (ApiCall::Commit(SHA), 429, false, "JobFailed", "rate limit"),
            (
                ApiCall::Commit(SHA),
                403,
                false,
                "PermissionError",
                "may not read this repository",
            ),
            (
                ApiCall::BranchHead("main"),
                404,
                false,
                "ConfigurationError",
                "no repository acme/app with a branch `main`",
            ),
            (
                ApiCall::BranchHead("main"),
                422,
                false,
                "ConfigurationError",
                "no repository acme/app with a branch `main`",
            ),
            (
                ApiCall::Commit(SHA),
                422,
                false,
                "RevisionUnavailable",
                "is not in repository acme/app",
            ),
            (
                ApiCall::Archive(SHA),
                404,
                false,
                "RevisionUnavailable",
                "is not in repository acme/app",
            ),
            (
                ApiCall::BranchHead("main"),
                409,
                false,
                "ConfigurationError",
                "the repository is empty",
            ),
            (ApiCall::Archive(SHA), 502, false, "JobFailed", "HTTP 502"),
        ];
        for (call, status, limited, code, want) in table {
            let err = http_error(&s, &api, *call, *status, Some("Not Found"), *limited);
            assert_eq!(err.code(), *code, "{call} {status}");
            let text = err.to_string();
            assert!(
                text.starts_with("repository acme/app at https://ghe.example.com/api/v3: "),
                "{text}"
            );
            assert!(
                text.contains(&format!("HTTP {status}: Not Found")),
                "{text}"
            );
            assert!(text.contains(want), "{text}");
        }
        let v1 = http_error(
            &github_v1(),
            &api,
            ApiCall::BranchHead("m"),
            401,
            None,
            false,
        );
        assert!(
            v1.to_string().contains("the OAuthToken configuration"),
            "{v1}"
        );
        assert!(!v1.to_string().contains("ghp_secret"));
    }

    #[test]
    fn api_messages_are_read_from_error_bodies() {
        assert_eq!(
            api_message(br#"{"message": "Bad credentials", "documentation_url": "x"}"#).as_deref(),
            Some("Bad credentials")
        );
        assert_eq!(api_message(b"<html>"), None);
        assert_eq!(api_message(br#"{"message": ""}"#), None);
    }

    #[test]
    fn size_errors_name_the_repository() {
        let s = connection();
        let err = archive_too_large(&s, SHA, 100);
        assert_eq!(err.code(), "JobFailed");
        assert!(err.to_string().contains("repository acme/app"));
        assert!(err.to_string().contains("larger than 100 bytes"));
        assert!(content_too_large(&s, SHA, 7)
            .to_string()
            .contains("more than 7 bytes"));
    }
}
