//! `Deploy/AWS/ECS` (standard deployments): deploy new images to `ServiceName` of
//! `ClusterName`, then let ECS's "ECS Deployment State Change" event say when the deployment is
//! done.
//!
//! - The images come from the image definitions file (`FileName`, `imagedefinitions.json` by
//!   default) of the input artifact: `[{"name": <container>, "imageUri": <image>}]`.
//! - The service's current task definition is registered again as a new revision with those
//!   images (everything else kept, its tags included); a container the file names that the task
//!   definition has not is a configuration error naming both.
//! - The service is updated to the new revision (a new deployment); the action completes when
//!   that deployment reaches a steady state, and fails when ECS reports it failed (its reason
//!   and the service's latest event) or another deployment replaced it.
//!
//! Every call is made with the pipeline role's session.

use std::collections::BTreeMap;
use std::path::Path;

use aws_sdk_ecs::types::{Service, TaskDefinitionField};
use pipewright_aws::artifacts::S3Artifacts;
use pipewright_core::ecs::{self, DeploymentEnded, ImageDefinition, Progress};
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{ActionExecutionResult, FailureType};

use super::{optional, required, ProviderError};

/// The largest image definitions file read.
const MAX_FILE: u64 = 1024 * 1024;

/// Register the new task definition revision and update the service; in progress.
pub async fn run(
    client: &aws_sdk_ecs::Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
) -> Result<ActionOutcome, ProviderError> {
    let cluster = required(prepared, "ClusterName")?;
    let service_name = required(prepared, "ServiceName")?;
    let file = optional(prepared, "FileName").unwrap_or(ecs::DEFAULT_FILE_NAME);
    let text = read_file(artifacts, prepared, file, work_root).await?;
    let images = ecs::image_definitions(file, &text).map_err(|reason| {
        ProviderError::Configuration(format!("configuration FileName: {reason}"))
    })?;

    let service = describe(client, cluster, service_name).await?;
    let current = service.task_definition().ok_or_else(|| {
        ProviderError::Configuration(format!(
            "service {service_name} of cluster {cluster} has no task definition"
        ))
    })?;
    let described = client
        .describe_task_definition()
        .task_definition(current)
        .include(TaskDefinitionField::Tags)
        .send()
        .await
        .map_err(|e| ecs_error("DescribeTaskDefinition", current, &e))?;
    let definition = described.task_definition().ok_or_else(|| {
        ProviderError::Job(format!(
            "ecs:DescribeTaskDefinition {current}: no task definition"
        ))
    })?;
    let containers = with_images(definition, &images, current)?;
    let registered = client
        .register_task_definition()
        .set_family(definition.family().map(str::to_string))
        .set_task_role_arn(definition.task_role_arn().map(str::to_string))
        .set_execution_role_arn(definition.execution_role_arn().map(str::to_string))
        .set_network_mode(definition.network_mode().cloned())
        .set_container_definitions(Some(containers))
        .set_volumes(Some(definition.volumes().to_vec()))
        .set_placement_constraints(Some(definition.placement_constraints().to_vec()))
        .set_requires_compatibilities(Some(definition.requires_compatibilities().to_vec()))
        .set_cpu(definition.cpu().map(str::to_string))
        .set_memory(definition.memory().map(str::to_string))
        .set_pid_mode(definition.pid_mode().cloned())
        .set_ipc_mode(definition.ipc_mode().cloned())
        .set_proxy_configuration(definition.proxy_configuration().cloned())
        .set_ephemeral_storage(definition.ephemeral_storage().cloned())
        .set_runtime_platform(definition.runtime_platform().cloned())
        .set_tags((!described.tags().is_empty()).then(|| described.tags().to_vec()))
        .send()
        .await
        .map_err(|e| ecs_error("RegisterTaskDefinition", current, &e))?;
    let revision = registered
        .task_definition()
        .and_then(|t| t.task_definition_arn())
        .ok_or_else(|| {
            ProviderError::Job("ecs:RegisterTaskDefinition: no ARN in the answer".into())
        })?
        .to_string();
    let updated = client
        .update_service()
        .cluster(cluster)
        .service(service_name)
        .task_definition(&revision)
        .send()
        .await
        .map_err(|e| ecs_error("UpdateService", service_name, &e))?;
    let deployment = updated
        .service()
        .and_then(|s| {
            s.deployments()
                .iter()
                .find(|d| d.status() == Some("PRIMARY"))
        })
        .and_then(|d| d.id())
        .ok_or_else(|| {
            ProviderError::Job(format!(
                "ecs:UpdateService {service_name}: no primary deployment"
            ))
        })?
        .to_string();
    tracing::info!(%deployment, %revision, "service deployment started");
    Ok(ActionOutcome::in_progress(
        ActionExecutionResult {
            external_execution_summary: Some(format!(
                "deploying {} to service {service_name} ({deployment})",
                revision.rsplit('/').next().unwrap_or(&revision)
            )),
            external_execution_url: Some(link(prepared, cluster, service_name)),
            external_execution_id: Some(deployment),
            ..Default::default()
        },
        BTreeMap::new(),
    ))
}

/// The task definition's containers with the images the file names.
fn with_images(
    definition: &aws_sdk_ecs::types::TaskDefinition,
    images: &[ImageDefinition],
    arn: &str,
) -> Result<Vec<aws_sdk_ecs::types::ContainerDefinition>, ProviderError> {
    let mut containers = definition.container_definitions().to_vec();
    for image in images {
        let Some(container) = containers
            .iter_mut()
            .find(|c| c.name() == Some(image.name.as_str()))
        else {
            let names: Vec<&str> = definition
                .container_definitions()
                .iter()
                .filter_map(|c| c.name())
                .collect();
            return Err(ProviderError::Configuration(format!(
                "configuration FileName: the image definitions name container {}, which task \
                 definition {} has not (it has: {})",
                image.name,
                arn.rsplit('/').next().unwrap_or(arn),
                names.join(", ")
            )));
        };
        container.image = Some(image.image_uri.clone());
    }
    Ok(containers)
}

