//! Actions a service finishes: the action function starts the work (a Step Functions
//! execution, a stack operation) and records what it started; the service's own EventBridge
//! event ("Step Functions Execution Status Change", "CloudFormation Stack Status Change") later
//! reaches the action function, which completes the action. No
//! Lambda waits in between: the action's `runAction` task waits on its task token, kept in the
//! action's record, as a job worker's does.
//!
//! A Step Functions event completes an action only when it names the action's job (its action
//! execution id, which the execution was named after) **and** the very execution the action's
//! configuration names: a state machine run by someone else under a name that ends with a job id
//! completes nothing. A stack is not named after the job: the action points the stack's ARN at
//! itself when it starts it, and only the stack it recorded completes it.

use serde_json::Value;

use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId};
use crate::engine::jobs::JobError;
use crate::engine::{ActionOutcome, Engine, EngineError, PreparedAction};
use crate::execution::{ActionExecution, ActionExecutionStatus, FailureType};

/// True for the actions that complete on their service's event (`Invoke/AWS/StepFunctions`,
/// `Deploy/AWS/CloudFormation`, CodeBuild builds).
pub fn completes_on_event(record: &ActionExecution) -> bool {
    is_step_functions(&record.input.action_type_id) || is_named_by_service(record)
}

/// An action whose work the service names (a stack, a build), not the job: the action points
/// the work's id at itself when it starts it ([`Engine::record_started`]).
fn is_named_by_service(record: &ActionExecution) -> bool {
    is_cloudformation(record) || is_codebuild(record) || is_codedeploy(record) || is_ecs(record)
}

/// An ECS (standard) deploy action.
fn is_ecs(record: &ActionExecution) -> bool {
    let type_id = &record.input.action_type_id;
    type_id.category == ActionCategory::Deploy
        && type_id.owner == ActionOwner::Aws
        && type_id.provider == "ECS"
}

/// A CodeDeploy deploy action.
fn is_codedeploy(record: &ActionExecution) -> bool {
    let type_id = &record.input.action_type_id;
    type_id.category == ActionCategory::Deploy
        && type_id.owner == ActionOwner::Aws
        && type_id.provider == "CodeDeploy"
}

/// An action run as a CodeBuild build (a CodeBuild action, or Commands on a project).
fn is_codebuild(record: &ActionExecution) -> bool {
    crate::codebuild::runs_on_codebuild(
        &record.input.action_type_id,
        &record.input.resolved_configuration,
    )
}

fn is_step_functions(type_id: &ActionTypeId) -> bool {
    type_id.category == ActionCategory::Invoke
        && type_id.owner == ActionOwner::Aws
        && type_id.provider == "StepFunctions"
}

/// A CloudFormation deploy action.
fn is_cloudformation(record: &ActionExecution) -> bool {
    let type_id = &record.input.action_type_id;
    type_id.category == ActionCategory::Deploy
        && type_id.owner == ActionOwner::Aws
        && type_id.provider == "CloudFormation"
}

/// The `detail-type` of Step Functions' status events.
pub const STEP_FUNCTIONS_STATUS_CHANGE: &str = "Step Functions Execution Status Change";

/// What a service said about work it ended.
#[derive(Debug, Clone, PartialEq)]
pub struct WorkEnded {
    /// The job (action execution id) the work was named after.
    pub job_id: String,
    /// The work's own id (the execution ARN).
    pub external_id: String,
    /// The service's final status (`SUCCEEDED`, `FAILED`, `TIMED_OUT`, `ABORTED`).
    pub status: String,
    /// The work's output (a Step Functions execution's output JSON), when it succeeded.
    pub output: Option<String>,
    /// The error and cause, when it failed.
    pub error: Option<String>,
    /// The cause.
    pub cause: Option<String>,
}

impl WorkEnded {
    /// Whether the work succeeded.
    pub fn succeeded(&self) -> bool {
        self.status == "SUCCEEDED"
    }

