//! Stages: entering one (through its lock), the action-group checks, leaving it, finishing the
//! execution, and the ways an execution ends outside a stage (cancelled, superseded, refused).

use std::collections::BTreeMap;

use serde_json::{json, Value};

use crate::asl;
use crate::declaration::{ActionDeclaration, ExecutionMode, PipelineDeclaration};
use crate::events::{ActionState, PipelineState, StageState};
use crate::execution::{
    ActionExecutionStatus, ErrorCode, ErrorDetails, ExecutionSnapshot, FailureType,
    PipelineExecution, PipelineExecutionStatus, SourceRevision, StageExecution,
    StageExecutionStatus,
};
use crate::locks::{StageLock, Waiter};
use crate::store::StoreError;

use super::{truncate, Engine, EngineError, ExecutionIds, PortError};

impl Engine<'_> {
    /// The state machine reached stage `stage`: record it, publish `STARTED`, answer the token.
    /// (Execution modes hold the token here; see the modes issue.)
    pub async fn enter_stage(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        token: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let (snapshot, pipeline) = self.load(ids).await?;
        stage_of(&pipeline.declaration, stage)?;
        // QUEUED: the previous stage is held until the execution has queued in front of this
        // one, so executions reach every stage in the order they left the previous one.
        let previous = (snapshot.execution.execution_mode == ExecutionMode::Queued)
            .then(|| previous_stage(&pipeline.declaration, stage))
            .flatten();
        self.arrive_at(ids, &snapshot, stage, token, previous, now)
            .await
    }

    /// Execution `ids` arrives in front of `stage` with `token`. The stage it held (`previous`,
    /// QUEUED) is released once it has queued here and before its token is answered: a token
    /// answered means the task is done, so nothing may be left to do after it (a release that
    /// failed after the answer would keep the stage held for good).
    async fn arrive_at(
        &self,
        ids: &ExecutionIds,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        token: &str,
        previous: Option<&str>,
        now: f64,
    ) -> Result<(), EngineError> {
        let release_previous = || async move {
            match previous {
                Some(previous) => {
                    self.release_stage(ids, ExecutionMode::Queued, previous, now)
                        .await
                }
                None => Ok(()),
            }
        };
        let snapshot = snapshot.clone();
        if snapshot.execution.status != PipelineExecutionStatus::InProgress
            || snapshot
                .execution
                .rollback
                .as_ref()
                .is_some_and(|r| r.stage_name != stage)
        {
            // It goes no further: done with the stage it held.
            release_previous().await?;
        }
        if crate::control::is_stopping(snapshot.execution.status) {
            // Stopping between stages: nothing runs any more.
            self.finish_stopping(&snapshot.execution, now).await?;
            return self
                .tasks
                .fail(token, asl::STOPPED_ERROR, "the execution was stopped")
                .await
                .map_err(EngineError::Callback);
        }
        if snapshot.execution.status != PipelineExecutionStatus::InProgress {
            // It ended in the previous stage (an onSuccess condition failed it).
            return self
                .tasks
                .fail(token, asl::FINISHED_ERROR, "the execution has ended")
                .await
                .map_err(EngineError::Callback);
        }
        if let Some(rollback) = &snapshot.execution.rollback {
            if rollback.stage_name != stage {
                // A rollback runs one stage: it is done.
                self.finish_execution(ids, now).await?;
                return self
                    .tasks
                    .fail(token, asl::FINISHED_ERROR, "the rollback ran its stage")
                    .await
                    .map_err(EngineError::Callback);
            }
        }
        let mode = snapshot.execution.execution_mode;
        // Every mode goes through the lock: PARALLEL executions hold nothing, but a disabled
        // transition holds them too.
        let arrival = Waiter {
            pipeline_execution_id: ids.pipeline_execution_id.clone(),
            task_token: token.to_string(),
            started: snapshot.execution.start_time,
            arrived: now,
            parallel: mode == ExecutionMode::Parallel,
        };
        let (effects, lock) = self
            .update_lock_to(&ids.pipeline_name, stage, |lock| {
                lock.arrive(arrival.clone(), mode)
            })
            .await?;
        release_previous().await?;
        if !lock.superseded.is_empty() && effects.is_empty() {
            // This arrival again (its first try failed midway): finish what it started.
            self.redrive_lock(&ids.pipeline_name, stage, &lock, now)
                .await?;
        }
        self.apply_lock_effects(&ids.pipeline_name, stage, effects, Some(&snapshot), now)
            .await
    }

    /// Execution `snapshot` enters `stage`: record the stage execution, publish `STARTED`,
    /// answer its `enterStage` token.
    pub(crate) async fn admit(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        token: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let execution = &snapshot.execution;
        // The same enterStage task again: delivered twice (the same token), or retried by Step
        // Functions after its invocation failed (a new token, while the attempt the first one
        // opened is still in progress: a stage is entered once per attempt). The attempt answers
        // it as it did; nothing is recorded twice, no condition runs twice.
        let entry = crate::conditions::derived_id(&format!("stage entry\0{token}"));
        let repeated = snapshot
            .stages
            .iter()
            .find(|s| s.stage_name == stage && s.entered_by.as_deref() == Some(entry.as_str()))
            .or_else(|| {
                snapshot.stage(stage).filter(|s| {
                    s.status == StageExecutionStatus::InProgress && s.entered_by.is_some()
                })
            });
        if let Some(entered) = repeated {
            if entered.entered_by.as_deref() != Some(entry.as_str()) {
                // Retried with a new token: the attempt now answers to it.
                let mut record = entered.clone();
                record.entered_by = Some(entry);
                self.executions
                    .put_stage(&execution.pipeline_name, &record, &[])
                    .await?;
                return self.answer_entry(&record, token).await;
            }
            return self.answer_entry(entered, token).await;
        }
        let (mut record, state) = match snapshot.stage(stage) {
            // A retry prepared this attempt (RetryStageExecution): the stage resumes.
            Some(s) if s.status == StageExecutionStatus::InProgress && s.retry_mode.is_some() => {
                let mut record = s.clone();
                record.last_update_time = now;
                (record, StageState::Resumed)
            }
            latest => (
                StageExecution {
                    pipeline_execution_id: execution.pipeline_execution_id.clone(),
                    stage_name: stage.to_string(),
                    status: StageExecutionStatus::InProgress,
                    attempt: latest.map(|s| s.attempt + 1).unwrap_or(1),
                    start_time: now,
                    last_update_time: now,
                    retry_mode: None,
                    conditions: Vec::new(),
                    entered_by: None,
                    retry_trigger: None,
                },
                StageState::Started,
            ),
        };
        record.entered_by = Some(entry);
        // beforeEntry conditions (a resumed attempt has passed them already, or was let through).
        // With work rules (Commands, CodeBuild) they are checked once those have run, by the
        // execution's own checkEntry task after its runRules task ([`Engine::check_entry`]).
        let mut refused = None;
        if state == StageState::Started {
            refused = self
                .check_before_entry(snapshot, stage, &mut record, None, now)
                .await?;
        }
        if refused == Some(crate::declaration::ConditionResult::Skip) {
            record.status = StageExecutionStatus::Skipped;
        }
        // A skipped stage reports that it was skipped; a stage entered (or refused by a failed
        // condition) that it started.
        let state = match refused {
            Some(crate::declaration::ConditionResult::Skip) => StageState::Skipped,
            _ => state,
        };
        let events = vec![self.stage_event(execution, &record, state)];
        self.executions
            .put_stage(&execution.pipeline_name, &record, &events)
            .await?;
        self.answer_entry(&record, token).await
    }

    /// Answer the `enterStage` token of the stage attempt `record` opened: entered (in
    /// progress), skipped or refused by its beforeEntry condition. An attempt that has moved on
    /// since was answered long ago (Step Functions refuses a second answer): nothing is sent.
    async fn answer_entry(&self, record: &StageExecution, token: &str) -> Result<(), EngineError> {
        let stage = &record.stage_name;
        let summary = || {
            record
                .conditions
                .last()
                .map(|c| c.summary.clone())
                .unwrap_or_default()
        };
        // The beforeEntry result that kept the execution out (still standing: not overridden).
        let refused = record
            .conditions
            .iter()
            .rev()
            .find(|c| {
                c.kind == crate::conditions::ConditionKind::BeforeEntry
                    && c.status == "Failed"
                    && c.applied.is_some()
            })
            .and_then(|c| c.applied);
        let answer = match (record.status, refused) {
            (StageExecutionStatus::Skipped, _) => {
                let cause = format!("stage {stage} skipped: {}", summary());
                self.tasks
                    .fail(token, asl::SKIPPED_ERROR, &truncate(&cause, 32_000))
                    .await
            }
            (
                StageExecutionStatus::InProgress | StageExecutionStatus::Failed,
                Some(crate::declaration::ConditionResult::Fail),
            ) => {
                let cause = format!("stage {stage}: beforeEntry condition failed: {}", summary());
                self.tasks
                    .fail(
                        token,
                        asl::CONDITION_FAILED_ERROR,
                        &truncate(&cause, 32_000),
                    )
                    .await
            }
            (StageExecutionStatus::InProgress, _) => self.tasks.succeed(token, &json!({})).await,
            _ => return Ok(()),
        };
        answer.map_err(EngineError::Callback)
    }

    /// The version of the pipeline whose stages differ from those `execution` started with,
    /// if the pipeline has been updated so (`None`: same structure, or the pipeline is gone).
    /// A change of execution mode, variables or triggers alone leaves running executions be.
    pub(crate) async fn structure_changed_since(
        &self,
        execution: &PipelineExecution,
    ) -> Result<Option<u32>, EngineError> {
        let Some(current) = self.pipelines.get(&execution.pipeline_name, None).await? else {
            return Ok(None);
        };
        let version = current.version();
        if version == execution.pipeline_version {
            return Ok(None);
        }
        let Some(started) = self
            .pipelines
            .get(&execution.pipeline_name, Some(execution.pipeline_version))
            .await?
        else {
            return Ok(None);
        };
        Ok((started.declaration.stages != current.declaration.stages).then_some(version))
    }

    /// Execution `snapshot`, about to enter `stage`, started on a structure the pipeline no
    /// longer has (updated to `version`): it ends `Cancelled`, as CodePipeline cancels
    /// executions when the pipeline structure is updated. Returns the reason.
    pub(super) async fn cancel(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        version: u32,
        now: f64,
    ) -> Result<String, EngineError> {
        let reason = format!(
            "cancelled before stage {stage}: the pipeline structure was updated (version {version})"
        );
        self.end_in_progress(
            snapshot,
            PipelineExecutionStatus::Cancelled,
            PipelineState::Canceled,
            &reason,
            now,
        )
        .await?;
        // A RetryStageExecution prepared an attempt of this stage that now never runs.
        if let Some(prepared) = snapshot
            .stage(stage)
            .filter(|s| s.status == StageExecutionStatus::InProgress && s.retry_mode.is_some())
        {
            let mut record = prepared.clone();
            record.status = StageExecutionStatus::Cancelled;
            record.last_update_time = now;
            let events = [self.stage_event(&snapshot.execution, &record, StageState::Canceled)];
            self.executions
                .put_stage(&snapshot.execution.pipeline_name, &record, &events)
                .await?;
        }
        Ok(reason)
    }

    /// Execution `snapshot`, outside any stage, ends with `status` and `summary` (its source
    /// revisions kept), publishing `state`, if it is still in progress; a concurrent ending
    /// (a stop, another decision) wins silently.
    pub(crate) async fn end_in_progress(
        &self,
        snapshot: &ExecutionSnapshot,
        status: PipelineExecutionStatus,
        state: PipelineState,
        summary: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let mut execution = snapshot.execution.clone();
        if execution.status != PipelineExecutionStatus::InProgress {
            return Ok(());
        }
        execution.status = status;
        execution.status_summary = Some(summary.to_string());
        execution.last_update_time = now;
        keep_source_revisions(&mut execution, snapshot);
        match self
            .executions
            .put_execution(
                &execution,
                &[PipelineExecutionStatus::InProgress],
                &[self.pipeline_event(&execution, state)],
            )
            .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// Execution `id`, waiting with `token`, was overtaken by `by`: it ends `Superseded`.
    pub(crate) async fn supersede(
        &self,
        id: &str,
        token: &str,
        by: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        if let Some(snapshot) = self.executions.snapshot(id).await? {
            self.end_in_progress(
                &snapshot,
                PipelineExecutionStatus::Superseded,
                PipelineState::Superseded,
                &format!("superseded by pipeline execution {by}"),
                now,
            )
            .await?;
        }
        self.tasks
            .fail(
                token,
                asl::SUPERSEDED_ERROR,
                &format!("superseded by pipeline execution {by}"),
            )
            .await
            .map_err(EngineError::Callback)
    }

    /// Execution `id`, arriving with `token` in front of `stage`, found its queue full: it ends
    /// `Failed`, saying why.
    pub(super) async fn refuse(
        &self,
        id: &str,
        token: &str,
        stage: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let why = format!(
            "stage {stage}: {} executions already wait to enter it, the most a stage queues; \
             this execution was not queued (start it again once the queue is shorter)",
            crate::locks::MAX_WAITING
        );
        if let Some(snapshot) = self.executions.snapshot(id).await? {
            self.end_in_progress(
                &snapshot,
                PipelineExecutionStatus::Failed,
                PipelineState::Failed,
                &why,
                now,
            )
            .await?;
        }
        self.tasks
            .fail(token, asl::STOPPED_ERROR, &why)
            .await
            .map_err(EngineError::Callback)
    }

    /// Execution `ids` is done with `stage` (left it, or stopped waiting for it): the next
    /// execution waiting for it enters.
    pub(crate) async fn release_stage(
        &self,
        ids: &ExecutionIds,
        mode: ExecutionMode,
        stage: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        // A PARALLEL execution holds nothing; it may still be waiting for a transition.
        let _ = mode;
        let (effects, lock) = self
            .update_lock_to(&ids.pipeline_name, stage, |lock| {
                lock.release(&ids.pipeline_execution_id)
            })
            .await?;
        if effects.is_empty() {
            // Nobody new enters: a release done before (this task again) may have handed the
            // stage to an execution whose admission then failed.
            return self
                .redrive_lock(&ids.pipeline_name, stage, &lock, now)
                .await;
        }
        self.apply_lock_effects(&ids.pipeline_name, stage, effects, None, now)
            .await
    }

    /// The holder of `lock` (of `stage`) was given the stage but may never have been told (its
    /// admission failed after the lock was written, or after its record, before the answer):
    /// admit it again. Admission is idempotent (the attempt its token opened answers it), and
    /// Step Functions refuses an answer it already has, which counts as done. A holder that has
    /// ended gives the stage on.
    pub(crate) async fn redrive_entry(
        &self,
        pipeline_name: &str,
        stage: &str,
        lock: &StageLock,
        now: f64,
    ) -> Result<(), EngineError> {
        let Some((holder, token)) = lock.pending_entry() else {
            return Ok(());
        };
        let snapshot = self.executions.snapshot(holder).await?;
        let running = snapshot.as_ref().filter(|s| {
            matches!(
                s.execution.status,
                PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
            )
        });
        let Some(snapshot) = running else {
            // It ended holding the stage: the stage goes to the next.
            let effects = self
                .update_lock(pipeline_name, stage, |lock| lock.release(holder))
                .await?;
            return self
                .apply_lock_effects(pipeline_name, stage, effects, None, now)
                .await;
        };
        if snapshot.execution.status != PipelineExecutionStatus::InProgress {
            return Ok(());
        }
        match self.admit(snapshot, stage, token, now).await {
            Err(EngineError::Callback(PortError::TaskGone(_))) => Ok(()),
            other => other,
        }
    }

    /// [`Engine::check_group_after`] without what the branches ended with.
    pub async fn check_group(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        group: usize,
        now: f64,
    ) -> Result<bool, EngineError> {
        self.check_group_after(ids, stage, group, &[], now).await
    }

    /// After action group `group` (1-based) of `stage`: an action whose branch ended without a
    /// result is recorded Failed — `TimedOut` when its task timed out (or nothing says why),
    /// else `JobFailed` naming the error its task failed with (its function crashed or was
    /// killed), from `branches` (the group's `Parallel` result); returns true when any action
    /// of the group did not succeed.
    pub async fn check_group_after(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        group: usize,
        branches: &[Value],
        now: f64,
    ) -> Result<bool, EngineError> {
        let (snapshot, pipeline) = self.load(ids).await?;
        let groups = action_groups(stage_of(&pipeline.declaration, stage)?);
        let actions = groups.get(group.wrapping_sub(1)).ok_or_else(|| {
            EngineError::NotInPipeline(format!("stage {stage} has no action group {group}"))
        })?;
        let stage_attempt = snapshot.stage(stage).map(|s| s.attempt).unwrap_or(1);
        let mut failed = false;
        for action in actions {
            match snapshot.latest_action(stage, &action.name) {
                Some(run)
                    if run.attempt == stage_attempt
                        && run.status == ActionExecutionStatus::Succeeded => {}
                Some(run)
                    if run.attempt == stage_attempt
                        && run.status == ActionExecutionStatus::InProgress =>
                {
                    failed = true;
                    let mut record = run.clone();
                    record.status = ActionExecutionStatus::Failed;
                    record.last_update_time = now;
                    record.task_token = None;
                    record.output.execution_result.error_details =
                        Some(branch_failure(&action.name, branches));
                    let event =
                        self.action_event(&snapshot.execution, &record, ActionState::Failed);
                    match self
                        .executions
                        .put_action(&record, Some(ActionExecutionStatus::InProgress), &[event])
                        .await
                    {
                        // Or it completed meanwhile: the next check sees its real status.
                        Ok(()) | Err(StoreError::Conflict(_)) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
                Some(run) if run.attempt == stage_attempt => failed = true,
                // It never began in this attempt (its task failed or timed out before it
                // recorded anything): recorded Failed with its task's error, so the stage's
                // summary names it and says why. A stopping execution's actions are not run.
                _ => {
                    failed = true;
                    if !crate::control::is_stopping(snapshot.execution.status) {
                        self.record_unstarted(
                            &snapshot,
                            stage,
                            action,
                            stage_attempt,
                            branches,
                            now,
                        )
                        .await?;
                    }
                }
            }
        }
        // A stopping execution starts no further action group.
        Ok(failed || crate::control::is_stopping(snapshot.execution.status))
    }

    /// Record action `action` of `stage` Failed for attempt `attempt`, which it never began:
    /// the error its task ended with (from `branches`), or that it did not start in time.
    async fn record_unstarted(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        action: &ActionDeclaration,
        attempt: u32,
        branches: &[Value],
        now: f64,
    ) -> Result<(), EngineError> {
        let execution = &snapshot.execution;
        let mut error = branch_failure(&action.name, branches);
        if error.code == ErrorCode::TimedOut {
            error.message = format!("action {} did not start in time", action.name);
        }
        let record = crate::execution::ActionExecution {
            pipeline_execution_id: execution.pipeline_execution_id.clone(),
            action_execution_id: crate::conditions::derived_id(&format!(
                "unstarted\0{}\0{stage}\0{}\0{attempt}",
                execution.pipeline_execution_id, action.name
            )),
            pipeline_version: execution.pipeline_version,
            stage_name: stage.to_string(),
            action_name: action.name.clone(),
            attempt,
            status: ActionExecutionStatus::Failed,
            start_time: now,
            last_update_time: now,
            updated_by: Some("pipewright".into()),
            input: crate::execution::ActionExecutionInput {
                action_type_id: action.action_type_id.clone(),
                configuration: action.configuration().clone(),
                resolved_configuration: Default::default(),
                region: Some(
                    action
                        .region
                        .clone()
                        .unwrap_or_else(|| self.config.region.clone()),
                ),
                input_artifacts: Vec::new(),
                namespace: action.namespace.clone(),
            },
            output: crate::execution::ActionExecutionOutput {
                execution_result: crate::execution::ActionExecutionResult {
                    error_details: Some(error),
                    ..Default::default()
                },
                ..Default::default()
            },
            log_tail: None,
            log_location: None,
            source_revision: None,
            task_token: None,
            percent_complete: None,
        };
        let event = self.action_event(execution, &record, ActionState::Failed);
        match self.executions.put_action(&record, None, &[event]).await {
            // A repeated check recorded it already.
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The stage ended (`succeeded` or not): record it and publish; a failed stage fails the
    /// execution, with the failing actions named in its status summary.
    pub async fn leave_stage(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        succeeded: bool,
        now: f64,
    ) -> Result<(), EngineError> {
        self.leave_stage_of_run(ids, stage, succeeded, None, &BTreeMap::new(), now)
            .await
    }

    /// `checkEntry`: the stage's beforeEntry conditions, now that its work rules have run
    /// (`work`, from its `runRules` task). Returns whether a condition refused the execution
    /// (the state machine then fails the stage). A repeat answers from the attempt's record.
    pub async fn check_entry(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        work: &BTreeMap<String, crate::conditions::WorkRuleResult>,
        now: f64,
    ) -> Result<bool, EngineError> {
        let (snapshot, pipeline) = self.load(ids).await?;
        stage_of(&pipeline.declaration, stage)?;
        let mut record = snapshot.stage(stage).cloned().ok_or_else(|| {
            EngineError::NotInPipeline(format!(
                "execution {} has not entered stage {stage}",
                ids.pipeline_execution_id
            ))
        })?;
        // A retried attempt resumes the stage (its conditions passed before); an overridden
        // condition lets the execution in.
        if record.retry_mode.is_some() || record.status != StageExecutionStatus::InProgress {
            return Ok(false);
        }
        let before: Vec<_> = record
            .conditions
            .iter()
            .filter(|c| c.kind == crate::conditions::ConditionKind::BeforeEntry)
            .collect();
        if before.iter().any(|c| c.status == "Overridden") {
            return Ok(false);
        }
        if !before.is_empty() {
            // Checked already: this task came again.
            return Ok(before
                .iter()
                .any(|c| c.applied == Some(crate::declaration::ConditionResult::Fail)));
        }
        let refused = self
            .check_before_entry(&snapshot, stage, &mut record, Some(work), now)
            .await?
            == Some(crate::declaration::ConditionResult::Fail);
        record.last_update_time = now;
        self.executions
            .put_stage(&ids.pipeline_name, &record, &[])
            .await?;
        Ok(refused)
    }

    /// [`Engine::leave_stage`], sent by state machine run `run`: when the execution records
    /// another run as its current one, this leave is a repeat from a run an automatic retry (or a
    /// condition override) has replaced — Step Functions retrying a leave whose first delivery
    /// already started the new run — and does nothing: the new run's attempt is not its to end.
    /// `work` holds what the stage's work rules (`Commands`, `CodeBuild` in its `onSuccess` or
    /// `onFailure` conditions) found, in the task before this one.
    pub async fn leave_stage_of_run(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        succeeded: bool,
        run: Option<&str>,
        work: &BTreeMap<String, crate::conditions::WorkRuleResult>,
        now: f64,
    ) -> Result<(), EngineError> {
        let (snapshot, pipeline) = self.load(ids).await?;
        if let (Some(run), Some(current)) = (run, &snapshot.execution.state_machine_execution_arn) {
            if run != current {
                tracing::info!(execution = %ids.pipeline_execution_id, %stage, %run, %current,
                    "a leave from a replaced run: nothing to do");
                return Ok(());
            }
        }
        let mut record = snapshot.stage(stage).cloned().unwrap_or(StageExecution {
            pipeline_execution_id: ids.pipeline_execution_id.clone(),
            stage_name: stage.to_string(),
            status: StageExecutionStatus::InProgress,
            attempt: 1,
            start_time: now,
            last_update_time: now,
            retry_mode: None,
            conditions: Vec::new(),
            entered_by: None,
            retry_trigger: None,
        });
        let mode = snapshot.execution.execution_mode;
        if record.status == StageExecutionStatus::Skipped {
            // Skipped by its beforeEntry condition: nothing ran.
            return self.release_stage(ids, mode, stage, now).await;
        }
        if record.status != StageExecutionStatus::InProgress {
            // Left already: this task came again (Step Functions retried it, Lambda delivered it
            // again), or a cancel or abort ended the attempt.
            return self
                .leave_again(ids, &snapshot, &pipeline.declaration, &record, now)
                .await;
        }
        let stopping = crate::control::is_stopping(snapshot.execution.status);
        let declaration = stage_of(&pipeline.declaration, stage)?;
        // onSuccess conditions can still fail the stage.
        let mut failure_summary_text = None;
        let mut after = super::After::Nothing;
        let mut succeeded = succeeded;
        if succeeded && !stopping {
            if let Some((summary, then)) = self
                .check_on_success(&snapshot, declaration, &mut record, work, now)
                .await?
            {
                succeeded = false;
                failure_summary_text = Some(summary);
                after = then;
            }
        } else if !succeeded && !stopping && !record.condition_failed() {
            after = self
                .check_on_failure(&snapshot, declaration, &mut record, work, now)
                .await?;
        }
        record.status = match (succeeded, stopping) {
            (true, _) => StageExecutionStatus::Succeeded,
            (false, true) => StageExecutionStatus::Stopped,
            (false, false) => StageExecutionStatus::Failed,
        };
        record.last_update_time = now;
        let state = match record.status {
            StageExecutionStatus::Succeeded => StageState::Succeeded,
            StageExecutionStatus::Stopped => StageState::Stopped,
            _ => StageState::Failed,
        };
        let events = [self.stage_event(&snapshot.execution, &record, state)];
        self.executions
            .put_stage(&ids.pipeline_name, &record, &events)
            .await?;
        if stopping {
            self.finish_stopping(&snapshot.execution, now).await?;
            return self.release_stage(ids, mode, stage, now).await;
        }
        // An automatic retry keeps the execution running: it is not failed in between.
        let retrying = matches!(after, super::After::Retry(_));
        if !succeeded && !retrying {
            let mut execution = snapshot.execution.clone();
            execution.status = PipelineExecutionStatus::Failed;
            execution.status_summary = Some(failure_summary_text.unwrap_or_else(|| {
                let mut with_record = snapshot.clone();
                with_record
                    .stages
                    .retain(|s| !(s.stage_name == stage && s.attempt == record.attempt));
                with_record.stages.push(record.clone());
                failure_summary(&with_record, stage, record.attempt)
            }));
            execution.last_update_time = now;
            keep_source_revisions(&mut execution, &snapshot);
            self.executions
                .put_execution(
                    &execution,
                    &[
                        PipelineExecutionStatus::InProgress,
                        PipelineExecutionStatus::Stopping,
                    ],
                    &[self.pipeline_event(&execution, PipelineState::Failed)],
                )
                .await?;
        }
        // QUEUED: a stage that succeeded is held until the execution queues in front of the next
        // one (`enter_stage` releases it), so no later execution overtakes it on the way.
        let continues = succeeded
            && after == super::After::Nothing
            && mode == ExecutionMode::Queued
            && snapshot.execution.rollback.is_none()
            && previous_stage_of_next(&pipeline.declaration, stage);
        if continues {
            return Ok(());
        }
        // QUEUED: `enter_stage` releases the previous stage; when entering failed before it did
        // (the Enter task's catcher leads here), the previous stage is released now, not held by
        // an execution that is done with it. Releasing what it does not hold changes nothing.
        if mode == ExecutionMode::Queued && !succeeded {
            if let Some(previous) = previous_stage(&pipeline.declaration, stage) {
                self.release_stage(ids, mode, previous, now).await?;
            }
        }
        // What the stage's conditions ask for once the failure is recorded.
        self.after_conditions(ids, stage, after, now).await
    }

    /// `leaveStage` for an attempt that ended already (`record`): nothing is decided again (no
    /// conditions run, no record or event is written twice); what a first run that died midway
    /// may have left undone is done: a stopping execution stops, a failed stage fails its
    /// execution if it still runs (an automatic retry or rollback that never started is not
    /// started late), and the stages the execution is done with are released.
    async fn leave_again(
        &self,
        ids: &ExecutionIds,
        snapshot: &ExecutionSnapshot,
        declaration: &PipelineDeclaration,
        record: &StageExecution,
        now: f64,
    ) -> Result<(), EngineError> {
        let stage = record.stage_name.as_str();
        let execution = &snapshot.execution;
        let mode = execution.execution_mode;
        if crate::control::is_stopping(execution.status) {
            self.finish_stopping(execution, now).await?;
            return self.release_stage(ids, mode, stage, now).await;
        }
        if record.status == StageExecutionStatus::Succeeded {
            // QUEUED holds a stage it succeeded in until it queues at the next one.
            let holds = mode == ExecutionMode::Queued
                && execution.status == PipelineExecutionStatus::InProgress
                && execution.rollback.is_none()
                && previous_stage_of_next(declaration, stage);
            if holds {
                return Ok(());
            }
            return self.release_stage(ids, mode, stage, now).await;
        }
        self.end_in_progress(
            snapshot,
            PipelineExecutionStatus::Failed,
            PipelineState::Failed,
            &failure_summary(snapshot, stage, record.attempt),
            now,
        )
        .await?;
        if mode == ExecutionMode::Queued {
            if let Some(previous) = previous_stage(declaration, stage) {
                self.release_stage(ids, mode, previous, now).await?;
            }
        }
        self.release_stage(ids, mode, stage, now).await
    }

    /// Every stage succeeded.
    pub async fn finish_execution(&self, ids: &ExecutionIds, now: f64) -> Result<(), EngineError> {
        let (snapshot, _) = self.load(ids).await?;
        if crate::control::is_stopping(snapshot.execution.status) {
            return self.finish_stopping(&snapshot.execution, now).await;
        }
        if snapshot.execution.status != PipelineExecutionStatus::InProgress {
            // It ended already (an onSuccess condition failed it).
            return Ok(());
        }
        let mut execution = snapshot.execution.clone();
        execution.status = PipelineExecutionStatus::Succeeded;
        execution.last_update_time = now;
        keep_source_revisions(&mut execution, &snapshot);
        self.executions
            .put_execution(
                &execution,
                &[PipelineExecutionStatus::InProgress],
                &[self.pipeline_event(&execution, PipelineState::Succeeded)],
            )
            .await?;
        Ok(())
    }
}

pub(super) fn stage_of<'p>(
    declaration: &'p PipelineDeclaration,
    stage: &str,
) -> Result<&'p crate::declaration::StageDeclaration, EngineError> {
    declaration
        .stages
        .iter()
        .find(|s| s.name == stage)
        .ok_or_else(|| {
            EngineError::NotInPipeline(format!(
                "pipeline {} has no stage {stage}",
                declaration.name
            ))
        })
}

/// The stage before `stage` in the declaration.
fn previous_stage<'p>(declaration: &'p PipelineDeclaration, stage: &str) -> Option<&'p str> {
    let i = declaration.stages.iter().position(|s| s.name == stage)?;
    i.checked_sub(1)
        .map(|p| declaration.stages[p].name.as_str())
}

