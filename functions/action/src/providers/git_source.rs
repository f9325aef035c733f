//! `Source/AWS/CodeStarSourceConnection` and `Source/ThirdParty/GitHub` (version 1): the files of
//! one commit, fetched over HTTP(S) from the GitHub REST API, become the output artifact (a zip,
//! CodePipeline's `CODE_ZIP`).
//!
//! What to fetch and what it means is decided in `pipewright_core::git_source`; here are the
//! requests (redirects followed, the token sent only to the API's own origin), the download
//! (streamed to a file, at most [`MAX_ARCHIVE_BYTES`]), the extraction (GitHub's top-level folder
//! dropped, symbolic links left out as CodePipeline's `CODE_ZIP` does, at most
//! [`MAX_CONTENT_BYTES`]) and the upload through the artifact store.

use std::fs::File;
use std::io::{BufReader, Read, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Response, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use pipewright_aws::artifacts::{safe_relative, ArtifactError, S3Artifacts};
use pipewright_aws::connections::{ConnectionSecrets, SecretError};
use pipewright_core::declaration::SecretReference;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, SourceRevision,
};
use pipewright_core::git_source::{
    self as git, ApiCall, Commit, ConnectionSecret, GitApi, GitSource, GitSourceError,
    GitSourceKind, Token, TokenSource, MAX_ARCHIVE_BYTES, MAX_CONTENT_BYTES, MAX_REDIRECTS,
};
use tokio::io::AsyncWriteExt;

use super::{remove_work_dir, Context, ProviderError};

/// How long one request may wait for the answer's head.
const HEAD_TIMEOUT: Duration = Duration::from_secs(60);

/// The largest commit JSON read (GitHub lists up to 300 changed files with their patches).
const MAX_JSON_BYTES: u64 = 32 << 20;

/// The most of an error answer's body read for its message.
const MAX_ERROR_BODY: u64 = 64 << 10;

/// Work stops this long before the Lambda deadline, so the failure is recorded.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

impl From<GitSourceError> for ProviderError {
    fn from(e: GitSourceError) -> Self {
        match e {
            GitSourceError::Configuration(m) => Self::Configuration(m),
            GitSourceError::Permission(m) => Self::Permission(m),
            GitSourceError::RevisionUnavailable(m) => Self::RevisionUnavailable(m),
            GitSourceError::Failed(m) => Self::Job(m),
        }
    }
}

type HttpClient = Client<HttpsConnector<HttpConnector>, Empty<Bytes>>;

/// What git source actions share: the HTTP client, the stack's API base URL and where
/// connection tokens are.
#[derive(Debug, Clone)]
pub struct GitSources {
    http: Result<HttpClient, String>,
    api_base_url: String,
    secrets: ConnectionSecrets,
    /// Archive and content limits (CodePipeline's by default; smaller in tests).
    limits: Limits,
}

#[derive(Debug, Clone, Copy)]
struct Limits {
    archive: u64,
    content: u64,
}

impl GitSources {
    /// Git sources fetching from `api_base_url` (the stack's `GitApiBaseUrl`), with connection
    /// tokens from `secrets`.
    pub fn new(api_base_url: &str, secrets: ConnectionSecrets) -> Self {
        Self {
            http: https_client(),
            api_base_url: api_base_url.to_string(),
            secrets,
            limits: Limits {
                archive: MAX_ARCHIVE_BYTES,
                content: MAX_CONTENT_BYTES,
            },
        }
    }

    /// The API base URL of the process environment: `GIT_API_BASE_URL`, else github.com's.
    pub fn api_base_url_from_env() -> String {
        std::env::var("GIT_API_BASE_URL")
            .ok()
            .filter(|v| !v.trim().is_empty())
            .unwrap_or_else(|| git::DEFAULT_API_BASE_URL.to_string())
    }
}

