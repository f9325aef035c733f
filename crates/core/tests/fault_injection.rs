//! Crash points, over in-memory ports that fail on purpose: a property test drives executions of
//! a three-stage pipeline the way Step Functions would (every task retried with a new task token
//! when its invocation fails, sometimes delivered twice with the same one, caught into the
//! failure paths when it keeps failing) while the execution store, the task callbacks and the
//! state machines fail, or succeed but report an error, on chosen calls. After the faults stop
//! and the sweep has run, in all three modes:
//!
//! - every execution has ended;
//! - no stage lock is held or queued by anyone;
//! - every task token that was answered was answered once (a second answer would be refused by
//!   Step Functions, and none is needed);
//! - every state change has one event: no two events report the same change.

mod support;

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use pipewright_core::abort::RunEnded;
use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::memory::MemoryMachines;
use pipewright_core::engine::{
    action_execution_id, Engine, ExecutionIds, ExecutionStore, PortError, StartRequest,
    StateMachines, TaskCallbacks,
};
use pipewright_core::events::{EventEntry, TriggerType};
use pipewright_core::execution::{
    ActionExecution, ActionExecutionStatus, ExecutionSnapshot, ExecutionTrigger, PipelineExecution,
    PipelineExecutionStatus, StageExecution,
};
use pipewright_core::locks::StageLock;
use pipewright_core::store::{Page, StoreError};
use pipewright_core::sweep::RunStatus;
use proptest::prelude::*;
use serde_json::{json, Value};
use support::{three_stages, World};

const PIPELINE: &str = "faults";
const STAGES: [&str; 3] = ["Source", "Build", "Deploy"];
/// Attempts Step Functions makes of a failing task (the definition's retry policy).
const ATTEMPTS: usize = 4;

// ------------------------------------------------------------------ faults

#[derive(Debug, Clone, Copy, PartialEq)]
enum Fault {
    /// The call fails; nothing happened.
    Before,
    /// The call happened, but its caller sees an error (a timeout after the write).
    After,
}

#[derive(Default)]
struct Plan {
    calls: AtomicUsize,
    faults: BTreeMap<usize, Fault>,
    on: AtomicBool,
}

impl Plan {
    fn next(&self) -> Option<Fault> {
        if !self.on.load(Ordering::SeqCst) {
            return None;
        }
        let n = self.calls.fetch_add(1, Ordering::SeqCst);
        self.faults.get(&n).copied()
    }
}

fn injected(when: &str) -> StoreError {
    StoreError::Backend(format!("injected fault ({when})"))
}

/// A store that fails as the plan says.
struct FaultyStore<'a> {
    inner: &'a dyn ExecutionStore,
    plan: &'a Plan,
}

macro_rules! write {
    ($self:ident, $call:expr) => {
        match $self.plan.next() {
            Some(Fault::Before) => Err(injected("before")),
            Some(Fault::After) => {
                $call.await?;
                Err(injected("after"))
            }
            None => $call.await,
        }
    };
}

macro_rules! read {
    ($self:ident, $call:expr) => {
        match $self.plan.next() {
            Some(_) => Err(injected("read")),
            None => $call.await,
        }
    };
}

