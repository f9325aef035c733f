//! The engine's side of aborting an execution and of the reconciler ([`crate::abort`] says
//! what happens and why; this is where it is done).

use serde_json::Value;

use crate::abort::{abort_reason, RunEnded};
use crate::control::ActionEnd;
use crate::engine::{Engine, EngineError, ExecutionIds};
use crate::events::{ActionState, PipelineState, StageState};
use crate::execution::{
    ActionExecutionStatus, FailureType, PipelineExecutionStatus, StageExecutionStatus,
};

impl Engine<'_> {
    /// Make the records agree with a run that ended badly ([`run_ended`](crate::abort::run_ended)): when it is the run
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