/// An HTTP(S) client with the system's root certificates.
fn https_client() -> Result<HttpClient, String> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let connector = hyper_rustls::HttpsConnectorBuilder::new()
        .with_provider_and_native_roots(provider)
        .map_err(|e| format!("no root certificates for HTTPS: {e}"))?
        .https_or_http()
        .enable_http1()
        .build();
    Ok(Client::builder(TokioExecutor::new()).build(connector))
}

/// Fetch the commit and write its files as the output artifact.
pub async fn run(
    git_sources: &GitSources,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
    deadline: Option<Instant>,
) -> Result<ActionOutcome, ProviderError> {
    let id = &prepared.declaration.action_type_id;
    let kind = GitSourceKind::of(id).ok_or_else(|| {
        ProviderError::Configuration(format!("provider {id} is not a git source"))
    })?;
    let source =
        GitSource::from_configuration(kind, &prepared.configuration, git_sources.secrets.prefix())?;
    source.check_format()?;
    let output = prepared.outputs.first().ok_or_else(|| {
        ProviderError::Configuration("a git source action needs one output artifact".into())
    })?;
    let pinned = git::pinned_commit(&prepared.source_revision_overrides)?;
    let (token, api) = credentials(git_sources, &source, prepared).await?;
    let http = git_sources
        .http
        .as_ref()
        .map_err(|e| ProviderError::Job(e.clone()))?;
    let fetch = Fetch {
        http,
        api: &api,
        source: &source,
        token: &token,
        deadline: deadline.map(|d| d - DEADLINE_MARGIN),
    };

    let commit = fetch.commit(pinned.as_deref()).await?;
    if let Some(pinned) = &pinned {
        git::check_pinned(&source, pinned, &commit)?;
    }
    tracing::info!(repository = %source.full_name(), commit = %commit.sha, pinned = pinned.is_some(), "fetching commit");

    let work = work_root.join(format!(
        "pipewright-{}",
        prepared.record.action_execution_id
    ));
    let result = fetch_into_artifact(
        &fetch,
        git_sources.limits,
        artifacts,
        &commit,
        &work,
        output,
    )
    .await;
    remove_work_dir(work).await;
    let location = result?;

    let summary = git::revision_summary(&source, &api, &commit);
    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts: vec![ArtifactDetail {
            name: output.name.clone(),
            s3_location: location,
        }],
        output_variables: git::output_variables(&source, &commit),
        result: ActionExecutionResult {
            external_execution_id: Some(commit.sha.clone()),
            external_execution_summary: Some(summary.clone()),
            external_execution_url: commit.html_url.clone(),
            ..Default::default()
        },
        source_revision: Some(SourceRevision {
            action_name: prepared.record.action_name.clone(),
            revision_id: Some(commit.sha.clone()),
            revision_summary: Some(summary),
            revision_url: commit.html_url.clone(),
            revision_change_id: None,
        }),
        log_tail: None,
        log_location: None,
    })
}

/// The token and the API it is for: a connection's secret (which may name its own API base
/// URL), or GitHub version 1's `OAuthToken`.
async fn credentials(
    git_sources: &GitSources,
    source: &GitSource,
    prepared: &PreparedAction,
) -> Result<(Token, GitApi), ProviderError> {
    let (token, base) = match &source.token {
        TokenSource::Secret(name) => {
            let value = git_sources.secrets.read(name).await.map_err(|e| match e {
                SecretError::NotFound(_) => ProviderError::Configuration(format!(
                    "connection {} has no token: create the Secrets Manager secret {name} holding a token that can read repository {}",
                    source.connection_arn.as_deref().unwrap_or_default(),
                    source.full_name()
                )),
                SecretError::AccessDenied(m) => ProviderError::Permission(m),
                SecretError::NoSuchValue(m) => ProviderError::Configuration(m),
                SecretError::Other(m) => ProviderError::Job(m),
            })?;
            let secret = ConnectionSecret::parse(name, &value)?;
            let pipeline = prepared.pipeline_name();
            secret.check_pipeline(name, pipeline)?;
            (secret.token, secret.api_base_url)
        }
        TokenSource::OAuthToken => {
            let required =
                || ProviderError::Configuration("configuration OAuthToken is required".into());
            let value = prepared
                .configuration
                .get("OAuthToken")
                .ok_or_else(required)?;
            let value = if SecretReference::is_reference(value) {
                read_token_reference(git_sources, value).await?
            } else {
                // Stored before tokens moved to secrets, or by a store without one.
                value.clone()
            };
            (Token::new(&value).ok_or_else(required)?, None)
        }
    };
    let api = GitApi::new(base.as_deref().unwrap_or(&git_sources.api_base_url))?;
    Ok((token, api))
}