    /// The failure message of work that did not succeed: status, error and cause.
    pub fn failure_message(&self) -> String {
        let mut message = format!(
            "state machine execution {} ended {}",
            self.external_id, self.status
        );
        if let Some(error) = self.error.as_deref().filter(|e| !e.is_empty()) {
            message.push_str(&format!(": {error}"));
        }
        if let Some(cause) = self.cause.as_deref().filter(|c| !c.is_empty()) {
            message.push_str(&format!(": {cause}"));
        }
        message
    }
}

/// A service's event about work an action started: what the action function is told.
#[derive(Debug, Clone, PartialEq)]
pub enum WorkEvent {
    /// A Step Functions execution ended.
    StateMachine(WorkEnded),
    /// A stack rests.
    Stack(crate::cloudformation::StackChanged),
    /// A build ended.
    Build(crate::codebuild::BuildEnded),
    /// A CodeDeploy deployment ended.
    Deployment(crate::codedeploy::DeploymentEnded),
    /// An ECS service deployment ended.
    ServiceDeployment(crate::ecs::DeploymentEnded),
}

impl WorkEvent {
    /// The event read, if it is one of the services' events actions complete on.
    pub fn read(event: &Value) -> Option<Self> {
        crate::cloudformation::stack_status_changed(event)
            .map(Self::Stack)
            .or_else(|| crate::codebuild::build_ended(event).map(Self::Build))
            .or_else(|| crate::codedeploy::deployment_ended(event).map(Self::Deployment))
            .or_else(|| crate::ecs::deployment_ended(event).map(Self::ServiceDeployment))
            .or_else(|| step_functions_ended(event).map(Self::StateMachine))
    }

    /// The work's id, as the service names it.
    pub fn work_id(&self) -> &str {
        match self {
            Self::StateMachine(e) => &e.external_id,
            Self::Stack(c) => &c.stack_id,
            Self::Build(b) => &b.build_id,
            Self::Deployment(d) => &d.deployment_id,
            Self::ServiceDeployment(d) => &d.deployment_id,
        }
    }

    /// The state it reached, as the service says it.
    pub fn state(&self) -> &str {
        match self {
            Self::StateMachine(e) => &e.status,
            Self::Stack(c) => &c.status,
            Self::Build(b) => &b.status,
            Self::Deployment(d) => &d.state,
            Self::ServiceDeployment(d) => &d.event_name,
        }
    }
}

/// The work a pending action already started and recorded ([`Engine::record_started`]), for an
/// action whose work the service names: a task delivered again waits for that work instead of
/// starting it a second time.
pub fn started_work(record: &ActionExecution) -> Option<&str> {
    if record.status != ActionExecutionStatus::InProgress || !is_named_by_service(record) {
        return None;
    }
    record
        .output
        .execution_result
        .external_execution_id
        .as_deref()
        .filter(|id| !id.is_empty())
}

/// The name of the Step Functions execution of job `job_id`: the job id, after `prefix` and a
/// hyphen when there is one (as CodePipeline names it).
pub fn step_functions_execution_name(prefix: Option<&str>, job_id: &str) -> String {
    match prefix.filter(|p| !p.is_empty()) {
        Some(p) => format!("{p}-{job_id}"),
        None => job_id.to_string(),
    }
}

/// The ARN of execution `name` of state machine `state_machine_arn`
/// (`arn:<partition>:states:<region>:<account>:execution:<machine>:<name>`); `None` when the
/// machine's ARN is not a state machine's.
pub fn step_functions_execution_arn(state_machine_arn: &str, name: &str) -> Option<String> {
    let parts: Vec<&str> = state_machine_arn.trim().split(':').collect();
    match parts.as_slice() {
        ["arn", partition, "states", region, account, "stateMachine", machine] => Some(format!(
            "arn:{partition}:states:{region}:{account}:execution:{machine}:{name}"
        )),
        _ => None,
    }
}

