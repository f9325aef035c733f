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
//!
//! The parts: `codecommit` (configuration, commit, variables, errors), `tree` (the walk over a
//! commit's folders and the content budget) and `ecr`; everything is re-exported here.

mod codecommit;
mod ecr;
mod tree;

use std::collections::BTreeMap;

pub use crate::git_source::{pinned_commit, GitSourceError as SourceError, MAX_CONTENT_BYTES};

pub use codecommit::{
    codecommit_commit, codecommit_commit_url, codecommit_error, codecommit_output_variables,
    git_date, is_codecommit_repository_name, CodeCommitCall, CodeCommitSource,
};
pub use ecr::{
    ecr_error, ecr_output_variables, image_console_url, image_detail_json, image_not_found,
    image_uri, is_ecr_repository_name, pinned_image_digest, pushed_at_text, registry_host,
    EcrSource, Image, DEFAULT_IMAGE_TAG, IMAGE_DETAIL_FILE,
};
pub use tree::{ContentBudget, FolderListing, ListedFile, PlannedFile, TreeWalk, MAX_FOLDERS};

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

#[cfg(test)]
mod tests;