/// The token an `OAuthToken` reference (`{{resolve:secretsmanager:...}}`) stands for, read
/// with the pipeline's role.
async fn read_token_reference(
    git_sources: &GitSources,
    value: &str,
) -> Result<String, ProviderError> {
    let reference = SecretReference::parse(value)
        .map_err(|e| ProviderError::Configuration(format!("configuration OAuthToken: {e}")))?;
    git_sources
        .secrets
        .read_reference(&reference)
        .await
        .map_err(|e| match e {
            SecretError::NotFound(name) => ProviderError::Configuration(format!(
                "configuration OAuthToken: there is no secret {name}"
            )),
            SecretError::NoSuchValue(m) => {
                ProviderError::Configuration(format!("configuration OAuthToken: {m}"))
            }
            SecretError::AccessDenied(m) => ProviderError::Permission(m),
            SecretError::Other(m) => ProviderError::Job(m),
        })
}

/// One action's requests.
struct Fetch<'a> {
    http: &'a HttpClient,
    api: &'a GitApi,
    source: &'a GitSource,
    token: &'a Token,
    /// When to give up (a little before the Lambda deadline).
    deadline: Option<Instant>,
}

impl Fetch<'_> {
    /// The pinned commit, else the head of the branch.
    async fn commit(&self, pinned: Option<&str>) -> Result<Commit, ProviderError> {
        let (call, reference) = match pinned {
            Some(sha) => (ApiCall::Commit(sha), sha),
            None => (
                ApiCall::BranchHead(&self.source.branch),
                self.source.branch.as_str(),
            ),
        };
        let url = self.api.commit_url(self.source, reference);
        let response = self.get(&url, "application/vnd.github+json", call).await?;
        let body = self.read_body(response, MAX_JSON_BYTES, call).await?;
        Ok(git::parse_commit(&body)?)
    }

    /// Stream the archive of `sha` to `file`; returns its size.
    async fn archive(&self, sha: &str, file: &Path, limit: u64) -> Result<u64, ProviderError> {
        let call = ApiCall::Archive(sha);
        let url = self.api.tarball_url(self.source, sha);
        let response = self.get(&url, "application/vnd.github+json", call).await?;
        let too_large = || ProviderError::from(git::archive_too_large(self.source, sha, limit));
        if let Some(length) = response
            .headers()
            .get(hyper::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
        {
            if length > limit {
                return Err(too_large());
            }
        }
        let io = |what: &str, e: std::io::Error| {
            ProviderError::Job(format!("{what} {}: {e}", file.display()))
        };
        let mut out = tokio::fs::File::create(file)
            .await
            .map_err(|e| io("creating", e))?;
        let mut body = response.into_body();
        let mut written = 0u64;
        while let Some(frame) = self.in_time(body.frame(), call).await? {
            let frame = frame.map_err(|e| self.transport(call, &e))?;
            let Ok(data) = frame.into_data() else {
                continue;
            };
            written += data.len() as u64;
            if written > limit {
                return Err(too_large());
            }
            out.write_all(&data).await.map_err(|e| io("writing", e))?;
        }
        out.flush().await.map_err(|e| io("writing", e))?;
        Ok(written)
    }

    /// `GET url` with the token, following redirects (the token goes only to the API's origin);
    /// an error answer becomes the error it means.
    async fn get(
        &self,
        url: &str,
        accept: &str,
        call: ApiCall<'_>,
    ) -> Result<Response<Incoming>, ProviderError> {
        let mut current = url.to_string();
        for _ in 0..=MAX_REDIRECTS {
            let mut request = hyper::Request::get(&current)
                .header(hyper::header::ACCEPT, accept)
                .header(hyper::header::USER_AGENT, "pipewright")
                .header("X-GitHub-Api-Version", "2022-11-28");
            if git::keeps_authorization(url, &current) {
                request = request.header(
                    hyper::header::AUTHORIZATION,
                    format!("Bearer {}", self.token.expose()),
                );
            }
            let request = request.body(Empty::<Bytes>::new()).map_err(|e| {
                ProviderError::Configuration(format!("{call}: bad request URL {current}: {e}"))
            })?;
            let response =
                match tokio::time::timeout(HEAD_TIMEOUT, self.http.request(request)).await {
                    Ok(Ok(response)) => response,
                    Ok(Err(e)) => return Err(self.transport(call, &e)),
                    Err(_) => {
                        return Err(ProviderError::Job(format!(
                            "repository {} at {}: {call}: no answer within {}s",
                            self.source.full_name(),
                            self.api.base(),
                            HEAD_TIMEOUT.as_secs()
                        )))
                    }
                };
            let status = response.status();
            if status.is_redirection() && status != StatusCode::NOT_MODIFIED {
                let next = response
                    .headers()
                    .get(hyper::header::LOCATION)
                    .and_then(|l| l.to_str().ok())
                    .and_then(|l| git::redirect_target(&current, l));
                match next {
                    Some(next) => {
                        current = next;
                        continue;
                    }
                    None => {
                        return Err(ProviderError::Job(format!(
                            "repository {} at {}: {call}: HTTP {} without a usable Location",
                            self.source.full_name(),
                            self.api.base(),
                            status.as_u16()
                        )))
                    }
                }
            }
            if status.is_success() {
                return Ok(response);
            }
            let rate_limited = response
                .headers()
                .get("x-ratelimit-remaining")
                .is_some_and(|v| v.as_bytes() == b"0");
            let body = self
                .read_body(response, MAX_ERROR_BODY, call)
                .await
                .unwrap_or_default();
            let message = git::api_message(&body);
            return Err(git::http_error(
                self.source,
                self.api,
                call,
                status.as_u16(),
                message.as_deref(),
                rate_limited,
            )
            .into());
        }
        Err(ProviderError::Job(format!(
            "repository {} at {}: {call}: more than {MAX_REDIRECTS} redirects",
            self.source.full_name(),
            self.api.base()
        )))
    }

    /// At most `limit` bytes of the body (more is an error).
    async fn read_body(
        &self,
        response: Response<Incoming>,
        limit: u64,
        call: ApiCall<'_>,
    ) -> Result<Vec<u8>, ProviderError> {
        let mut body = response.into_body();
        let mut out = Vec::new();
        while let Some(frame) = self.in_time(body.frame(), call).await? {
            let frame = frame.map_err(|e| self.transport(call, &e))?;
            if let Ok(data) = frame.into_data() {
                if out.len() as u64 + data.len() as u64 > limit {
                    return Err(ProviderError::Job(format!(
                        "repository {} at {}: {call}: the answer is larger than {limit} bytes",
                        self.source.full_name(),
                        self.api.base()
                    )));
                }
                out.extend_from_slice(&data);
            }
        }
        Ok(out)
    }

    /// `work`, unless the deadline comes first.
    async fn in_time<T>(
        &self,
        work: impl std::future::Future<Output = T>,
        call: ApiCall<'_>,
    ) -> Result<T, ProviderError> {
        match self.deadline {
            None => Ok(work.await),
            Some(deadline) => tokio::time::timeout_at(deadline.into(), work)
                .await
                .map_err(|_| {
                    ProviderError::Job(format!(
                        "repository {} at {}: {call}: timed out (the action's run time is over)",
                        self.source.full_name(),
                        self.api.base()
                    ))
                }),
        }
    }

    /// A connection or protocol failure (no answer).
    fn transport(&self, call: ApiCall<'_>, e: &dyn std::error::Error) -> ProviderError {
        ProviderError::Job(pipewright_aws::error_chain(
            &format!(
                "repository {} at {}: {call}",
                self.source.full_name(),
                self.api.base()
            ),
            e,
        ))
    }
}

