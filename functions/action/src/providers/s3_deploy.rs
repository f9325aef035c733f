//! `Deploy/AWS/S3`: publish the input artifact to `BucketName`.
//!
//! - `Extract: true`: every file of the artifact is uploaded under the `ObjectKey` prefix (none
//!   when absent), with a `Content-Type` from its extension;
//! - `Extract: false`: the artifact zip itself is copied to `ObjectKey`.
//!
//! `CannedACL`, `CacheControl` and `KMSEncryptionKeyARN` apply to every object written.

use std::path::Path;

use pipewright_aws::artifacts::{blocking, list_files, ArtifactError, PutOptions, S3Artifacts};
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{ActionExecutionResult, ActionExecutionStatus};
use tokio::task::JoinSet;

use super::{optional, outside_artifact_bucket, remove_work_dir, required, Context, ProviderError};

/// Files uploaded at once.
const UPLOADS_IN_FLIGHT: usize = 8;

/// The canned ACLs CodePipeline's S3 deploy accepts.
pub const CANNED_ACLS: &[&str] = &[
    "private",
    "public-read",
    "public-read-write",
    "authenticated-read",
    "aws-exec-read",
    "bucket-owner-read",
    "bucket-owner-full-control",
    "log-delivery-write",
];

/// Deploy the input artifact.
pub async fn run(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
) -> Result<ActionOutcome, ProviderError> {
    let bucket =
        outside_artifact_bucket(prepared, "BucketName", required(prepared, "BucketName")?)?;
    let extract = match required(prepared, "Extract")?.to_ascii_lowercase().as_str() {
        "true" => true,
        "false" => false,
        other => {
            return Err(ProviderError::Configuration(format!(
                "configuration Extract: {other:?} is not true or false"
            )))
        }
    };
    let object_key = optional(prepared, "ObjectKey");
    let canned_acl = optional(prepared, "CannedACL").map(str::to_string);
    if let Some(acl) = &canned_acl {
        if !CANNED_ACLS.contains(&acl.as_str()) {
            return Err(ProviderError::Configuration(format!(
                "configuration CannedACL: {acl:?} is not one of {}",
                CANNED_ACLS.join(", ")
            )));
        }
    }
    let options = PutOptions {
        content_type: None,
        cache_control: optional(prepared, "CacheControl").map(str::to_string),
        canned_acl,
        kms_key_id: optional(prepared, "KMSEncryptionKeyARN").map(str::to_string),
    };
    let input = match prepared.inputs.as_slice() {
        [input] => input,
        _ => {
            return Err(ProviderError::Configuration(
                "an S3 deploy action needs exactly one input artifact".into(),
            ))
        }
    };

    let summary = if extract {
        let prefix = object_key.map(|k| k.trim_matches('/')).unwrap_or_default();
        let work = work_root.join(format!(
            "pipewright-{}",
            prepared.record.action_execution_id
        ));
        let result = deploy_extracted(
            artifacts,
            &input.s3_location,
            &input.name,
            &work,
            bucket,
            prefix,
            &options,
        )
        .await;
        remove_work_dir(work).await;
        result?
    } else {
        let key = object_key.ok_or_else(|| {
            ProviderError::Configuration(
                "configuration ObjectKey is required when Extract is false".into(),
            )
        })?;
        artifacts
            .copy_out(&input.s3_location, bucket, key, &options)
            .await
            .map_err(|e| deploy_error(e, bucket))?;
        format!("copied artifact {} to s3://{bucket}/{key}", input.name)
    };
    tracing::info!(%summary, "deployed");
    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts: Vec::new(),
        output_variables: Default::default(),
        result: ActionExecutionResult {
            external_execution_summary: Some(summary),
            ..Default::default()
        },
        source_revision: None,
        log_tail: None,
        log_location: None,
    })
}

async fn deploy_extracted(
    artifacts: &S3Artifacts,
    location: &pipewright_core::execution::ArtifactLocation,
    artifact: &str,
    work: &Path,
    bucket: &str,
    prefix: &str,
    options: &PutOptions,
) -> Result<String, ProviderError> {
    let files_dir = work.join("files");
    tokio::fs::create_dir_all(work)
        .await
        .map_err(|e| ProviderError::Job(format!("creating {}: {e}", work.display())))?;
    artifacts
        .download_and_extract(location, &work.join("artifact.zip"), &files_dir)
        .await
        .context(|| format!("input artifact {artifact}"))?;
    let dir = files_dir.clone();
    let (files, links) = blocking(move || list_files(&dir))
        .await
        .context(|| format!("input artifact {artifact}"))?;

    let mut uploads: JoinSet<Result<(), ProviderError>> = JoinSet::new();
    let count = files.len();
    for (name, path) in files {
        while uploads.len() >= UPLOADS_IN_FLIGHT {
            finished(uploads.join_next().await)?;
        }
        let key = if prefix.is_empty() {
            name.clone()
        } else {
            format!("{prefix}/{name}")
        };
        let options = PutOptions {
            content_type: Some(content_type(&name).to_string()),
            ..options.clone()
        };
        let (artifacts, bucket) = (artifacts.clone(), bucket.to_string());
        uploads.spawn(async move {
            artifacts
                .put_file(&path, &bucket, &key, &options)
                .await
                .map_err(|e| deploy_error(e, &bucket))?;
            Ok(())
        });
    }
    while let Some(done) = uploads.join_next().await {
        finished(Some(done))?;
    }
    let target = if prefix.is_empty() {
        format!("s3://{bucket}/")
    } else {
        format!("s3://{bucket}/{prefix}/")
    };
    let mut summary = format!("uploaded {count} file(s) of artifact {artifact} to {target}");
    if links > 0 {
        summary.push_str(&format!(" ({links} symbolic link(s) skipped)"));
    }
    Ok(summary)
}

