//! AWS repository source actions: `Source/AWS/CodeCommit` and `Source/AWS/ECR` (version 1).
//!
//! **CodeCommit** hands on the files of one commit as a zip (CodePipeline's `CODE_ZIP`):
//!
//! 1. the commit: the execution's `COMMIT_ID` source revision (an EventBridge push event, a
//!    poll, a StartPipelineExecution `sourceRevisions` override) when there is one, else the
//!    head of `BranchName` (`GetBranch`);
//! 2. `GetCommit`: its message and dates (the output variables);
//! 3. `GetFolder` from `/` down through every sub-folder ([`TreeWalk`]): the files, with their
//!    executable bit; symbolic links and submodules are left out, as `CODE_ZIP` does;
//! 4. `GetBlob` for each file, at most [`MAX_CONTENT_BYTES`] in all.
//!
//! **ECR** hands on `imageDetail.json` ([`image_detail_json`]) describing one image: the
//! execution's `IMAGE_DIGEST` source revision when there is one, else the image tagged
//! `ImageTag` (default `latest`), read with `DescribeImages`.
//!
//! Everything here is pure: reading the configurations, the walk over a commit's folders, the
//! output variables, the revisions and their console URLs, the `imageDetail.json` document,
//! and what an AWS error means for the user. The `action` function makes the calls.

use std::collections::{BTreeMap, BTreeSet, VecDeque};
use std::fmt;

use serde::Serialize;
use serde_with::skip_serializing_none;

use crate::execution::SourceRevisionOverride;
use crate::git_source::{self, Commit, OutputArtifactFormat};

pub use crate::git_source::{pinned_commit, GitSourceError as SourceError, MAX_CONTENT_BYTES};

/// The most folders one commit's walk visits (a guard against a listing that never ends).
pub const MAX_FOLDERS: usize = 100_000;

// ---------------------------------------------------------------------------------------------
// CodeCommit
// ---------------------------------------------------------------------------------------------

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

fn configuration_value<'a>(
    configuration: &'a BTreeMap<String, String>,
    key: &str,
) -> Option<&'a str> {
    configuration
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

fn required(key: &str) -> SourceError {
    SourceError::Configuration(format!("configuration {key} is required"))
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

/// The AWS console's host for `region` (its partition's).
fn console_host(region: &str) -> String {
    if region.starts_with("cn-") {
        "console.amazonaws.cn".to_string()
    } else if region.starts_with("us-gov-") {
        "console.amazonaws-us-gov.com".to_string()
    } else {
        format!("{region}.console.aws.amazon.com")
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

/// One folder as `GetFolder` lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FolderListing {
    /// The sub-folders' `absolutePath`s.
    pub sub_folders: Vec<String>,
    /// The files.
    pub files: Vec<ListedFile>,
    /// How many symbolic links it lists (left out of the artifact).
    pub symbolic_links: usize,
    /// How many submodules it lists (left out: their files are another repository's).
    pub sub_modules: usize,
}

/// A file as `GetFolder` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListedFile {
    /// `absolutePath`.
    pub absolute_path: String,
    /// `blobId`.
    pub blob_id: String,
    /// `fileMode`: `NORMAL`, `EXECUTABLE` (or `SYMLINK`, left out).
    pub mode: Option<String>,
}

/// A file to put in the artifact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedFile {
    /// Its path in the artifact (`/`-separated, relative).
    pub path: String,
    /// The blob to read.
    pub blob_id: String,
    /// Whether it is executable (`fileMode` `EXECUTABLE`).
    pub executable: bool,
}

/// The walk over a commit's folders: which folder to list next, and what the listings add up
/// to. Start at `/`; give each [`TreeWalk::next_folder`]'s listing to [`TreeWalk::add`].
#[derive(Debug)]
pub struct TreeWalk {
    repository: String,
    commit: String,
    pending: VecDeque<String>,
    seen: BTreeSet<String>,
    files: BTreeMap<String, PlannedFile>,
    links_skipped: usize,
    sub_modules_skipped: usize,
    max_folders: usize,
}

impl TreeWalk {
    /// The walk over commit `commit` of `repository`, from its root folder.
    pub fn new(repository: &str, commit: &str) -> Self {
        Self::with_max_folders(repository, commit, MAX_FOLDERS)
    }

    /// The same, visiting at most `max_folders` folders.
    pub fn with_max_folders(repository: &str, commit: &str, max_folders: usize) -> Self {
        Self {
            repository: repository.to_string(),
            commit: commit.to_string(),
            pending: VecDeque::from(["/".to_string()]),
            seen: BTreeSet::from([String::new()]),
            files: BTreeMap::new(),
            links_skipped: 0,
            sub_modules_skipped: 0,
            max_folders,
        }
    }