/// Download, extract and upload the commit's files; returns the artifact's location.
async fn fetch_into_artifact(
    fetch: &Fetch<'_>,
    limits: Limits,
    artifacts: &S3Artifacts,
    commit: &Commit,
    work: &Path,
    output: &ArtifactDetail,
) -> Result<pipewright_core::execution::ArtifactLocation, ProviderError> {
    let files = work.join("files");
    tokio::fs::create_dir_all(&files)
        .await
        .map_err(|e| ProviderError::Job(format!("creating {}: {e}", files.display())))?;
    let archive = work.join("archive.tar.gz");
    let size = fetch.archive(&commit.sha, &archive, limits.archive).await?;
    let (from, to, source, sha) = (
        archive.clone(),
        files.clone(),
        fetch.source.clone(),
        commit.sha.clone(),
    );
    let extracted = tokio::task::spawn_blocking(move || {
        extract_archive(&from, &to, &source, &sha, limits.content)
    })
    .await
    .map_err(|e| ProviderError::Job(format!("extracting the archive: {e}")))??;
    let _ = tokio::fs::remove_file(&archive).await;
    tracing::info!(
        archive_bytes = size,
        files = extracted.files,
        bytes = extracted.bytes,
        symlinks_skipped = extracted.links_skipped,
        "archive extracted"
    );
    if extracted.files == 0 {
        return Err(ProviderError::Job(format!(
            "repository {}: commit {} has no files to put in artifact {}",
            fetch.source.full_name(),
            commit.sha,
            output.name
        )));
    }
    super::upload_output(artifacts, output, &files).await
}

