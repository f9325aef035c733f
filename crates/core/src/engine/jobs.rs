//! Job-worker actions (`Invoke/AWS/Lambda`): the job event a function is invoked with, the port
//! that invokes it, and how a job result (`PutJobSuccessResult` / `PutJobFailureResult`) completes
//! the action.
//!
//! As CodePipeline does it:
//! - a job's id is its action execution's id;
//! - the function is invoked asynchronously (`InvocationType: Event`) with
//!   `{"CodePipeline.job": {"id", "accountId", "data": {...}}}` ([`job_event`]);
//! - the action stays `InProgress` (its task token kept in its record) until the function reports
//!   a result, or the action's timeout fails it;
//! - a success that carries a `continuationToken` is not the end: the function is invoked again
//!   with the token in `data.continuationToken`, and the action stays in progress.
//!
//! Where Pipewright differs: it vends no per-job credentials (`artifactCredentials` is empty; the
//! function reads and writes the artifact bucket with its own role), and an input artifact's
//! `revision` is the S3 version id the artifact is pinned to.

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId};
use crate::engine::{ActionOutcome, Engine, EngineError, PreparedAction};
use crate::execution::{
    ActionExecution, ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, FailureType,
    SourceRevision,
};
use crate::port_error::PortError;
use crate::store::StoreError;

/// The configuration key naming the function.
pub const FUNCTION_NAME: &str = "FunctionName";

/// True for the action types whose work is done by a job worker that reports back through
/// `PutJobSuccessResult` / `PutJobFailureResult` (`Invoke/AWS/Lambda`).
pub fn is_job_worker(type_id: &ActionTypeId) -> bool {
    type_id.category == ActionCategory::Invoke
        && type_id.owner == ActionOwner::Aws
        && type_id.provider == "Lambda"
}

/// The event a job's function is invoked with, `continuation_token` included when the function
/// asked to be invoked again.
pub fn job_event(prepared: &PreparedAction, continuation_token: Option<&str>) -> Value {
    let artifact = |d: &ArtifactDetail, revision: Option<&str>| {
        json!({
            "name": d.name,
            "revision": revision,
            "location": {
                "type": "S3",
                "s3Location": {
                    "bucketName": d.s3_location.bucket,
                    "objectKey": d.s3_location.key,
                },
            },
        })
    };
    let mut data = json!({
        "actionConfiguration": { "configuration": prepared.configuration },
        "inputArtifacts": prepared
            .inputs
            .iter()
            .map(|d| artifact(d, d.s3_location.version_id.as_deref()))
            .collect::<Vec<_>>(),
        "outputArtifacts": prepared
            .outputs
            .iter()
            .map(|d| artifact(d, None))
            .collect::<Vec<_>>(),
        "artifactCredentials": {},
    });
    if let Some(token) = continuation_token {
        data["continuationToken"] = json!(token);
    }
    json!({
        "CodePipeline.job": {
            "id": prepared.record.action_execution_id,
            "accountId": prepared.account_id,
            "data": data,
        }
    })
}

/// Why a function could not be invoked: CodePipeline's failure type and a message.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct InvokeError {
    /// `ConfigurationError` (no such function, a refused payload), `PermissionError` or
    /// `JobFailed`.
    pub code: FailureType,
    /// What went wrong.
    pub message: String,
}

/// Lambda functions, invoked asynchronously.
#[async_trait]
pub trait Functions: Send + Sync {
    /// Invoke `function_name` (a name or ARN) with `event`, `InvocationType: Event`.
    async fn invoke_event(&self, function_name: &str, event: &Value) -> Result<(), InvokeError>;
}