    /// The next folder to list (`folderPath`), if any.
    pub fn next_folder(&mut self) -> Option<String> {
        self.pending.pop_front()
    }

    /// Take in one folder's listing: its files go into the plan (symbolic links and submodules
    /// are counted and left out), its sub-folders not seen yet are listed later.
    pub fn add(&mut self, listing: FolderListing) -> Result<(), SourceError> {
        self.links_skipped += listing.symbolic_links;
        self.sub_modules_skipped += listing.sub_modules;
        for folder in listing.sub_folders {
            let key = self.artifact_path(&folder, "folder")?;
            if self.seen.insert(key.clone()) {
                if self.seen.len() > self.max_folders {
                    return Err(SourceError::Failed(format!(
                        "CodeCommit repository {}: commit {} has more than {} folders",
                        self.repository, self.commit, self.max_folders
                    )));
                }
                self.pending.push_back(key);
            }
        }
        for file in listing.files {
            if file.mode.as_deref() == Some("SYMLINK") {
                self.links_skipped += 1;
                continue;
            }
            let path = self.artifact_path(&file.absolute_path, "file")?;
            if file.blob_id.is_empty() {
                return Err(SourceError::Failed(format!(
                    "CodeCommit repository {}: GetFolder listed file `{path}` of commit {} without a blob id",
                    self.repository, self.commit
                )));
            }
            self.files.insert(
                path.clone(),
                PlannedFile {
                    path,
                    blob_id: file.blob_id,
                    executable: file.mode.as_deref() == Some("EXECUTABLE"),
                },
            );
        }
        Ok(())
    }

    /// A listed path without its leading `/` (CodeCommit's absolute paths are relative to the
    /// repository's root).
    fn artifact_path(&self, absolute: &str, what: &str) -> Result<String, SourceError> {
        let path = absolute.trim_matches('/');
        if path.is_empty() {
            return Err(SourceError::Failed(format!(
                "CodeCommit repository {}: GetFolder listed a {what} of commit {} without a path",
                self.repository, self.commit
            )));
        }
        Ok(path.to_string())
    }

    /// Whether every folder was listed.
    pub fn is_done(&self) -> bool {
        self.pending.is_empty()
    }

    /// The files to put in the artifact, by path.
    pub fn files(&self) -> Vec<PlannedFile> {
        self.files.values().cloned().collect()
    }

    /// How many symbolic links were left out.
    pub fn links_skipped(&self) -> usize {
        self.links_skipped
    }

    /// How many submodules were left out.
    pub fn sub_modules_skipped(&self) -> usize {
        self.sub_modules_skipped
    }
}

/// The bytes of a commit's files read so far, against a limit.
#[derive(Debug, Clone)]
pub struct ContentBudget {
    limit: u64,
    used: u64,
}

impl ContentBudget {
    /// At most `limit` bytes ([`MAX_CONTENT_BYTES`] for an action).
    pub fn new(limit: u64) -> Self {
        Self { limit, used: 0 }
    }

    /// Count `bytes` more of commit `commit` of `repository`; an error once over the limit.
    pub fn take(&mut self, bytes: u64, repository: &str, commit: &str) -> Result<(), SourceError> {
        self.used = self.used.saturating_add(bytes);
        if self.used > self.limit {
            return Err(SourceError::Failed(format!(
                "CodeCommit repository {repository}: the files of commit {commit} come to more than {} bytes, the most a source artifact may hold",
                self.limit
            )));
        }
        Ok(())
    }

    /// The bytes counted.
    pub fn used(&self) -> u64 {
        self.used
    }
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

// ---------------------------------------------------------------------------------------------
// ECR
// ---------------------------------------------------------------------------------------------

/// The tag an ECR source follows when the configuration names none.
pub const DEFAULT_IMAGE_TAG: &str = "latest";

/// The file an ECR source's artifact holds.
pub const IMAGE_DETAIL_FILE: &str = "imageDetail.json";

/// A `Source/AWS/ECR` action, read from its (resolved) configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EcrSource {
    /// `RepositoryName`.
    pub repository: String,
    /// `ImageTag` (default `latest`).
    pub tag: String,
}