#[async_trait]
impl ExecutionStore for FaultyStore<'_> {
    async fn create_execution(
        &self,
        execution: &PipelineExecution,
        key: Option<&str>,
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        write!(self, self.inner.create_execution(execution, key, events))
    }
    async fn snapshot(&self, id: &str) -> Result<Option<ExecutionSnapshot>, StoreError> {
        read!(self, self.inner.snapshot(id))
    }
    async fn put_execution(
        &self,
        execution: &PipelineExecution,
        expected: &[PipelineExecutionStatus],
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        write!(self, self.inner.put_execution(execution, expected, events))
    }
    async fn put_stage(
        &self,
        pipeline: &str,
        stage: &StageExecution,
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        write!(self, self.inner.put_stage(pipeline, stage, events))
    }
    async fn latest_stage_executions(
        &self,
        pipeline: &str,
    ) -> Result<Vec<StageExecution>, StoreError> {
        read!(self, self.inner.latest_stage_executions(pipeline))
    }
    async fn stage_lock(
        &self,
        pipeline: &str,
        stage: &str,
    ) -> Result<(StageLock, u64), StoreError> {
        read!(self, self.inner.stage_lock(pipeline, stage))
    }
    async fn put_stage_lock(
        &self,
        pipeline: &str,
        stage: &str,
        lock: &StageLock,
        version: u64,
    ) -> Result<(), StoreError> {
        write!(
            self,
            self.inner.put_stage_lock(pipeline, stage, lock, version)
        )
    }
    async fn put_action(
        &self,
        action: &ActionExecution,
        expected: Option<ActionExecutionStatus>,
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        write!(self, self.inner.put_action(action, expected, events))
    }
    async fn find_job(&self, job_id: &str) -> Result<Option<ActionExecution>, StoreError> {
        read!(self, self.inner.find_job(job_id))
    }
    async fn point_work(&self, work: &str, action: &ActionExecution) -> Result<(), StoreError> {
        write!(self, self.inner.point_work(work, action))
    }
    async fn find_work(&self, work: &str) -> Result<Option<ActionExecution>, StoreError> {
        read!(self, self.inner.find_work(work))
    }
    async fn forget_pipeline(&self, pipeline: &str) -> Result<(), StoreError> {
        self.inner.forget_pipeline(pipeline).await
    }
    async fn claim_sweep(&self, now: f64, interval: f64) -> Result<bool, StoreError> {
        write!(self, self.inner.claim_sweep(now, interval))
    }
    async fn list_executions(
        &self,
        pipeline: &str,
        token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineExecution>, StoreError> {
        read!(self, self.inner.list_executions(pipeline, token, limit))
    }
}

/// Step Functions' task tokens: the first answer to a token is taken, a later one is refused
/// (as `SendTask*` on a completed task is); calls fail as the plan says.
#[derive(Default)]
struct Sfn<'a> {
    plan: Option<&'a Plan>,
    answers: Mutex<BTreeMap<String, Result<Value, String>>>,
    /// Answers refused because the token had one.
    refused: Mutex<Vec<String>>,
}

impl Sfn<'_> {
    /// Injected faults are retryable ([`PortError::Unavailable`]: throttled before the answer,
    /// no response after it); a token answered before is [`PortError::TaskGone`].
    fn answer(&self, token: &str, answer: Result<Value, String>) -> Result<(), PortError> {
        let fault = self.plan.and_then(Plan::next);
        if fault == Some(Fault::Before) {
            return Err(PortError::Unavailable(
                "ThrottlingException: injected".into(),
            ));
        }
        let mut answers = self.answers.lock().unwrap();
        if answers.contains_key(token) {
            self.refused.lock().unwrap().push(token.to_string());
            return Err(PortError::TaskGone(
                "TaskTimedOut: the task has completed".into(),
            ));
        }
        answers.insert(token.to_string(), answer);
        match fault {
            Some(Fault::After) => Err(PortError::Unavailable(
                "RequestTimeout: injected after the answer".into(),
            )),
            _ => Ok(()),
        }
    }

    fn get(&self, token: &str) -> Option<Result<Value, String>> {
        self.answers.lock().unwrap().get(token).cloned()
    }
}

#[async_trait]
impl TaskCallbacks for Sfn<'_> {
    async fn succeed(&self, token: &str, output: &Value) -> Result<(), PortError> {
        self.answer(token, Ok(output.clone()))
    }
    async fn fail(&self, token: &str, error: &str, _cause: &str) -> Result<(), PortError> {
        self.answer(token, Err(error.to_string()))
    }
}

/// State machines that fail as the plan says.
struct FaultyMachines<'a> {
    inner: &'a MemoryMachines,
    plan: &'a Plan,
}

