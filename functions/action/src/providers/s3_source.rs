//! `Source/AWS/S3`: the object `S3Bucket`/`S3ObjectKey` (a zip) becomes the output artifact.
//!
//! As CodePipeline: the revision is the object's S3 version (a `S3_OBJECT_VERSION_ID` override
//! picks one, a `S3_OBJECT_KEY` override another key); the output variables are `VersionId` and
//! `ETag`; the revision summary is the object's `codepipeline-artifact-revision-summary`
//! metadata, else its key.

use std::collections::BTreeMap;

use pipewright_aws::artifacts::S3Artifacts;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, SourceRevision,
};

use super::{outside_artifact_bucket, required, Context, ProviderError};

/// The metadata key CodePipeline reads the revision summary from.
pub const REVISION_SUMMARY_METADATA: &str = "codepipeline-artifact-revision-summary";

/// Copy the source object into the output artifact.
pub async fn run(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
) -> Result<ActionOutcome, ProviderError> {
    let bucket = outside_artifact_bucket(prepared, "S3Bucket", required(prepared, "S3Bucket")?)?;
    let mut key = required(prepared, "S3ObjectKey")?.to_string();
    let mut version = None;
    for o in &prepared.source_revision_overrides {
        match o.revision_type.as_str() {
            "S3_OBJECT_VERSION_ID" => version = Some(o.revision_value.clone()),
            "S3_OBJECT_KEY" => key = o.revision_value.clone(),
            other => {
                return Err(ProviderError::Configuration(format!(
                    "source revision override {other} does not apply to an S3 source (use S3_OBJECT_VERSION_ID or S3_OBJECT_KEY)"
                )))
            }
        }
    }
    let output = prepared.outputs.first().ok_or_else(|| {
        ProviderError::Configuration("an S3 source action needs one output artifact".into())
    })?;

    let copied = match artifacts
        .copy_in(bucket, &key, version.as_deref(), &output.s3_location)
        .await
    {
        Ok(copied) => copied,
        Err(e) if e.is_not_found() => {
            let what = match &version {
                Some(v) => format!("version {v} of s3://{bucket}/{key} does not exist: {e}"),
                None => format!("the source object s3://{bucket}/{key} does not exist: {e}"),
            };
            return Err(if version.is_some() {
                ProviderError::RevisionUnavailable(what)
            } else {
                ProviderError::Configuration(what)
            });
        }
        Err(e) => {
            return Err(e)
                .context(|| format!("copying s3://{bucket}/{key} into artifact {}", output.name))
        }
    };

    let revision_id = copied
        .source_version_id
        .clone()
        .or_else(|| copied.source_etag.clone());
    let summary = copied
        .source_metadata
        .get(REVISION_SUMMARY_METADATA)
        .cloned()
        .unwrap_or_else(|| key.clone());
    let mut variables = BTreeMap::new();
    if let Some(v) = &copied.source_version_id {
        variables.insert("VersionId".to_string(), v.clone());
    }
    if let Some(etag) = &copied.source_etag {
        variables.insert("ETag".to_string(), etag.clone());
    }
    tracing::info!(bucket, key = %key, version = ?copied.source_version_id, "source object copied");
    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts: vec![ArtifactDetail {
            name: output.name.clone(),
            s3_location: copied.location,
        }],
        output_variables: variables,
        result: ActionExecutionResult {
            external_execution_id: revision_id.clone(),
            external_execution_summary: Some(summary.clone()),
            ..Default::default()
        },
        source_revision: Some(SourceRevision {
            action_name: prepared.record.action_name.clone(),
            revision_id,
            revision_summary: Some(summary),
            revision_url: None,
            revision_change_id: None,
        }),
        log_tail: None,
        log_location: None,
    })
}
