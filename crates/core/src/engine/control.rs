//! Execution control: StopPipelineExecution ("stop and wait", "stop and abandon"),
//! RetryStageExecution, RollbackStage, and Disable/EnableStageTransition (the stage lock's
//! `disabled` flag: see `crate::locks`).
//!
//! RollbackStage starts a new execution of type `ROLLBACK` that runs only the rolled-back stage,
//! with the target execution's source revisions, variables and artifacts (the engine reads the
//! target's records for everything produced before that stage), then ends: its state machine
//! starts at the stage, and entering any other stage records it as succeeded
//! ([`crate::asl::FINISHED_ERROR`]).
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

use serde_json::json;

use crate::asl;
use crate::declaration::ExecutionMode;
use crate::engine::{Engine, EngineError, ExecutionIds};
use crate::events::{ActionState, PipelineState, TriggerType};
use crate::execution::{
    ActionExecutionStatus, ErrorCode, ErrorDetails, ExecutionSnapshot, ExecutionTrigger,
    ExecutionType, PipelineExecution, PipelineExecutionStatus, Rollback, StageExecution,
    StageExecutionStatus,
};
use crate::store::StoreError;

/// `StageRetryMode` that re-runs only the actions that did not succeed.
pub const FAILED_ACTIONS: &str = "FAILED_ACTIONS";
/// `StageRetryMode` that re-runs every action of the stage.
pub const ALL_ACTIONS: &str = "ALL_ACTIONS";