/// True when a stage follows `stage` (whose `enterStage` will release it).
fn previous_stage_of_next(declaration: &PipelineDeclaration, stage: &str) -> bool {
    declaration
        .stages
        .iter()
        .position(|s| s.name == stage)
        .is_some_and(|i| i + 1 < declaration.stages.len())
}

/// The actions of a stage grouped by runOrder, ascending (one action group each).
pub fn action_groups(stage: &crate::declaration::StageDeclaration) -> Vec<Vec<&ActionDeclaration>> {
    let mut groups: BTreeMap<u32, Vec<&ActionDeclaration>> = BTreeMap::new();
    for action in &stage.actions {
        groups.entry(action.run_order()).or_default().push(action);
    }
    groups.into_values().collect()
}

/// Record the source revisions the execution's source actions fetched (a rollback, which runs no
/// source action, keeps its target's).
fn keep_source_revisions(execution: &mut PipelineExecution, snapshot: &ExecutionSnapshot) {
    let fetched = source_revisions(snapshot);
    if !fetched.is_empty() {
        execution.source_revisions = fetched;
    }
}

/// Source revisions recorded by the first stage's actions.
fn source_revisions(snapshot: &ExecutionSnapshot) -> Vec<SourceRevision> {
    snapshot
        .actions
        .iter()
        .filter_map(|a| a.source_revision.clone())
        .collect()
}

