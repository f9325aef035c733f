//! Execution control: StopPipelineExecution ("stop and wait", "stop and abandon").
//!
//! - Stop and wait: the execution becomes `Stopping` (event `STOPPING`, with the reason). Its
//!   in-progress actions finish; no later action group or stage starts (`begin_action`,
//!   `check_group` and `enter_stage` see `Stopping`); when the stage in progress ends, the stage
//!   is `Stopped` (or `Succeeded` if all its actions were), the execution `Stopped` (event
//!   `STOPPED`), and the stage lock goes to the next execution.
//! - Stop and abandon: the same, and at once: in-progress actions become `Abandoned` (events
//!   `ABANDONED`; their task tokens are failed so the state machine moves on; whatever the
//!   provider was doing may go on), the execution `Stopped`, the stage lock released.
//! - An execution waiting in front of a stage (execution modes) leaves the queue and is
//!   `Stopped` at once.

use crate::asl;
use crate::engine::{Engine, EngineError, ExecutionIds};
use crate::events::{ActionState, PipelineState};
use crate::execution::{
    ActionExecutionStatus, ErrorDetails, ExecutionSnapshot, PipelineExecution,
    PipelineExecutionStatus, StageExecutionStatus,
};
use crate::store::StoreError;

/// Why a stop was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum StopError {
    /// The execution has ended (`PipelineExecutionNotStoppableException`).
    #[error("{0}")]
    NotStoppable(String),
    /// Stop-and-wait again while stopping (`DuplicatedStopRequestException`).
    #[error("{0}")]
    Duplicated(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for StopError {
    fn from(e: StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl Engine<'_> {
    /// StopPipelineExecution of `id` (of pipeline `pipeline_name`).
    pub async fn stop_execution(
        &self,
        pipeline_name: &str,
        id: &str,
        abandon: bool,
        reason: Option<String>,
        now: f64,
    ) -> Result<(), StopError> {
        let snapshot = self
            .executions
            .snapshot(id)
            .await?
            .filter(|s| s.execution.pipeline_name == pipeline_name)
            .ok_or_else(|| EngineError::ExecutionNotFound(id.to_string()))?;
        let before = snapshot.execution.status;
        match before {
            PipelineExecutionStatus::InProgress => {}
            PipelineExecutionStatus::Stopping if abandon => {}
            PipelineExecutionStatus::Stopping => {
                return Err(StopError::Duplicated(format!(
                    "pipeline execution {id} is already stopping; you can still stop and abandon it"
                )))
            }
            other => {
                return Err(StopError::NotStoppable(format!(
                    "pipeline execution {id} is {}, not in progress",
                    other.as_str()
                )))
            }
        }
        let mut execution = snapshot.execution.clone();
        execution.status = PipelineExecutionStatus::Stopping;
        execution.last_update_time = now;
        if reason.is_some() {
            execution.stop_reason = reason;
        }
        self.executions
            .put_execution(&execution, &[before])
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StopError::NotStoppable(format!(
                    "pipeline execution {id} changed meanwhile; try again"
                )),
                e => e.into(),
            })?;
        if before == PipelineExecutionStatus::InProgress {
            self.publish(vec![
                self.pipeline_event(&execution, PipelineState::Stopping)
            ])
            .await;
        }
        let ids = ExecutionIds {
            pipeline_name: pipeline_name.to_string(),
            pipeline_version: execution.pipeline_version,
            pipeline_execution_id: id.to_string(),
        };
        // Waiting in front of a stage: leave the queue, stopped at once.
        if let Some(stage) = self.waiting_stage(&ids).await? {
            if let Some(waiter) = self
                .executions
                .stage_lock(pipeline_name, &stage)
                .await?
                .0
                .waiter(id)
                .cloned()
            {
                self.release_stage(&ids, execution.execution_mode, &stage, now)
                    .await?;
                let _ = self
                    .tasks
                    .fail(
                        &waiter.task_token,
                        asl::STOPPED_ERROR,
                        "the execution was stopped",
                    )
                    .await;
            }
            self.finish_stopping(&execution, now).await?;
            return Ok(());
        }
        if abandon {
            self.abandon_actions(&snapshot, &execution, now).await?;
            self.finish_stopping(&execution, now).await?;
            if let Some(stage) = stage_in_progress(&snapshot) {
                self.release_stage(&ids, execution.execution_mode, &stage, now)
                    .await?;
            }
        }
        Ok(())
    }

    /// The stage `ids` waits in front of, if it waits.
    async fn waiting_stage(&self, ids: &ExecutionIds) -> Result<Option<String>, EngineError> {
        let Some(pipeline) = self
            .pipelines
            .get(&ids.pipeline_name, Some(ids.pipeline_version))
            .await?
        else {
            return Ok(None);
        };
        for stage in &pipeline.declaration.stages {
            let (lock, _) = self
                .executions
                .stage_lock(&ids.pipeline_name, &stage.name)
                .await?;
            if lock.waiter(&ids.pipeline_execution_id).is_some() {
                return Ok(Some(stage.name.clone()));
            }
        }
        Ok(None)
    }

    /// Mark the in-progress actions Abandoned and end their tasks.
    async fn abandon_actions(
        &self,
        snapshot: &ExecutionSnapshot,
        execution: &PipelineExecution,
        now: f64,
    ) -> Result<(), EngineError> {
        for action in &snapshot.actions {
            if action.status != ActionExecutionStatus::InProgress {
                continue;
            }
            let mut record = action.clone();
            let token = record.task_token.take();
            record.status = ActionExecutionStatus::Abandoned;
            record.last_update_time = now;
            record.output.execution_result.error_details = Some(ErrorDetails {
                code: "Abandoned".into(),
                message: "the execution was stopped and abandoned".into(),
            });
            match self
                .executions
                .put_action(&record, Some(ActionExecutionStatus::InProgress))
                .await
            {
                Ok(()) => {}
                // It ended meanwhile.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            self.publish(vec![self.action_event(
                execution,
                &record,
                ActionState::Abandoned,
            )])
            .await;
            if let Some(token) = token {
                let _ = self
                    .tasks
                    .fail(
                        &token,
                        asl::STOPPED_ERROR,
                        "the execution was stopped and abandoned",
                    )
                    .await;
            }
        }
        Ok(())
    }

    /// A `Stopping` execution has nothing left running: it is `Stopped` (event `STOPPED`).
    /// Changes nothing when it is no longer `Stopping`.
    pub(crate) async fn finish_stopping(
        &self,
        execution: &PipelineExecution,
        now: f64,
    ) -> Result<(), EngineError> {
        let mut stopped = execution.clone();
        stopped.status = PipelineExecutionStatus::Stopped;
        stopped.last_update_time = now;
        match self
            .executions
            .put_execution(&stopped, &[PipelineExecutionStatus::Stopping])
            .await
        {
            Ok(()) => {
                self.publish(vec![self.pipeline_event(&stopped, PipelineState::Stopped)])
                    .await;
                Ok(())
            }
            Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// The stage the execution is in, if any.
fn stage_in_progress(snapshot: &ExecutionSnapshot) -> Option<String> {
    snapshot
        .stages
        .iter()
        .filter(|s| s.status == StageExecutionStatus::InProgress)
        .max_by(|a, b| a.start_time.total_cmp(&b.start_time))
        .map(|s| s.stage_name.clone())
}

/// True while the execution is being stopped or was stopped: nothing new may start.
pub fn is_stopping(status: PipelineExecutionStatus) -> bool {
    matches!(
        status,
        PipelineExecutionStatus::Stopping | PipelineExecutionStatus::Stopped
    )
}
