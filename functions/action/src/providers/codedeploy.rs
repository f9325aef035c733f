//! `Deploy/AWS/CodeDeploy`: deploy the input artifact to `ApplicationName` /
//! `DeploymentGroupName`, then let CodeDeploy's "CodeDeploy Deployment State-change Notification"
//! event say when the deployment ended.
//!
//! - The revision is the input artifact itself: an `S3` revision (`bundleType` `zip`) at the
//!   artifact's exact object version. The deployment group's instances (their instance profile)
//!   or Lambda / ECS deployment read it from the artifact bucket, as under CodePipeline.
//! - The deployment's description names the pipeline and the action execution id: a repeated
//!   task finds the deployment its first run created (CreateDeployment takes no idempotency
//!   token) instead of starting a second.
//! - A deployment that does not succeed fails the action with its status and CodeDeploy's error.
//!
//! Every call is made with the pipeline role's session.

use std::collections::BTreeMap;

use aws_sdk_codedeploy::types::{
    BundleType, DeploymentStatus, RevisionLocation, RevisionLocationType, S3Location,
};
use pipewright_core::codedeploy::{self, DeploymentEnded};
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{ActionExecutionResult, FailureType};

use super::{required, ProviderError};

/// Start (or find, for a repeated task) the deployment; the outcome is in progress.
pub async fn run(
    cd: &aws_sdk_codedeploy::Client,
    prepared: &PreparedAction,
) -> Result<ActionOutcome, ProviderError> {
    let application = required(prepared, "ApplicationName")?;
    let group = required(prepared, "DeploymentGroupName")?;
    let artifact = prepared.inputs.first().ok_or_else(|| {
        ProviderError::Configuration(
            "a CodeDeploy action needs its revision as an input artifact".into(),
        )
    })?;
    let description = codedeploy::deployment_description(
        prepared.pipeline_name(),
        &prepared.record.action_execution_id,
    );
    let id = match earlier(cd, application, group, &description).await? {
        Some(id) => id,
        None => {
            let location = &artifact.s3_location;
            let created = cd
                .create_deployment()
                .application_name(application)
                .deployment_group_name(group)
                .description(&description)
                .revision(
                    RevisionLocation::builder()
                        .revision_type(RevisionLocationType::S3)
                        .s3_location(
                            S3Location::builder()
                                .bucket(&location.bucket)
                                .key(&location.key)
                                .bundle_type(BundleType::Zip)
                                .set_version(location.version_id.clone())
                                .build(),
                        )
                        .build(),
                )
                .send()
                .await
                .map_err(|e| codedeploy_error("CreateDeployment", application, &e))?;
            created
                .deployment_id()
                .filter(|id| !id.is_empty())
                .ok_or_else(|| {
                    ProviderError::Job(format!(
                        "codedeploy:CreateDeployment {application}: no deployment id in the answer"
                    ))
                })?
                .to_string()
        }
    };
    tracing::info!(deployment = %id, "deployment started");
    Ok(ActionOutcome::in_progress(
        ActionExecutionResult {
            external_execution_summary: Some(format!(
                "started deployment {id} of {application} to {group}"
            )),
            external_execution_url: Some(link(prepared, &id)),
            external_execution_id: Some(id),
            ..Default::default()
        },
        BTreeMap::new(),
    ))
}

/// The deployment a first run of this job created, if it is still going.
async fn earlier(
    cd: &aws_sdk_codedeploy::Client,
    application: &str,
    group: &str,
    description: &str,
) -> Result<Option<String>, ProviderError> {
    let listed = cd
        .list_deployments()
        .application_name(application)
        .deployment_group_name(group)
        .include_only_statuses(DeploymentStatus::Created)
        .include_only_statuses(DeploymentStatus::Queued)
        .include_only_statuses(DeploymentStatus::InProgress)
        .include_only_statuses(DeploymentStatus::Ready)
        .send()
        .await
        .map_err(|e| codedeploy_error("ListDeployments", application, &e))?;
    // BatchGetDeployments takes at most 25 ids.
    for ids in listed.deployments().chunks(25) {
        let got = cd
            .batch_get_deployments()
            .set_deployment_ids(Some(ids.to_vec()))
            .send()
            .await
            .map_err(|e| codedeploy_error("BatchGetDeployments", application, &e))?;
        if let Some(id) = got
            .deployments_info()
            .iter()
            .find(|d| d.description() == Some(description))
            .and_then(|d| d.deployment_id())
        {
            return Ok(Some(id.to_string()));
        }
    }
    Ok(None)
}

