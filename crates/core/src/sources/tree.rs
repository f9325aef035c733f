//! The CodeCommit commit's files: the walk over its folders (`GetFolder`) and the budget on
//! the bytes read (`GetBlob`).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use super::SourceError;

/// The most folders one commit's walk visits (a guard against a listing that never ends).
pub const MAX_FOLDERS: usize = 100_000;

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
    ///
    /// [`MAX_CONTENT_BYTES`]: super::MAX_CONTENT_BYTES
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
