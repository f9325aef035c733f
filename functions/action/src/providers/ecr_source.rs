//! `Source/AWS/ECR`: one image of a repository, described in `imageDetail.json`, becomes the
//! output artifact (a zip holding that one file, as CodePipeline's ECR source writes it).
//!
//! The image is the execution's `IMAGE_DIGEST` source revision (an ECR push event, a
//! StartPipelineExecution override) when there is one, else the one tagged `ImageTag` (default
//! `latest`); `DescribeImages` reads it. What it means is decided in `pipewright_core::sources`.

use std::path::Path;

use aws_sdk_ecr::types::{ImageDetail, ImageIdentifier};
use aws_sdk_ecr::Client;
use pipewright_aws::artifacts::S3Artifacts;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, SourceRevision,
};
use pipewright_core::sources::{
    ecr_error, ecr_output_variables, image_console_url, image_detail_json, image_not_found,
    pinned_image_digest, EcrSource, Image, IMAGE_DETAIL_FILE,
};

use super::{aws_failure, remove_work_dir, Context, ProviderError};

/// Describe the image and write its `imageDetail.json` as the output artifact. `region` is
/// where the registry is (for the image URI).
pub async fn run(
    client: &Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
    region: &str,
) -> Result<ActionOutcome, ProviderError> {
    let source = EcrSource::from_configuration(&prepared.configuration)?;
    let output = prepared.outputs.first().ok_or_else(|| {
        ProviderError::Configuration("an ECR source action needs one output artifact".into())
    })?;
    let pinned = pinned_image_digest(&prepared.source_revision_overrides)?;
    let image = describe(client, &source, pinned.as_deref(), &prepared.account_id).await?;
    tracing::info!(repository = %source.repository, digest = %image.digest, pinned = pinned.is_some(), "image described");

    let work = work_root.join(format!(
        "pipewright-{}",
        prepared.record.action_execution_id
    ));
    let result = write_artifact(artifacts, &image, region, &work, output).await;
    remove_work_dir(work).await;
    let location = result?;

    let url = image_console_url(&image, region);
    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts: vec![ArtifactDetail {
            name: output.name.clone(),
            s3_location: location,
        }],
        output_variables: ecr_output_variables(&source, &image, region),
        result: ActionExecutionResult {
            external_execution_id: Some(image.digest.clone()),
            external_execution_summary: Some(source.tag.clone()),
            external_execution_url: Some(url.clone()),
            ..Default::default()
        },
        source_revision: Some(SourceRevision {
            action_name: prepared.record.action_name.clone(),
            revision_id: Some(image.digest.clone()),
            revision_summary: Some(source.tag.clone()),
            revision_url: Some(url),
            revision_change_id: None,
        }),
        log_tail: None,
        log_location: None,
    })
}

/// `DescribeImages` of the pinned digest, else of the tag. `account_id` is the registry when
/// the answer does not say.
async fn describe(
    client: &Client,
    source: &EcrSource,
    pinned: Option<&str>,
    account_id: &str,
) -> Result<Image, ProviderError> {
    let id = match pinned {
        Some(digest) => ImageIdentifier::builder().image_digest(digest).build(),
        None => ImageIdentifier::builder().image_tag(&source.tag).build(),
    };
    let out = client
        .describe_images()
        .repository_name(&source.repository)
        .image_ids(id)
        .send()
        .await
        .map_err(|e| {
            let (code, status, message) = aws_failure(&e);
            ProviderError::from(ecr_error(source, pinned, code.as_deref(), status, &message))
        })?;
    let detail = out
        .image_details()
        .iter()
        .find(|d| match pinned {
            Some(digest) => d.image_digest() == Some(digest),
            None => d.image_tags().contains(&source.tag),
        })
        .or_else(|| out.image_details().first())
        .ok_or_else(|| ProviderError::from(image_not_found(source, pinned, None)))?;
    image(detail, source, account_id)
}

/// The image `detail` describes.
fn image(
    detail: &ImageDetail,
    source: &EcrSource,
    account_id: &str,
) -> Result<Image, ProviderError> {
    let digest = detail
        .image_digest()
        .filter(|d| !d.is_empty())
        .ok_or_else(|| {
            ProviderError::Job(format!(
                "ECR repository {}: DescribeImages answered an image without a digest",
                source.repository
            ))
        })?;
    Ok(Image {
        registry_id: detail
            .registry_id()
            .filter(|r| !r.is_empty())
            .unwrap_or(account_id)
            .to_string(),
        repository_name: detail
            .repository_name()
            .filter(|r| !r.is_empty())
            .unwrap_or(&source.repository)
            .to_string(),
        digest: digest.to_string(),
        tags: detail.image_tags().to_vec(),
        size_in_bytes: detail.image_size_in_bytes(),
        pushed_at: detail.image_pushed_at().map(|t| t.as_secs_f64()),
    })
}

/// Zip `imageDetail.json` into the output artifact; returns its location.
async fn write_artifact(
    artifacts: &S3Artifacts,
    image: &Image,
    region: &str,
    work: &Path,
    output: &ArtifactDetail,
) -> Result<pipewright_core::execution::ArtifactLocation, ProviderError> {
    let dir = work.join("files");
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| ProviderError::Job(format!("creating {}: {e}", dir.display())))?;
    let file = dir.join(IMAGE_DETAIL_FILE);
    tokio::fs::write(&file, image_detail_json(image, region))
        .await
        .map_err(|e| ProviderError::Job(format!("writing {}: {e}", file.display())))?;
    artifacts
        .upload_dir(
            &dir,
            &[],
            &output.s3_location.bucket,
            &output.s3_location.key,
        )
        .await
        .context(|| format!("output artifact {}", output.name))
}

