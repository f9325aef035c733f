//! The execution engine's decisions, over ports that `pipewright-aws` implements.
//!
//! The state machine compiled by [`crate::asl`] calls the `orchestrator` and `action` functions;
//! they decode their payload and call the operations here:
//!
//! - [`Engine::start_execution`]: the execution record (conditional put, idempotent), the
//!   `STARTED` event, then the state machine execution;
//! - [`Engine::enter_stage`] / [`Engine::leave_stage`] / [`Engine::finish_execution`];
//! - [`Engine::begin_action`] / [`Engine::complete_action`] around a provider's work;
//! - [`Engine::check_group`] after each action group.
//!
//! Every state change is written to the store together with the CodePipeline-shaped events
//! that report it (one transaction, [`crate::outbox`]); the publisher sends them at least once,
//! each with a stable `detail.event-id`.
//!
//! Every `impl Engine` lives here, over the pure modules (declaration, execution records,
//! events, locks, rule evaluation, the ASL compiler, triggers), which never refer back to it:
//! [`conditions`] (when stage conditions run and what they do), [`control`] (stop, retry,
//! rollback, transitions), [`jobs`] (job workers), [`approvals`] (manual approvals),
//! [`polling`] (polling sources), [`webhooks`] (git host deliveries), and the private modules
//! for starting, stages, actions, locks, events and tasks. `crate::control`, `crate::jobs` and
//! `crate::approvals` are re-exported at the crate root under their former paths.

use std::collections::BTreeMap;

use crate::asl::AslTargets;
use crate::declaration::ActionDeclaration;
use crate::execution::{
    ActionExecution, ActionExecutionResult, ActionExecutionStatus, ArtifactDetail,
    ArtifactLocation, ErrorDetails, ExecutionSnapshot, ExecutionTrigger, FailureType,
    SourceRevision, SourceRevisionOverride,
};
use crate::store::{PipelineRecord, PipelineStore, StoreError};

mod abort;
mod actions;
pub mod approval_links;
pub mod approvals;
pub mod conditions;
pub mod control;
pub mod external;
pub mod jobs;
mod locking;
#[cfg(any(test, feature = "testing"))]
pub mod memory;
pub mod polling;
mod ports;
mod publish;
pub mod retire;
mod stages;
mod start;
mod sweep;
mod tasks;
pub mod webhooks;
pub mod work_rules;

pub use crate::port_error::PortError;
pub use actions::variable_scope;
pub use conditions::{After, OverrideError};
pub use ports::{EventPublisher, ExecutionStore, StateMachines, TaskCallbacks};
pub use stages::action_groups;
pub use start::resolve_pipeline_variables;
pub use tasks::{OrchestratorEvent, TaskRequest};

/// Where the engine runs and what it calls.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// AWS region.
    pub region: String,
    /// Account id.
    pub account_id: String,
    /// The artifact bucket.
    pub artifact_bucket: String,
    /// The functions the state machines call (needed only by functions that start executions).
    pub targets: Option<AslTargets>,
    /// The longest time any action may take (`ActionTimeoutCapSeconds`), as compiled into the
    /// state machines; approvals expire by it.
    pub action_timeout_cap_seconds: Option<u64>,
}

/// The engine: ports plus configuration.
pub struct Engine<'a> {
    /// Pipeline declarations.
    pub pipelines: &'a dyn PipelineStore,
    /// Execution records.
    pub executions: &'a dyn ExecutionStore,
    /// Task tokens.
    pub tasks: &'a dyn TaskCallbacks,
    /// State machines.
    pub machines: &'a dyn StateMachines,
    /// Lambda functions that job-worker actions invoke (`Invoke/AWS/Lambda`).
    pub functions: &'a dyn crate::jobs::Functions,
    /// What stage-condition rules read (Lambda functions, CloudWatch alarms).
    pub checks: &'a dyn crate::conditions::RuleChecks,
    /// Configuration.
    pub config: EngineConfig,
}

/// Why an engine operation failed.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum EngineError {
    /// No such pipeline.
    #[error("pipeline {0} does not exist")]
    PipelineNotFound(String),
    /// No such execution.
    #[error("pipeline execution {0} does not exist")]
    ExecutionNotFound(String),
    /// No such stage or action in the execution's pipeline version.
    #[error("{0}")]
    NotInPipeline(String),
    /// The request is invalid (the message names the member).
    #[error("{0}")]
    Invalid(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// Step Functions failed.
    #[error("state machine: {0}")]
    StateMachine(PortError),
    /// Completing a task token failed ([`PortError::TaskGone`] when Step Functions no longer
    /// awaits it).
    #[error("task callback: {0}")]
    Callback(PortError),
}

/// A request to start an execution.
#[derive(Debug, Clone)]
pub struct StartRequest {
    /// Pipeline name.
    pub pipeline_name: String,
    /// The new execution's id (a UUID, made by the caller).
    pub pipeline_execution_id: String,
    /// What started it.
    pub trigger: ExecutionTrigger,
    /// Pipeline variable overrides (`name` → value).
    pub variables: Vec<(String, String)>,
    /// Source revision overrides.
    pub source_revisions: Vec<SourceRevisionOverride>,
    /// An idempotency key (event id, delivery id, clientRequestToken).
    pub idempotency_key: Option<String>,
    /// Now, seconds since the epoch.
    pub now: f64,
}

/// What starting gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Started {
    /// The execution's id (the earlier one when the idempotency key was used before).
    pub pipeline_execution_id: String,
    /// False when the idempotency key had been used: nothing new started.
    pub new: bool,
}