/// Why a retry was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RetryError {
    /// The stage cannot be retried now (`StageNotRetryableException`): it did not fail, the
    /// execution is running, or the pipeline changed since.
    #[error("{0}")]
    NotRetryable(String),
    /// Another execution has run the stage since (`NotLatestPipelineExecutionException`).
    #[error("{0}")]
    NotLatest(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

/// Why a rollback was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum RollbackError {
    /// `UnableToRollbackStageException`: the source stage, a target that did not succeed or is
    /// itself a rollback, a PARALLEL pipeline, a stage the target never ran.
    #[error("{0}")]
    Unable(String),
    /// `PipelineExecutionOutdatedException`: the target ran an earlier pipeline version.
    #[error("{0}")]
    Outdated(String),
    /// The engine failed (or the target does not exist: `ExecutionNotFound`).
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<StoreError> for RollbackError {
    fn from(e: StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl From<StoreError> for RetryError {
    fn from(e: StoreError) -> Self {
        Self::Engine(e.into())
    }
}

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
        let snapshot = self.snapshot_of(pipeline_name, id).await?;
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
        let stopping = if before == PipelineExecutionStatus::InProgress {
            vec![self.pipeline_event(&execution, PipelineState::Stopping)]
        } else {
            Vec::new()
        };
        self.executions
            .put_execution(&execution, &[before], &stopping)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => StopError::NotStoppable(format!(
                    "pipeline execution {id} changed meanwhile; try again"
                )),
                e => e.into(),
            })?;
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

    /// RetryStageExecution: execution `id` (Failed or Stopped in `stage`) resumes in that stage,
    /// in a new attempt; with [`FAILED_ACTIONS`] the actions that succeeded keep their results.
    /// The same execution id goes on through the following stages.
    pub async fn retry_stage(
        &self,
        pipeline_name: &str,
        stage: &str,
        id: &str,
        retry_mode: &str,
        now: f64,
    ) -> Result<(), RetryError> {
        self.retry_stage_as(pipeline_name, stage, id, retry_mode, false, now)
            .await
    }

    /// [`Self::retry_stage`]; `automatic` (an `onFailure: RETRY` condition) retries while the
    /// execution still holds the stage, so the checks on other executions do not apply.
    pub(crate) async fn retry_stage_as(
        &self,
        pipeline_name: &str,
        stage: &str,
        id: &str,
        retry_mode: &str,
        automatic: bool,
        now: f64,
    ) -> Result<(), RetryError> {
        let snapshot = self.snapshot_of(pipeline_name, id).await?;
        let execution = &snapshot.execution;
        // An automatic retry (onFailure: RETRY) happens before the execution is failed.
        let retryable = matches!(
            execution.status,
            PipelineExecutionStatus::Failed | PipelineExecutionStatus::Stopped
        ) || (automatic && execution.status == PipelineExecutionStatus::InProgress);
        if !retryable {
            return Err(RetryError::NotRetryable(format!(
                "pipeline execution {id} is {}: only a failed or stopped execution can be retried",
                execution.status.as_str()
            )));
        }
        let previous = snapshot
            .stage(stage)
            .filter(|s| {
                matches!(
                    s.status,
                    StageExecutionStatus::Failed | StageExecutionStatus::Stopped
                )
            })
            .cloned()
            .ok_or_else(|| {
                RetryError::NotRetryable(format!(
                    "stage {stage} of pipeline execution {id} did not fail or stop"
                ))
            })?;
        // The version the execution ran; a later version that changed the stages makes it
        // unretryable (a change of variables or mode alone does not).
        let ran = self
            .pipelines
            .get(pipeline_name, Some(execution.pipeline_version))
            .await?
            .ok_or_else(|| EngineError::PipelineNotFound(pipeline_name.to_string()))?;
        if let Some(now_version) = self.structure_changed_since(execution).await? {
            return Err(RetryError::NotRetryable(format!(
                "the stages of pipeline {pipeline_name} changed since execution {id} ran \
                 (version {} then, {now_version} now)",
                execution.pipeline_version
            )));
        }
        let latest = if automatic {
            Vec::new()
        } else {
            self.executions
                .latest_stage_executions(pipeline_name)
                .await?
        };
        if let Some(other) = latest
            .iter()
            .find(|p| p.stage_name == stage && p.pipeline_execution_id != id)
        {
            return Err(RetryError::NotLatest(format!(
                "pipeline execution {} has entered stage {stage} since; {id} can no longer be retried there",
                other.pipeline_execution_id
            )));
        }
        let (lock, _) = self.executions.stage_lock(pipeline_name, stage).await?;
        if !automatic
            && (lock.holder.as_deref().is_some_and(|h| h != id) || !lock.waiting.is_empty())
        {
            return Err(RetryError::NotLatest(format!(
                "another execution holds or waits for stage {stage}"
            )));
        }
        // The new attempt, marked with its retry mode, before the execution resumes.
        let attempt = StageExecution {
            pipeline_execution_id: id.to_string(),
            stage_name: stage.to_string(),
            status: StageExecutionStatus::InProgress,
            attempt: previous.attempt + 1,
            start_time: now,
            last_update_time: now,
            retry_mode: Some(retry_mode.to_string()),
            retry_trigger: Some(
                if automatic {
                    "AutomatedStageRetry"
                } else {
                    "ManualStageRetry"
                }
                .to_string(),
            ),
            conditions: Vec::new(),
            entered_by: None,
        };
        let mut resumed = execution.clone();
        resumed.status = PipelineExecutionStatus::InProgress;
        resumed.status_summary = None;
        resumed.stop_reason = None;
        resumed.last_update_time = now;
        let was_running = execution.status == PipelineExecutionStatus::InProgress;
        // The machine first: the new run's ARN is recorded with the resumed execution, before
        // the run starts, so the old run's late failure (its Abort task, its status event) is
        // known to be stale.
        let run_name = format!("{id}-retry-{}", attempt.attempt);
        let machine = self
            .ensure_machine(execution.pipeline_version, &ran.declaration)
            .await
            .map_err(EngineError::StateMachine)?;
        resumed.state_machine_execution_arn = Some(asl::run_arn(&machine, &run_name));
        let expected = if was_running {
            PipelineExecutionStatus::InProgress
        } else {
            execution.status
        };
        let resumed_events = if was_running {
            Vec::new()
        } else {
            vec![self.pipeline_event(&resumed, PipelineState::Resumed)]
        };
        self.executions
            .put_execution(&resumed, &[expected], &resumed_events)
            .await
            .map_err(|e| match e {
                StoreError::Conflict(_) => {
                    RetryError::NotRetryable(format!("pipeline execution {id} changed meanwhile"))
                }
                e => e.into(),
            })?;
        self.executions
            .put_stage(pipeline_name, &attempt, &[])
            .await?;
        let input = json!({
            "pipelineName": pipeline_name,
            "pipelineVersion": execution.pipeline_version,
            "pipelineExecutionId": id,
            "startStage": stage,
        });
        let started = self.machines.start(&machine, &run_name, &input).await;
        if let Err(e) = started {
            // Back to how it was (an automatic retry: failed): nothing runs.
            let mut failed = resumed.clone();
            failed.status = if was_running {
                PipelineExecutionStatus::Failed
            } else {
                execution.status
            };
            failed.status_summary = Some(format!("the retry could not start: {e}"));
            failed.last_update_time = now;
            // What the consumers saw resume ends again.
            let ended = match failed.status {
                PipelineExecutionStatus::Failed => {
                    vec![self.pipeline_event(&failed, PipelineState::Failed)]
                }
                PipelineExecutionStatus::Stopped => {
                    vec![self.pipeline_event(&failed, PipelineState::Stopped)]
                }
                _ => Vec::new(),
            };
            let _ = self
                .executions
                .put_execution(&failed, &[PipelineExecutionStatus::InProgress], &ended)
                .await;
            return Err(EngineError::StateMachine(e).into());
        }
        Ok(())
    }

    /// RollbackStage: a new `ROLLBACK` execution (`new_id`) re-runs `stage` with the source
    /// revisions, variables and artifacts of `target_id`. Returns the new execution's id.
    pub async fn rollback_stage(
        &self,
        pipeline_name: &str,
        stage: &str,
        target_id: &str,
        trigger: TriggerType,
        new_id: &str,
        now: f64,
    ) -> Result<String, RollbackError> {
        let pipeline = self
            .pipelines
            .get(pipeline_name, None)
            .await?
            .ok_or_else(|| EngineError::PipelineNotFound(pipeline_name.to_string()))?;
        let declaration = &pipeline.declaration;
        let index = declaration
            .stages
            .iter()
            .position(|s| s.name == stage)
            .ok_or_else(|| {
                EngineError::NotInPipeline(format!("pipeline {pipeline_name} has no stage {stage}"))
            })?;
        if index == 0 {
            return Err(RollbackError::Unable(format!(
                "stage {stage} is the source stage, which cannot be rolled back"
            )));
        }
        if declaration.execution_mode() == ExecutionMode::Parallel {
            return Err(RollbackError::Unable(
                "stage rollback is not available in PARALLEL execution mode".into(),
            ));
        }
        let target = self.snapshot_of(pipeline_name, target_id).await?;
        let t = &target.execution;
        if t.status != PipelineExecutionStatus::Succeeded
            || t.execution_type != ExecutionType::Standard
        {
            return Err(RollbackError::Unable(format!(
                "the target must be a successful STANDARD execution; {target_id} is a {} {} one",
                t.status.as_str(),
                t.execution_type.as_str()
            )));
        }
        if t.pipeline_version != pipeline.version() {
            return Err(RollbackError::Outdated(format!(
                "execution {target_id} ran pipeline version {}; the pipeline is at version {}",
                t.pipeline_version,
                pipeline.version()
            )));
        }
        if target
            .stage(stage)
            .is_none_or(|s| s.status != StageExecutionStatus::Succeeded)
        {
            return Err(RollbackError::Unable(format!(
                "execution {target_id} did not run stage {stage} to success"
            )));
        }
        let execution = PipelineExecution {
            pipeline_name: pipeline_name.to_string(),
            pipeline_version: t.pipeline_version,
            pipeline_execution_id: new_id.to_string(),
            status: PipelineExecutionStatus::InProgress,
            status_summary: None,
            trigger: ExecutionTrigger {
                trigger_type: trigger,
                trigger_detail: target_id.to_string(),
            },
            variables: t.variables.clone(),
            source_revisions: t.source_revisions.clone(),
            source_revision_overrides: Vec::new(),
            execution_mode: declaration.execution_mode(),
            execution_type: ExecutionType::Rollback,
            start_time: now,
            last_update_time: now,
            state_machine_execution_arn: None,
            stop_reason: None,
            rollback: Some(Rollback {
                stage_name: stage.to_string(),
                target_pipeline_execution_id: target_id.to_string(),
            }),
        };
        let started = self
            .launch(execution, declaration, None, Some(stage))
            .await?;
        Ok(started.pipeline_execution_id)
    }

    /// The records a rollback execution builds on: the target's actions outside the rolled-back
    /// stage, then its own (so artifacts and variables resolve as in the target).
    pub(crate) async fn with_rollback_base(
        &self,
        snapshot: ExecutionSnapshot,
    ) -> Result<ExecutionSnapshot, EngineError> {
        let Some(rollback) = snapshot.execution.rollback.clone() else {
            return Ok(snapshot);
        };
        let Some(target) = self
            .executions
            .snapshot(&rollback.target_pipeline_execution_id)
            .await?
        else {
            return Ok(snapshot);
        };
        let mut merged = snapshot;
        let own = std::mem::take(&mut merged.actions);
        merged.actions = target
            .actions
            .into_iter()
            .filter(|a| a.stage_name != rollback.stage_name)
            .chain(own)
            .collect();
        Ok(merged)
    }

    /// Disable (`enabled` false, with `reason`) or enable the inbound transition of `stage`.
    /// Enabling lets the executions held in front of it go on.
    pub async fn set_transition(
        &self,
        pipeline_name: &str,
        stage: &str,
        enabled: bool,
        reason: &str,
        by: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let effects = self
            .update_lock(pipeline_name, stage, |lock| {
                if enabled {
                    lock.enable(by, now)
                } else {
                    lock.disable(reason, by, now)
                }
            })
            .await?;
        self.apply_lock_effects(pipeline_name, stage, effects, None, now)
            .await
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
        let message = "the execution was stopped and abandoned";
        let end = ActionEnd {
            status: ActionExecutionStatus::Abandoned,
            state: ActionState::Abandoned,
            code: ErrorCode::Abandoned,
            message,
            task_error: asl::STOPPED_ERROR,
            task_cause: message,
        };
        self.end_running_actions(snapshot, execution, &end, now)
            .await
    }

    /// End every action of `snapshot` still `InProgress` as `end` says: record it (conditional
    /// on it still running; one that ended meanwhile is left alone), publish its event, and fail
    /// its task token (best effort: its task may be gone already).
    pub(crate) async fn end_running_actions(
        &self,
        snapshot: &ExecutionSnapshot,
        execution: &PipelineExecution,
        end: &ActionEnd<'_>,
        now: f64,
    ) -> Result<(), EngineError> {
        for action in &snapshot.actions {
            if action.status != ActionExecutionStatus::InProgress {
                continue;
            }
            let mut record = action.clone();
            let token = record.task_token.take();
            record.status = end.status;
            record.last_update_time = now;
            record.output.execution_result.error_details = Some(ErrorDetails {
                code: end.code.clone(),
                message: end.message.into(),
            });
            let ended = [self.action_event(execution, &record, end.state)];
            match self
                .executions
                .put_action(&record, Some(ActionExecutionStatus::InProgress), &ended)
                .await
            {
                Ok(()) => {}
                // It ended meanwhile.
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
            if let Some(token) = token {
                let _ = self
                    .tasks
                    .fail(&token, end.task_error, end.task_cause)
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
            .put_execution(
                &stopped,
                &[PipelineExecutionStatus::Stopping],
                &[self.pipeline_event(&stopped, PipelineState::Stopped)],
            )
            .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// How [`Engine::end_running_actions`] ends the actions still running.
pub(crate) struct ActionEnd<'a> {
    /// Their new status.
    pub status: ActionExecutionStatus,
    /// The `state` of their events.
    pub state: ActionState,
    /// `errorDetails.code`.
    pub code: ErrorCode,
    /// `errorDetails.message`.
    pub message: &'a str,
    /// The error their task tokens are failed with.
    pub task_error: &'a str,
    /// Its cause.
    pub task_cause: &'a str,
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
