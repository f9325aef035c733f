//! The GitHub REST API: its URLs, redirects and which of them keep the token, and what an
//! HTTP error answer means for the user.

use std::fmt;

use serde_json::Value;

use super::{cut, GitSource, GitSourceError, TokenSource, DEFAULT_API_BASE_URL};

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

/// What a git reference keeps unencoded in a URL path: RFC 3986's unreserved characters and `/`
/// (GitHub takes `feature/x` as is).
const REF_ENCODE: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Percent-encode a git reference for a URL path.
fn encode_ref(reference: &str) -> String {
    percent_encoding::utf8_percent_encode(reference, REF_ENCODE).to_string()
}

/// The most redirects followed for one request (GitHub answers an archive request with one).
pub const MAX_REDIRECTS: usize = 5;

/// `scheme://host[:port]` of an absolute `http(s)` URL, as the URL standard serializes an
/// origin: lower case, without credentials (`user:pass@`) or a default port.
pub fn origin(url: &str) -> Option<String> {
    let (_, authority) = url.split_once("://")?;
    // An empty authority (`https:///x`) names no host (the URL standard would read `x` as one).
    if authority.is_empty() || authority.starts_with(['/', '?', '#']) {
        return None;
    }
    let parsed = url::Url::parse(url).ok()?;
    (matches!(parsed.scheme(), "http" | "https") && parsed.has_host())
        .then(|| parsed.origin().ascii_serialization())
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
    matches!((origin(from), origin(to)), (Some(a), Some(b)) if a == b)
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