/// The outcome of the deployment `ended` names.
pub async fn complete(
    cd: &aws_sdk_codedeploy::Client,
    prepared: &PreparedAction,
    ended: &DeploymentEnded,
) -> Result<ActionOutcome, ProviderError> {
    match outcome_of(cd, prepared, &ended.deployment_id).await? {
        Some(outcome) => Ok(outcome),
        None => Err(ProviderError::NotYet(format!(
            "deployment {} ended {} by its event, but CodeDeploy still reports it in progress",
            ended.deployment_id, ended.state
        ))),
    }
}

/// For a deployment just started (`outcome` in progress): its outcome if it already ended.
pub async fn settled(
    cd: &aws_sdk_codedeploy::Client,
    prepared: &PreparedAction,
    outcome: &ActionOutcome,
) -> Result<Option<ActionOutcome>, ProviderError> {
    match &outcome.result.external_execution_id {
        Some(id) => outcome_of(cd, prepared, id).await,
        None => Ok(None),
    }
}

/// Deployment `id`'s outcome; `None` while it runs.
async fn outcome_of(
    cd: &aws_sdk_codedeploy::Client,
    prepared: &PreparedAction,
    id: &str,
) -> Result<Option<ActionOutcome>, ProviderError> {
    let got = cd
        .get_deployment()
        .deployment_id(id)
        .send()
        .await
        .map_err(|e| codedeploy_error("GetDeployment", id, &e))?;
    let info = got.deployment_info().ok_or_else(|| {
        ProviderError::Job(format!(
            "codedeploy:GetDeployment: CodeDeploy knows no deployment {id}"
        ))
    })?;
    let status = info.status().map(|s| s.as_str()).unwrap_or("InProgress");
    if !codedeploy::ENDED_STATUSES.contains(&status) {
        return Ok(None);
    }
    let result = |summary: String| ActionExecutionResult {
        external_execution_summary: Some(summary),
        external_execution_url: Some(link(prepared, id)),
        external_execution_id: Some(id.to_string()),
        ..Default::default()
    };
    if status != "Succeeded" {
        let error = info.error_information();
        let mut outcome = ActionOutcome::failed(
            FailureType::JobFailed,
            codedeploy::failure_message(
                id,
                status,
                error.and_then(|e| e.code()).map(|c| c.as_str()),
                error.and_then(|e| e.message()),
            ),
        );
        outcome.result = ActionExecutionResult {
            error_details: outcome.result.error_details.take(),
            ..result(format!("deployment {id} ended {status}"))
        };
        return Ok(Some(outcome));
    }
    Ok(Some(ActionOutcome::succeeded(
        result(format!("deployment {id} succeeded")),
        Vec::new(),
        BTreeMap::new(),
    )))
}

/// The deployment's console page.
fn link(prepared: &PreparedAction, id: &str) -> String {
    let region = prepared.record.input.region.clone().unwrap_or_default();
    codedeploy::console_link(&region, id)
}