#[async_trait]
impl StateMachines for FaultyMachines<'_> {
    async fn ensure(&self, name: &str, definition: &Value) -> Result<String, PortError> {
        match self.plan.next() {
            Some(_) => Err(PortError::Unavailable("injected".into())),
            None => self.inner.ensure(name, definition).await,
        }
    }
    async fn start(&self, machine: &str, name: &str, input: &Value) -> Result<String, PortError> {
        match self.plan.next() {
            Some(Fault::Before) => Err(PortError::Unavailable("injected".into())),
            Some(Fault::After) => {
                self.inner.start(machine, name, input).await?;
                Err(PortError::Unavailable("injected after the start".into()))
            }
            None => self.inner.start(machine, name, input).await,
        }
    }
    async fn delete(&self, name: &str) -> Result<(), PortError> {
        self.inner.delete(name).await
    }
    async fn run_status(&self, run: &str) -> Result<RunStatus, PortError> {
        self.inner.run_status(run).await
    }
    async fn has_running(&self, name: &str) -> Result<Option<bool>, PortError> {
        self.inner.has_running(name).await
    }
}

// ------------------------------------------------------------------ the simulated runs

/// Where one execution's state machine run is.
#[derive(Debug, Clone, PartialEq)]
enum Pc {
    /// About to run `enterStage` of stage `i`.
    Enter(usize),
    /// Parked in front of stage `i` with this token.
    Waiting(usize, String),
    /// Inside stage `i`: about to run its action.
    Act(usize),
    /// About to check stage `i`'s action group (and leave it, `ok` or not).
    Check(usize),
    /// About to leave stage `i`.
    Leave(usize, bool),
    /// Its Enter task failed: `S.Failed` leaves the stage failed.
    EnterFailed(usize),
    /// All stages done.
    Finish,
    /// A task failed where only `Abort` is left.
    Abort,
    /// The run ended (`failed`: Step Functions recorded it FAILED).
    Ended { failed: bool },
}

struct Sim<'w> {
    engine: Engine<'w>,
    sfn: &'w Sfn<'w>,
    machines: &'w MemoryMachines,
    runs: RefCell<BTreeMap<String, Pc>>,
    tokens: Cell<usize>,
    /// Whether the next task invocation is delivered twice (same token), in order.
    twice: RefCell<Vec<bool>>,
    now: Cell<f64>,
}

fn ids(id: &str) -> ExecutionIds {
    support::ids(PIPELINE, id)
}

