//! In-memory ports with the DynamoDB / EventBridge / Step Functions semantics the engine relies
//! on, for unit tests of the domain (and of the control plane). Only in test builds: core's own
//! unit tests, and crates that enable the `testing` feature.

use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use serde_json::Value;

use crate::events::EventEntry;
use crate::execution::{
    ActionExecution, ActionExecutionStatus, ExecutionSnapshot, PipelineExecution,
    PipelineExecutionStatus, StageExecution,
};
use crate::locks::StageLock;
use crate::store::{Page, StoreError};

use super::{EventPublisher, ExecutionStore, PortError, StateMachines, TaskCallbacks};

/// A lock poisoned by a panicking test thread, as a port failure.
fn poisoned<T>(e: std::sync::PoisonError<T>) -> PortError {
    PortError::Other(e.to_string())
}

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
    /// When the last periodic sweep was claimed.
    last_sweep: Option<f64>,
    /// Work (a stack's ARN) → the job that started it.
    work: BTreeMap<String, String>,
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

    async fn point_work(&self, work: &str, action: &ActionExecution) -> Result<(), StoreError> {
        self.lock()?
            .work
            .insert(work.to_string(), action.action_execution_id.clone());
        Ok(())
    }

    async fn find_work(&self, work: &str) -> Result<Option<ActionExecution>, StoreError> {
        let job = self.lock()?.work.get(work).cloned();
        match job {
            Some(job) => self.find_job(&job).await,
            None => Ok(None),
        }
    }

    async fn claim_sweep(&self, now: f64, interval: f64) -> Result<bool, StoreError> {
        let mut inner = self.lock()?;
        if inner.last_sweep.is_some_and(|last| now - last < interval) {
            return Ok(false);
        }
        inner.last_sweep = Some(now);
        Ok(true)
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
                e.pipeline_name == pipeline && !inner.forgotten.contains(&e.pipeline_execution_id)
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
    async fn publish(&self, entries: &[EventEntry]) -> Result<(), PortError> {
        self.published
            .lock()
            .map_err(poisoned)?
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
    fn answer(&self, token: &str, answer: Result<Value, String>) -> Result<(), PortError> {
        let mut failing = self.failing.lock().map_err(poisoned)?;
        if *failing > 0 {
            *failing -= 1;
            return Err(PortError::Unavailable(
                "ThrottlingException: Rate exceeded".into(),
            ));
        }
        self.calls
            .lock()
            .map_err(poisoned)?
            .push((token.into(), answer.clone()));
        self.answers
            .lock()
            .map_err(poisoned)?
            .insert(token.into(), answer);
        Ok(())
    }
}

#[async_trait]
impl TaskCallbacks for MemoryTasks {
    async fn succeed(&self, token: &str, output: &Value) -> Result<(), PortError> {
        self.answer(token, Ok(output.clone()))
    }
    async fn fail(&self, token: &str, error: &str, _cause: &str) -> Result<(), PortError> {
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
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, PortError> {
        self.invoked
            .lock()
            .map_err(poisoned)?
            .push((function.into(), payload.clone()));
        self.functions
            .lock()
            .map_err(poisoned)?
            .get(function)
            .cloned()
            .ok_or_else(|| PortError::Other(format!("function {function} does not exist")))
    }
    async fn alarm_state(&self, name: &str) -> Result<String, PortError> {
        self.alarms
            .lock()
            .map_err(poisoned)?
            .get(name)
            .cloned()
            .ok_or_else(|| PortError::Other(format!("alarm {name} does not exist")))
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
    async fn ensure(&self, name: &str, definition: &Value) -> Result<String, PortError> {
        self.machines
            .lock()
            .map_err(poisoned)?
            .entry(name.into())
            .or_insert_with(|| definition.clone());
        Ok(format!(
            "arn:aws:states:us-east-1:123456789012:stateMachine:{name}"
        ))
    }
    async fn start(&self, arn: &str, name: &str, input: &Value) -> Result<String, PortError> {
        self.started
            .lock()
            .map_err(poisoned)?
            .push((arn.into(), name.into(), input.clone()));
        Ok(format!("{arn}:{name}").replace(":stateMachine:", ":execution:"))
    }
    async fn delete(&self, name: &str) -> Result<(), PortError> {
        self.machines.lock().map_err(poisoned)?.remove(name);
        Ok(())
    }
    async fn has_running(&self, name: &str) -> Result<Option<bool>, PortError> {
        if !self.machines.lock().map_err(poisoned)?.contains_key(name) {
            return Ok(None);
        }
        let ended = self.ended.lock().map_err(poisoned)?;
        let running = self
            .started
            .lock()
            .map_err(poisoned)?
            .iter()
            .filter(|(machine, _, _)| machine.ends_with(&format!(":stateMachine:{name}")))
            .map(|(machine, run, _)| {
                format!("{machine}:{run}").replace(":stateMachine:", ":execution:")
            })
            .any(|run| !ended.contains_key(&run));
        Ok(Some(running))
    }
    async fn run_status(&self, run: &str) -> Result<crate::sweep::RunStatus, PortError> {
        if let Some(ended) = self.ended.lock().map_err(poisoned)?.get(run) {
            return Ok(ended.clone());
        }
        let started = self
            .started
            .lock()
            .map_err(poisoned)?
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