fn finished(
    done: Option<Result<Result<(), ProviderError>, tokio::task::JoinError>>,
) -> Result<(), ProviderError> {
    match done {
        Some(Ok(result)) => result,
        Some(Err(e)) => Err(ProviderError::Job(format!("an upload task failed: {e}"))),
        None => Ok(()),
    }
}

/// A missing bucket is the configuration's fault; a refusal is a permission problem.
fn deploy_error(e: ArtifactError, bucket: &str) -> ProviderError {
    if e.s3_code() == Some("NoSuchBucket") {
        ProviderError::Configuration(format!(
            "configuration BucketName: the bucket {bucket} does not exist ({e})"
        ))
    } else if e.is_access_denied() {
        ProviderError::Permission(format!("access to bucket {bucket} was denied: {e}"))
    } else {
        ProviderError::Artifact {
            context: format!("deploying to bucket {bucket}"),
            source: e,
        }
    }
}

/// The `Content-Type` of an uploaded file, from its extension.
pub fn content_type(name: &str) -> &'static str {
    let file = name.rsplit('/').next().unwrap_or(name);
    let ext = file
        .rsplit_once('.')
        .map(|(_, e)| e.to_ascii_lowercase())
        .unwrap_or_default();
    match ext.as_str() {
        "html" | "htm" => "text/html",
        "css" => "text/css",
        "js" | "mjs" => "text/javascript",
        "json" | "map" => "application/json",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "jpg" | "jpeg" => "image/jpeg",
        "gif" => "image/gif",
        "webp" => "image/webp",
        "ico" => "image/vnd.microsoft.icon",
        "txt" => "text/plain",
        "md" => "text/markdown",
        "xml" => "application/xml",
        "wasm" => "application/wasm",
        "pdf" => "application/pdf",
        "woff" => "font/woff",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::providers::test_support::prepared;
    use pipewright_core::execution::FailureType;
    use serde_json::json;

    #[test]
    fn content_types_by_extension() {
        assert_eq!(content_type("index.html"), "text/html");
        assert_eq!(content_type("assets/site.CSS"), "text/css");
        assert_eq!(content_type("app.js"), "text/javascript");
        assert_eq!(content_type("data.json"), "application/json");
        assert_eq!(content_type("logo.svg"), "image/svg+xml");
        assert_eq!(content_type("a/b.png"), "image/png");
        assert_eq!(content_type("photo.jpeg"), "image/jpeg");
        assert_eq!(content_type("robots.txt"), "text/plain");
        assert_eq!(content_type("feed.xml"), "application/xml");
        assert_eq!(content_type("mod.wasm"), "application/wasm");
        assert_eq!(content_type("archive.tar"), "application/octet-stream");
        assert_eq!(content_type("Makefile"), "application/octet-stream");
        assert_eq!(content_type("dir.v2/Makefile"), "application/octet-stream");
    }

    fn client() -> S3Artifacts {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        S3Artifacts::new(aws_sdk_s3::Client::from_conf(config))
    }

    #[tokio::test]
    async fn configuration_is_checked_before_any_call() {
        let base = json!({
            "name": "Publish",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"BucketName": "site", "Extract": "maybe"}
        });
        let work = tempfile::tempdir().unwrap();
        let err = run(&client(), &prepared(base.clone()), work.path())
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(err.to_string().contains("Extract"), "{err}");

        let mut acl = base.clone();
        acl["configuration"] =
            json!({"BucketName": "site", "Extract": "true", "CannedACL": "everyone"});
        let err = run(&client(), &prepared(acl), work.path())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("CannedACL"), "{err}");

        let mut no_key = base.clone();
        no_key["configuration"] = json!({"BucketName": "site", "Extract": "false"});
        let mut p = prepared(no_key);
        p.inputs.push(pipewright_core::execution::ArtifactDetail {
            name: "BuildOutput".into(),
            s3_location: pipewright_core::execution::ArtifactLocation {
                bucket: "artifacts".into(),
                key: "p/BuildOutput/x.zip".into(),
                version_id: None,
            },
        });
        let err = run(&client(), &p, work.path()).await.unwrap_err();
        assert!(err.to_string().contains("ObjectKey is required"), "{err}");
    }
}