/// A CodeDeploy refusal as the failure it means.
fn codedeploy_error<E>(
    call: &str,
    what: &str,
    err: &aws_sdk_codedeploy::error::SdkError<E>,
) -> ProviderError
where
    E: aws_sdk_codedeploy::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    super::service_error("codedeploy", call, what, err, |code| {
        code.ends_with("DoesNotExistException") || code.starts_with("Invalid")
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::super::test_support::{aws_json_service, prepared};
    use super::*;
    use pipewright_core::execution::{
        ActionExecutionStatus, ArtifactDetail, ArtifactLocation, ErrorCode,
    };

    fn client(base: &str) -> aws_sdk_codedeploy::Client {
        aws_sdk_codedeploy::Client::from_conf(
            aws_sdk_codedeploy::Config::builder()
                .behavior_version(aws_sdk_codedeploy::config::BehaviorVersion::latest())
                .region(aws_sdk_codedeploy::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_codedeploy::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(base)
                .build(),
        )
    }

    fn deploy_action() -> PreparedAction {
        let mut p = prepared(json!({
            "name": "Servers",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeploy", "version": "1"},
            "configuration": {"ApplicationName": "web", "DeploymentGroupName": "prod"}
        }));
        p.inputs = vec![ArtifactDetail {
            name: "Src".into(),
            s3_location: ArtifactLocation {
                bucket: "artifacts".into(),
                key: "web/in/Src/a.zip".into(),
                version_id: Some("v7".into()),
            },
        }];
        p
    }

    /// The revision is the artifact at its version; a repeated task finds the deployment its
    /// first run made instead of making a second.
    #[tokio::test]
    async fn the_artifact_is_deployed_once() {
        let description =
            codedeploy::deployment_description("pipeline", "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        let (base, calls) = aws_json_service(move |op, _| match op {
            "ListDeployments" => (200, json!({"deployments": ["d-OTHER", "d-FIRST"]})),
            "BatchGetDeployments" => (
                200,
                json!({"deploymentsInfo": [
                    {"deploymentId": "d-OTHER", "description": "someone else's"},
                    {"deploymentId": "d-FIRST", "description": description}
                ]}),
            ),
            _ => (200, json!({"deploymentId": "d-NEW"})),
        })
        .await;
        let outcome = run(&client(&base), &deploy_action()).await.unwrap();
        assert_eq!(
            outcome.result.external_execution_id.as_deref(),
            Some("d-FIRST")
        );
        assert!(calls
            .lock()
            .unwrap()
            .iter()
            .all(|(op, _)| op != "CreateDeployment"));

        let (base, calls) = aws_json_service(|op, _| match op {
            "ListDeployments" => (200, json!({"deployments": []})),
            _ => (200, json!({"deploymentId": "d-NEW"})),
        })
        .await;
        let outcome = run(&client(&base), &deploy_action()).await.unwrap();
        assert_eq!(outcome.status, ActionExecutionStatus::InProgress);
        assert_eq!(
            outcome.result.external_execution_id.as_deref(),
            Some("d-NEW")
        );
        let calls = calls.lock().unwrap();
        let (_, body) = calls
            .iter()
            .find(|(op, _)| op == "CreateDeployment")
            .unwrap();
        assert_eq!(
            body["revision"],
            json!({"revisionType": "S3", "s3Location": {
                "bucket": "artifacts", "key": "web/in/Src/a.zip", "bundleType": "zip", "version": "v7"
            }})
        );
        assert_eq!(body["applicationName"], "web");
        assert_eq!(body["deploymentGroupName"], "prod");
    }

    #[tokio::test]
    async fn a_failed_deployment_says_why() {
        let (base, _) = aws_json_service(|_, _| {
            (200, json!({"deploymentInfo": {
                "deploymentId": "d-1", "status": "Failed",
                "errorInformation": {"code": "HEALTH_CONSTRAINTS", "message": "too few healthy instances"}
            }}))
        })
        .await;
        let ended = DeploymentEnded {
            deployment_id: "d-1".into(),
            state: "FAILURE".into(),
        };
        let outcome = complete(&client(&base), &deploy_action(), &ended)
            .await
            .unwrap();
        let details = outcome.result.error_details.unwrap();
        assert_eq!(details.code, ErrorCode::Failure(FailureType::JobFailed));
        assert_eq!(
            details.message,
            "deployment d-1 ended Failed: HEALTH_CONSTRAINTS: too few healthy instances"
        );
        assert!(outcome
            .result
            .external_execution_url
            .unwrap()
            .contains("/deployments/d-1"));
    }
}