/// The outcome of the deployment `ended` names; the event's word decides a steady state the
/// service does not show yet.
pub async fn complete(
    client: &aws_sdk_ecs::Client,
    prepared: &PreparedAction,
    ended: &DeploymentEnded,
) -> Result<ActionOutcome, ProviderError> {
    let said_completed = ended.event_name == "SERVICE_DEPLOYMENT_COMPLETED";
    match outcome_of(client, prepared, &ended.deployment_id, said_completed).await? {
        Some(outcome) => Ok(outcome),
        None => Err(ProviderError::NotYet(format!(
            "deployment {} ended ({}) by its event, but the service does not show it ended",
            ended.deployment_id, ended.event_name
        ))),
    }
}

/// For a deployment just started (`outcome` in progress): its outcome if it already ended.
pub async fn settled(
    client: &aws_sdk_ecs::Client,
    prepared: &PreparedAction,
    outcome: &ActionOutcome,
) -> Result<Option<ActionOutcome>, ProviderError> {
    match &outcome.result.external_execution_id {
        Some(id) => outcome_of(client, prepared, id, false).await,
        None => Ok(None),
    }
}

/// Deployment `id`'s outcome; `None` while it rolls out.
async fn outcome_of(
    client: &aws_sdk_ecs::Client,
    prepared: &PreparedAction,
    id: &str,
    said_completed: bool,
) -> Result<Option<ActionOutcome>, ProviderError> {
    let cluster = required(prepared, "ClusterName")?;
    let service_name = required(prepared, "ServiceName")?;
    let service = describe(client, cluster, service_name).await?;
    let deployments: Vec<ecs::Deployment> = service
        .deployments()
        .iter()
        .map(|d| ecs::Deployment {
            id: d.id().unwrap_or_default().to_string(),
            status: d.status().unwrap_or_default().to_string(),
            rollout_state: d.rollout_state().map(|s| s.as_str().to_string()),
            rollout_state_reason: d.rollout_state_reason().map(str::to_string),
            desired: d.desired_count(),
            running: d.running_count(),
        })
        .collect();
    let progress = match ecs::progress(&deployments, id) {
        Progress::Running if said_completed => Progress::Completed,
        other => other,
    };
    let result = |summary: String| ActionExecutionResult {
        external_execution_summary: Some(summary),
        external_execution_url: Some(link(prepared, cluster, service_name)),
        external_execution_id: Some(id.to_string()),
        ..Default::default()
    };
    match progress {
        Progress::Running => Ok(None),
        Progress::Completed => Ok(Some(ActionOutcome::succeeded(
            result(format!(
                "deployment {id} of service {service_name} completed"
            )),
            Vec::new(),
            BTreeMap::new(),
        ))),
        Progress::Failed(reason) => {
            let latest = service
                .events()
                .first()
                .and_then(|e| e.message())
                .map(|m| format!("; the service's latest event: {m}"))
                .unwrap_or_default();
            let mut outcome = ActionOutcome::failed(
                FailureType::JobFailed,
                format!("deployment {id} of service {service_name} failed: {reason}{latest}"),
            );
            outcome.result = ActionExecutionResult {
                error_details: outcome.result.error_details.take(),
                ..result(format!("deployment {id} of service {service_name} failed"))
            };
            Ok(Some(outcome))
        }
    }
}

/// The service, which must exist and be active.
async fn describe(
    client: &aws_sdk_ecs::Client,
    cluster: &str,
    service: &str,
) -> Result<Service, ProviderError> {
    let described = client
        .describe_services()
        .cluster(cluster)
        .services(service)
        .send()
        .await
        .map_err(|e| ecs_error("DescribeServices", service, &e))?;
    described
        .services()
        .iter()
        .find(|s| s.status() == Some("ACTIVE"))
        .cloned()
        .ok_or_else(|| {
            ProviderError::Configuration(format!(
                "configuration ServiceName: cluster {cluster} has no active service {service}"
            ))
        })
}

/// The image definitions file of the input artifact.
async fn read_file(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    file: &str,
    work_root: &Path,
) -> Result<String, ProviderError> {
    let artifact = prepared.inputs.first().ok_or_else(|| {
        ProviderError::Configuration(
            "an ECS action reads its image definitions from an input artifact, and it has none"
                .into(),
        )
    })?;
    super::read_input_file(
        artifacts, prepared, artifact, file, "FileName", MAX_FILE, work_root,
    )
    .await
}

/// The service's deployments page.
fn link(prepared: &PreparedAction, cluster: &str, service: &str) -> String {
    let region = prepared.record.input.region.clone().unwrap_or_default();
    ecs::console_link(&region, cluster, service)
}

/// An ECS refusal as the failure it means.
fn ecs_error<E>(call: &str, what: &str, err: &aws_sdk_ecs::error::SdkError<E>) -> ProviderError
where
    E: aws_sdk_ecs::error::ProvideErrorMetadata + std::error::Error + 'static,
{
    super::service_error("ecs", call, what, err, |code| {
        matches!(
            code,
            "ClusterNotFoundException"
                | "ServiceNotFoundException"
                | "ServiceNotActiveException"
                | "InvalidParameterException"
                | "ClientException"
        )
    })
}