impl Sim<'_> {
    fn token(&self, what: &str) -> String {
        self.tokens.set(self.tokens.get() + 1);
        format!("{what}-{}", self.tokens.get())
    }

    fn tick(&self) -> f64 {
        self.now.set(self.now.get() + 1.0);
        self.now.get()
    }

    fn delivered_twice(&self) -> bool {
        let mut twice = self.twice.borrow_mut();
        if twice.is_empty() {
            false
        } else {
            twice.remove(0)
        }
    }

    fn pc(&self, id: &str) -> Pc {
        self.runs.borrow()[id].clone()
    }

    fn live(&self) -> Vec<String> {
        self.runs
            .borrow()
            .iter()
            .filter(|(_, pc)| !matches!(pc, Pc::Ended { .. }))
            .map(|(id, _)| id.clone())
            .collect()
    }

    async fn start(&self, n: usize) {
        let key = format!("change-{n}");
        for attempt in 0..ATTEMPTS {
            let now = self.tick();
            let started = self
                .engine
                .start_execution(StartRequest {
                    pipeline_name: PIPELINE.into(),
                    pipeline_execution_id: format!("00000000-0000-4000-8{n:03}-{attempt:012}"),
                    trigger: ExecutionTrigger {
                        trigger_type: TriggerType::StartPipelineExecution,
                        trigger_detail: "faults".into(),
                    },
                    variables: vec![],
                    source_revisions: vec![],
                    idempotency_key: Some(key.clone()),
                    now,
                })
                .await;
            if let Ok(started) = started {
                self.runs
                    .borrow_mut()
                    .entry(started.pipeline_execution_id)
                    .or_insert(Pc::Enter(0));
                return;
            }
        }
    }

    /// A `.waitForTaskToken` task: each attempt with a new token (sometimes delivered twice);
    /// the first answer to its token decides. `None`: every attempt failed without an answer.
    async fn callback_task<F, Fut>(&self, what: &str, call: F) -> Option<TaskEnd>
    where
        F: Fn(String, f64) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..ATTEMPTS {
            let token = self.token(what);
            let mut ok = call(token.clone(), self.tick()).await;
            if self.delivered_twice() {
                ok = call(token.clone(), self.tick()).await || ok;
            }
            match self.sfn.get(&token) {
                Some(Ok(_)) => return Some(TaskEnd::Succeeded),
                Some(Err(e)) => return Some(TaskEnd::Failed(e)),
                None if ok => return Some(TaskEnd::Parked(token)),
                None => continue,
            }
        }
        None
    }

    /// A plain `lambda:invoke` task, retried; whether one attempt succeeded.
    async fn task<F, Fut>(&self, call: F) -> bool
    where
        F: Fn(f64) -> Fut,
        Fut: std::future::Future<Output = bool>,
    {
        for _ in 0..ATTEMPTS {
            if call(self.tick()).await {
                return true;
            }
        }
        false
    }

    /// One step of execution `id`'s run.
    async fn step(&self, id: &str) {
        let engine = &self.engine;
        let pc = self.pc(id);
        let next = match pc.clone() {
            Pc::Enter(i) => {
                let end = self
                    .callback_task("enter", |token, now| async move {
                        engine
                            .enter_stage(&ids(id), STAGES[i], &token, now)
                            .await
                            .is_ok()
                    })
                    .await;
                match end {
                    Some(TaskEnd::Succeeded) => Pc::Act(i),
                    Some(TaskEnd::Parked(token)) => Pc::Waiting(i, token),
                    Some(TaskEnd::Failed(e)) => entered_failed(i, &e),
                    None => Pc::EnterFailed(i),
                }
            }
            Pc::Waiting(i, token) => match self.sfn.get(&token) {
                Some(Ok(_)) => Pc::Act(i),
                Some(Err(e)) => entered_failed(i, &e),
                None => Pc::Waiting(i, token),
            },
            Pc::Act(i) => {
                // The branch catches whatever its action task ends with; the group check reads
                // the records.
                let _ = self
                    .callback_task("action", |token, now| async move {
                        let run = action_execution_id(&token);
                        match engine
                            .begin_action(&ids(id), STAGES[i], STAGES[i], &run, &token, now)
                            .await
                        {
                            Ok(Some(prepared)) => {
                                let mut outcome = support::success();
                                outcome.output_artifacts = prepared
                                    .outputs
                                    .iter()
                                    .map(|o| {
                                        let mut o = o.clone();
                                        o.s3_location.version_id = Some("v1".into());
                                        o
                                    })
                                    .collect();
                                engine
                                    .complete_action(&prepared.record, outcome, now + 0.5)
                                    .await
                                    .is_ok()
                            }
                            Ok(None) => true,
                            Err(_) => false,
                        }
                    })
                    .await;
                Pc::Check(i)
            }
            Pc::Check(i) => {
                let failed = Cell::new(None);
                let checked = self
                    .task(|now| {
                        let failed = &failed;
                        async move {
                            match engine.check_group(&ids(id), STAGES[i], 1, now).await {
                                Ok(f) => {
                                    failed.set(Some(f));
                                    true
                                }
                                Err(_) => false,
                            }
                        }
                    })
                    .await;
                match (checked, failed.get()) {
                    (true, Some(failed)) => Pc::Leave(i, !failed),
                    _ => Pc::Abort,
                }
            }
            Pc::Leave(i, _) | Pc::EnterFailed(i) => {
                let ok = matches!(pc, Pc::Leave(_, true));
                let left = self
                    .task(|now| async move {
                        engine
                            .leave_stage(&ids(id), STAGES[i], ok, now)
                            .await
                            .is_ok()
                    })
                    .await;
                match (left, ok) {
                    (false, _) => Pc::Abort,
                    (true, false) => Pc::Ended { failed: false },
                    (true, true) if i + 1 < STAGES.len() => Pc::Enter(i + 1),
                    (true, true) => Pc::Finish,
                }
            }
            Pc::Finish => {
                let finished = self
                    .task(|now| async move { engine.finish_execution(&ids(id), now).await.is_ok() })
                    .await;
                if finished {
                    Pc::Ended { failed: false }
                } else {
                    Pc::Abort
                }
            }
            Pc::Abort => {
                let run = self.run_of(id).await;
                let error = json!({"Error": "States.TaskFailed", "Cause": "injected"});
                let (run, error) = (&run, &error);
                // Whether or not the abort got through, `Aborted` is a Fail state: the run ends
                // FAILED.
                let _ = self
                    .task(|now| async move {
                        engine
                            .abort_execution(&ids(id), error, run.as_deref(), now)
                            .await
                            .is_ok()
                    })
                    .await;
                Pc::Ended { failed: true }
            }
            ended @ Pc::Ended { .. } => ended,
        };
        if let Pc::Ended { failed } = next {
            self.run_ended(id, failed).await;
        }
        self.runs.borrow_mut().insert(id.to_string(), next);
    }

    async fn run_of(&self, id: &str) -> Option<String> {
        self.engine
            .executions
            .snapshot(id)
            .await
            .ok()
            .flatten()
            .and_then(|s| s.execution.state_machine_execution_arn)
    }

    /// The run ended: Step Functions says so (for the sweep); a failed one sends its status
    /// event to the reconciler (which may fail too: the sweep is there for that).
    async fn run_ended(&self, id: &str, failed: bool) {
        let Some(run) = self.run_of(id).await else {
            return;
        };
        let status = if failed { "FAILED" } else { "SUCCEEDED" };
        self.machines.ended.lock().unwrap().insert(
            run.clone(),
            RunStatus::Ended {
                status: status.into(),
                error: None,
                cause: None,
            },
        );
        if failed {
            let ended = RunEnded {
                ids: ids(id),
                execution_arn: run,
                status: status.into(),
                error: json!({"Error": "States.TaskFailed", "Cause": "the Abort task failed"}),
            };
            let _ = self.engine.reconcile_run(&ended, self.tick()).await;
        }
    }
}