/// The job id an execution name ends with (the last 36 characters, when they are a UUID).
pub fn job_id_of_execution_name(name: &str) -> Option<&str> {
    let id = name.get(name.len().checked_sub(36)?..)?;
    let uuid_like = id.len() == 36
        && id.char_indices().all(|(i, c)| {
            if matches!(i, 8 | 13 | 18 | 23) {
                c == '-'
            } else {
                c.is_ascii_hexdigit()
            }
        });
    let separated = name.len() == 36 || name[..name.len() - 36].ends_with('-');
    (uuid_like && separated).then_some(id)
}

/// A Step Functions status event of an execution that ended, read; `None` for anything else
/// (another detail type, a run still going).
pub fn step_functions_ended(event: &Value) -> Option<WorkEnded> {
    if event.get("source").and_then(Value::as_str) != Some("aws.states")
        || event.get("detail-type").and_then(Value::as_str) != Some(STEP_FUNCTIONS_STATUS_CHANGE)
    {
        return None;
    }
    let detail = event.get("detail")?;
    let text = |k: &str| detail.get(k).and_then(Value::as_str).map(str::to_string);
    let status = text("status")?;
    if !matches!(
        status.as_str(),
        "SUCCEEDED" | "FAILED" | "TIMED_OUT" | "ABORTED"
    ) {
        return None;
    }
    let name = text("name")?;
    Some(WorkEnded {
        job_id: job_id_of_execution_name(&name)?.to_string(),
        external_id: text("executionArn")?,
        status,
        output: text("output"),
        error: text("error"),
        cause: text("cause"),
    })
}