#[cfg(test)]
mod tests {
    use serde_json::{json, Value};

    use super::super::test_support::{aws_error, aws_json_service, ecr_client};
    use super::*;
    use pipewright_core::execution::FailureType;

    const DIGEST: &str = "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd";

    /// ECR with repository `web`, one image tagged `latest` and `v1`.
    fn ecr(operation: &str, body: &Value) -> (u16, Value) {
        assert_eq!(operation, "DescribeImages");
        if body["repositoryName"] != "web" {
            return aws_error(
                "RepositoryNotFoundException",
                "The repository with name 'nope' does not exist in the registry with id '123456789012'",
            );
        }
        let id = &body["imageIds"][0];
        let found =
            id["imageDigest"] == DIGEST || id["imageTag"] == "latest" || id["imageTag"] == "v1";
        if !found {
            return aws_error("ImageNotFoundException", "The image does not exist");
        }
        (
            200,
            json!({"imageDetails": [{
                "registryId": "123456789012",
                "repositoryName": "web",
                "imageDigest": DIGEST,
                "imageTags": ["latest", "v1"],
                "imageSizeInBytes": 1234,
                "imagePushedAt": 1548101040,
                "imageManifestMediaType": "application/vnd.docker.distribution.manifest.v2+json"
            }]}),
        )
    }

    fn source(repository: &str, tag: &str) -> EcrSource {
        EcrSource {
            repository: repository.into(),
            tag: tag.into(),
        }
    }

    #[tokio::test]
    async fn the_tagged_or_pinned_image_is_described() {
        let (base, calls) = aws_json_service(ecr).await;
        let client = ecr_client(&base);
        let image = describe(&client, &source("web", "v1"), None, "999999999999")
            .await
            .unwrap();
        assert_eq!(
            image,
            Image {
                registry_id: "123456789012".into(),
                repository_name: "web".into(),
                digest: DIGEST.into(),
                tags: vec!["latest".into(), "v1".into()],
                size_in_bytes: Some(1234),
                pushed_at: Some(1_548_101_040.0),
            }
        );
        let pinned = describe(&client, &source("web", "v1"), Some(DIGEST), "1")
            .await
            .unwrap();
        assert_eq!(pinned.digest, DIGEST);
        let calls = calls.lock().unwrap().clone();
        assert_eq!(calls[0].1["imageIds"], json!([{"imageTag": "v1"}]));
        assert_eq!(calls[1].1["imageIds"], json!([{"imageDigest": DIGEST}]));
        let detail: Value = serde_json::from_str(&image_detail_json(&image, "us-east-1")).unwrap();
        assert_eq!(
            detail["ImageURI"],
            format!("123456789012.dkr.ecr.us-east-1.amazonaws.com/web@{DIGEST}")
        );
        assert_eq!(detail["ImagePushedAt"], "Mon Jan 21 20:04:00 UTC 2019");
    }

    #[tokio::test]
    async fn missing_repositories_tags_and_digests_fail_clearly() {
        let (base, _) = aws_json_service(ecr).await;
        let client = ecr_client(&base);
        let other = "sha256:0000000000000000000000000000000000000000000000000000000000000000";
        for (source, pinned, code, wants) in [
            (
                source("nope", "latest"),
                None,
                FailureType::ConfigurationError,
                "check RepositoryName",
            ),
            (
                source("web", "release"),
                None,
                FailureType::ConfigurationError,
                "ECR repository web has no image tagged `release`: push one, or check ImageTag",
            ),
            (
                source("web", "latest"),
                Some(other),
                FailureType::RevisionUnavailable,
                "is not in ECR repository web",
            ),
        ] {
            let err = describe(&client, &source, pinned, "1").await.unwrap_err();
            assert_eq!(err.code(), code, "{err}");
            assert!(err.to_string().ends_with(wants), "{err}");
            assert!(
                err.to_string().starts_with(&format!(
                    "ECR repository {}: DescribeImages",
                    source.repository
                )),
                "{err}"
            );
        }
    }

    #[test]
    fn an_image_detail_fills_in_what_the_answer_leaves_out() {
        let source = EcrSource {
            repository: "web".into(),
            tag: "latest".into(),
        };
        let detail = ImageDetail::builder()
            .image_digest("sha256:abc")
            .image_tags("latest")
            .image_size_in_bytes(42)
            .image_pushed_at(aws_sdk_ecr::primitives::DateTime::from_secs(1_548_101_040))
            .build();
        assert_eq!(
            image(&detail, &source, "123456789012").unwrap(),
            Image {
                registry_id: "123456789012".into(),
                repository_name: "web".into(),
                digest: "sha256:abc".into(),
                tags: vec!["latest".into()],
                size_in_bytes: Some(42),
                pushed_at: Some(1_548_101_040.0),
            }
        );
        let err = image(&ImageDetail::builder().build(), &source, "1").unwrap_err();
        assert_eq!(err.code(), FailureType::JobFailed);
    }
}