/// `Stage Build failed: action Compile: JobFailed: exit code 2 ...`.
fn failure_summary(snapshot: &ExecutionSnapshot, stage: &str, attempt: u32) -> String {
    let failures: Vec<String> = snapshot
        .actions
        .iter()
        .filter(|a| {
            a.stage_name == stage
                && a.attempt == attempt
                && a.status == ActionExecutionStatus::Failed
        })
        .map(|a| match &a.output.execution_result.error_details {
            Some(e) => format!("action {}: {}: {}", a.action_name, e.code, e.message),
            None => format!("action {} failed", a.action_name),
        })
        .collect();
    let condition = snapshot
        .stages
        .iter()
        .find(|s| s.stage_name == stage && s.attempt == attempt)
        .and_then(|s| {
            s.conditions
                .iter()
                .find(|c| c.status == "Failed" && c.applied.is_some())
        });
    if let (true, Some(c)) = (failures.is_empty(), condition) {
        let site = match c.kind {
            crate::conditions::ConditionKind::BeforeEntry => "beforeEntry",
            crate::conditions::ConditionKind::OnSuccess => "onSuccess",
            crate::conditions::ConditionKind::OnFailure => "onFailure",
        };
        truncate(
            &format!("stage {stage} failed its {site} condition: {}", c.summary),
            2048,
        )
    } else if failures.is_empty() {
        format!("stage {stage} failed")
    } else {
        truncate(
            &format!("stage {stage} failed: {}", failures.join("; ")),
            2048,
        )
    }
}

/// Why the task of action `name` ended without a result, from the group's branch results.
fn branch_failure(name: &str, branches: &[Value]) -> ErrorDetails {
    let error = branches
        .iter()
        .find(|b| b.get("failedAction").and_then(Value::as_str) == Some(name))
        .map(|b| &b["error"])
        .filter(|e| e.get("Error").and_then(Value::as_str) != Some("States.Timeout"));
    match error {
        Some(error) => ErrorDetails {
            code: FailureType::JobFailed.into(),
            message: format!(
                "the task of action {name} failed before it reported a result ({}); \
                 retry the stage",
                crate::asl::caught_error_reason(error)
            ),
        },
        None => ErrorDetails {
            code: ErrorCode::TimedOut,
            message: format!("action {name} did not finish in time"),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_follow_run_order() {
        let text = include_str!("../../../../infra/pipelines/sample.json");
        let p = crate::parse_pipeline(text).unwrap();
        let build = p.stages.iter().find(|s| s.name == "Build").unwrap();
        let groups = action_groups(build);
        assert!(!groups.is_empty());
        let orders: Vec<u32> = groups.iter().map(|g| g[0].run_order()).collect();
        let mut sorted = orders.clone();
        sorted.sort();
        assert_eq!(orders, sorted);
    }
}
