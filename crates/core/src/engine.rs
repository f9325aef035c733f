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
//! Every state change is written to the store first, then published as a CodePipeline-shaped
//! event (best effort, at least once, as CodePipeline's own events).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::asl::{self, AslTargets};
use crate::declaration::{ActionDeclaration, ExecutionMode, PipelineDeclaration};
use crate::events::{
    self, ActionState, ArtifactRef, EventEntry, ExecutionRef, PipelineState, StageState,
};
use crate::execution::{
    artifact_key, ActionExecution, ActionExecutionInput, ActionExecutionOutput,
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, ArtifactLocation, ErrorDetails,
    ExecutionSnapshot, ExecutionTrigger, ExecutionType, PipelineExecution, PipelineExecutionStatus,
    ResolvedPipelineVariable, SourceRevision, SourceRevisionOverride, StageExecution,
    StageExecutionStatus,
};
use crate::locks::{Effect as LockEffect, StageLock, Waiter};
use crate::store::{Page, PipelineRecord, PipelineStore, StoreError};
use crate::variables;

/// Execution records.
#[async_trait]
pub trait ExecutionStore: Send + Sync {
    /// Write a new execution. With `idempotency_key`, the key is claimed in the same transaction:
    /// when it was claimed before, nothing is written and the earlier execution's id is returned
    /// as `Err(StoreError::Conflict(id))`.
    ///
    /// Every write that changes a state takes the `events` that report the change: they are
    /// written to the outbox in the same transaction (all or nothing), and the publisher sends
    /// them to EventBridge from there. An event whose id ([`EventEntry::event_id`]) is in the
    /// outbox already is not sent again.
    async fn create_execution(
        &self,
        execution: &PipelineExecution,
        idempotency_key: Option<&str>,
        events: &[EventEntry],
    ) -> Result<(), StoreError>;
    /// Everything recorded about an execution.
    async fn snapshot(
        &self,
        pipeline_execution_id: &str,
    ) -> Result<Option<ExecutionSnapshot>, StoreError>;
    /// Replace the execution record, only while its status is one of `expected`
    /// ([`StoreError::Conflict`] otherwise).
    async fn put_execution(
        &self,
        execution: &PipelineExecution,
        expected: &[PipelineExecutionStatus],
        events: &[EventEntry],
    ) -> Result<(), StoreError>;
    /// Write a stage execution (one item per stage and attempt) of pipeline `pipeline_name`,
    /// then point the pipeline's latest-execution pointer for that stage at it
    /// ([`ExecutionStore::latest_stage_executions`]) unless the pointer names another execution
    /// whose stage execution started later (so an older execution finishing late never hides a
    /// newer one). A pointer that stays put is not an error.
    async fn put_stage(
        &self,
        pipeline_name: &str,
        stage: &StageExecution,
        events: &[EventEntry],
    ) -> Result<(), StoreError>;
    /// For each stage of pipeline `pipeline_name` that an execution has entered, the stage
    /// execution of the latest execution to enter it (latest stage start time), as last written
    /// through [`ExecutionStore::put_stage`]. In no particular order; stages no longer declared
    /// may be among them.
    async fn latest_stage_executions(
        &self,
        pipeline_name: &str,
    ) -> Result<Vec<StageExecution>, StoreError>;
    /// The lock of `stage` of `pipeline_name` and its version (0 and an idle lock when it was
    /// never written).
    async fn stage_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
    ) -> Result<(StageLock, u64), StoreError>;
    /// Replace the lock only while its version is `version` ([`StoreError::Conflict`]
    /// otherwise); it becomes `version + 1`.
    async fn put_stage_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
        lock: &StageLock,
        version: u64,
    ) -> Result<(), StoreError>;
    /// Write an action execution: a new one when `expected` is `None` (Conflict if it exists),
    /// else only while its status is `expected` (so an action completes once).
    async fn put_action(
        &self,
        action: &ActionExecution,
        expected: Option<ActionExecutionStatus>,
        events: &[EventEntry],
    ) -> Result<(), StoreError>;
    /// The action execution whose job id is `job_id` (a job's id is its action execution's id),
    /// as currently recorded (with its task token while it is in progress).
    async fn find_job(&self, job_id: &str) -> Result<Option<ActionExecution>, StoreError>;
    /// Forget pipeline `pipeline_name` as a whole: its stage locks, latest-execution pointers,
    /// execution list and poll state (the execution records stay until they expire).
    async fn forget_pipeline(&self, pipeline_name: &str) -> Result<(), StoreError>;
    /// Executions of a pipeline, newest first.
    async fn list_executions(
        &self,
        pipeline_name: &str,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineExecution>, StoreError>;
}

/// EventBridge.
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Put the events on the bus.
    async fn publish(&self, entries: &[EventEntry]) -> Result<(), String>;
}

/// Step Functions task tokens.
#[async_trait]
pub trait TaskCallbacks: Send + Sync {
    /// `SendTaskSuccess`.
    async fn succeed(&self, token: &str, output: &Value) -> Result<(), String>;
    /// `SendTaskFailure`.
    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), String>;
}

/// Step Functions state machines.
#[async_trait]
pub trait StateMachines: Send + Sync {
    /// The ARN of state machine `name`, created with `definition` if it does not exist.
    async fn ensure(&self, name: &str, definition: &Value) -> Result<String, String>;
    /// Start an execution named `name`; returns its ARN.
    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, String>;
    /// Delete state machine `name` (`DeleteStateMachine`; a run still going ends at its next
    /// transition). One that does not exist is not an error.
    async fn delete(&self, name: &str) -> Result<(), String>;
    /// How run `execution_arn` is (`DescribeExecution`).
    async fn run_status(&self, execution_arn: &str) -> Result<crate::sweep::RunStatus, String>;
}

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
    StateMachine(String),
    /// Completing a task token failed.
    #[error("task callback: {0}")]
    Callback(String),
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