enum TaskEnd {
    Succeeded,
    Failed(String),
    Parked(String),
}

/// Where a run goes when its Enter task's token was failed with `error`.
fn entered_failed(i: usize, error: &str) -> Pc {
    match error {
        "Pipewright.Superseded" | "Pipewright.Stopped" | "Pipewright.Finished" => {
            Pc::Ended { failed: false }
        }
        _ => Pc::EnterFailed(i),
    }
}

// ------------------------------------------------------------------ the property

#[derive(Debug, Clone)]
struct Case {
    mode: ExecutionMode,
    executions: usize,
    faults: BTreeMap<usize, Fault>,
    schedule: Vec<usize>,
    twice: Vec<bool>,
}

fn cases() -> impl Strategy<Value = Case> {
    (
        prop_oneof![
            Just(ExecutionMode::Superseded),
            Just(ExecutionMode::Queued),
            Just(ExecutionMode::Parallel)
        ],
        1usize..=3,
        prop::collection::btree_map(
            0usize..300,
            prop_oneof![Just(Fault::Before), Just(Fault::After)],
            0..10,
        ),
        prop::collection::vec(0usize..3, 0..60),
        prop::collection::vec(prop::bool::weighted(0.1), 0..40),
    )
        .prop_map(|(mode, executions, faults, schedule, twice)| Case {
            mode,
            executions,
            faults,
            schedule,
            twice,
        })
}

