//! Aborting an execution whose state machine hit a failure its definition does not otherwise
//! handle: a function error or timeout in a check, leave or finish task, or a failed `Parallel`
//! (`docs/engine.md`, "Failure paths"). Every such task catches `States.ALL` into the `Abort`
//! task, which calls [`Engine::abort_execution`](crate::engine::Engine::abort_execution):
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
//! with [`run_ended`] and aborts the execution through [`Engine::reconcile_run`](crate::engine::Engine::reconcile_run), but only when
//! the run is the one the execution records as its current run (a stage retry starts a new run)
//! and the execution is still in progress.

use serde_json::{json, Value};

use crate::execution::ExecutionIds;

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