/// What a job worker reported.
#[derive(Debug, Clone, PartialEq)]
pub enum JobResult {
    /// `PutJobSuccessResult`.
    Succeeded {
        /// Invoke the function again with this token; the action is not finished.
        continuation_token: Option<String>,
        /// `executionDetails.summary`.
        summary: Option<String>,
        /// `executionDetails.externalExecutionId`.
        external_execution_id: Option<String>,
        /// `outputVariables`, exported to the action's namespace.
        output_variables: BTreeMap<String, String>,
        /// `executionDetails.percentComplete` (0..=100).
        percent_complete: Option<u8>,
        /// `currentRevision`: the revision the job worked on, shown as the action's
        /// `currentRevision` by GetPipelineState.
        current_revision: Option<SourceRevision>,
    },
    /// `PutJobFailureResult`.
    Failed {
        /// `failureDetails.type`.
        failure_type: FailureType,
        /// `failureDetails.message`.
        message: String,
        /// `failureDetails.externalExecutionId`.
        external_execution_id: Option<String>,
    },
}

/// What a job that goes on (a continuation token) reported of its progress.
struct Progress {
    summary: Option<String>,
    external_execution_id: Option<String>,
    percent_complete: Option<u8>,
    current_revision: Option<SourceRevision>,
}

/// Why a job result was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum JobError {
    /// No job has this id (CodePipeline's `JobNotFoundException`).
    #[error("{0}")]
    NotFound(String),
    /// The job is no longer in progress (`InvalidJobStateException`).
    #[error("{0}")]
    InvalidState(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for JobError {
    fn from(e: StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl Engine<'_> {
    /// Apply a job worker's result to job `job_id`: complete its action (succeeded, with the
    /// reported summary and output variables, or failed with the failure details), or, for a
    /// success with a continuation token, invoke the function again and leave it in progress.
    pub async fn put_job_result(
        &self,
        job_id: &str,
        result: JobResult,
        now: f64,
    ) -> Result<(), JobError> {
        let record = self
            .executions
            .find_job(job_id)
            .await?
            .filter(|r| is_job_worker(&r.input.action_type_id))
            .ok_or_else(|| JobError::NotFound(format!("job {job_id} does not exist")))?;
        if record.status != ActionExecutionStatus::InProgress {
            if record.task_token.is_some() {
                // Its result is recorded but the pipeline never heard it (the callback was lost):
                // this retry delivers it.
                return self
                    .answer_unsent(&record)
                    .await
                    .map_err(|e| callback_error(&record, e));
            }
            return Err(JobError::InvalidState(format!(
                "job {job_id} is not in progress: its action {} is {}",
                record.action_name, record.status
            )));
        }
        let prepared = self.prepare_again(&record).await?;
        let named = |revision: Option<SourceRevision>| {
            revision.map(|r| SourceRevision {
                action_name: record.action_name.clone(),
                ..r
            })
        };
        let outcome = match result {
            JobResult::Succeeded {
                continuation_token: Some(token),
                summary,
                external_execution_id,
                percent_complete,
                current_revision,
                ..
            } => {
                let progress = Progress {
                    summary,
                    external_execution_id,
                    percent_complete,
                    current_revision: named(current_revision),
                };
                return self.continue_job(prepared, &token, progress, now).await;
            }
            JobResult::Succeeded {
                continuation_token: None,
                summary,
                external_execution_id,
                output_variables,
                percent_complete: _,
                current_revision,
            } => ActionOutcome {
                status: ActionExecutionStatus::Succeeded,
                output_artifacts: prepared.outputs.clone(),
                output_variables,
                result: ActionExecutionResult {
                    external_execution_id,
                    external_execution_summary: summary,
                    ..Default::default()
                },
                source_revision: named(current_revision),
                log_tail: None,
                log_location: None,
            },
            JobResult::Failed {
                failure_type,
                message,
                external_execution_id,
            } => {
                let mut outcome = ActionOutcome::failed(failure_type, message);
                outcome.result.external_execution_id = external_execution_id;
                outcome
            }
        };
        self.finish_job(&record, outcome, now).await
    }

    /// Complete the job's action; a task token that is no longer awaited (the action timed out,
    /// the execution ended) means the job is no longer in progress.
    async fn finish_job(
        &self,
        record: &ActionExecution,
        outcome: ActionOutcome,
        now: f64,
    ) -> Result<(), JobError> {
        self.complete_action(record, outcome, now)
            .await
            .map(|_| ())
            .map_err(|e| callback_error(record, e))
    }

    /// Record the progress reported and invoke the function again with `token`. When it cannot
    /// be invoked, the action fails.
    async fn continue_job(
        &self,
        prepared: PreparedAction,
        token: &str,
        progress: Progress,
        now: f64,
    ) -> Result<(), JobError> {
        let mut record = prepared.record.clone();
        record.last_update_time = now;
        let result = &mut record.output.execution_result;
        if progress.summary.is_some() {
            result.external_execution_summary = progress.summary;
        }
        if progress.external_execution_id.is_some() {
            result.external_execution_id = progress.external_execution_id;
        }
        if progress.percent_complete.is_some() {
            record.percent_complete = progress.percent_complete;
        }
        if progress.current_revision.is_some() {
            record.source_revision = progress.current_revision;
        }
        match self
            .executions
            .put_action(&record, Some(ActionExecutionStatus::InProgress), &[])
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                return Err(JobError::InvalidState(format!(
                    "job {} ended while its result was being recorded",
                    record.action_execution_id
                )))
            }
            Err(e) => return Err(e.into()),
        }
        let function = prepared
            .configuration
            .get(FUNCTION_NAME)
            .map(String::as_str)
            .unwrap_or_default();
        let event = job_event(&prepared, Some(token));
        if let Err(e) = self.functions.invoke_event(function, &event).await {
            let outcome = ActionOutcome::failed(
                e.code,
                format!("invoking {function} with the continuation token: {e}"),
            );
            self.finish_job(&record, outcome, now).await?;
        }
        Ok(())
    }

    /// What the job's function was given when the action began, rebuilt from its record and the
    /// pipeline version it runs.
    pub(crate) async fn prepare_again(
        &self,
        record: &ActionExecution,
    ) -> Result<PreparedAction, JobError> {
        let snapshot = self
            .executions
            .snapshot(&record.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(record.pipeline_execution_id.clone()))?;
        let pipeline_name = snapshot.execution.pipeline_name.clone();
        let pipeline = self
            .pipelines
            .get(&pipeline_name, Some(record.pipeline_version))
            .await?
            .ok_or_else(|| {
                EngineError::PipelineNotFound(format!(
                    "{pipeline_name} version {}",
                    record.pipeline_version
                ))
            })?;
        let declaration = pipeline
            .declaration
            .stages
            .iter()
            .find(|s| s.name == record.stage_name)
            .and_then(|s| s.actions.iter().find(|a| a.name == record.action_name))
            .cloned()
            .ok_or_else(|| {
                EngineError::NotInPipeline(format!(
                    "pipeline {pipeline_name} version {} has no action {}/{}",
                    record.pipeline_version, record.stage_name, record.action_name
                ))
            })?;
        Ok(self
            .prepared_from(
                &snapshot,
                &pipeline.declaration,
                declaration,
                record.clone(),
            )
            .await?)
    }
}

/// A failed callback of job `record`: a token Step Functions no longer awaits (the action timed
/// out, the execution ended) means the job is no longer in progress; any other failure
/// (throttling, an unreachable endpoint) is the server's, so the worker's SDK retries, and its
/// retry delivers the recorded result.
fn callback_error(record: &ActionExecution, e: EngineError) -> JobError {
    match e {
        EngineError::Callback(gone @ PortError::TaskGone(_)) => JobError::InvalidState(format!(
            "job {} is no longer awaited by its pipeline execution: {gone}",
            record.action_execution_id
        )),
        e => e.into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_lambda_invoke_actions_are_job_workers() {
        let id = |category, provider: &str| ActionTypeId {
            category,
            owner: ActionOwner::Aws,
            provider: provider.into(),
            version: "1".into(),
        };
        assert!(is_job_worker(&id(ActionCategory::Invoke, "Lambda")));
        assert!(!is_job_worker(&id(ActionCategory::Invoke, "StepFunctions")));
        assert!(!is_job_worker(&id(ActionCategory::Compute, "Commands")));
    }
}