/// The ids every state-machine task carries.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ExecutionIds {
    /// Pipeline name.
    pub pipeline_name: String,
    /// Pipeline version.
    pub pipeline_version: u32,
    /// Execution id.
    pub pipeline_execution_id: String,
}

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
    /// A failure with `code` and `message`.
    pub fn failed(code: &str, message: impl Into<String>) -> Self {
        Self {
            status: ActionExecutionStatus::Failed,
            output_artifacts: Vec::new(),
            output_variables: BTreeMap::new(),
            result: ActionExecutionResult {
                error_details: Some(ErrorDetails {
                    code: code.into(),
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

/// How many times a stage-lock change is tried when other writers keep changing the lock.
const LOCK_ATTEMPTS: usize = 64;

/// The Step Functions error a failed action reports (caught inside its branch).
pub const ACTION_FAILED_ERROR: &str = "Pipewright.ActionFailed";

impl Engine<'_> {
    // ------------------------------------------------------------------ start

    /// Start an execution of the current version of `req.pipeline_name`.
    pub async fn start_execution(&self, req: StartRequest) -> Result<Started, EngineError> {
        let pipeline = self
            .pipelines
            .get(&req.pipeline_name, None)
            .await?
            .ok_or_else(|| EngineError::PipelineNotFound(req.pipeline_name.clone()))?;
        let variables = resolve_pipeline_variables(&pipeline.declaration, &req.variables)?;
        check_source_overrides(&pipeline.declaration, &req.source_revisions)?;
        let declaration = &pipeline.declaration;
        let version = pipeline.version();
        let execution = PipelineExecution {
            pipeline_name: declaration.name.clone(),
            pipeline_version: version,
            pipeline_execution_id: req.pipeline_execution_id.clone(),
            status: PipelineExecutionStatus::InProgress,
            status_summary: None,
            trigger: req.trigger.clone(),
            variables,
            source_revisions: Vec::new(),
            source_revision_overrides: req.source_revisions.clone(),
            execution_mode: declaration.execution_mode(),
            execution_type: ExecutionType::Standard,
            start_time: req.now,
            last_update_time: req.now,
            state_machine_execution_arn: None,
            stop_reason: None,
            rollback: None,
        };
        self.launch(execution, declaration, req.idempotency_key.as_deref(), None)
            .await
    }

    /// Record `execution` (claiming `idempotency_key`), publish `STARTED` and start the state
    /// machine of its pipeline version (`declaration`), at `start_stage` when given.
    pub(crate) async fn launch(
        &self,
        execution: PipelineExecution,
        declaration: &PipelineDeclaration,
        idempotency_key: Option<&str>,
        start_stage: Option<&str>,
    ) -> Result<Started, EngineError> {
        // Nothing is recorded by a function that could not start the run.
        self.targets()?;
        let started = [self.pipeline_event(&execution, PipelineState::Started)];
        match self
            .executions
            .create_execution(&execution, idempotency_key, &started)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(existing)) if idempotency_key.is_some() => {
                self.resume_launch(&existing).await?;
                return Ok(Started {
                    pipeline_execution_id: existing,
                    new: false,
                });
            }
            Err(e) => return Err(e.into()),
        }
        self.start_machine(execution, declaration, start_stage)
            .await
            .map(|id| Started {
                pipeline_execution_id: id,
                new: true,
            })
    }

    /// The functions a compiled state machine calls; only functions that start executions
    /// have them.
    fn targets(&self) -> Result<&asl::AslTargets, EngineError> {
        self.config
            .targets
            .as_ref()
            .ok_or_else(|| EngineError::StateMachine(NO_TARGETS.into()))
    }

    /// The state machine of version `version` of `declaration` (created on first use, named
    /// by [`asl::machine_name`]); its ARN.
    pub(crate) async fn ensure_machine(
        &self,
        version: u32,
        declaration: &PipelineDeclaration,
    ) -> Result<String, String> {
        let targets = self.config.targets.as_ref().ok_or(NO_TARGETS)?;
        let definition = asl::compile(declaration, targets);
        let name = asl::machine_name(&declaration.name, version, &definition);
        self.machines.ensure(&name, &definition).await
    }

    /// The execution `id` an idempotency key already claimed: when it is still InProgress with
    /// no state machine run recorded (whoever claimed the key died, or failed to reach Step
    /// Functions, before starting it), start its run now. StartExecution is idempotent by name,
    /// so a launch that is merely slower, not dead, starts nothing twice.
    pub(crate) async fn resume_launch(&self, id: &str) -> Result<(), EngineError> {
        let Some(snapshot) = self.executions.snapshot(id).await? else {
            return Ok(());
        };
        let execution = snapshot.execution;
        if execution.status != PipelineExecutionStatus::InProgress
            || execution.state_machine_execution_arn.is_some()
            || !snapshot.stages.is_empty()
        {
            return Ok(());
        }
        let Some(pipeline) = self
            .pipelines
            .get(&execution.pipeline_name, Some(execution.pipeline_version))
            .await?
        else {
            return Ok(());
        };
        tracing::warn!(execution = %id, "resuming a start whose state machine run was never recorded");
        let start_stage = execution.rollback.as_ref().map(|r| r.stage_name.clone());
        self.start_machine(execution, &pipeline.declaration, start_stage.as_deref())
            .await
            .map(|_| ())
    }

    /// Start the state machine run of recorded `execution` (at `start_stage` when given) and
    /// record its ARN; when it cannot start, the execution ends Failed. Returns the execution id.
    async fn start_machine(
        &self,
        mut execution: PipelineExecution,
        declaration: &PipelineDeclaration,
        start_stage: Option<&str>,
    ) -> Result<String, EngineError> {
        let version = execution.pipeline_version;
        let mut input = json!({
            "pipelineName": execution.pipeline_name,
            "pipelineVersion": version,
            "pipelineExecutionId": execution.pipeline_execution_id,
        });
        if let Some(stage) = start_stage {
            input["startStage"] = json!(stage);
        }
        // The record exists before anything else happens; the state machine for this pipeline
        // version is created on first use.
        let started = match self.ensure_machine(version, declaration).await {
            Ok(machine) => {
                self.machines
                    .start(&machine, &execution.pipeline_execution_id, &input)
                    .await
            }
            Err(e) => Err(e),
        };
        match started {
            Ok(arn) => {
                execution.state_machine_execution_arn = Some(arn);
                self.executions
                    .put_execution(&execution, &[PipelineExecutionStatus::InProgress], &[])
                    .await?;
            }
            Err(e) => {
                execution.status = PipelineExecutionStatus::Failed;
                execution.status_summary = Some(format!("the state machine did not start: {e}"));
                self.executions
                    .put_execution(
                        &execution,
                        &[PipelineExecutionStatus::InProgress],
                        &[self.pipeline_event(&execution, PipelineState::Failed)],
                    )
                    .await?;
                return Err(EngineError::StateMachine(e));
            }
        }
        Ok(execution.pipeline_execution_id)
    }

    // ------------------------------------------------------------------ stages

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
        let result = self.arrive_at(ids, &snapshot, stage, token, now).await;
        // QUEUED: the previous stage is held until the execution has queued in front of this
        // one, so executions reach every stage in the order they left the previous one.
        if snapshot.execution.execution_mode == ExecutionMode::Queued {
            if let Some(previous) = previous_stage(&pipeline.declaration, stage) {
                self.release_stage(ids, ExecutionMode::Queued, previous, now)
                    .await?;
            }
        }
        result
    }

    async fn arrive_at(
        &self,
        ids: &ExecutionIds,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        token: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let snapshot = snapshot.clone();
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
        let effects = self
            .update_lock(&ids.pipeline_name, stage, |lock| {
                lock.arrive(arrival.clone(), mode)
            })
            .await?;
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
        // The same enterStage task again (Step Functions retried it, Lambda delivered it again):
        // the attempt it opened answers it as it did, nothing is recorded twice.
        let entry = crate::conditions::derived_id(&format!("stage entry\0{token}"));
        if let Some(entered) = snapshot
            .stages
            .iter()
            .find(|s| s.stage_name == stage && s.entered_by.as_deref() == Some(entry.as_str()))
        {
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
                },
                StageState::Started,
            ),
        };
        record.entered_by = Some(entry);
        // beforeEntry conditions (a resumed attempt has passed them already, or was let through).
        let mut refused = None;
        if state == StageState::Started {
            refused = self
                .check_before_entry(snapshot, stage, &mut record, now)
                .await?;
        }
        if refused == Some(crate::declaration::ConditionResult::Skip) {
            record.status = StageExecutionStatus::Skipped;
        }
        // A skipped stage reports nothing; a stage entered (or refused by a failed condition)
        // reports that it started.
        let events = match refused {
            Some(crate::declaration::ConditionResult::Skip) => Vec::new(),
            _ => vec![self.stage_event(execution, &record, state)],
        };
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

    /// Change the lock of `stage` with `change` (read, decide, conditional write; again when
    /// another writer got there first); returns what the change asks for.
    pub(crate) async fn update_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
        change: impl Fn(&StageLock) -> (StageLock, Vec<LockEffect>),
    ) -> Result<Vec<LockEffect>, EngineError> {
        for _ in 0..LOCK_ATTEMPTS {
            let (lock, version) = self.executions.stage_lock(pipeline_name, stage).await?;
            let (next, effects) = change(&lock);
            if next == lock {
                return Ok(effects);
            }
            match self
                .executions
                .put_stage_lock(pipeline_name, stage, &next, version)
                .await
            {
                Ok(()) => return Ok(effects),
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
                    self.supersede(&pipeline_execution_id, &task_token, &by, now)
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
    async fn cancel(
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
    async fn refuse(
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
        let effects = self
            .update_lock(&ids.pipeline_name, stage, |lock| {
                lock.release(&ids.pipeline_execution_id)
            })
            .await?;
        self.apply_lock_effects(&ids.pipeline_name, stage, effects, None, now)
            .await
    }

    /// After action group `group` (1-based) of `stage`: an action whose branch ended without a
    /// result (its task timed out) is recorded Failed; returns true when any action of the group
    /// did not succeed.
    pub async fn check_group(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        group: usize,
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
                    record.output.execution_result.error_details = Some(ErrorDetails {
                        code: "TimedOut".into(),
                        message: format!("action {} did not finish in time", action.name),
                    });
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
                _ => failed = true,
            }
        }
        // A stopping execution starts no further action group.
        Ok(failed || crate::control::is_stopping(snapshot.execution.status))
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
        let (snapshot, pipeline) = self.load(ids).await?;
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
        let mut after = crate::conditions::After::Nothing;
        let mut succeeded = succeeded;
        if succeeded && !stopping {
            if let Some((summary, then)) = self
                .check_on_success(&snapshot, declaration, &mut record, now)
                .await?
            {
                succeeded = false;
                failure_summary_text = Some(summary);
                after = then;
            }
        } else if !succeeded && !stopping && !record.condition_failed() {
            after = self
                .check_on_failure(&snapshot, declaration, &mut record, now)
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
        let retrying = matches!(after, crate::conditions::After::Retry(_));
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
            && after == crate::conditions::After::Nothing
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

    // ------------------------------------------------------------------ actions

    /// Record action `stage`/`action` as started (with the task token that will complete it),
    /// publish `STARTED`, and resolve what the provider needs. When the action cannot even be
    /// prepared (an unresolvable variable, a missing input artifact), it is completed as failed
    /// here and `Ok(None)` is returned.
    pub async fn begin_action(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        action: &str,
        action_execution_id: &str,
        token: &str,
        now: f64,
    ) -> Result<Option<PreparedAction>, EngineError> {
        let (snapshot, pipeline) = self.load(ids).await?;
        if crate::control::is_stopping(snapshot.execution.status) {
            // Stopped before this action started: it never runs.
            self.tasks
                .fail(token, asl::STOPPED_ERROR, "the execution was stopped")
                .await
                .map_err(EngineError::Callback)?;
            return Ok(None);
        }
        let declaration = &pipeline.declaration;
        let action_decl = stage_of(declaration, stage)?
            .actions
            .iter()
            .find(|a| a.name == action)
            .ok_or_else(|| {
                EngineError::NotInPipeline(format!("stage {stage} has no action {action}"))
            })?
            .clone();
        // The same task again (its id comes from its token): the first delivery recorded it.
        if let Some(earlier) = snapshot
            .actions
            .iter()
            .find(|a| a.action_execution_id == action_execution_id)
        {
            return self
                .begin_again(&snapshot, declaration, action_decl, earlier.clone())
                .await;
        }
        let stage_record = snapshot.stage(stage);
        let attempt = stage_record.map(|s| s.attempt).unwrap_or(1);
        // RetryStageExecution with FAILED_ACTIONS: an action that succeeded in the previous
        // attempt keeps its result instead of running again.
        if stage_record.and_then(|s| s.retry_mode.as_deref())
            == Some(crate::control::FAILED_ACTIONS)
        {
            if let Some(previous) = snapshot
                .actions
                .iter()
                .filter(|a| {
                    a.stage_name == stage
                        && a.action_name == action
                        && a.attempt < attempt
                        && a.status == ActionExecutionStatus::Succeeded
                })
                .max_by_key(|a| a.attempt)
            {
                let mut kept = previous.clone();
                kept.attempt = attempt;
                kept.action_execution_id = action_execution_id.to_string();
                kept.task_token = None;
                match self.executions.put_action(&kept, None, &[]).await {
                    Ok(()) | Err(StoreError::Conflict(_)) => {}
                    Err(e) => return Err(e.into()),
                }
                self.tasks
                    .succeed(token, &json!({}))
                    .await
                    .map_err(EngineError::Callback)?;
                return Ok(None);
            }
        }
        // A rollback reads what its target produced before the stage.
        let base = self.with_rollback_base(snapshot.clone()).await?;
        let artifacts = base.artifacts();
        let scope = variable_scope(&base, declaration);
        let mut problems = Vec::new();
        let inputs: Vec<ArtifactDetail> = action_decl
            .input_artifacts()
            .iter()
            .filter_map(|a| match artifacts.get(&a.name) {
                Some(location) => Some(ArtifactDetail {
                    name: a.name.clone(),
                    s3_location: location.clone(),
                }),
                None => {
                    problems.push(format!("input artifact {} was not produced", a.name));
                    None
                }
            })
            .collect();
        let configuration: BTreeMap<String, String> = action_decl
            .configuration()
            .iter()
            .filter_map(|(k, v)| match resolve(v, &scope) {
                Ok(value) => Some((k.clone(), value)),
                Err(e) => {
                    problems.push(format!("configuration {k}: {e}"));
                    None
                }
            })
            .collect();
        let commands: Vec<String> = action_decl
            .commands()
            .iter()
            .filter_map(|c| match resolve(c, &scope) {
                Ok(value) => Some(value),
                Err(e) => {
                    problems.push(format!("commands: {e}"));
                    None
                }
            })
            .collect();
        let outputs: Vec<ArtifactDetail> = action_decl
            .output_artifacts()
            .iter()
            .map(|a| ArtifactDetail {
                name: a.name.clone(),
                s3_location: ArtifactLocation {
                    bucket: self.config.artifact_bucket.clone(),
                    key: artifact_key(&ids.pipeline_name, &a.name, action_execution_id),
                    version_id: None,
                },
            })
            .collect();
        let record = ActionExecution {
            pipeline_execution_id: ids.pipeline_execution_id.clone(),
            action_execution_id: action_execution_id.to_string(),
            pipeline_version: ids.pipeline_version,
            stage_name: stage.to_string(),
            action_name: action.to_string(),
            attempt,
            status: ActionExecutionStatus::InProgress,
            start_time: now,
            last_update_time: now,
            updated_by: Some("pipewright".into()),
            input: ActionExecutionInput {
                action_type_id: action_decl.action_type_id.clone(),
                configuration: action_decl.configuration().clone(),
                resolved_configuration: configuration.clone(),
                region: Some(
                    action_decl
                        .region
                        .clone()
                        .unwrap_or_else(|| self.config.region.clone()),
                ),
                input_artifacts: inputs.clone(),
                namespace: action_decl.namespace.clone(),
            },
            output: ActionExecutionOutput::default(),
            log_tail: None,
            log_location: None,
            source_revision: None,
            task_token: Some(token.to_string()),
        };
        let started = [self.action_event(&snapshot.execution, &record, ActionState::Started)];
        match self.executions.put_action(&record, None, &started).await {
            Ok(()) => {}
            // A concurrent delivery of the same task recorded it first.
            Err(StoreError::Conflict(_)) => {
                let again = self
                    .executions
                    .snapshot(&ids.pipeline_execution_id)
                    .await?
                    .and_then(|s| {
                        s.actions
                            .into_iter()
                            .find(|a| a.action_execution_id == action_execution_id)
                    });
                if let Some(earlier) = again {
                    return self
                        .begin_again(&snapshot, declaration, action_decl, earlier)
                        .await;
                }
                return Err(StoreError::Conflict(format!(
                    "action {stage}/{action} attempt {attempt} was recorded by another run"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        let prepared = PreparedAction {
            record,
            declaration: action_decl,
            configuration,
            commands,
            inputs,
            outputs,
            variables: scope,
            source_revision_overrides: snapshot
                .execution
                .source_revision_overrides
                .iter()
                .filter(|o| o.action_name == action)
                .cloned()
                .collect(),
            account_id: self.config.account_id.clone(),
            log_location: self.log_location(&ids.pipeline_name, action_execution_id),
        };
        if !problems.is_empty() {
            let outcome = ActionOutcome::failed("ConfigurationError", problems.join("; "));
            self.complete_action(&prepared.record, outcome, now).await?;
            return Ok(None);
        }
        Ok(Some(prepared))
    }

    /// `runAction` came again for the action execution `earlier` recorded. Still running: the
    /// first delivery may have died mid-way, so it is prepared again from its record (same id,
    /// same output keys, no second `STARTED`) and the provider runs again. Ended: its callback
    /// is sent if it never went out, and nothing runs.
    async fn begin_again(
        &self,
        snapshot: &ExecutionSnapshot,
        pipeline: &PipelineDeclaration,
        declaration: ActionDeclaration,
        earlier: ActionExecution,
    ) -> Result<Option<PreparedAction>, EngineError> {
        if earlier.status != ActionExecutionStatus::InProgress {
            self.answer_unsent(&earlier).await?;
            return Ok(None);
        }
        self.prepared_from(snapshot, pipeline, declaration, earlier)
            .await
            .map(Some)
    }

    /// What the provider of action execution `record` (recorded when it began) was given,
    /// rebuilt from the record and the pipeline version it runs (`pipeline`, `declaration`).
    pub(crate) async fn prepared_from(
        &self,
        snapshot: &ExecutionSnapshot,
        pipeline: &PipelineDeclaration,
        declaration: ActionDeclaration,
        earlier: ActionExecution,
    ) -> Result<PreparedAction, EngineError> {
        let base = self.with_rollback_base(snapshot.clone()).await?;
        let scope = variable_scope(&base, pipeline);
        let outputs = declaration
            .output_artifacts()
            .iter()
            .map(|a| ArtifactDetail {
                name: a.name.clone(),
                s3_location: ArtifactLocation {
                    bucket: self.config.artifact_bucket.clone(),
                    key: artifact_key(
                        &snapshot.execution.pipeline_name,
                        &a.name,
                        &earlier.action_execution_id,
                    ),
                    version_id: None,
                },
            })
            .collect();
        let commands = declaration
            .commands()
            .iter()
            .filter_map(|c| resolve(c, &scope).ok())
            .collect();
        Ok(PreparedAction {
            configuration: earlier.input.resolved_configuration.clone(),
            inputs: earlier.input.input_artifacts.clone(),
            commands,
            outputs,
            variables: scope,
            source_revision_overrides: snapshot
                .execution
                .source_revision_overrides
                .iter()
                .filter(|o| o.action_name == earlier.action_name)
                .cloned()
                .collect(),
            account_id: self.config.account_id.clone(),
            log_location: self.log_location(
                &snapshot.execution.pipeline_name,
                &earlier.action_execution_id,
            ),
            declaration,
            record: earlier,
        })
    }

    /// Where the whole log of action execution `id` goes.
    fn log_location(&self, pipeline: &str, id: &str) -> ArtifactLocation {
        ArtifactLocation {
            bucket: self.config.artifact_bucket.clone(),
            key: crate::execution::log_key(pipeline, id),
            version_id: None,
        }
    }

    /// Record how the action ended, publish it, and answer its task token. Completing an action
    /// that already ended changes nothing (at-least-once callers are safe). Returns true when
    /// this call completed it, false when it had already ended.
    pub async fn complete_action(
        &self,
        started: &ActionExecution,
        outcome: ActionOutcome,
        now: f64,
    ) -> Result<bool, EngineError> {
        // The token stays in the record until its callback went out (`answer_task`), so a
        // repeated completion can send a callback that was lost.
        let mut record = started.clone();
        record.status = outcome.status;
        record.last_update_time = now;
        record.output = ActionExecutionOutput {
            output_artifacts: outcome.output_artifacts,
            execution_result: outcome.result,
            output_variables: outcome.output_variables,
        };
        record.log_tail = outcome.log_tail;
        record.log_location = outcome.log_location;
        // Whatever the action printed or exported, the record fits its DynamoDB item.
        record.fit(crate::execution::MAX_RECORD_BYTES);
        record.source_revision = outcome.source_revision;
        let snapshot = self
            .executions
            .snapshot(&record.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(record.pipeline_execution_id.clone()))?;
        let state = if record.status == ActionExecutionStatus::Succeeded {
            ActionState::Succeeded
        } else {
            ActionState::Failed
        };
        let ended = [self.action_event(&snapshot.execution, &record, state)];
        match self
            .executions
            .put_action(&record, Some(ActionExecutionStatus::InProgress), &ended)
            .await
        {
            Ok(()) => {}
            Err(StoreError::Conflict(_)) => {
                // Completed before: its callback may not have gone out (the first completion
                // failed to send it); send it now, as the first completion decided.
                if let Err(e) = self.answer_unsent(started).await {
                    tracing::warn!(error = %e, "re-sending a completed action's callback failed");
                }
                return Ok(false);
            }
            Err(e) => return Err(e.into()),
        }
        self.answer_task(&record).await.map(|()| true)
    }

    /// Send the callback of completed action `record` (success or failure, as recorded) when it
    /// still holds its task token, then clear the token (a conditional write on the recorded
    /// status). Sent at least once: a failure to send leaves the token for the next completion
    /// attempt; a failure to clear it only means a later attempt sends it again, which Step
    /// Functions refuses harmlessly.
    async fn answer_task(&self, record: &ActionExecution) -> Result<(), EngineError> {
        let Some(token) = record.task_token.as_deref() else {
            return Ok(());
        };
        let answer = if record.status == ActionExecutionStatus::Succeeded {
            self.tasks.succeed(token, &json!({})).await
        } else {
            let cause = record
                .output
                .execution_result
                .error_details
                .as_ref()
                .map(|e| format!("{}: {}", e.code, e.message))
                .unwrap_or_else(|| "the action failed".into());
            self.tasks
                .fail(token, ACTION_FAILED_ERROR, &truncate(&cause, 32_000))
                .await
        };
        answer.map_err(EngineError::Callback)?;
        let mut answered = record.clone();
        answered.task_token = None;
        match self
            .executions
            .put_action(&answered, Some(record.status), &[])
            .await
        {
            Ok(()) | Err(StoreError::Conflict(_)) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }

    /// The run `started` of an action completed already: send its callback if it never went out.
    pub(crate) async fn answer_unsent(&self, started: &ActionExecution) -> Result<(), EngineError> {
        let Some(snapshot) = self
            .executions
            .snapshot(&started.pipeline_execution_id)
            .await?
        else {
            return Ok(());
        };
        let current = snapshot
            .actions
            .iter()
            .find(|a| a.action_execution_id == started.action_execution_id);
        match current {
            Some(current)
                if current.status != ActionExecutionStatus::InProgress
                    && current.task_token.is_some() =>
            {
                self.answer_task(current).await
            }
            _ => Ok(()),
        }
    }

    // ------------------------------------------------------------------ helpers

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

    fn execution_ref(&self, execution: &PipelineExecution, attempt: u32) -> ExecutionRef {
        ExecutionRef {
            pipeline_arn: events::pipeline_arn(
                &self.config.region,
                &self.config.account_id,
                &execution.pipeline_name,
            ),
            pipeline: execution.pipeline_name.clone(),
            pipeline_version: execution.pipeline_version,
            execution_id: execution.pipeline_execution_id.clone(),
            attempt,
        }
    }

    pub(crate) fn pipeline_event(
        &self,
        execution: &PipelineExecution,
        state: PipelineState,
    ) -> EventEntry {
        events::pipeline_event(&events::PipelineEventInput {
            execution: self.execution_ref(execution, 1),
            state,
            start_time: Some(events::format_time_millis(execution.start_time)),
            trigger: Some(events::ExecutionTrigger {
                trigger_type: execution.trigger.trigger_type,
                trigger_detail: Some(execution.trigger.trigger_detail.clone())
                    .filter(|d| !d.is_empty()),
                git: BTreeMap::new(),
            }),
            stop_comments: execution
                .stop_reason
                .clone()
                .filter(|_| matches!(state, PipelineState::Stopping | PipelineState::Stopped)),
        })
        .at(execution.last_update_time)
    }

    pub(crate) fn stage_event(
        &self,
        execution: &PipelineExecution,
        stage: &StageExecution,
        state: StageState,
    ) -> EventEntry {
        events::stage_event(&events::StageEventInput {
            execution: self.execution_ref(execution, stage.attempt),
            stage: stage.stage_name.clone(),
            state,
            start_time: Some(events::format_time_millis(execution.start_time)),
            last_retry_time: None,
        })
        .at(stage.last_update_time)
    }

    pub(crate) fn action_event(
        &self,
        execution: &PipelineExecution,
        action: &ActionExecution,
        state: ActionState,
    ) -> EventEntry {
        let refs = |details: &[ArtifactDetail]| {
            details
                .iter()
                .map(|d| ArtifactRef {
                    name: d.name.clone(),
                    bucket: d.s3_location.bucket.clone(),
                    key: d.s3_location.key.clone(),
                })
                .collect()
        };
        let result = &action.output.execution_result;
        let ended = state != ActionState::Started;
        events::action_event(&events::ActionEventInput {
            execution: self.execution_ref(execution, action.attempt),
            stage: action.stage_name.clone(),
            action: action.action_name.clone(),
            action_execution_id: action.action_execution_id.clone(),
            state,
            region: action
                .input
                .region
                .clone()
                .unwrap_or_else(|| self.config.region.clone()),
            action_type: action.input.action_type_id.clone(),
            start_time: Some(events::format_time_millis(action.start_time)),
            input_artifacts: if ended {
                Vec::new()
            } else {
                refs(&action.input.input_artifacts)
            },
            output_artifacts: if state == ActionState::Succeeded {
                refs(&action.output.output_artifacts)
            } else {
                Vec::new()
            },
            result: ended.then(|| events::ExecutionResult {
                external_execution_url: result.external_execution_url.clone(),
                external_execution_summary: result
                    .external_execution_summary
                    .clone()
                    .or_else(|| result.error_details.as_ref().map(|e| e.message.clone())),
                external_execution_id: result.external_execution_id.clone(),
                error_code: result.error_details.as_ref().map(|e| e.code.clone()),
            }),
        })
        .at(action.last_update_time)
    }
}

fn stage_of<'p>(
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

/// Pipeline variables for an execution: declared defaults, then overrides. An override of an
/// undeclared variable, or a value outside 1..1000 characters, is refused naming it.
pub fn resolve_pipeline_variables(
    declaration: &PipelineDeclaration,
    overrides: &[(String, String)],
) -> Result<Vec<ResolvedPipelineVariable>, EngineError> {
    let declared = declaration.variables();
    for (i, (name, value)) in overrides.iter().enumerate() {
        if !declared.iter().any(|v| &v.name == name) {
            return Err(EngineError::Invalid(format!(
                "variables[{i}].name: {name} is not a variable of pipeline {}",
                declaration.name
            )));
        }
        let len = value.chars().count();
        if !(1..=1000).contains(&len) {
            return Err(EngineError::Invalid(format!(
                "variables[{i}].value: length must be 1..1000, got {len}"
            )));
        }
    }
    declared
        .iter()
        .map(|v| {
            let value = overrides
                .iter()
                .rev()
                .find(|(n, _)| n == &v.name)
                .map(|(_, value)| value.clone());
            match value.or_else(|| v.default_value.clone()) {
                Some(resolved_value) => Ok(ResolvedPipelineVariable {
                    name: v.name.clone(),
                    resolved_value,
                }),
                None => Err(EngineError::Invalid(format!(
                    "variables: {} has no default value and was not given one",
                    v.name
                ))),
            }
        })
        .collect()
}

fn check_source_overrides(
    declaration: &PipelineDeclaration,
    overrides: &[SourceRevisionOverride],
) -> Result<(), EngineError> {
    const TYPES: &[&str] = &[
        "COMMIT_ID",
        "IMAGE_DIGEST",
        "S3_OBJECT_VERSION_ID",
        "S3_OBJECT_KEY",
    ];
    let sources = declaration
        .stages
        .first()
        .map(|s| s.actions.as_slice())
        .unwrap_or_default();
    for (i, o) in overrides.iter().enumerate() {
        if !sources.iter().any(|a| a.name == o.action_name) {
            return Err(EngineError::Invalid(format!(
                "sourceRevisions[{i}].actionName: {} is not a source action of pipeline {}",
                o.action_name, declaration.name
            )));
        }
        if !TYPES.contains(&o.revision_type.as_str()) {
            return Err(EngineError::Invalid(format!(
                "sourceRevisions[{i}].revisionType: {} is not one of {}",
                o.revision_type,
                TYPES.join(", ")
            )));
        }
    }
    Ok(())
}

/// Namespaces visible now: `codepipeline`, `variables`, and every namespace whose action has
/// succeeded in this execution.
pub fn variable_scope(
    snapshot: &ExecutionSnapshot,
    declaration: &PipelineDeclaration,
) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut scope = snapshot.namespaces(declaration);
    scope.insert(
        variables::CODEPIPELINE_NAMESPACE.to_string(),
        BTreeMap::from([(
            "PipelineExecutionId".to_string(),
            snapshot.execution.pipeline_execution_id.clone(),
        )]),
    );
    scope.insert(
        variables::PIPELINE_VARIABLES_NAMESPACE.to_string(),
        snapshot
            .execution
            .variables
            .iter()
            .map(|v| (v.name.clone(), v.resolved_value.clone()))
            .collect(),
    );
    scope
}

fn resolve(
    text: &str,
    scope: &BTreeMap<String, BTreeMap<String, String>>,
) -> Result<String, variables::UnresolvedVariable> {
    variables::resolve(text, |ns, key| {
        scope.get(ns).and_then(|m| m.get(key)).cloned()
    })
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

/// Why a function without [`asl::AslTargets`] cannot start a state machine run.
const NO_TARGETS: &str =
    "this function cannot start executions (no ORCHESTRATOR_ARN / ACTION_ARN / APPROVAL_ARN)";

/// A task of the state machine, as the compiled definition sends it (see [`crate::asl`]).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(tag = "op", rename_all = "camelCase")]
pub enum TaskRequest {
    /// `enterStage` (waits for its token).
    #[serde(rename_all = "camelCase")]
    EnterStage {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// Stage.
        stage: String,
        /// Token to answer.
        task_token: String,
    },
    /// `checkGroup`.
    #[serde(rename_all = "camelCase")]
    CheckGroup {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// Stage.
        stage: String,
        /// 1-based action group.
        group: usize,
    },
    /// `leaveStage`.
    #[serde(rename_all = "camelCase")]
    LeaveStage {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// Stage.
        stage: String,
        /// `Succeeded` or `Failed`.
        outcome: String,
    },
    /// `finishExecution`.
    #[serde(rename_all = "camelCase")]
    FinishExecution {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// `Succeeded`.
        outcome: String,
    },
    /// `abortExecution`: a task failed in a way the definition does not otherwise handle.
    #[serde(rename_all = "camelCase")]
    AbortExecution {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// What Step Functions caught: `{Error, Cause}`.
        #[serde(default)]
        error: Value,
        /// The run that aborts (`$$.Execution.Id`).
        #[serde(default)]
        run: Option<String>,
    },
    /// `runAction` (waits for its token).
    #[serde(rename_all = "camelCase")]
    RunAction {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// Stage.
        stage: String,
        /// Action.
        action: String,
        /// Token to answer.
        task_token: String,
        /// The action's runOrder.
        #[serde(default)]
        run_order: u32,
        /// 1-based action group.
        #[serde(default)]
        group: usize,
    },
}

/// What the orchestrator function receives: a task of a state machine, or an EventBridge event
/// (the reconciler's rule: a Step Functions run that ended badly, see [`crate::abort`]).
#[derive(Debug, Clone, PartialEq, serde::Deserialize)]
#[serde(untagged)]
pub enum OrchestratorEvent {
    /// A task (`op` names it).
    Task(TaskRequest),
    /// Anything else: read as a Step Functions status change.
    Event(Value),
}

impl Engine<'_> {
    /// Handle what the orchestrator received: a task ([`Engine::handle_orchestrator_task`]) or a
    /// status change of a run ([`Engine::reconcile_run`], answering `{"reconciled": bool}`).
    pub async fn handle_orchestrator_event(
        &self,
        event: OrchestratorEvent,
        now: f64,
    ) -> Result<Value, EngineError> {
        match event {
            OrchestratorEvent::Task(task) => self.handle_orchestrator_task(task, now).await,
            // A task (it has `op`) that did not decode: say why, not that it is no event.
            OrchestratorEvent::Event(event) if event.get("op").is_some() => {
                match serde_json::from_value::<TaskRequest>(event) {
                    Ok(task) => self.handle_orchestrator_task(task, now).await,
                    Err(e) => Err(EngineError::Invalid(format!("bad task payload: {e}"))),
                }
            }
            // The periodic sweep (its schedule's input).
            OrchestratorEvent::Event(event) if event.get("sweep").is_some() => {
                let swept = self.sweep(now).await?;
                if !swept.reconciled.is_empty() || !swept.resumed.is_empty() {
                    tracing::warn!(?swept, "the sweep repaired executions no event had");
                }
                Ok(serde_json::to_value(swept).unwrap_or_default())
            }
            OrchestratorEvent::Event(event) => match crate::abort::run_ended(&event) {
                Some(ended) => {
                    let reconciled = self.reconcile_run(&ended, now).await?;
                    Ok(json!({ "reconciled": reconciled }))
                }
                None => Err(EngineError::Invalid(
                    "neither a state machine task (`op`) nor a Step Functions status change of a \
                     run that ended FAILED, TIMED_OUT or ABORTED"
                        .into(),
                )),
            },
        }
    }

    /// Run one orchestrator task; returns the task's result (`{"failed": bool}` for
    /// `checkGroup`, `{}` otherwise). `runAction` belongs to the action function.
    pub async fn handle_orchestrator_task(
        &self,
        request: TaskRequest,
        now: f64,
    ) -> Result<Value, EngineError> {
        match request {
            TaskRequest::EnterStage {
                ids,
                stage,
                task_token,
            } => {
                self.enter_stage(&ids, &stage, &task_token, now).await?;
                Ok(json!({}))
            }
            TaskRequest::CheckGroup { ids, stage, group } => {
                let failed = self.check_group(&ids, &stage, group, now).await?;
                Ok(json!({ "failed": failed }))
            }
            TaskRequest::LeaveStage {
                ids,
                stage,
                outcome,
            } => {
                let succeeded = match outcome.as_str() {
                    "Succeeded" => true,
                    "Failed" => false,
                    other => {
                        return Err(EngineError::Invalid(format!(
                            "outcome: {other} is not Succeeded or Failed"
                        )))
                    }
                };
                self.leave_stage(&ids, &stage, succeeded, now).await?;
                Ok(json!({}))
            }
            TaskRequest::FinishExecution { ids, .. } => {
                self.finish_execution(&ids, now).await?;
                Ok(json!({}))
            }
            TaskRequest::AbortExecution { ids, error, run } => {
                self.abort_execution(&ids, &error, run.as_deref(), now)
                    .await?;
                Ok(json!({}))
            }
            TaskRequest::RunAction { .. } => Err(EngineError::Invalid(
                "op: runAction is handled by the action function".into(),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn task_requests_decode_from_the_compiled_payloads() {
        let enter: TaskRequest = serde_json::from_value(json!({
            "op": "enterStage", "pipelineName": "p", "pipelineVersion": 2,
            "pipelineExecutionId": "e", "stage": "Build", "taskToken": "t"
        }))
        .unwrap();
        assert_eq!(
            enter,
            TaskRequest::EnterStage {
                ids: ExecutionIds {
                    pipeline_name: "p".into(),
                    pipeline_version: 2,
                    pipeline_execution_id: "e".into()
                },
                stage: "Build".into(),
                task_token: "t".into(),
            }
        );
        let run: TaskRequest = serde_json::from_value(json!({
            "op": "runAction", "pipelineName": "p", "pipelineVersion": 2, "pipelineExecutionId": "e",
            "stage": "Build", "action": "Compile", "taskToken": "t", "runOrder": 1, "group": 1
        }))
        .unwrap();
        assert!(matches!(
            run,
            TaskRequest::RunAction {
                group: 1,
                run_order: 1,
                ..
            }
        ));
    }

    #[test]
    fn groups_follow_run_order() {
        let text = include_str!("../../../infra/pipelines/sample.json");
        let p = crate::parse_pipeline(text).unwrap();
        let build = p.stages.iter().find(|s| s.name == "Build").unwrap();
        let groups = action_groups(build);
        assert!(!groups.is_empty());
        let orders: Vec<u32> = groups.iter().map(|g| g[0].run_order()).collect();
        let mut sorted = orders.clone();
        sorted.sort();
        assert_eq!(orders, sorted);
    }

    #[test]
    fn variable_overrides_must_be_declared_and_sized() {
        let text = include_str!("../../../infra/pipelines/sample.json");
        let p = crate::parse_pipeline(text).unwrap();
        let ok = resolve_pipeline_variables(&p, &[("SiteBucket".into(), "other".into())]).unwrap();
        assert_eq!(ok[0].resolved_value, "other");
        let defaults = resolve_pipeline_variables(&p, &[]).unwrap();
        assert_eq!(defaults[0].resolved_value, "pipewright-sample-site");
        let err = resolve_pipeline_variables(&p, &[("Nope".into(), "x".into())]).unwrap_err();
        assert!(err.to_string().starts_with("variables[0].name"), "{err}");
        let err =
            resolve_pipeline_variables(&p, &[("SiteBucket".into(), String::new())]).unwrap_err();
        assert!(err.to_string().starts_with("variables[0].value"), "{err}");
    }
}

/// In-memory ports with the DynamoDB / EventBridge / Step Functions semantics the engine relies
/// on, for unit tests of the domain (and of the control plane). Only in test builds: core's own
/// unit tests, and crates that enable the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Executions in maps.
    #[derive(Debug, Default)]
    pub struct MemoryExecutionStore {
        inner: Mutex<Inner>,
    }

    #[derive(Debug, Default)]
    struct Inner {
        executions: BTreeMap<String, PipelineExecution>,
        stages: BTreeMap<(String, String, u32), StageExecution>,
        actions: BTreeMap<(String, String, String, u32), ActionExecution>,
        idempotency: BTreeMap<String, String>,
        /// (pipeline, stage) → the stage execution of the latest execution to enter it.
        latest_stages: BTreeMap<(String, String), StageExecution>,
        /// (pipeline, stage) → its lock and version.
        locks: BTreeMap<(String, String), (StageLock, u64)>,
        /// The outbox: every event written, once per event id, in the order written.
        outbox: Vec<EventEntry>,
        /// Executions of forgotten pipelines: out of the listings.
        forgotten: std::collections::BTreeSet<String>,
    }

    impl Inner {
        /// Add `events` to the outbox; one whose id is there already is not added again (as an
        /// overwritten outbox item is not published again).
        fn record(&mut self, events: &[EventEntry]) {
            for event in events {
                let known = event
                    .event_id()
                    .is_some_and(|id| self.outbox.iter().any(|e| e.event_id() == Some(id)));
                if !known {
                    self.outbox.push(event.clone());
                }
            }
        }
    }

    impl MemoryExecutionStore {
        fn lock(&self) -> Result<std::sync::MutexGuard<'_, Inner>, StoreError> {
            self.inner
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))
        }

        /// Every event written with a state change, in order (what the publisher sends).
        pub fn outbox(&self) -> Vec<EventEntry> {
            self.lock().map(|i| i.outbox.clone()).unwrap_or_default()
        }
    }

    #[async_trait]
    impl ExecutionStore for MemoryExecutionStore {
        async fn create_execution(
            &self,
            execution: &PipelineExecution,
            key: Option<&str>,
            events: &[EventEntry],
        ) -> Result<(), StoreError> {
            let mut inner = self.lock()?;
            if let Some(existing) = key.and_then(|k| inner.idempotency.get(k)) {
                return Err(StoreError::Conflict(existing.clone()));
            }
            if inner
                .executions
                .contains_key(&execution.pipeline_execution_id)
            {
                return Err(StoreError::Conflict(
                    execution.pipeline_execution_id.clone(),
                ));
            }
            if let Some(k) = key {
                inner
                    .idempotency
                    .insert(k.to_string(), execution.pipeline_execution_id.clone());
            }
            inner
                .executions
                .insert(execution.pipeline_execution_id.clone(), execution.clone());
            inner.record(events);
            Ok(())
        }

        async fn snapshot(&self, id: &str) -> Result<Option<ExecutionSnapshot>, StoreError> {
            let inner = self.lock()?;
            let Some(execution) = inner.executions.get(id).cloned() else {
                return Ok(None);
            };
            Ok(Some(ExecutionSnapshot {
                execution,
                stages: inner
                    .stages
                    .values()
                    .filter(|s| s.pipeline_execution_id == id)
                    .cloned()
                    .collect(),
                actions: inner
                    .actions
                    .values()
                    .filter(|a| a.pipeline_execution_id == id)
                    .cloned()
                    .collect(),
            }))
        }

        async fn put_execution(
            &self,
            e: &PipelineExecution,
            expected: &[PipelineExecutionStatus],
            events: &[EventEntry],
        ) -> Result<(), StoreError> {
            let mut inner = self.lock()?;
            match inner.executions.get(&e.pipeline_execution_id) {
                Some(current) if expected.contains(&current.status) => {
                    inner
                        .executions
                        .insert(e.pipeline_execution_id.clone(), e.clone());
                    inner.record(events);
                    Ok(())
                }
                Some(current) => Err(StoreError::Conflict(format!(
                    "status is {}",
                    current.status
                ))),
                None => Err(StoreError::NotFound(e.pipeline_execution_id.clone())),
            }
        }

        async fn put_stage(
            &self,
            pipeline_name: &str,
            stage: &StageExecution,
            events: &[EventEntry],
        ) -> Result<(), StoreError> {
            let key = (
                stage.pipeline_execution_id.clone(),
                stage.stage_name.clone(),
                stage.attempt,
            );
            let mut inner = self.lock()?;
            inner.stages.insert(key, stage.clone());
            inner.record(events);
            let pointer = (pipeline_name.to_string(), stage.stage_name.clone());
            let moves = inner.latest_stages.get(&pointer).is_none_or(|current| {
                current.pipeline_execution_id == stage.pipeline_execution_id
                    || current.start_time <= stage.start_time
            });
            if moves {
                inner.latest_stages.insert(pointer, stage.clone());
            }
            Ok(())
        }

        async fn latest_stage_executions(
            &self,
            pipeline_name: &str,
        ) -> Result<Vec<StageExecution>, StoreError> {
            Ok(self
                .lock()?
                .latest_stages
                .iter()
                .filter(|((pipeline, _), _)| pipeline == pipeline_name)
                .map(|(_, stage)| stage.clone())
                .collect())
        }

        async fn stage_lock(
            &self,
            pipeline_name: &str,
            stage: &str,
        ) -> Result<(StageLock, u64), StoreError> {
            Ok(self
                .lock()?
                .locks
                .get(&(pipeline_name.to_string(), stage.to_string()))
                .cloned()
                .unwrap_or_default())
        }

        async fn put_stage_lock(
            &self,
            pipeline_name: &str,
            stage: &str,
            lock: &StageLock,
            version: u64,
        ) -> Result<(), StoreError> {
            let mut inner = self.lock()?;
            let entry = inner
                .locks
                .entry((pipeline_name.to_string(), stage.to_string()))
                .or_default();
            if entry.1 != version {
                return Err(StoreError::Conflict(format!(
                    "the lock of {pipeline_name}/{stage} is at version {}, not {version}",
                    entry.1
                )));
            }
            *entry = (lock.clone(), version + 1);
            Ok(())
        }

        async fn put_action(
            &self,
            a: &ActionExecution,
            expected: Option<ActionExecutionStatus>,
            events: &[EventEntry],
        ) -> Result<(), StoreError> {
            let mut inner = self.lock()?;
            let key = (
                a.pipeline_execution_id.clone(),
                a.stage_name.clone(),
                a.action_name.clone(),
                a.attempt,
            );
            match (inner.actions.get(&key).map(|c| c.status), expected) {
                (None, None)
                    if inner
                        .actions
                        .values()
                        .any(|o| o.action_execution_id == a.action_execution_id) =>
                {
                    return Err(StoreError::Conflict(format!(
                        "job {} exists",
                        a.action_execution_id
                    )))
                }
                (None, None) => {}
                (Some(current), Some(want)) if current == want => {}
                (current, _) => {
                    return Err(StoreError::Conflict(format!(
                        "action status is {current:?}"
                    )))
                }
            }
            inner.actions.insert(key, a.clone());
            inner.record(events);
            Ok(())
        }

        async fn find_job(&self, job_id: &str) -> Result<Option<ActionExecution>, StoreError> {
            Ok(self
                .lock()?
                .actions
                .values()
                .find(|a| a.action_execution_id == job_id)
                .cloned())
        }

        async fn forget_pipeline(&self, pipeline: &str) -> Result<(), StoreError> {
            let mut inner = self.lock()?;
            inner.locks.retain(|(p, _), _| p != pipeline);
            inner.latest_stages.retain(|(p, _), _| p != pipeline);
            let listed: Vec<String> = inner
                .executions
                .values()
                .filter(|e| e.pipeline_name == pipeline)
                .map(|e| e.pipeline_execution_id.clone())
                .collect();
            inner.forgotten.extend(listed);
            Ok(())
        }

        async fn list_executions(
            &self,
            pipeline: &str,
            token: Option<&str>,
            limit: usize,
        ) -> Result<Page<PipelineExecution>, StoreError> {
            let inner = self.lock()?;
            let mut all: Vec<&PipelineExecution> = inner
                .executions
                .values()
                .filter(|e| {
                    e.pipeline_name == pipeline
                        && !inner.forgotten.contains(&e.pipeline_execution_id)
                })
                .collect();
            all.sort_by(|a, b| {
                b.start_time
                    .total_cmp(&a.start_time)
                    .then(b.pipeline_execution_id.cmp(&a.pipeline_execution_id))
            });
            let start = token
                .and_then(|t| all.iter().position(|e| e.pipeline_execution_id == t))
                .map(|i| i + 1)
                .unwrap_or(0);
            let items: Vec<PipelineExecution> = all
                .iter()
                .skip(start)
                .take(limit)
                .map(|e| (*e).clone())
                .collect();
            let next_token = (start + items.len() < all.len())
                .then(|| items.last().map(|e| e.pipeline_execution_id.clone()))
                .flatten();
            Ok(Page { items, next_token })
        }
    }

    /// Records what was published.
    #[derive(Debug, Default)]
    pub struct MemoryEvents {
        /// Every entry, in order.
        pub published: Mutex<Vec<EventEntry>>,
    }

    #[async_trait]
    impl EventPublisher for MemoryEvents {
        async fn publish(&self, entries: &[EventEntry]) -> Result<(), String> {
            self.published
                .lock()
                .map_err(|e| e.to_string())?
                .extend_from_slice(entries);
            Ok(())
        }
    }

    /// Records how task tokens were answered: token → `Ok(output)` or `Err(error)`.
    #[derive(Debug, Default)]
    pub struct MemoryTasks {
        /// Answers by token.
        pub answers: Mutex<BTreeMap<String, Result<Value, String>>>,
        /// How many of the next calls fail (as a throttled or unreachable Step Functions
        /// would), recording nothing.
        pub failing: Mutex<u32>,
        /// Every call that reached Step Functions: (token, answer), in order, repeats included.
        pub calls: Mutex<Vec<(String, Result<Value, String>)>>,
    }

    impl MemoryTasks {
        fn answer(&self, token: &str, answer: Result<Value, String>) -> Result<(), String> {
            let mut failing = self.failing.lock().map_err(|e| e.to_string())?;
            if *failing > 0 {
                *failing -= 1;
                return Err("ThrottlingException: Rate exceeded".into());
            }
            self.calls
                .lock()
                .map_err(|e| e.to_string())?
                .push((token.into(), answer.clone()));
            self.answers
                .lock()
                .map_err(|e| e.to_string())?
                .insert(token.into(), answer);
            Ok(())
        }
    }

    #[async_trait]
    impl TaskCallbacks for MemoryTasks {
        async fn succeed(&self, token: &str, output: &Value) -> Result<(), String> {
            self.answer(token, Ok(output.clone()))
        }
        async fn fail(&self, token: &str, error: &str, _cause: &str) -> Result<(), String> {
            self.answer(token, Err(error.into()))
        }
    }

    /// Records asynchronous invocations; fails them with `failure` when set.
    #[derive(Debug, Default)]
    pub struct MemoryFunctions {
        /// (function name, event), in order.
        pub invoked: Mutex<Vec<(String, Value)>>,
        /// The error every invocation gets, when set.
        pub failure: Mutex<Option<crate::jobs::InvokeError>>,
    }

    #[async_trait]
    impl crate::jobs::Functions for MemoryFunctions {
        async fn invoke_event(
            &self,
            function_name: &str,
            event: &Value,
        ) -> Result<(), crate::jobs::InvokeError> {
            let failure = self.failure.lock().ok().and_then(|f| f.clone());
            if let Some(e) = failure {
                return Err(e);
            }
            if let Ok(mut invoked) = self.invoked.lock() {
                invoked.push((function_name.into(), event.clone()));
            }
            Ok(())
        }
    }

    /// Alarms and rule functions, set up by the test.
    #[derive(Debug, Default)]
    pub struct MemoryRuleChecks {
        /// Alarm name → state.
        pub alarms: Mutex<BTreeMap<String, String>>,
        /// Function name → its answer (absent: the function does not exist).
        pub functions: Mutex<BTreeMap<String, Value>>,
        /// (function, payload) of every invocation.
        pub invoked: Mutex<Vec<(String, Value)>>,
    }

    #[async_trait]
    impl crate::conditions::RuleChecks for MemoryRuleChecks {
        async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, String> {
            self.invoked
                .lock()
                .map_err(|e| e.to_string())?
                .push((function.into(), payload.clone()));
            self.functions
                .lock()
                .map_err(|e| e.to_string())?
                .get(function)
                .cloned()
                .ok_or_else(|| format!("function {function} does not exist"))
        }
        async fn alarm_state(&self, name: &str) -> Result<String, String> {
            self.alarms
                .lock()
                .map_err(|e| e.to_string())?
                .get(name)
                .cloned()
                .ok_or_else(|| format!("alarm {name} does not exist"))
        }
    }

    /// State machines by name; started executions recorded.
    #[derive(Debug, Default)]
    pub struct MemoryMachines {
        /// name → definition.
        pub machines: Mutex<BTreeMap<String, Value>>,
        /// (machine ARN, execution name, input).
        pub started: Mutex<Vec<(String, String, Value)>>,
        /// Runs that ended, by execution ARN (the others started are running; unknown ARNs
        /// are missing).
        pub ended: Mutex<BTreeMap<String, crate::sweep::RunStatus>>,
    }

    #[async_trait]
    impl StateMachines for MemoryMachines {
        async fn ensure(&self, name: &str, definition: &Value) -> Result<String, String> {
            self.machines
                .lock()
                .map_err(|e| e.to_string())?
                .entry(name.into())
                .or_insert_with(|| definition.clone());
            Ok(format!(
                "arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
            ))
        }
        async fn start(&self, arn: &str, name: &str, input: &Value) -> Result<String, String> {
            self.started.lock().map_err(|e| e.to_string())?.push((
                arn.into(),
                name.into(),
                input.clone(),
            ));
            Ok(format!("{arn}:{name}").replace(":stateMachine:", ":execution:"))
        }
        async fn delete(&self, name: &str) -> Result<(), String> {
            self.machines
                .lock()
                .map_err(|e| e.to_string())?
                .remove(name);
            Ok(())
        }
        async fn run_status(&self, run: &str) -> Result<crate::sweep::RunStatus, String> {
            if let Some(ended) = self.ended.lock().map_err(|e| e.to_string())?.get(run) {
                return Ok(ended.clone());
            }
            let started =
                self.started
                    .lock()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .any(|(machine, name, _)| {
                        format!("{machine}:{name}").replace(":stateMachine:", ":execution:") == run
                    });
            Ok(if started {
                crate::sweep::RunStatus::Running
            } else {
                crate::sweep::RunStatus::Missing
            })
        }
    }
}
