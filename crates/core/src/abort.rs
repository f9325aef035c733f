//! Aborting an execution whose state machine hit a failure its definition does not otherwise
//! handle: a function error or timeout in a check, leave or finish task, or a failed `Parallel`
//! (`docs/engine.md`, "Failure paths"). Every such task catches `States.ALL` into the `Abort`
//! task, which calls [`Engine::abort_execution`]:
//!
//! 1. actions still recorded `InProgress` end `Failed` (their tasks died with the state that
//!    failed), with an `ACTION FAILED` event each;
//! 2. stages still recorded `InProgress` end `Failed`, with a `STAGE FAILED` event each;
//! 3. every stage lock of the pipeline releases the execution, as holder or waiter, so the next
//!    execution enters: no stage stays locked behind a dead execution;
//! 4. the execution ends `Failed` (or `Stopped`, when it was stopping) with a `statusSummary`
//!    that names the error and says what to do. Last: an abort that fails before it is redone
//!    (by Step Functions' retry or the reconciler), since the execution still runs.
//!
//! The `Abort` task names its run (`$$.Execution.Id`): a run that is no longer the execution's
//! current one (a stage retry or a condition override started another) aborts nothing.
//!
//! Each step changes only what is still in progress (conditional writes), so a repeated abort,
//! or an abort racing a late leave, records and publishes nothing twice. When the pipeline's
//! declaration cannot be read, the locks of the stages the execution has records for are
//! released.
//!
//! The reconciler is the safety net for what the definition's catchers miss (the `Abort` task
//! failing too, a run stopped by hand in the Step Functions console, a run that timed out): an
//! EventBridge rule sends Step Functions' "Execution Status Change" events of Pipewright's state
//! machines that ended `FAILED`, `TIMED_OUT` or `ABORTED` to the orchestrator, which reads them
//! with [`run_ended`] and aborts the execution through [`Engine::reconcile_run`], but only when
//! the run is the one the execution records as its current run (a stage retry starts a new run)
//! and the execution is still in progress.

use serde_json::{json, Value};

use crate::control::ActionEnd;
use crate::engine::{Engine, EngineError, ExecutionIds};
use crate::events::{ActionState, PipelineState, StageState};
use crate::execution::{
    ActionExecutionStatus, FailureType, PipelineExecutionStatus, StageExecutionStatus,
};

/// The longest reason an abort puts in a `statusSummary` or an action's error message.
pub const MAX_REASON_CHARS: usize = 500;

/// What went wrong, for a person, from the `{Error, Cause}` Step Functions caught
/// ([`crate::asl::caught_error_reason`]), cut to [`MAX_REASON_CHARS`]. A `States.Timeout` without
/// a cause can only be a stage's Enter wait (an action's timeout has its own path, through the
/// group check), and says so.
pub fn abort_reason(error: &Value) -> String {
    let reason = crate::asl::caught_error_reason(error);
    let reason = if reason == "States.Timeout" {
        "States.Timeout: the execution waited longer than its limit to enter a stage (30 days \
         at a disabled transition plus the time the executions queued ahead of it could take); \
         start a new execution"
            .to_string()
    } else {
        reason
    };
    if reason.chars().count() <= MAX_REASON_CHARS {
        reason
    } else {
        let mut cut: String = reason.chars().take(MAX_REASON_CHARS - 1).collect();
        cut.push('…');
        cut
    }
}

/// A Pipewright state machine run that ended badly, as Step Functions' status event says.
#[derive(Debug, Clone, PartialEq)]
pub struct RunEnded {
    /// The execution the run carried (from the run's input).
    pub ids: ExecutionIds,
    /// The run.
    pub execution_arn: String,
    /// `FAILED`, `TIMED_OUT` or `ABORTED`.
    pub status: String,
    /// What to record: `{Error, Cause}` (the run's error and cause when it has them).
    pub error: Value,
}

