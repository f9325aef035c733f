//! Amazon ECS (standard) deploy actions (`Deploy/AWS/ECS`): what is decided without AWS. The
//! action function reads the image definitions file of the input artifact, registers a revision
//! of the service's task definition with those images, updates the service to it, and completes
//! when the service's deployment is done: on ECS's "ECS Deployment State Change" event.

use serde::Deserialize;
use serde_json::Value;

/// The `detail-type` of ECS's service deployment events.
pub const DEPLOYMENT_STATE_CHANGE: &str = "ECS Deployment State Change";

/// The image definitions file CodePipeline reads when `FileName` is not set.
pub const DEFAULT_FILE_NAME: &str = "imagedefinitions.json";

/// One entry of an image definitions file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ImageDefinition {
    /// The container's name in the task definition.
    pub name: String,
    /// The image the container runs from now on.
    #[serde(rename = "imageUri")]
    pub image_uri: String,
}

/// An image definitions file (`[{"name": "web", "imageUri": "...:tag"}]`), read; the error names
/// the entry and the reason.
pub fn image_definitions(file: &str, text: &str) -> Result<Vec<ImageDefinition>, String> {
    let entries: Vec<Value> = serde_json::from_str(text).map_err(|e| {
        format!("{file} must be a JSON array of {{\"name\", \"imageUri\"}} objects: {e}")
    })?;
    if entries.is_empty() {
        return Err(format!("{file} names no container"));
    }
    let mut out: Vec<ImageDefinition> = Vec::with_capacity(entries.len());
    for (i, entry) in entries.into_iter().enumerate() {
        let definition: ImageDefinition =
            serde_json::from_value(entry).map_err(|e| format!("{file}: entry {i}: {e}"))?;
        if definition.name.trim().is_empty() || definition.image_uri.trim().is_empty() {
            return Err(format!(
                "{file}: entry {i}: name and imageUri must not be empty"
            ));
        }
        if out.iter().any(|d| d.name == definition.name) {
            return Err(format!(
                "{file}: entry {i}: container {} is named twice",
                definition.name
            ));
        }
        out.push(definition);
    }
    Ok(out)
}

/// A service deployment, as DescribeServices reports it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Deployment {
    /// `id` (`ecs-svc/...`).
    pub id: String,
    /// `status`: `PRIMARY`, `ACTIVE` or `INACTIVE`.
    pub status: String,
    /// `rolloutState`: `IN_PROGRESS`, `COMPLETED` or `FAILED`, when ECS reports one.
    pub rollout_state: Option<String>,
    /// `rolloutStateReason`.
    pub rollout_state_reason: Option<String>,
    /// `desiredCount`.
    pub desired: i32,
    /// `runningCount`.
    pub running: i32,
}

/// Where a deployment stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// Still rolling out.
    Running,
    /// Done: the service runs the deployment's tasks only (a steady state).
    Completed,
    /// Failed, with why.
    Failed(String),
}

/// Where deployment `ours` of a service with `deployments` stands. It completed when ECS says
/// so (`rolloutState` `COMPLETED`), or, when ECS reports no rollout state, when it is the
/// primary deployment with every desired task running and no task of another deployment left
/// (the steady state `aws ecs wait services-stable` waits for); it failed when ECS says so, or
/// when another deployment replaced it (a rollback, a newer update).
pub fn progress(deployments: &[Deployment], ours: &str) -> Progress {
    let Some(deployment) = deployments.iter().find(|d| d.id == ours) else {
        return Progress::Failed(format!(
            "deployment {ours} is no longer the service's (replaced or rolled back)"
        ));
    };
    match deployment.rollout_state.as_deref() {
        Some("FAILED") => {
            return Progress::Failed(
                deployment
                    .rollout_state_reason
                    .clone()
                    .unwrap_or_else(|| format!("deployment {ours} failed")),
            )
        }
        Some("COMPLETED") if deployment.status == "PRIMARY" => return Progress::Completed,
        _ => {}
    }
    if deployment.status != "PRIMARY" {
        let newer = deployments
            .iter()
            .find(|d| d.status == "PRIMARY")
            .map_or("another deployment", |d| d.id.as_str());
        return Progress::Failed(format!("deployment {ours} was replaced by {newer}"));
    }
    let others_drained = deployments
        .iter()
        .filter(|d| d.id != ours)
        .all(|d| d.running == 0);
    if deployment.rollout_state.is_none()
        && deployment.running == deployment.desired
        && others_drained
    {
        Progress::Completed
    } else {
        Progress::Running
    }
}

/// What a deployment state event says: a service deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentEnded {
    /// `detail.deploymentId`.
    pub deployment_id: String,
    /// `detail.eventName`: `SERVICE_DEPLOYMENT_COMPLETED` or `SERVICE_DEPLOYMENT_FAILED`.
    pub event_name: String,
}

/// An ECS deployment state event of a deployment that ended; `None` for anything else.
pub fn deployment_ended(event: &Value) -> Option<DeploymentEnded> {
    if event.get("source").and_then(Value::as_str) != Some("aws.ecs")
        || event.get("detail-type").and_then(Value::as_str) != Some(DEPLOYMENT_STATE_CHANGE)
    {
        return None;
    }
    let detail = event.get("detail")?;
    let name = detail.get("eventName").and_then(Value::as_str)?;
    if !matches!(
        name,
        "SERVICE_DEPLOYMENT_COMPLETED" | "SERVICE_DEPLOYMENT_FAILED"
    ) {
        return None;
    }
    let id = detail.get("deploymentId").and_then(Value::as_str)?;
    (!id.is_empty()).then(|| DeploymentEnded {
        deployment_id: id.to_string(),
        event_name: name.to_string(),
    })
}

