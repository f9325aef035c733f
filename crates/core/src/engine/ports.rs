//! The ports the engine works through (execution records, EventBridge, Step Functions task
//! tokens and state machines): `pipewright-aws` implements them, the `memory` module does for
//! tests.

use async_trait::async_trait;
use serde_json::Value;

use crate::events::EventEntry;
use crate::execution::{
    ActionExecution, ActionExecutionStatus, ExecutionSnapshot, PipelineExecution,
    PipelineExecutionStatus, StageExecution,
};
use crate::locks::StageLock;
use crate::port_error::PortError;
use crate::store::{Page, StoreError};

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
    /// Point `work` (a service's id of the work an action started: a stack's ARN) at `action`,
    /// so [`ExecutionStore::find_work`] finds it when the service says the work ended. The
    /// latest pointer of a piece of work wins.
    async fn point_work(&self, work: &str, action: &ActionExecution) -> Result<(), StoreError>;
    /// The action execution `work` points at, as currently recorded.
    async fn find_work(&self, work: &str) -> Result<Option<ActionExecution>, StoreError>;
    /// Forget pipeline `pipeline_name` as a whole: its stage locks, latest-execution pointers,
    /// execution list and poll state (the execution records stay until they expire).
    async fn forget_pipeline(&self, pipeline_name: &str) -> Result<(), StoreError>;
    /// Claim the periodic sweep at `now`: true (and recorded) unless another sweep was claimed
    /// less than `interval` seconds ago.
    async fn claim_sweep(&self, now: f64, interval: f64) -> Result<bool, StoreError>;
    /// Executions of a pipeline, newest first.
    async fn list_executions(
        &self,
        pipeline_name: &str,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineExecution>, StoreError>;
}

/// EventBridge. A refusal that may pass (throttling, an internal failure, no answer) is
/// [`PortError::Unavailable`].
#[async_trait]
pub trait EventPublisher: Send + Sync {
    /// Put the events on the bus.
    async fn publish(&self, entries: &[EventEntry]) -> Result<(), PortError>;
}

/// Step Functions task tokens. A token Step Functions no longer awaits (`TaskTimedOut`,
/// `TaskDoesNotExist`, `InvalidToken`) fails with [`PortError::TaskGone`]; throttling and an
/// unreachable service with [`PortError::Unavailable`].
#[async_trait]
pub trait TaskCallbacks: Send + Sync {
    /// `SendTaskSuccess`.
    async fn succeed(&self, token: &str, output: &Value) -> Result<(), PortError>;
    /// `SendTaskFailure`.
    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), PortError>;
}

/// Step Functions state machines. A state machine or run that does not exist where one is
/// needed fails with [`PortError::NotFound`]; throttling and an unreachable service with
/// [`PortError::Unavailable`].
#[async_trait]
pub trait StateMachines: Send + Sync {
    /// The ARN of state machine `name`, created with `definition` if it does not exist.
    async fn ensure(&self, name: &str, definition: &Value) -> Result<String, PortError>;
    /// Start an execution named `name`; returns its ARN.
    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, PortError>;
    /// Delete state machine `name` (`DeleteStateMachine`; a run still going ends at its next
    /// transition). One that does not exist is not an error.
    async fn delete(&self, name: &str) -> Result<(), PortError>;
    /// How run `execution_arn` is (`DescribeExecution`).
    async fn run_status(&self, execution_arn: &str) -> Result<crate::sweep::RunStatus, PortError>;
    /// Whether state machine `name` has a run still going (`ListExecutions` of its `RUNNING`
    /// runs); `None` when the machine does not exist.
    async fn has_running(&self, name: &str) -> Result<Option<bool>, PortError>;
}