/// The ended run an EventBridge event describes: a `Step Functions Execution Status Change`
/// from `aws.states` with status `FAILED`, `TIMED_OUT` or `ABORTED` and an input that names a
/// pipeline execution. Anything else: `None`.
pub fn run_ended(event: &Value) -> Option<RunEnded> {
    if event["source"] != "aws.states"
        || event["detail-type"] != "Step Functions Execution Status Change"
    {
        return None;
    }
    let detail = &event["detail"];
    let status = detail["status"].as_str()?;
    if !matches!(status, "FAILED" | "TIMED_OUT" | "ABORTED") {
        return None;
    }
    let input: Value = serde_json::from_str(detail["input"].as_str()?).ok()?;
    let ids: ExecutionIds = serde_json::from_value(json!({
        "pipelineName": input["pipelineName"],
        "pipelineVersion": input["pipelineVersion"],
        "pipelineExecutionId": input["pipelineExecutionId"],
    }))
    .ok()?;
    let text = |key: &str| detail[key].as_str().filter(|s| !s.is_empty());
    let error = json!({
        "Error": text("error").unwrap_or(match status {
            "TIMED_OUT" => "States.Timeout",
            "ABORTED" => "Execution.Aborted",
            _ => "States.Failed",
        }),
        "Cause": text("cause").unwrap_or(match status {
            "ABORTED" => "the state machine run was stopped outside Pipewright",
            "TIMED_OUT" => "the state machine run timed out",
            _ => "the state machine run failed",
        }),
    });
    Some(RunEnded {
        ids,
        execution_arn: detail["executionArn"].as_str()?.to_string(),
        status: status.to_string(),
        error,
    })
}