pub use crate::execution::ExecutionIds;

/// The action execution id of the `runAction` task holding `task_token`: a UUID-shaped digest
/// of the token, so a repeated task (Step Functions retried it, Lambda delivered it again)
/// names the same action execution, and as unguessable as the token (an approval's id is the
/// token its approvers answer with).
pub fn action_execution_id(task_token: &str) -> String {
    crate::conditions::derived_id(&format!("action execution\0{task_token}"))
}

/// An action ready to run: everything a provider needs, resolved.
#[derive(Debug, Clone)]
pub struct PreparedAction {
    /// The record written when the action began (status InProgress, with the task token).
    pub record: ActionExecution,
    /// The action as declared.
    pub declaration: ActionDeclaration,
    /// Configuration with variables resolved.
    pub configuration: BTreeMap<String, String>,
    /// `commands` with variables resolved (Commands actions).
    pub commands: Vec<String>,
    /// Input artifacts, pinned to S3 versions.
    pub inputs: Vec<ArtifactDetail>,
    /// Where each output artifact goes (bucket and key; the version comes back from the write).
    pub outputs: Vec<ArtifactDetail>,
    /// Pipeline variables and namespaces visible to the action, for environment variables.
    pub variables: BTreeMap<String, BTreeMap<String, String>>,
    /// Source revision overrides given at start for this (source) action.
    pub source_revision_overrides: Vec<SourceRevisionOverride>,
    /// The account the pipeline runs in (a job's `accountId`).
    pub account_id: String,
    /// Where the action's whole log goes (the artifact bucket, [`crate::execution::log_key`]).
    pub log_location: ArtifactLocation,
    /// The role the action does its AWS work with: its own `roleArn`, else the pipeline's.
    pub role_arn: Option<String>,
    /// The pipeline's ARN (what a pipeline role's trust policy expects as `sts:ExternalId`).
    pub pipeline_arn: String,
}

impl PreparedAction {
    /// The pipeline's name (the last field of its ARN).
    pub fn pipeline_name(&self) -> &str {
        self.pipeline_arn.rsplit(':').next().unwrap_or_default()
    }
}

/// How a provider's work ended.
#[derive(Debug, Clone, PartialEq)]
pub struct ActionOutcome {
    /// Succeeded or Failed.
    pub status: ActionExecutionStatus,
    /// Output artifacts written, with their versions.
    pub output_artifacts: Vec<ArtifactDetail>,
    /// Output variables.
    pub output_variables: BTreeMap<String, String>,
    /// The result (error details when failed).
    pub result: ActionExecutionResult,
    /// The revision a source action fetched.
    pub source_revision: Option<SourceRevision>,
    /// The tail of the log.
    pub log_tail: Option<String>,
    /// Where the whole log is.
    pub log_location: Option<ArtifactLocation>,
}

impl ActionOutcome {
    /// Succeeded: `result`, with the output artifacts written and the output variables.
    pub fn succeeded(
        result: ActionExecutionResult,
        output_artifacts: Vec<ArtifactDetail>,
        output_variables: BTreeMap<String, String>,
    ) -> Self {
        Self {
            status: ActionExecutionStatus::Succeeded,
            output_artifacts,
            output_variables,
            result,
            source_revision: None,
            log_tail: None,
            log_location: None,
        }
    }

    /// Started elsewhere (`result` names the work), still in progress: the service's event
    /// completes it.
    pub fn in_progress(
        result: ActionExecutionResult,
        output_variables: BTreeMap<String, String>,
    ) -> Self {
        Self {
            status: ActionExecutionStatus::InProgress,
            output_artifacts: Vec::new(),
            output_variables,
            result,
            source_revision: None,
            log_tail: None,
            log_location: None,
        }
    }

    /// A failure of type `failure_type`, with `message`.
    pub fn failed(failure_type: FailureType, message: impl Into<String>) -> Self {
        Self {
            status: ActionExecutionStatus::Failed,
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            result: ActionExecutionResult {
                error_details: Some(ErrorDetails {
                    code: failure_type.into(),
                    message: message.into(),
                }),
                ..Default::default()
            },
            source_revision: None,
            log_tail: None,
            log_location: None,
        }
    }
}

/// The Step Functions error a failed action reports (caught inside its branch).
pub const ACTION_FAILED_ERROR: &str = "Pipewright.ActionFailed";

impl Engine<'_> {
    /// Everything recorded about execution `id` of pipeline `pipeline_name`
    /// ([`EngineError::ExecutionNotFound`] when there is none, or it is another pipeline's).
    pub(crate) async fn snapshot_of(
        &self,
        pipeline_name: &str,
        id: &str,
    ) -> Result<ExecutionSnapshot, EngineError> {
        self.executions
            .snapshot(id)
            .await?
            .filter(|s| s.execution.pipeline_name == pipeline_name)
            .ok_or_else(|| EngineError::ExecutionNotFound(id.to_string()))
    }

    pub(crate) async fn load(
        &self,
        ids: &ExecutionIds,
    ) -> Result<(ExecutionSnapshot, PipelineRecord), EngineError> {
        let snapshot = self
            .executions
            .snapshot(&ids.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(ids.pipeline_execution_id.clone()))?;
        let pipeline = self
            .pipelines
            .get(&ids.pipeline_name, Some(ids.pipeline_version))
            .await?
            .ok_or_else(|| {
                EngineError::PipelineNotFound(format!(
                    "{} version {}",
                    ids.pipeline_name, ids.pipeline_version
                ))
            })?;
        Ok((snapshot, pipeline))
    }
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}
