//! Stage locks: changing one (conditional writes, tried again under contention) and carrying
//! out what a change asks for (admit, supersede, refuse).

use crate::asl;
use crate::declaration::ExecutionMode;
use crate::execution::{ExecutionSnapshot, PipelineExecutionStatus};
use crate::locks::{Effect as LockEffect, StageLock};
use crate::store::StoreError;

use super::{Engine, EngineError, PortError};

/// How many times a stage-lock change is tried when other writers keep changing the lock.
const LOCK_ATTEMPTS: usize = 64;

impl Engine<'_> {
    /// Change the lock of `stage` with `change` (read, decide, conditional write; again when
    /// another writer got there first); returns what the change asks for.
    pub(crate) async fn update_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
        change: impl Fn(&StageLock) -> (StageLock, Vec<LockEffect>),
    ) -> Result<Vec<LockEffect>, EngineError> {
        self.update_lock_to(pipeline_name, stage, change)
            .await
            .map(|(effects, _)| effects)
    }

    /// [`Engine::update_lock`], also returning the lock as it now is.
    pub(crate) async fn update_lock_to(
        &self,
        pipeline_name: &str,
        stage: &str,
        change: impl Fn(&StageLock) -> (StageLock, Vec<LockEffect>),
    ) -> Result<(Vec<LockEffect>, StageLock), EngineError> {
        for _ in 0..LOCK_ATTEMPTS {
            let (lock, version) = self.executions.stage_lock(pipeline_name, stage).await?;
            let (next, effects) = change(&lock);
            if next == lock {
                return Ok((effects, next));
            }
            match self
                .executions
                .put_stage_lock(pipeline_name, stage, &next, version)
                .await
            {
                Ok(()) => return Ok((effects, next)),
                Err(StoreError::Conflict(_)) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(StoreError::Conflict(format!(
            "the lock of stage {stage} of pipeline {pipeline_name} stayed contended for \
             {LOCK_ATTEMPTS} attempts"
        ))
        .into())
    }

    /// Carry out a recorded lock change: admit the executions that enter (an execution that
    /// ended meanwhile gives its turn to the next), supersede the ones replaced.
    pub(crate) async fn apply_lock_effects(
        &self,
        pipeline_name: &str,
        stage: &str,
        effects: Vec<LockEffect>,
        known: Option<&ExecutionSnapshot>,
        now: f64,
    ) -> Result<(), EngineError> {
        let mut pending: std::collections::VecDeque<LockEffect> = effects.into();
        let mut first_error = None;
        while let Some(effect) = pending.pop_front() {
            let result = match effect {
                LockEffect::Enter {
                    pipeline_execution_id,
                    task_token,
                } => {
                    let snapshot = match known
                        .filter(|s| s.execution.pipeline_execution_id == pipeline_execution_id)
                    {
                        Some(s) => Some(s.clone()),
                        None => self.executions.snapshot(&pipeline_execution_id).await?,
                    };
                    // PARALLEL executions hold nothing and run on their own: an update leaves
                    // them be. When the check itself fails, the execution enters: a turn is
                    // never lost to a read error.
                    let outdated = match &snapshot {
                        Some(s)
                            if s.execution.status == PipelineExecutionStatus::InProgress
                                && s.execution.execution_mode != ExecutionMode::Parallel =>
                        {
                            match self.structure_changed_since(&s.execution).await {
                                Ok(outdated) => outdated,
                                Err(e) => {
                                    tracing::warn!(
                                        "could not compare the structure of {pipeline_name} \
                                         for {pipeline_execution_id}; it enters {stage}: {e}"
                                    );
                                    None
                                }
                            }
                        }
                        _ => None,
                    };
                    match snapshot {
                        Some(s)
                            if s.execution.status == PipelineExecutionStatus::InProgress
                                && outdated.is_none() =>
                        {
                            self.admit(&s, stage, &task_token, now).await
                        }
                        _ => {
                            // It ended while it waited (stopped), or the pipeline's structure
                            // changed since it started (it is cancelled): pass its turn on.
                            let cause = match (&snapshot, outdated) {
                                (Some(s), Some(version)) => {
                                    match self.cancel(s, stage, version, now).await {
                                        Ok(reason) => reason,
                                        Err(e) => {
                                            // Still pass the turn on; the error is reported.
                                            first_error.get_or_insert(e);
                                            "cancelled: the pipeline structure was updated"
                                                .to_string()
                                        }
                                    }
                                }
                                _ => "the execution ended".to_string(),
                            };
                            let _ = self
                                .tasks
                                .fail(&task_token, asl::STOPPED_ERROR, &cause)
                                .await;
                            let more = self
                                .update_lock(pipeline_name, stage, |lock| {
                                    lock.release(&pipeline_execution_id)
                                })
                                .await?;
                            pending.extend(more);
                            Ok(())
                        }
                    }
                }
                LockEffect::Supersede {
                    pipeline_execution_id,
                    task_token,
                    by,
                } => {
                    self.supersede_recorded(
                        pipeline_name,
                        stage,
                        &pipeline_execution_id,
                        &task_token,
                        &by,
                        now,
                    )
                    .await
                }
                LockEffect::Refuse {
                    pipeline_execution_id,
                    task_token,
                } => {
                    self.refuse(&pipeline_execution_id, &task_token, stage, now)
                        .await
                }
            };
            if let Err(e) = result {
                first_error.get_or_insert(e);
            }
        }
        first_error.map_or(Ok(()), Err)
    }

    /// Supersede waiter `id` (token `token`) of `stage` by `by`, then forget the supersession the
    /// lock keeps until it is done. A token Step Functions no longer awaits counts as failed.
    async fn supersede_recorded(
        &self,
        pipeline_name: &str,
        stage: &str,
        id: &str,
        token: &str,
        by: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        match self.supersede(id, token, by, now).await {
            Ok(()) => {}
            Err(EngineError::Callback(PortError::TaskGone(_))) => {}
            Err(e) => return Err(e),
        }
        self.update_lock(pipeline_name, stage, |lock| lock.superseded_done(id))
            .await
            .map(|_| ())
    }

    /// Finish what the lock of `stage` says may be unfinished: supersessions not known to be
    /// done, and a holder that may never have been told it has the stage.
    pub(crate) async fn redrive_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
        lock: &StageLock,
        now: f64,
    ) -> Result<(), EngineError> {
        for pending in &lock.superseded {
            self.supersede_recorded(
                pipeline_name,
                stage,
                &pending.pipeline_execution_id,
                &pending.task_token,
                &pending.by,
                now,
            )
            .await?;
        }
        self.redrive_entry(pipeline_name, stage, lock, now).await
    }
}