impl Engine<'_> {
    /// Make the records agree with a run that ended badly ([`run_ended`]): when it is the run
    /// the execution records as current and the execution is still in progress, abort it. Returns
    /// whether anything was done.
    pub async fn reconcile_run(&self, ended: &RunEnded, now: f64) -> Result<bool, EngineError> {
        let Some(snapshot) = self
            .executions
            .snapshot(&ended.ids.pipeline_execution_id)
            .await?
        else {
            return Ok(false);
        };
        let execution = &snapshot.execution;
        let current =
            execution.state_machine_execution_arn.as_deref() == Some(&ended.execution_arn);
        let in_progress = matches!(
            execution.status,
            PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
        );
        if !current || !in_progress || execution.pipeline_name != ended.ids.pipeline_name {
            return Ok(false);
        }
        self.abort_execution(&ended.ids, &ended.error, Some(&ended.execution_arn), now)
            .await?;
        Ok(true)
    }

    /// Abort execution `ids` after its state machine run `run` caught `error` (`{Error,
    /// Cause}`); see the module docs. A run that is not the execution's current one (a stage
    /// retry or a condition override started another since) changes nothing. Idempotent.
    pub async fn abort_execution(
        &self,
        ids: &ExecutionIds,
        error: &Value,
        run: Option<&str>,
        now: f64,
    ) -> Result<(), EngineError> {
        let reason = abort_reason(error);
        let summary = format!(
            "Pipewright stopped this execution because a step of its state machine failed \
             ({reason}). Its stages were released; retry the failed stage or start a new \
             execution."
        );
        self.end_execution_as(ids, &reason, &summary, run, now)
            .await
    }

    /// End execution `ids` (when `run` is given, only while it is its current run): running
    /// actions end Failed with `reason` (their tokens failed), running stages Failed, every
    /// stage lock released, then the execution Failed with `summary` (Stopped when stopping).
    pub(crate) async fn end_execution_as(
        &self,
        ids: &ExecutionIds,
        reason: &str,
        summary: &str,
        run: Option<&str>,
        now: f64,
    ) -> Result<(), EngineError> {
        let snapshot = self
            .snapshot_of(&ids.pipeline_name, &ids.pipeline_execution_id)
            .await?;
        if let (Some(run), Some(current)) = (run, &snapshot.execution.state_machine_execution_arn) {
            if run != current {
                tracing::info!(execution = %ids.pipeline_execution_id, %run, %current, "an older run's failure: nothing to abort");
                return Ok(());
            }
        }
        tracing::warn!(
            execution = %ids.pipeline_execution_id,
            pipeline = %ids.pipeline_name,
            %reason,
            "ending the execution"
        );
        let execution = &snapshot.execution;

        let message = format!("the execution was aborted: {reason}");
        let end = ActionEnd {
            status: ActionExecutionStatus::Failed,
            state: ActionState::Failed,
            code: FailureType::JobFailed.into(),
            message: &message,
            task_error: crate::asl::ABORTED_ERROR,
            task_cause: reason,
        };
        self.end_running_actions(&snapshot, execution, &end, now)
            .await?;

        for stage in &snapshot.stages {
            if stage.status != StageExecutionStatus::InProgress {
                continue;
            }
            let mut record = stage.clone();
            record.status = StageExecutionStatus::Failed;
            record.last_update_time = now;
            let failed = [self.stage_event(execution, &record, StageState::Failed)];
            self.executions
                .put_stage(&ids.pipeline_name, &record, &failed)
                .await?;
        }

        let stages: Vec<String> = match self
            .pipelines
            .get(&ids.pipeline_name, Some(ids.pipeline_version))
            .await
        {
            Ok(Some(pipeline)) => pipeline
                .declaration
                .stages
                .iter()
                .map(|s| s.name.clone())
                .collect(),
            Err(e) => return Err(e.into()),
            Ok(None) => {
                let mut names: Vec<String> = snapshot
                    .stages
                    .iter()
                    .map(|s| s.stage_name.clone())
                    .collect();
                names.dedup();
                names
            }
        };
        let mut first_error = None;
        for stage in &stages {
            // Waiting in front of the stage: its parked enterStage task is told (best effort:
            // the run may be gone), or it would wait for good.
            if let Ok((lock, _)) = self.executions.stage_lock(&ids.pipeline_name, stage).await {
                if let Some(waiter) = lock.waiter(&ids.pipeline_execution_id) {
                    let _ = self
                        .tasks
                        .fail(&waiter.task_token, crate::asl::STOPPED_ERROR, reason)
                        .await;
                }
            }
            if let Err(e) = self
                .release_stage(ids, execution.execution_mode, stage, now)
                .await
            {
                tracing::error!(%stage, error = %e, "releasing the stage failed");
                first_error.get_or_insert(e);
            }
        }
        // Released before the execution ends: an abort that fails here is retried (or redone by
        // the reconciler), which it would not be once the execution no longer runs.
        if let Some(e) = first_error {
            return Err(e);
        }
        if crate::control::is_stopping(execution.status) {
            self.finish_stopping(execution, now).await?;
        } else {
            self.end_in_progress(
                &snapshot,
                PipelineExecutionStatus::Failed,
                PipelineState::Failed,
                summary,
                now,
            )
            .await?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn reasons_name_the_error_and_the_functions_message() {
        let lambda = json!({
            "Error": "Lambda.Unknown",
            "Cause": "{\"errorType\":\"Runtime.ExitError\",\"errorMessage\":\"process exited: signal 9\"}"
        });
        assert_eq!(
            abort_reason(&lambda),
            "Lambda.Unknown: process exited: signal 9"
        );
        // Only an Enter wait times out into Abort without a cause: the reason says so.
        let waited = abort_reason(&json!({"Error": "States.Timeout", "Cause": ""}));
        assert!(
            waited.starts_with("States.Timeout: the execution waited longer"),
            "{waited}"
        );
        assert_eq!(
            abort_reason(
                &json!({"Error": "States.Timeout", "Cause": "the state machine run timed out"})
            ),
            "States.Timeout: the state machine run timed out"
        );
        assert_eq!(
            abort_reason(&json!({"Error": "States.Runtime", "Cause": "bad path"})),
            "States.Runtime: bad path"
        );
        assert_eq!(abort_reason(&json!(null)), "an unknown error");
        let long = abort_reason(&json!({"Error": "E", "Cause": "x".repeat(2000)}));
        assert_eq!(long.chars().count(), MAX_REASON_CHARS);
        assert!(long.ends_with('…'));
    }

    #[test]
    fn status_change_events_of_pipewright_runs_are_read() {
        let event = json!({
            "source": "aws.states",
            "detail-type": "Step Functions Execution Status Change",
            "detail": {
                "executionArn": "arn:aws:states:us-east-1:123456789012:execution:pipewright-app-v1-0a1b2c3d:e-1",
                "stateMachineArn": "arn:aws:states:us-east-1:123456789012:stateMachine:pipewright-app-v1-0a1b2c3d",
                "status": "ABORTED",
                "input": "{\"pipelineName\":\"app\",\"pipelineVersion\":1,\"pipelineExecutionId\":\"e-1\"}",
                "error": null,
                "cause": null
            }
        });
        let ended = run_ended(&event).unwrap();
        assert_eq!(ended.ids.pipeline_name, "app");
        assert_eq!(ended.ids.pipeline_version, 1);
        assert_eq!(ended.ids.pipeline_execution_id, "e-1");
        assert_eq!(ended.status, "ABORTED");
        assert_eq!(
            abort_reason(&ended.error),
            "Execution.Aborted: the state machine run was stopped outside Pipewright"
        );
        let mut succeeded = event.clone();
        succeeded["detail"]["status"] = json!("SUCCEEDED");
        assert_eq!(run_ended(&succeeded), None);
        let mut foreign = event.clone();
        foreign["detail"]["input"] = json!("{\"order\": 7}");
        assert_eq!(run_ended(&foreign), None);
        let mut other = event;
        other["source"] = json!("aws.s3");
        assert_eq!(run_ended(&other), None);
    }
}