impl EcrSource {
    /// Read `RepositoryName` and `ImageTag`; errors name the key.
    pub fn from_configuration(
        configuration: &BTreeMap<String, String>,
    ) -> Result<Self, SourceError> {
        let get = |key: &str| configuration_value(configuration, key);
        let repository = get("RepositoryName").ok_or_else(|| required("RepositoryName"))?;
        if !is_ecr_repository_name(repository) {
            return Err(SourceError::Configuration(format!(
                "configuration RepositoryName: `{repository}` is not an ECR repository name (2 to 256 lower-case letters, digits, `.`, `_`, `-`, in `/`-separated parts)"
            )));
        }
        let tag = get("ImageTag").unwrap_or(DEFAULT_IMAGE_TAG);
        let tag_ok = tag.len() <= 300
            && tag
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
        if !tag_ok {
            return Err(SourceError::Configuration(format!(
                "configuration ImageTag: `{tag}` is not an image tag (at most 300 letters, digits, `-`, `_`, `.`)"
            )));
        }
        Ok(Self {
            repository: repository.to_string(),
            tag: tag.to_string(),
        })
    }
}

/// ECR's repository names: 2 to 256 characters, `/`-separated parts of lower-case letters and
/// digits joined by single `.`, `_` or `-`.
pub fn is_ecr_repository_name(name: &str) -> bool {
    (2..=256).contains(&name.len())
        && name.split('/').all(|part| {
            let bytes = part.as_bytes();
            !part.is_empty()
                && bytes[0].is_ascii_alphanumeric()
                && bytes[bytes.len() - 1].is_ascii_alphanumeric()
                && part.chars().all(|c| {
                    c.is_ascii_digit() || c.is_ascii_lowercase() || matches!(c, '.' | '_' | '-')
                })
                && !bytes
                    .windows(2)
                    .any(|w| !w[0].is_ascii_alphanumeric() && !w[1].is_ascii_alphanumeric())
        })
}

/// The image the execution pins for this action: the value of its `IMAGE_DIGEST` source
/// revision override (`sha256:` and 64 hexadecimal digits), if any. `overrides` are the
/// action's own; any other revision type is refused.
pub fn pinned_image_digest(
    overrides: &[SourceRevisionOverride],
) -> Result<Option<String>, SourceError> {
    let mut pinned = None;
    for o in overrides {
        if o.revision_type != "IMAGE_DIGEST" {
            return Err(SourceError::Configuration(format!(
                "source revision override {} does not apply to an ECR source (use IMAGE_DIGEST)",
                o.revision_type
            )));
        }
        let digest = o.revision_value.trim().to_ascii_lowercase();
        let ok = digest
            .strip_prefix("sha256:")
            .is_some_and(|hex| hex.len() == 64 && hex.chars().all(|c| c.is_ascii_hexdigit()));
        if !ok {
            return Err(SourceError::Configuration(format!(
                "source revision override IMAGE_DIGEST: `{}` is not an image digest (sha256: and 64 hexadecimal digits)",
                o.revision_value.trim()
            )));
        }
        pinned = Some(digest);
    }
    Ok(pinned)
}

/// An image, as `DescribeImages` describes it.
#[derive(Debug, Clone, PartialEq)]
pub struct Image {
    /// `registryId`: the account of the registry.
    pub registry_id: String,
    /// `repositoryName`.
    pub repository_name: String,
    /// `imageDigest`.
    pub digest: String,
    /// `imageTags`.
    pub tags: Vec<String>,
    /// `imageSizeInBytes`.
    pub size_in_bytes: Option<i64>,
    /// `imagePushedAt`, seconds since the epoch.
    pub pushed_at: Option<f64>,
}

/// The registry's host for `registry_id` in `region`
/// (`<account>.dkr.ecr.<region>.amazonaws.com`, `.amazonaws.com.cn` in China).
pub fn registry_host(registry_id: &str, region: &str) -> String {
    let domain = if region.starts_with("cn-") {
        "amazonaws.com.cn"
    } else {
        "amazonaws.com"
    };
    format!("{registry_id}.dkr.ecr.{region}.{domain}")
}

/// The image's URI by digest: `<registry host>/<repository>@<digest>`.
pub fn image_uri(image: &Image, region: &str) -> String {
    format!(
        "{}/{}@{}",
        registry_host(&image.registry_id, region),
        image.repository_name,
        image.digest
    )
}

/// The image's page in the ECR console.
pub fn image_console_url(image: &Image, region: &str) -> String {
    format!(
        "https://{}/ecr/repositories/private/{}/{}/_/image/{}/details?region={region}",
        console_host(region),
        image.registry_id,
        image.repository_name,
        image.digest
    )
}