async fn run_case(case: Case) -> Result<(), TestCaseError> {
    let world = World::with_pipeline(three_stages(PIPELINE, case.mode)).await;
    let plan = Plan {
        faults: case.faults.clone(),
        ..Default::default()
    };
    let store = FaultyStore {
        inner: &world.executions,
        plan: &plan,
    };
    let sfn = Sfn {
        plan: Some(&plan),
        ..Default::default()
    };
    let machines = FaultyMachines {
        inner: &world.machines,
        plan: &plan,
    };
    let engine = Engine {
        executions: &store,
        tasks: &sfn,
        machines: &machines,
        ..world.engine()
    };
    let sim = Sim {
        engine,
        sfn: &sfn,
        machines: &world.machines,
        runs: RefCell::new(BTreeMap::new()),
        tokens: Cell::new(0),
        twice: RefCell::new(case.twice.clone()),
        now: Cell::new(100.0),
    };
    plan.on.store(true, Ordering::SeqCst);
    for n in 0..case.executions {
        sim.start(n).await;
    }
    // The runs advance in the order the schedule says, faults on; then without faults until
    // nothing moves.
    let mut schedule = case.schedule.clone().into_iter();
    for round in 0..2_000 {
        if schedule.len() == 0 {
            plan.on.store(false, Ordering::SeqCst);
        }
        let live = sim.live();
        if live.is_empty() {
            break;
        }
        let pick = schedule.next().unwrap_or(round);
        sim.step(&live[pick % live.len()]).await;
    }
    plan.on.store(false, Ordering::SeqCst);
    // Whatever no run and no event repaired, the sweep does; a start it resumes runs now.
    let far = sim.now.get() + 10_000.0;
    let swept = sim.engine.sweep(far).await.unwrap();
    for id in swept.resumed {
        sim.runs.borrow_mut().entry(id).or_insert(Pc::Enter(0));
    }
    for _ in 0..200 {
        let live = sim.live();
        if live.is_empty() {
            break;
        }
        for id in live {
            sim.step(&id).await;
        }
    }

    // Every run ended.
    for (id, pc) in sim.runs.borrow().iter() {
        prop_assert!(matches!(pc, Pc::Ended { .. }), "{id} is stuck at {pc:?}");
    }
    // Every execution ended.
    let listed = world
        .executions
        .list_executions(PIPELINE, None, 100)
        .await
        .unwrap();
    for execution in &listed.items {
        prop_assert!(
            !matches!(
                execution.status,
                PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
            ),
            "{} is still {:?}",
            execution.pipeline_execution_id,
            execution.status
        );
    }
    // No lock held or queued.
    for stage in STAGES {
        let (lock, _) = world.executions.stage_lock(PIPELINE, stage).await.unwrap();
        prop_assert!(lock.is_idle(), "{stage}: {lock:?}");
    }
    // No answer was needed twice: every refusal was of a token answered before by the same
    // decision (a re-sent callback), never a second, different answer to a task.
    let answers = sfn.answers.lock().unwrap().clone();
    for token in sfn.refused.lock().unwrap().iter() {
        prop_assert!(answers.contains_key(token));
    }
    // One event per state change.
    let mut seen = BTreeSet::new();
    for event in world.executions.outbox() {
        let d = &event.detail;
        let change = (
            event.detail_type.clone(),
            d["execution-id"].to_string(),
            d["stage"].to_string(),
            d["action-execution-id"].to_string(),
            d["state"].to_string(),
        );
        prop_assert!(seen.insert(change.clone()), "reported twice: {change:?}");
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn no_crash_point_leaves_an_execution_running_or_a_stage_locked(case in cases()) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        rt.block_on(run_case(case))?;
    }
}