/// The service's page in the ECS console.
pub fn console_link(region: &str, cluster: &str, service: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/ecs/v2/clusters/{cluster}/services/{service}/deployments?region={region}"
    )
}

/// An ECS action's `DeploymentTimeout` in minutes: a whole number from 1 to 60 (CodePipeline's
/// limit for the action, which is also its default).
pub fn deployment_timeout_minutes(text: &str) -> Option<u32> {
    text.trim()
        .parse::<u32>()
        .ok()
        .filter(|m| (1..=60).contains(m))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn image_definitions_are_read_as_codepipeline_writes_them() {
        let defs = image_definitions(
            "imagedefinitions.json",
            r#"[{"name":"web","imageUri":"123.dkr.ecr.us-east-1.amazonaws.com/web:abc"},
                {"name":"sidecar","imageUri":"envoy:1"}]"#,
        )
        .unwrap();
        assert_eq!(defs[1].image_uri, "envoy:1");
        for (text, says) in [
            ("{}", "must be a JSON array"),
            ("[]", "names no container"),
            (r#"[{"name":"web"}]"#, "entry 0: missing field `imageUri`"),
            (r#"[{"name":"","imageUri":"x"}]"#, "must not be empty"),
            (
                r#"[{"name":"a","imageUri":"x"},{"name":"a","imageUri":"y"}]"#,
                "entry 1: container a is named twice",
            ),
        ] {
            let err = image_definitions("defs.json", text).unwrap_err();
            assert!(err.contains(says), "{text}: {err}");
            assert!(err.starts_with("defs.json"), "{err}");
        }
    }

    fn deployment(id: &str, status: &str, desired: i32, running: i32) -> Deployment {
        Deployment {
            id: id.into(),
            status: status.into(),
            desired,
            running,
            ..Default::default()
        }
    }

    #[test]
    fn a_deployment_completes_at_a_steady_state_and_fails_when_replaced() {
        let ours = deployment("ecs-svc/2", "PRIMARY", 2, 1);
        let rolling = Deployment {
            rollout_state: Some("IN_PROGRESS".into()),
            running: 2,
            ..ours.clone()
        };
        assert_eq!(
            progress(&[rolling], "ecs-svc/2"),
            Progress::Running,
            "while ECS reports a rollout in progress, its word decides"
        );
        let old = deployment("ecs-svc/1", "ACTIVE", 2, 1);
        assert_eq!(
            progress(&[ours.clone(), old.clone()], "ecs-svc/2"),
            Progress::Running
        );
        let up = Deployment {
            running: 2,
            ..ours.clone()
        };
        assert_eq!(
            progress(&[up.clone(), old.clone()], "ecs-svc/2"),
            Progress::Running
        );
        let drained = Deployment {
            running: 0,
            ..old.clone()
        };
        assert_eq!(
            progress(&[up.clone(), drained], "ecs-svc/2"),
            Progress::Completed
        );
        assert_eq!(
            progress(std::slice::from_ref(&up), "ecs-svc/2"),
            Progress::Completed
        );
        let said = Deployment {
            rollout_state: Some("COMPLETED".into()),
            ..ours.clone()
        };
        assert_eq!(
            progress(&[said, old.clone()], "ecs-svc/2"),
            Progress::Completed
        );
        let failed = Deployment {
            rollout_state: Some("FAILED".into()),
            rollout_state_reason: Some(
                "ECS deployment circuit breaker: tasks failed to start.".into(),
            ),
            ..ours.clone()
        };
        assert_eq!(
            progress(&[failed], "ecs-svc/2"),
            Progress::Failed("ECS deployment circuit breaker: tasks failed to start.".into())
        );
        let newer = deployment("ecs-svc/3", "PRIMARY", 2, 0);
        let replaced = Deployment {
            status: "ACTIVE".into(),
            ..ours
        };
        assert_eq!(
            progress(&[newer, replaced], "ecs-svc/2"),
            Progress::Failed("deployment ecs-svc/2 was replaced by ecs-svc/3".into())
        );
        assert!(
            matches!(progress(&[old], "ecs-svc/9"), Progress::Failed(m) if m.contains("no longer"))
        );
    }

    #[test]
    fn deployment_events_are_read_and_others_ignored() {
        let event = |name: &str| {
            json!({
                "source": "aws.ecs",
                "detail-type": DEPLOYMENT_STATE_CHANGE,
                "detail": {"eventType": "INFO", "eventName": name, "deploymentId": "ecs-svc/42",
                           "updatedAt": "2020-05-23T02:56:00.000Z", "reason": "done"}
            })
        };
        assert_eq!(
            deployment_ended(&event("SERVICE_DEPLOYMENT_COMPLETED"))
                .unwrap()
                .deployment_id,
            "ecs-svc/42"
        );
        assert!(deployment_ended(&event("SERVICE_DEPLOYMENT_IN_PROGRESS")).is_none());
        let mut other = event("SERVICE_DEPLOYMENT_FAILED");
        other["source"] = json!("aws.codedeploy");
        assert!(deployment_ended(&other).is_none());
        assert_eq!(
            console_link("us-east-1", "prod", "web"),
            "https://us-east-1.console.aws.amazon.com/ecs/v2/clusters/prod/services/web/deployments?region=us-east-1"
        );
    }
}