impl Engine<'_> {
    /// Record that `record`'s work started elsewhere (`outcome`: its external id, link, summary
    /// and the output variables known at the start); the action stays in progress.
    pub async fn record_started(
        &self,
        record: &ActionExecution,
        outcome: ActionOutcome,
        now: f64,
    ) -> Result<(), EngineError> {
        let mut started = record.clone();
        started.last_update_time = now;
        started.output.execution_result = outcome.result;
        started.output.output_variables = outcome.output_variables;
        if is_named_by_service(record) {
            if let Some(work) = &started.output.execution_result.external_execution_id {
                self.executions.point_work(work, &started).await?;
            }
        }
        match self
            .executions
            .put_action(&started, Some(ActionExecutionStatus::InProgress), &[])
            .await
        {
            // Its event came first and completed it: nothing to record any more.
            Ok(()) | Err(crate::store::StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The action waiting for `ended`, prepared again to be completed; `None` when the event is
    /// not for a pending action of a type that completes on its service's event, or names
    /// other work than the action started (such events change nothing). A job already completed
    /// whose callback was lost has it sent again.
    async fn pending_external(
        &self,
        ended: &WorkEnded,
    ) -> Result<Option<PreparedAction>, JobError> {
        let Some(record) = self
            .executions
            .find_job(&ended.job_id)
            .await?
            .filter(completes_on_event)
        else {
            return Ok(None);
        };
        // The work is named after the job, so which execution is the action's is known before
        // it starts: an event that comes before the start was recorded is still recognized.
        let expected = record
            .input
            .resolved_configuration
            .get("StateMachineArn")
            .and_then(|machine| {
                let prefix = record
                    .input
                    .resolved_configuration
                    .get("ExecutionNamePrefix");
                step_functions_execution_arn(
                    machine,
                    &step_functions_execution_name(prefix.map(String::as_str), &ended.job_id),
                )
            })
            .or_else(|| record.output.execution_result.external_execution_id.clone());
        if expected.as_deref() != Some(ended.external_id.as_str()) {
            tracing::warn!(job = %ended.job_id, work = %ended.external_id, "an event names a job but not the work it started: ignored");
            return Ok(None);
        }
        self.still_pending(record).await
    }

    /// `record` prepared again while it is in progress; `None` once it ended (its callback
    /// sent again if it was lost).
    async fn still_pending(
        &self,
        record: ActionExecution,
    ) -> Result<Option<PreparedAction>, JobError> {
        if record.status != ActionExecutionStatus::InProgress {
            if record.task_token.is_some() {
                self.answer_unsent(&record).await?;
            }
            return Ok(None);
        }
        self.prepare_again(&record).await.map(Some)
    }
}

impl Engine<'_> {
    /// The action waiting for the work `event` names, prepared again to be completed; `None` when
    /// no pending action started that work (events of every other stack, build or deployment of
    /// the account come here too, and change nothing).
    pub async fn pending_for(&self, event: &WorkEvent) -> Result<Option<PreparedAction>, JobError> {
        match event {
            WorkEvent::StateMachine(ended) => self.pending_external(ended).await,
            WorkEvent::Stack(changed) => self.pending_stack(changed).await,
            WorkEvent::Build(ended) => self.pending_work(&ended.build_id, is_codebuild).await,
            WorkEvent::Deployment(ended) => {
                self.pending_work(&ended.deployment_id, is_codedeploy).await
            }
            WorkEvent::ServiceDeployment(ended) => {
                self.pending_work(&ended.deployment_id, is_ecs).await
            }
        }
    }

    /// The CloudFormation action waiting for the stack `changed` names, prepared again to be
    /// completed; `None` when no pending action started work on that stack (events of every
    /// other stack of the account come here too, and change nothing). A completed action whose
    /// callback was lost has it sent again.
    async fn pending_stack(
        &self,
        changed: &crate::cloudformation::StackChanged,
    ) -> Result<Option<PreparedAction>, JobError> {
        self.pending_work(&changed.stack_id, is_cloudformation)
            .await
    }

    /// The action of type `kind` that recorded starting work `work_id`, while it is pending.
    async fn pending_work(
        &self,
        work_id: &str,
        kind: fn(&ActionExecution) -> bool,
    ) -> Result<Option<PreparedAction>, JobError> {
        let Some(record) = self
            .executions
            .find_work(work_id)
            .await?
            .filter(kind)
            .filter(|r| {
                r.output.execution_result.external_execution_id.as_deref() == Some(work_id)
            })
        else {
            return Ok(None);
        };
        self.still_pending(record).await
    }
}

/// The outcome of work that did not succeed: `JobFailed` with what the service said.
pub fn failed_outcome(ended: &WorkEnded, started: &ActionExecution) -> ActionOutcome {
    let mut outcome = ActionOutcome::failed(FailureType::JobFailed, ended.failure_message());
    outcome.result.external_execution_id = Some(ended.external_id.clone());
    outcome.result.external_execution_url = started
        .output
        .execution_result
        .external_execution_url
        .clone();
    outcome
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    const JOB: &str = "1624a1d1-3699-43f0-8e1e-6bafd7fde791";

    #[test]
    fn executions_are_named_after_their_job_and_found_by_it() {
        let name = step_functions_execution_name(Some("myPrefix"), JOB);
        assert_eq!(name, format!("myPrefix-{JOB}"));
        assert_eq!(job_id_of_execution_name(&name), Some(JOB));
        assert_eq!(step_functions_execution_name(None, JOB), JOB);
        assert_eq!(job_id_of_execution_name(JOB), Some(JOB));
        for other in ["x", "run-42", &format!("x{JOB}"), &JOB.replace('-', "_")] {
            assert_eq!(job_id_of_execution_name(other), None, "{other}");
        }
        assert_eq!(
            step_functions_execution_arn(
                "arn:aws:states:eu-west-1:123456789012:stateMachine:Deploy",
                &name
            ),
            Some(format!(
                "arn:aws:states:eu-west-1:123456789012:execution:Deploy:{name}"
            ))
        );
        assert_eq!(
            step_functions_execution_arn("arn:aws:lambda:x", &name),
            None
        );
    }

    #[test]
    fn each_services_event_is_read_as_its_work() {
        let build = json!({"source": "aws.codebuild", "detail-type": "CodeBuild Build State Change",
            "detail": {"build-status": "SUCCEEDED", "build-id": "arn:aws:codebuild:us-east-1:1:build/web:9"}});
        let read = WorkEvent::read(&build).unwrap();
        assert_eq!((read.work_id(), read.state()), ("web:9", "SUCCEEDED"));
        let deployment = json!({"source": "aws.codedeploy",
            "detail-type": "CodeDeploy Deployment State-change Notification",
            "detail": {"deploymentId": "d-1", "state": "FAILURE"}});
        assert!(matches!(
            WorkEvent::read(&deployment),
            Some(WorkEvent::Deployment(_))
        ));
        let service = json!({"source": "aws.ecs", "detail-type": "ECS Deployment State Change",
            "detail": {"eventName": "SERVICE_DEPLOYMENT_COMPLETED", "deploymentId": "ecs-svc/1"}});
        assert_eq!(WorkEvent::read(&service).unwrap().work_id(), "ecs-svc/1");
        let stack = json!({"source": "aws.cloudformation",
            "detail-type": "CloudFormation Stack Status Change",
            "detail": {"stack-id": "arn:s", "status-details": {"status": "CREATE_COMPLETE"}}});
        assert!(matches!(WorkEvent::read(&stack), Some(WorkEvent::Stack(_))));
        assert!(WorkEvent::read(&json!({"source": "my.app"})).is_none());
    }

    #[test]
    fn work_a_pending_action_started_is_found_again() {
        let mut record: ActionExecution = serde_json::from_value(json!({
            "pipelineExecutionId": "e", "actionExecutionId": "a", "pipelineVersion": 1,
            "stageName": "Build", "actionName": "Compile", "attempt": 1, "status": "InProgress",
            "startTime": 0.0, "lastUpdateTime": 0.0,
            "input": {"actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
                      "configuration": {}, "resolvedConfiguration": {}},
            "output": {"executionResult": {"externalExecutionId": "web:1"}}
        }))
        .unwrap();
        assert_eq!(started_work(&record), Some("web:1"));
        record.status = ActionExecutionStatus::Succeeded;
        assert_eq!(
            started_work(&record),
            None,
            "an ended action starts nothing either way"
        );
        record.status = ActionExecutionStatus::InProgress;
        record.input.action_type_id.category = ActionCategory::Invoke;
        record.input.action_type_id.provider = "StepFunctions".into();
        assert_eq!(
            started_work(&record),
            None,
            "executions are named after the job instead"
        );
    }

    #[test]
    fn status_events_are_read_and_others_ignored() {
        let event = |status: &str| {
            json!({
                "source": "aws.states",
                "detail-type": STEP_FUNCTIONS_STATUS_CHANGE,
                "detail": {
                    "executionArn": format!("arn:aws:states:us-east-1:1:execution:M:p-{JOB}"),
                    "stateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:M",
                    "name": format!("p-{JOB}"),
                    "status": status,
                    "output": "{\"ok\":true}",
                    "error": "States.TaskFailed",
                    "cause": "it broke"
                }
            })
        };
        let ended = step_functions_ended(&event("SUCCEEDED")).unwrap();
        assert!(ended.succeeded());
        assert_eq!(ended.job_id, JOB);
        assert_eq!(ended.output.as_deref(), Some("{\"ok\":true}"));
        let failed = step_functions_ended(&event("FAILED")).unwrap();
        assert_eq!(
            failed.failure_message(),
            format!("state machine execution arn:aws:states:us-east-1:1:execution:M:p-{JOB} ended FAILED: States.TaskFailed: it broke")
        );
        assert!(step_functions_ended(&event("RUNNING")).is_none());
        let mut other = event("SUCCEEDED");
        other["source"] = json!("my.app");
        assert!(step_functions_ended(&other).is_none());
        let mut unnamed = event("SUCCEEDED");
        unnamed["detail"]["name"] = json!("nightly-run");
        assert!(step_functions_ended(&unnamed).is_none());
    }
}
