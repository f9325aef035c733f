//! What polling reads and writes ([`pipewright_core::triggers::polling`]):
//!
//! - [`DynamoPollStates`]: a pipeline's [`PollState`] in the executions table, item
//!   `pk = "PIPELINE#<name>"`, `sk = "POLL"` (`record`: the state as JSON; `version`), replaced
//!   only by a PutItem conditional on the version it was read at (`attribute_not_exists(pk)` for
//!   the first). It has no `expiresAt`: a source unchanged for a year is still known.
//! - [`AwsRevisions`]: S3 `HeadObject` (the version id, or the ETag of an object in an
//!   unversioned bucket) and CodeCommit `GetBranch` (the commit id). A missing object, bucket,
//!   repository or branch is no revision; anything else (access denied) is an error.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_codecommit::operation::get_branch::GetBranchError;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::operation::head_object::HeadObjectError;
use pipewright_core::store::StoreError;
use pipewright_core::triggers::polling::{
    PollState, PollStateStore, PolledSource, Revision, RevisionReader,
};

const POLL_SK: &str = "POLL";

/// Poll states in the executions table.
#[derive(Debug, Clone)]
pub struct DynamoPollStates {
    client: aws_sdk_dynamodb::Client,
    table: String,
}

impl DynamoPollStates {
    /// Poll states in the executions table of `adapters`.
    pub fn for_adapters(adapters: &crate::engine::Adapters) -> Self {
        Self::new(
            aws_sdk_dynamodb::Client::new(&adapters.sdk),
            &adapters.settings.executions_table,
        )
    }

    /// Poll states in `table` (the executions table).
    pub fn new(client: aws_sdk_dynamodb::Client, table: &str) -> Self {
        Self {
            client,
            table: table.to_string(),
        }
    }

    fn key(pipeline: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(format!("PIPELINE#{pipeline}")),
            ),
            ("sk".to_string(), AttributeValue::S(POLL_SK.to_string())),
        ])
    }
}

fn backend(call: &str, err: &dyn std::error::Error) -> StoreError {
    StoreError::Backend(crate::error_chain(call, err))
}

#[async_trait]
impl PollStateStore for DynamoPollStates {
    async fn load(&self, pipeline: &str) -> Result<Option<PollState>, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::key(pipeline)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", &e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let record = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt(format!("poll state of {pipeline}: no record")))?;
        serde_json::from_str(record)
            .map(Some)
            .map_err(|e| StoreError::Corrupt(format!("poll state of {pipeline}: {e}")))
    }

    async fn replace(&self, pipeline: &str, state: &PollState) -> Result<bool, StoreError> {
        let record = serde_json::to_string(state)
            .map_err(|e| StoreError::Corrupt(format!("cannot encode poll state: {e}")))?;
        let mut item = Self::key(pipeline);
        item.insert("record".into(), AttributeValue::S(record));
        item.insert(
            "version".into(),
            AttributeValue::N(state.version.to_string()),
        );
        item.insert(
            "pipelineName".into(),
            AttributeValue::S(pipeline.to_string()),
        );
        let request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        let request = match state.version {
            0 | 1 => request.condition_expression("attribute_not_exists(pk)"),
            v => request
                .condition_expression("version = :version")
                .expression_attribute_values(":version", AttributeValue::N((v - 1).to_string())),
        };
        match request.send().await {
            Ok(_) => Ok(true),
            Err(e) if crate::execution_store::refused_by_condition(&e) => Ok(false),
            Err(e) => Err(backend("PutItem", &e)),
        }
    }
}

/// Reads sources' current revisions from S3 and CodeCommit.
#[derive(Debug, Clone)]
pub struct AwsRevisions {
    s3: aws_sdk_s3::Client,
    codecommit: aws_sdk_codecommit::Client,
}

impl AwsRevisions {
    /// Over the S3 client of `adapters` and a CodeCommit client of its SDK configuration.
    pub fn for_adapters(adapters: &crate::engine::Adapters) -> Self {
        Self::new(
            adapters.s3.clone(),
            aws_sdk_codecommit::Client::new(&adapters.sdk),
        )
    }

    /// Over these clients.
    pub fn new(s3: aws_sdk_s3::Client, codecommit: aws_sdk_codecommit::Client) -> Self {
        Self { s3, codecommit }
    }
}

#[async_trait]
impl RevisionReader for AwsRevisions {
    async fn current(&self, source: &PolledSource) -> Result<Option<Revision>, String> {
        match source {
            PolledSource::S3 { bucket, key } => {
                match self.s3.head_object().bucket(bucket).key(key).send().await {
                    Ok(head) => Ok(s3_revision(head.version_id(), head.e_tag())),
                    Err(e) => match e.as_service_error() {
                        Some(HeadObjectError::NotFound(_)) => Ok(None),
                        _ if e.raw_response().map(|r| r.status().as_u16()) == Some(404) => Ok(None),
                        _ => Err(crate::error_chain("HeadObject", &e)),
                    },
                }
            }
            PolledSource::CodeCommit { repository, branch } => {
                match self
                    .codecommit
                    .get_branch()
                    .repository_name(repository)
                    .branch_name(branch)
                    .send()
                    .await
                {
                    Ok(out) => Ok(out
                        .branch()
                        .and_then(|b| b.commit_id())
                        .filter(|c| !c.is_empty())
                        .map(|c| Revision::Commit(c.to_string()))),
                    Err(e) => match e.as_service_error() {
                        Some(
                            GetBranchError::BranchDoesNotExistException(_)
                            | GetBranchError::RepositoryDoesNotExistException(_),
                        ) => Ok(None),
                        _ => Err(crate::error_chain("GetBranch", &e)),
                    },
                }
            }
        }
    }
}

/// The revision HeadObject reports: the version id in a versioned bucket (an unversioned one
/// says `null` or nothing), else the ETag.
fn s3_revision(version_id: Option<&str>, e_tag: Option<&str>) -> Option<Revision> {
    match version_id.filter(|v| !v.is_empty() && *v != "null") {
        Some(v) => Some(Revision::S3Version(v.to_string())),
        None => e_tag
            .map(|t| t.trim_matches('"'))
            .filter(|t| !t.is_empty())
            .map(|t| Revision::S3ETag(t.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_id_wins_over_the_etag() {
        let table = [
            (
                Some("3HL4kq"),
                Some("\"abc\""),
                Some(Revision::S3Version("3HL4kq".into())),
            ),
            (
                Some("null"),
                Some("\"abc\""),
                Some(Revision::S3ETag("abc".into())),
            ),
            (None, Some("abc"), Some(Revision::S3ETag("abc".into()))),
            (Some(""), None, None),
            (None, None, None),
        ];
        for (version, etag, expected) in table {
            assert_eq!(s3_revision(version, etag), expected, "{version:?} {etag:?}");
        }
    }
}