/// What [`extract_archive`] wrote.
#[derive(Debug, Default, PartialEq, Eq)]
struct Extracted {
    files: u64,
    bytes: u64,
    links_skipped: u64,
}

/// Unpack the gzipped tar `archive` into `dest`: paths without the archive's top-level folder,
/// regular files (with their executable bit) and folders only, at most `limit` bytes.
fn extract_archive(
    archive: &Path,
    dest: &Path,
    source: &GitSource,
    sha: &str,
    limit: u64,
) -> Result<Extracted, ProviderError> {
    let bad = |e: std::io::Error| {
        ProviderError::Job(format!(
            "repository {}: the archive of commit {sha} cannot be read: {e}",
            source.full_name()
        ))
    };
    let file = File::open(archive).map_err(bad)?;
    let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(BufReader::new(file)));
    let mut paths = git::ArchivePaths::default();
    let mut stats = Extracted::default();
    let mut buf = vec![0u8; 256 * 1024];
    for entry in tar.entries().map_err(bad)? {
        let mut entry = entry.map_err(bad)?;
        let raw = entry.path_bytes();
        let name = std::str::from_utf8(&raw)
            .map_err(|_| {
                ProviderError::Job(format!(
                    "repository {}: the archive of commit {sha} has a path that is not UTF-8",
                    source.full_name()
                ))
            })?
            .to_string();
        let Some(relative) = paths.relative(&name)? else {
            continue;
        };
        let parts = safe_relative(&relative).context(|| format!("archive entry {name}"))?;
        if parts.is_empty() {
            continue;
        }
        let target: PathBuf = parts.iter().fold(dest.to_path_buf(), |p, c| p.join(c));
        let io = |what: &str, e: std::io::Error| ProviderError::Artifact {
            context: format!("archive entry {name}"),
            source: ArtifactError::Io {
                what: format!("{what} {}", target.display()),
                source: e,
            },
        };
        match entry.header().entry_type() {
            tar::EntryType::Directory => {
                std::fs::create_dir_all(&target).map_err(|e| io("creating", e))?;
            }
            tar::EntryType::Regular | tar::EntryType::Continuous => {
                if let Some(parent) = target.parent() {
                    std::fs::create_dir_all(parent).map_err(|e| io("creating", e))?;
                }
                let executable = entry.header().mode().is_ok_and(|m| m & 0o111 != 0);
                let mut out = File::create(&target).map_err(|e| io("creating", e))?;
                loop {
                    let n = match entry.read(&mut buf) {
                        Ok(0) => break,
                        Ok(n) => n,
                        Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
                        Err(e) => return Err(bad(e)),
                    };
                    stats.bytes += n as u64;
                    if stats.bytes > limit {
                        return Err(git::content_too_large(source, sha, limit).into());
                    }
                    out.write_all(&buf[..n]).map_err(|e| io("writing", e))?;
                }
                let mode = if executable { 0o755 } else { 0o644 };
                std::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
                    .map_err(|e| io("setting the mode of", e))?;
                stats.files += 1;
            }
            tar::EntryType::Symlink | tar::EntryType::Link => stats.links_skipped += 1,
            // pax and GNU headers are read by the tar reader; anything else (devices, fifos,
            // submodule placeholders have none) is not part of a commit's files.
            _ => {}
        }
    }
    Ok(stats)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use pipewright_core::git_source::DEFAULT_CONNECTION_SECRET_PREFIX;

    use super::*;
    use crate::providers::test_support::{header, loopback};
    use pipewright_core::execution::FailureType;

    const SHA: &str = "4b2c2f0a8e3d1c5b7a9f6e4d2c0b8a6f4e2d0c9b";
    const TOP: &str = "acme-app-4b2c2f0";

    /// One request as the server saw it: path and `Authorization` header.
    type Seen = Arc<Mutex<Vec<(String, Option<String>)>>>;

    /// An answer: status, extra headers, body.
    type Answer = (u16, Vec<(String, String)>, Vec<u8>);

    /// A loopback HTTP/1.1 server answering every request with `route(path)`; returns its base
    /// URL and what it saw.
    async fn server(route: impl Fn(&str) -> Answer + Send + Sync + 'static) -> (String, Seen) {
        let seen: Seen = Arc::default();
        let log = seen.clone();
        let base = loopback(move |head, _body| {
            let path = head.split(' ').nth(1).unwrap_or("").to_string();
            log.lock()
                .unwrap()
                .push((path.clone(), header(head, "authorization")));
            let (status, headers, body) = route(&path);
            let mut out = format!("HTTP/1.1 {status} X\r\nConnection: close\r\n");
            let chunked = headers.iter().any(|(k, _)| k == "Transfer-Encoding");
            for (k, v) in &headers {
                out.push_str(&format!("{k}: {v}\r\n"));
            }
            if !chunked {
                out.push_str(&format!("Content-Length: {}\r\n", body.len()));
            }
            out.push_str("\r\n");
            let mut bytes = out.into_bytes();
            if chunked {
                bytes.extend_from_slice(format!("{:x}\r\n", body.len()).as_bytes());
                bytes.extend_from_slice(&body);
                bytes.extend_from_slice(b"\r\n0\r\n\r\n");
            } else {
                bytes.extend_from_slice(&body);
            }
            bytes
        })
        .await;
        (base, seen)
    }

    fn commit_json() -> Vec<u8> {
        serde_json::json!({
            "sha": SHA,
            "url": format!("https://api.example/repos/acme/app/commits/{SHA}"),
            "html_url": format!("https://example/acme/app/commit/{SHA}"),
            "commit": {"message": "Add run script", "author": {"date": "2026-11-20T10:00:00Z"}, "committer": {"date": "2026-11-20T10:01:00Z"}}
        })
        .to_string()
        .into_bytes()
    }

    /// A gzipped tar as GitHub makes them: a pax global header, one top-level folder, a file,
    /// an executable, a symbolic link.
    fn tarball() -> Vec<u8> {
        let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        let mut tar = tar::Builder::new(gz);
        let mut global = tar::Header::new_ustar();
        let pax = format!("52 comment={SHA}\n");
        global.set_entry_type(tar::EntryType::XGlobalHeader);
        global.set_size(pax.len() as u64);
        tar.append_data(&mut global, "pax_global_header", pax.as_bytes())
            .unwrap();
        let mut dir = tar::Header::new_ustar();
        dir.set_entry_type(tar::EntryType::Directory);
        dir.set_mode(0o775);
        dir.set_size(0);
        tar.append_data(&mut dir, format!("{TOP}/"), &[][..])
            .unwrap();
        for (path, mode, body) in [
            ("README.md", 0o664, &b"# app\n"[..]),
            ("bin/run.sh", 0o775, b"#!/bin/sh\necho run\n"),
        ] {
            let mut h = tar::Header::new_ustar();
            h.set_mode(mode);
            h.set_size(body.len() as u64);
            tar.append_data(&mut h, format!("{TOP}/{path}"), body)
                .unwrap();
        }
        let mut link = tar::Header::new_ustar();
        link.set_entry_type(tar::EntryType::Symlink);
        link.set_size(0);
        tar.append_link(&mut link, format!("{TOP}/docs"), "README.md")
            .unwrap();
        tar.into_inner().unwrap().finish().unwrap()
    }

    fn source() -> GitSource {
        let config: BTreeMap<String, String> = [
            (
                "ConnectionArn",
                "arn:aws:codeconnections:us-east-1:123456789012:connection/c1",
            ),
            ("FullRepositoryId", "acme/app"),
            ("BranchName", "main"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        GitSource::from_configuration(
            GitSourceKind::Connection,
            &config,
            DEFAULT_CONNECTION_SECRET_PREFIX,
        )
        .unwrap()
    }

    async fn with_fetch<T>(base: &str, work: impl AsyncFnOnce(&Fetch<'_>) -> T) -> T {
        let http = https_client().unwrap();
        let api = GitApi::new(base).unwrap();
        let source = source();
        let token = Token::new("tok-123").unwrap();
        let fetch = Fetch {
            http: &http,
            api: &api,
            source: &source,
            token: &token,
            deadline: None,
        };
        work(&fetch).await
    }

    #[tokio::test]
    async fn the_branch_head_and_its_archive_are_fetched_and_extracted() {
        let archive = tarball();
        let (codeload, codeload_seen) = server(move |_| (200, vec![], archive.clone())).await;
        let (api, api_seen) = server(move |path| match path {
            "/repos/acme/app/commits/main" => (200, vec![], commit_json()),
            p if p == format!("/repos/acme/app/tarball/{SHA}") => (
                302,
                vec![(
                    "Location".into(),
                    format!("{codeload}/legacy.tar.gz/{SHA}?token=t"),
                )],
                vec![],
            ),
            _ => (404, vec![], br#"{"message": "Not Found"}"#.to_vec()),
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tar.gz");
        let (commit, size) = with_fetch(&api, async |f| {
            let commit = f.commit(None).await.unwrap();
            let size = f.archive(&commit.sha, &file, 1 << 20).await.unwrap();
            (commit, size)
        })
        .await;
        assert_eq!(commit.sha, SHA);
        assert_eq!(commit.message, "Add run script");
        assert_eq!(size, std::fs::metadata(&file).unwrap().len());

        // The token went to the API only, never to the host the archive was redirected to.
        let api_seen = api_seen.lock().unwrap().clone();
        assert_eq!(api_seen.len(), 2);
        assert!(api_seen
            .iter()
            .all(|(_, auth)| auth.as_deref() == Some("Bearer tok-123")));
        let codeload_seen = codeload_seen.lock().unwrap().clone();
        assert_eq!(
            codeload_seen,
            vec![(format!("/legacy.tar.gz/{SHA}?token=t"), None)]
        );

        let files = dir.path().join("files");
        let stats = extract_archive(&file, &files, &source(), SHA, 1 << 20).unwrap();
        assert_eq!(
            stats,
            Extracted {
                files: 2,
                bytes: 25,
                links_skipped: 1
            }
        );
        assert_eq!(
            std::fs::read_to_string(files.join("README.md")).unwrap(),
            "# app\n"
        );
        let mode = |p: &str| {
            std::fs::metadata(files.join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("README.md"), 0o644);
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert!(!files.join("docs").exists());
        assert!(!files.join("pax_global_header").exists());
        assert!(!files.join(TOP).exists());
    }

    #[tokio::test]
    async fn error_answers_name_the_repository_and_the_reason() {
        let (api, _) = server(|path| match path {
            "/repos/acme/app/commits/main" => {
                (401, vec![], br#"{"message": "Bad credentials"}"#.to_vec())
            }
            _ => (404, vec![], br#"{"message": "Not Found"}"#.to_vec()),
        })
        .await;
        let (head, pinned) = with_fetch(&api, async |f| {
            (
                f.commit(None).await.unwrap_err(),
                f.commit(Some(SHA)).await.unwrap_err(),
            )
        })
        .await;
        assert_eq!(head.code(), FailureType::PermissionError);
        let text = head.to_string();
        assert!(text.starts_with(&format!("repository acme/app at {api}: reading the head of branch `main` failed with HTTP 401: Bad credentials")), "{text}");
        assert!(text.contains("pipewright/connections/c1"), "{text}");
        assert!(!text.contains("tok-123"));
        assert_eq!(pinned.code(), FailureType::RevisionUnavailable);
        assert!(
            pinned
                .to_string()
                .contains(&format!("commit {SHA} is not in repository acme/app")),
            "{pinned}"
        );
    }

    #[tokio::test]
    async fn an_archive_over_the_limit_is_refused() {
        let big = vec![7u8; 4096];
        let (api, _) = server(move |path| {
            if path.ends_with("/chunked") {
                (
                    200,
                    vec![("Transfer-Encoding".into(), "chunked".into())],
                    big.clone(),
                )
            } else {
                (200, vec![], big.clone())
            }
        })
        .await;
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tar.gz");
        for sha in [SHA, "chunked"] {
            let err = with_fetch(&api, async |f| {
                f.archive(sha, &file, 1000).await.unwrap_err()
            })
            .await;
            assert_eq!(err.code(), FailureType::JobFailed);
            assert!(
                err.to_string()
                    .contains("repository acme/app: the archive of commit"),
                "{err}"
            );
            assert!(err.to_string().contains("larger than 1000 bytes"), "{err}");
        }
    }

    #[tokio::test]
    async fn redirect_loops_and_unreachable_hosts_fail_clearly() {
        let (api, _) =
            server(|path| (302, vec![("Location".into(), path.to_string())], vec![])).await;
        let err = with_fetch(&api, async |f| f.commit(None).await.unwrap_err()).await;
        assert!(err.to_string().contains("more than 5 redirects"), "{err}");

        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let err = with_fetch(&base, async |f| f.commit(None).await.unwrap_err()).await;
        assert_eq!(err.code(), FailureType::JobFailed);
        assert!(
            err.to_string().starts_with(&format!(
                "repository acme/app at {base}: reading the head of branch `main`"
            )),
            "{err}"
        );
    }

    #[test]
    fn content_over_the_limit_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tar.gz");
        std::fs::write(&file, tarball()).unwrap();
        let err =
            extract_archive(&file, &dir.path().join("files"), &source(), SHA, 10).unwrap_err();
        assert_eq!(err.code(), FailureType::JobFailed);
        assert!(
            err.to_string().contains("come to more than 10 bytes"),
            "{err}"
        );
    }

    #[test]
    fn an_archive_that_is_not_one_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("a.tar.gz");
        std::fs::write(&file, b"<html>rate limited</html>").unwrap();
        let err =
            extract_archive(&file, &dir.path().join("files"), &source(), SHA, 1 << 20).unwrap_err();
        assert!(
            err.to_string()
                .contains(&format!("the archive of commit {SHA} cannot be read")),
            "{err}"
        );
    }
}
