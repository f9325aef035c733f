//! CodeDeploy actions (`Deploy/AWS/CodeDeploy`): what is decided without AWS. The action function
//! creates a deployment of the input artifact (an S3 revision at its exact version) to
//! `ApplicationName` / `DeploymentGroupName`; CodeDeploy's "CodeDeploy Deployment State-change
//! Notification" event completes the action.

use serde_json::Value;

/// The `detail-type` of CodeDeploy's deployment state events.
pub const DEPLOYMENT_STATE_CHANGE: &str = "CodeDeploy Deployment State-change Notification";

/// The deployment states (as the events spell them) a deployment ends in.
pub const ENDED_STATES: &[&str] = &["SUCCESS", "FAILURE", "STOP"];

/// The statuses (as GetDeployment spells them) a deployment ends in.
pub const ENDED_STATUSES: &[&str] = &["Succeeded", "Failed", "Stopped"];

/// What a deployment state event says: the deployment ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeploymentEnded {
    /// `detail.deploymentId`.
    pub deployment_id: String,
    /// `detail.state`: `SUCCESS`, `FAILURE` or `STOP`.
    pub state: String,
}

/// A CodeDeploy deployment state event of a deployment that ended; `None` for anything else.
pub fn deployment_ended(event: &Value) -> Option<DeploymentEnded> {
    if event.get("source").and_then(Value::as_str) != Some("aws.codedeploy")
        || event.get("detail-type").and_then(Value::as_str) != Some(DEPLOYMENT_STATE_CHANGE)
    {
        return None;
    }
    let detail = event.get("detail")?;
    let state = detail.get("state").and_then(Value::as_str)?;
    if !ENDED_STATES.contains(&state) {
        return None;
    }
    let deployment_id = detail.get("deploymentId").and_then(Value::as_str)?;
    (!deployment_id.is_empty()).then(|| DeploymentEnded {
        deployment_id: deployment_id.to_string(),
        state: state.to_string(),
    })
}

/// The description a deployment of job `job_id` carries, by which a repeated task finds the
/// deployment its first run created (CreateDeployment takes no idempotency token).
pub fn deployment_description(pipeline: &str, job_id: &str) -> String {
    format!("Pipewright pipeline {pipeline}, action execution {job_id}")
}

/// Why deployment `id` did not succeed: its status and CodeDeploy's error.
pub fn failure_message(
    id: &str,
    status: &str,
    code: Option<&str>,
    message: Option<&str>,
) -> String {
    let mut text = format!("deployment {id} ended {status}");
    if let Some(code) = code.filter(|c| !c.is_empty()) {
        text.push_str(&format!(": {code}"));
    }
    if let Some(message) = message.filter(|m| !m.is_empty()) {
        text.push_str(&format!(": {message}"));
    }
    text
}

/// The deployment's page in the CodeDeploy console.
pub fn console_link(region: &str, deployment_id: &str) -> String {
    format!(
        "https://{region}.console.aws.amazon.com/codesuite/codedeploy/deployments/{deployment_id}?region={region}"
    )
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn deployment_events_are_read_and_others_ignored() {
        let event = |state: &str| {
            json!({
                "source": "aws.codedeploy",
                "detail-type": DEPLOYMENT_STATE_CHANGE,
                "detail": {"deploymentId": "d-ABC123", "state": state, "application": "web",
                           "deploymentGroup": "prod", "region": "us-east-1"}
            })
        };
        assert_eq!(
            deployment_ended(&event("FAILURE")),
            Some(DeploymentEnded {
                deployment_id: "d-ABC123".into(),
                state: "FAILURE".into()
            })
        );
        assert!(deployment_ended(&event("START")).is_none());
        let mut other = event("SUCCESS");
        other["source"] = json!("my.app");
        assert!(deployment_ended(&other).is_none());
        assert_eq!(
            failure_message(
                "d-1",
                "Failed",
                Some("HEALTH_CONSTRAINTS"),
                Some("too few healthy")
            ),
            "deployment d-1 ended Failed: HEALTH_CONSTRAINTS: too few healthy"
        );
        assert_eq!(
            failure_message("d-1", "Stopped", None, Some("")),
            "deployment d-1 ended Stopped"
        );
        assert!(deployment_description("web", "aaaa").contains("aaaa"));
        assert_eq!(
            console_link("eu-west-1", "d-1"),
            "https://eu-west-1.console.aws.amazon.com/codesuite/codedeploy/deployments/d-1?region=eu-west-1"
        );
    }
}