/// When the image was pushed, as CodePipeline writes it in `imageDetail.json`:
/// `Mon Jan 21 20:04:00 UTC 2019`.
pub fn pushed_at_text(epoch_seconds: f64) -> String {
    let seconds = epoch_seconds.floor() as i64;
    match chrono::DateTime::from_timestamp(seconds, 0) {
        Some(t) => t.format("%a %b %d %H:%M:%S UTC %Y").to_string(),
        None => crate::events::format_time(epoch_seconds),
    }
}

/// `imageDetail.json` as CodePipeline's ECR source action writes it.
#[skip_serializing_none]
#[derive(Debug, Serialize)]
#[serde(rename_all = "PascalCase")]
struct ImageDetailFile<'a> {
    image_size_in_bytes: Option<String>,
    image_digest: &'a str,
    version: &'static str,
    image_pushed_at: Option<String>,
    registry_id: &'a str,
    repository_name: &'a str,
    #[serde(rename = "ImageURI")]
    image_uri: String,
    image_tags: &'a [String],
}

/// The `imageDetail.json` document of `image` in `region`, in the layout CodePipeline
/// documents (`ImageSizeInBytes` as a string, `Version` `1.0`, `ImagePushedAt` as
/// [`pushed_at_text`], `ImageURI` by digest).
pub fn image_detail_json(image: &Image, region: &str) -> String {
    let file = ImageDetailFile {
        image_size_in_bytes: image.size_in_bytes.map(|s| s.to_string()),
        image_digest: &image.digest,
        version: "1.0",
        image_pushed_at: image.pushed_at.map(pushed_at_text),
        registry_id: &image.registry_id,
        repository_name: &image.repository_name,
        image_uri: image_uri(image, region),
        image_tags: &image.tags,
    };
    let mut text = serde_json::to_string_pretty(&file).expect("plain data serializes");
    text.push('\n');
    text
}

/// The output variables, as CodePipeline names them for ECR: `RegistryId`, `RepositoryName`,
/// `ImageTag` (the tag followed), `ImageDigest`, `ImageURI`.
pub fn ecr_output_variables(
    source: &EcrSource,
    image: &Image,
    region: &str,
) -> BTreeMap<String, String> {
    BTreeMap::from([
        ("RegistryId".to_string(), image.registry_id.clone()),
        ("RepositoryName".to_string(), image.repository_name.clone()),
        ("ImageTag".to_string(), source.tag.clone()),
        ("ImageDigest".to_string(), image.digest.clone()),
        ("ImageURI".to_string(), image_uri(image, region)),
    ])
}

/// What an ECR `DescribeImages` error answer means; `pinned` is the digest asked for, if any.
pub fn ecr_error(
    source: &EcrSource,
    pinned: Option<&str>,
    code: Option<&str>,
    status: Option<u16>,
    message: &str,
) -> SourceError {
    let repo = &source.repository;
    let asked = match pinned {
        Some(digest) => format!("image {digest}"),
        None => format!("the image tagged `{}`", source.tag),
    };
    let said = match code {
        Some(code) if !message.is_empty() => format!("{code}: {}", git_source::cut(message, 300)),
        Some(code) => code.to_string(),
        None => git_source::cut(message, 300),
    };
    let head = format!("ECR repository {repo}: DescribeImages ({asked}) failed: {said}");
    match code.unwrap_or_default() {
        "RepositoryNotFoundException" => SourceError::Configuration(format!(
            "{head}; there is no repository {repo} in this account's registry in this region: check RepositoryName"
        )),
        "ImageNotFoundException" => image_not_found(source, pinned, Some(&head)),
        "AccessDeniedException" => SourceError::Permission(format!(
            "{head}; the action function may not describe images of repository {repo} (ecr:DescribeImages)"
        )),
        _ if status == Some(403) => SourceError::Permission(format!(
            "{head}; the action function may not describe images of repository {repo}"
        )),
        _ => SourceError::Failed(head),
    }
}

