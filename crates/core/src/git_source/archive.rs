//! The commit's archive: where its entries go in the artifact, and the size limits.

use super::{GitSource, GitSourceError};

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