/// No image answers the action: a missing tag is the configuration's fault, a missing pinned
/// digest the revision's. `head` is what the failed call said, if one failed.
pub fn image_not_found(
    source: &EcrSource,
    pinned: Option<&str>,
    head: Option<&str>,
) -> SourceError {
    let head = head.map(|h| format!("{h}; ")).unwrap_or_default();
    match pinned {
        Some(digest) => SourceError::RevisionUnavailable(format!(
            "{head}image {digest} is not in ECR repository {}",
            source.repository
        )),
        None => SourceError::Configuration(format!(
            "{head}ECR repository {} has no image tagged `{}`: push one, or check ImageTag",
            source.repository, source.tag
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SHA: &str = "3e0f3b5a1c9e1a7c5d6b2f4e8a9c0d1e2f3a4b5c";
    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd";

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn codecommit() -> CodeCommitSource {
        CodeCommitSource::from_configuration(&config(&[
            ("RepositoryName", "my-app"),
            ("BranchName", "main"),
        ]))
        .unwrap()
    }

    fn ecr() -> EcrSource {
        EcrSource::from_configuration(&config(&[("RepositoryName", "team/web-app")])).unwrap()
    }

    fn o(kind: &str, value: &str) -> SourceRevisionOverride {
        SourceRevisionOverride {
            action_name: "Source".into(),
            revision_type: kind.into(),
            revision_value: value.into(),
        }
    }

    #[test]
    fn a_codecommit_configuration_is_read_and_checked() {
        let source = CodeCommitSource::from_configuration(&config(&[
            ("RepositoryName", " MyWebsite "),
            ("BranchName", "refs/heads/feature/x"),
            ("PollForSourceChanges", "false"),
            ("OutputArtifactFormat", "CODE_ZIP"),
        ]))
        .unwrap();
        assert_eq!(
            source,
            CodeCommitSource {
                repository: "MyWebsite".into(),
                branch: "feature/x".into()
            }
        );
        let err = |pairs: &[(&str, &str)]| {
            CodeCommitSource::from_configuration(&config(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err(&[("BranchName", "main")]),
            "configuration RepositoryName is required"
        );
        assert_eq!(
            err(&[("RepositoryName", "r"), ("BranchName", " ")]),
            "configuration BranchName is required"
        );
        assert!(
            err(&[("RepositoryName", "a b"), ("BranchName", "main")]).starts_with(
                "configuration RepositoryName: `a b` is not a CodeCommit repository name"
            )
        );
        assert!(err(&[("RepositoryName", "r.git"), ("BranchName", "main")])
            .contains("not a CodeCommit repository name"));
        assert!(err(&[("RepositoryName", "r"), ("BranchName", "a..b")])
            .starts_with("configuration BranchName: `a..b` is not a branch name"));
        let clone_ref = CodeCommitSource::from_configuration(&config(&[
            ("RepositoryName", "r"),
            ("BranchName", "main"),
            ("OutputArtifactFormat", "CODEBUILD_CLONE_REF"),
        ]))
        .unwrap_err();
        assert_eq!(clone_ref.code(), "ConfigurationError");
        assert!(clone_ref
            .to_string()
            .starts_with("configuration OutputArtifactFormat: CODEBUILD_CLONE_REF"));
        assert!(err(&[
            ("RepositoryName", "r"),
            ("BranchName", "main"),
            ("OutputArtifactFormat", "TAR")
        ])
        .contains("`TAR` is neither CODE_ZIP nor CODEBUILD_CLONE_REF"));
    }

    #[test]
    fn codecommit_pins_commit_ids_only() {
        assert_eq!(
            pinned_commit(&[o("COMMIT_ID", &SHA.to_uppercase())]).unwrap(),
            Some(SHA.to_string())
        );
        assert_eq!(pinned_commit(&[]).unwrap(), None);
        assert_eq!(
            pinned_commit(&[o("IMAGE_DIGEST", DIGEST)])
                .unwrap_err()
                .code(),
            "ConfigurationError"
        );
    }

    #[test]
    fn git_dates_become_iso_8601_in_utc() {
        assert_eq!(git_date("1484167798 -0800"), "2017-01-11T20:49:58Z");
        assert_eq!(git_date("1484167798 +0000"), "2017-01-11T20:49:58Z");
        assert_eq!(git_date("1484167798"), "2017-01-11T20:49:58Z");
        assert_eq!(git_date("2017-01-11T20:49:58Z"), "2017-01-11T20:49:58Z");
        assert_eq!(git_date("1484167798 PST"), "1484167798 PST");
        assert_eq!(git_date("soon"), "soon");
    }

    #[test]
    fn a_codecommit_commit_has_its_variables_and_console_page() {
        let commit = codecommit_commit(
            "eu-west-1",
            "my-app",
            &SHA.to_uppercase(),
            Some("Fix the build\n"),
            Some("1484167798 -0800"),
            Some("1484167800 -0800"),
        );
        assert_eq!(commit.sha, SHA);
        assert_eq!(commit.message, "Fix the build");
        assert_eq!(
            commit.html_url.as_deref(),
            Some(format!("https://eu-west-1.console.aws.amazon.com/codesuite/codecommit/repositories/my-app/commit/{SHA}?region=eu-west-1").as_str())
        );
        assert_eq!(
            codecommit_output_variables(&codecommit(), &commit),
            config(&[
                ("CommitId", SHA),
                ("CommitMessage", "Fix the build"),
                ("RepositoryName", "my-app"),
                ("BranchName", "main"),
                ("AuthorDate", "2017-01-11T20:49:58Z"),
                ("CommitterDate", "2017-01-11T20:50:00Z"),
            ])
        );
        let bare = codecommit_commit("cn-north-1", "r", SHA, None, None, None);
        assert_eq!(bare.message, "");
        assert!(bare
            .html_url
            .as_deref()
            .unwrap()
            .starts_with("https://console.amazonaws.cn/codesuite/"));
        let vars = codecommit_output_variables(&codecommit(), &bare);
        assert!(!vars.contains_key("AuthorDate") && !vars.contains_key("CommitterDate"));
        let long = "x".repeat(git_source::MAX_MESSAGE_CHARS + 10);
        let cut = codecommit_commit("us-east-1", "r", SHA, Some(&long), None, None);
        assert_eq!(cut.message.chars().count(), git_source::MAX_MESSAGE_CHARS);
        assert!(cut.message.ends_with("..."));
    }

    fn file(path: &str, blob: &str, mode: &str) -> ListedFile {
        ListedFile {
            absolute_path: path.into(),
            blob_id: blob.into(),
            mode: Some(mode.into()),
        }
    }

    #[test]
    fn the_walk_lists_every_folder_once_and_plans_the_files() {
        let mut walk = TreeWalk::new("my-app", SHA);
        assert_eq!(walk.next_folder().as_deref(), Some("/"));
        assert!(walk.is_done());
        walk.add(FolderListing {
            sub_folders: vec!["src".into(), "bin".into()],
            files: vec![
                file("README.md", "b1", "NORMAL"),
                file("latest", "b9", "SYMLINK"),
            ],
            symbolic_links: 1,
            sub_modules: 1,
        })
        .unwrap();
        assert_eq!(walk.next_folder().as_deref(), Some("src"));
        walk.add(FolderListing {
            sub_folders: vec!["src/lib".into()],
            files: vec![file("src/main.rs", "b2", "NORMAL")],
            ..FolderListing::default()
        })
        .unwrap();
        assert_eq!(walk.next_folder().as_deref(), Some("bin"));
        walk.add(FolderListing {
            // A folder listed again (or a root-relative path) is not listed twice.
            sub_folders: vec!["/src/".into()],
            files: vec![ListedFile {
                absolute_path: "/bin/run.sh".into(),
                blob_id: "b3".into(),
                mode: Some("EXECUTABLE".into()),
            }],
            ..FolderListing::default()
        })
        .unwrap();
        assert_eq!(walk.next_folder().as_deref(), Some("src/lib"));
        walk.add(FolderListing::default()).unwrap();
        assert_eq!(walk.next_folder(), None);
        assert!(walk.is_done());
        let planned = walk.files();
        assert_eq!(
            planned,
            vec![
                PlannedFile {
                    path: "README.md".into(),
                    blob_id: "b1".into(),
                    executable: false
                },
                PlannedFile {
                    path: "bin/run.sh".into(),
                    blob_id: "b3".into(),
                    executable: true
                },
                PlannedFile {
                    path: "src/main.rs".into(),
                    blob_id: "b2".into(),
                    executable: false
                },
            ]
        );
        // The symbolic link listed under symbolicLinks and the one with a SYMLINK mode.
        assert_eq!(walk.links_skipped(), 2);
        assert_eq!(walk.sub_modules_skipped(), 1);
    }

    #[test]
    fn the_walk_refuses_unusable_listings() {
        let mut walk = TreeWalk::new("my-app", SHA);
        walk.next_folder();
        let err = walk
            .add(FolderListing {
                files: vec![file("/", "b1", "NORMAL")],
                ..FolderListing::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("listed a file of commit"), "{err}");
        let err = walk
            .add(FolderListing {
                files: vec![file("a.txt", "", "NORMAL")],
                ..FolderListing::default()
            })
            .unwrap_err();
        assert!(err.to_string().contains("without a blob id"), "{err}");

        let mut small = TreeWalk::with_max_folders("my-app", SHA, 2);
        small.next_folder();
        let err = small
            .add(FolderListing {
                sub_folders: vec!["a".into(), "b".into()],
                ..FolderListing::default()
            })
            .unwrap_err();
        assert_eq!(
            err.to_string(),
            format!("CodeCommit repository my-app: commit {SHA} has more than 2 folders")
        );
    }

    #[test]
    fn the_content_budget_stops_at_its_limit() {
        let mut budget = ContentBudget::new(10);
        budget.take(6, "r", SHA).unwrap();
        budget.take(4, "r", SHA).unwrap();
        assert_eq!(budget.used(), 10);
        let err = budget.take(1, "r", SHA).unwrap_err();
        assert_eq!(err.code(), "JobFailed");
        assert!(
            err.to_string().contains(&format!(
                "the files of commit {SHA} come to more than 10 bytes"
            )),
            "{err}"
        );
    }

    #[test]
    fn codecommit_errors_name_the_repository_and_what_to_check() {
        let source = codecommit();
        let case = |call, code: Option<&str>, status| {
            codecommit_error(&source, call, code, status, "The thing does not exist.")
        };
        let repo = case(
            CodeCommitCall::BranchHead("main"),
            Some("RepositoryDoesNotExistException"),
            Some(400),
        );
        assert_eq!(repo.code(), "ConfigurationError");
        assert_eq!(
            repo.to_string(),
            "CodeCommit repository my-app: GetBranch (the head of branch `main`) failed: RepositoryDoesNotExistException: The thing does not exist.; there is no repository my-app in this account and region: check RepositoryName"
        );
        let branch = case(
            CodeCommitCall::BranchHead("main"),
            Some("BranchDoesNotExistException"),
            Some(400),
        );
        assert_eq!(branch.code(), "ConfigurationError");
        assert!(branch
            .to_string()
            .contains("has no branch `main`: check BranchName"));
        let commit = case(
            CodeCommitCall::Commit(SHA),
            Some("CommitIdDoesNotExistException"),
            Some(400),
        );
        assert_eq!(commit.code(), "RevisionUnavailable");
        assert!(commit
            .to_string()
            .ends_with(&format!("commit {SHA} is not in repository my-app")));
        let denied = case(
            CodeCommitCall::Blob("a.txt"),
            Some("AccessDeniedException"),
            Some(400),
        );
        assert_eq!(denied.code(), "PermissionError");
        let forbidden = case(CodeCommitCall::Folder("/"), None, Some(403));
        assert_eq!(forbidden.code(), "PermissionError");
        let other = codecommit_error(
            &source,
            CodeCommitCall::Blob("big.bin"),
            Some("FileTooLargeException"),
            Some(400),
            "",
        );
        assert_eq!(other.code(), "JobFailed");
        assert_eq!(
            other.to_string(),
            "CodeCommit repository my-app: GetBlob (file big.bin) failed: FileTooLargeException"
        );
        let transport = codecommit_error(
            &source,
            CodeCommitCall::Folder("src"),
            None,
            None,
            "dispatch failure: connection refused",
        );
        assert_eq!(transport.code(), "JobFailed");
        assert!(transport
            .to_string()
            .contains("GetFolder src failed: dispatch failure"));
    }

    #[test]
    fn an_ecr_configuration_is_read_and_checked() {
        assert_eq!(
            ecr(),
            EcrSource {
                repository: "team/web-app".into(),
                tag: "latest".into()
            }
        );
        let tagged = EcrSource::from_configuration(&config(&[
            ("RepositoryName", "app"),
            ("ImageTag", "v1.2_rc-1"),
        ]))
        .unwrap();
        assert_eq!(tagged.tag, "v1.2_rc-1");
        let err = |pairs: &[(&str, &str)]| {
            EcrSource::from_configuration(&config(pairs))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(err(&[]), "configuration RepositoryName is required");
        for bad in ["App", "a", "a//b", "-app", "app-", "a..b", "a b"] {
            assert!(
                err(&[("RepositoryName", bad)]).contains("is not an ECR repository name"),
                "{bad}"
            );
        }
        for good in ["ab", "a.b_c-d", "team/web/app", "a1"] {
            assert!(is_ecr_repository_name(good), "{good}");
        }
        assert!(err(&[("RepositoryName", "app"), ("ImageTag", "v 1")])
            .starts_with("configuration ImageTag: `v 1` is not an image tag"));
    }

    #[test]
    fn ecr_pins_image_digests_only() {
        assert_eq!(pinned_image_digest(&[]).unwrap(), None);
        assert_eq!(
            pinned_image_digest(&[o("IMAGE_DIGEST", &format!(" {} ", DIGEST.to_uppercase()))])
                .unwrap(),
            Some(DIGEST.to_string())
        );
        let err = pinned_image_digest(&[o("COMMIT_ID", SHA)]).unwrap_err();
        assert_eq!(
            err.to_string(),
            "source revision override COMMIT_ID does not apply to an ECR source (use IMAGE_DIGEST)"
        );
        for bad in [
            "sha256:abc",
            "7f5b2640",
            "md5:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd",
        ] {
            assert!(
                pinned_image_digest(&[o("IMAGE_DIGEST", bad)])
                    .unwrap_err()
                    .to_string()
                    .contains("is not an image digest"),
                "{bad}"
            );
        }
    }

    fn image() -> Image {
        Image {
            registry_id: "123456789012".into(),
            repository_name: "team/web-app".into(),
            digest: DIGEST.into(),
            tags: vec!["latest".into(), "v1".into()],
            size_in_bytes: Some(44_728_918),
            pushed_at: Some(1_548_101_040.0),
        }
    }

    #[test]
    fn image_detail_json_is_codepipelines() {
        let text = image_detail_json(&image(), "us-west-2");
        let uri = format!("123456789012.dkr.ecr.us-west-2.amazonaws.com/team/web-app@{DIGEST}");
        let expected = format!(
            r#"{{
  "ImageSizeInBytes": "44728918",
  "ImageDigest": "{DIGEST}",
  "Version": "1.0",
  "ImagePushedAt": "Mon Jan 21 20:04:00 UTC 2019",
  "RegistryId": "123456789012",
  "RepositoryName": "team/web-app",
  "ImageURI": "{uri}",
  "ImageTags": [
    "latest",
    "v1"
  ]
}}
"#
        );
        assert_eq!(text, expected);
        // Without size and push time (not every registry answers them), those keys are left out.
        let bare = Image {
            size_in_bytes: None,
            pushed_at: None,
            tags: vec![],
            ..image()
        };
        let json: serde_json::Value =
            serde_json::from_str(&image_detail_json(&bare, "cn-north-1")).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ImageDigest": DIGEST,
                "Version": "1.0",
                "RegistryId": "123456789012",
                "RepositoryName": "team/web-app",
                "ImageURI": format!("123456789012.dkr.ecr.cn-north-1.amazonaws.com.cn/team/web-app@{DIGEST}"),
                "ImageTags": []
            })
        );
        assert_eq!(
            pushed_at_text(1_704_070_861.9),
            "Mon Jan 01 01:01:01 UTC 2024"
        );
    }

    #[test]
    fn ecr_variables_and_console_page() {
        let source = EcrSource {
            tag: "v1".into(),
            ..ecr()
        };
        assert_eq!(
            ecr_output_variables(&source, &image(), "us-east-1"),
            config(&[
                ("RegistryId", "123456789012"),
                ("RepositoryName", "team/web-app"),
                ("ImageTag", "v1"),
                ("ImageDigest", DIGEST),
                (
                    "ImageURI",
                    &format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/team/web-app@{DIGEST}")
                ),
            ])
        );
        assert_eq!(
            image_console_url(&image(), "us-east-1"),
            format!("https://us-east-1.console.aws.amazon.com/ecr/repositories/private/123456789012/team/web-app/_/image/{DIGEST}/details?region=us-east-1")
        );
    }

    #[test]
    fn ecr_errors_name_the_repository_and_what_to_check() {
        let source = ecr();
        let repo = ecr_error(
            &source,
            None,
            Some("RepositoryNotFoundException"),
            Some(400),
            "The repository with name 'team/web-app' does not exist",
        );
        assert_eq!(repo.code(), "ConfigurationError");
        assert!(repo.to_string().starts_with(
            "ECR repository team/web-app: DescribeImages (the image tagged `latest`) failed: RepositoryNotFoundException: "
        ));
        assert!(repo.to_string().ends_with("check RepositoryName"));
        let tag = ecr_error(&source, None, Some("ImageNotFoundException"), Some(400), "");
        assert_eq!(tag.code(), "ConfigurationError");
        assert!(tag.to_string().ends_with(
            "ECR repository team/web-app has no image tagged `latest`: push one, or check ImageTag"
        ));
        let digest = ecr_error(
            &source,
            Some(DIGEST),
            Some("ImageNotFoundException"),
            Some(400),
            "",
        );
        assert_eq!(digest.code(), "RevisionUnavailable");
        assert!(digest.to_string().ends_with(&format!(
            "image {DIGEST} is not in ECR repository team/web-app"
        )));
        assert_eq!(
            ecr_error(
                &source,
                None,
                Some("AccessDeniedException"),
                Some(400),
                "no"
            )
            .code(),
            "PermissionError"
        );
        assert_eq!(
            ecr_error(&source, None, None, Some(503), "Service Unavailable").code(),
            "JobFailed"
        );
        assert_eq!(
            image_not_found(&source, None, None).to_string(),
            "ECR repository team/web-app has no image tagged `latest`: push one, or check ImageTag"
        );
    }
}
