//! The periodic sweep: the reconciler's safety net for what no event reported. A schedule
//! (template: `Sweep`, every 5 minutes) invokes the orchestrator with `{"sweep": {}}`; for every
//! pipeline it reads the newest executions ([`SWEEP_EXECUTIONS_PER_PIPELINE`]) and, for each one
//! still `InProgress` or `Stopping`:
//!
//! - with a state machine run recorded: asks Step Functions how the run is
//!   ([`crate::engine::StateMachines::run_status`]); a run that has ended (failed, timed out,
//!   stopped by hand, or even succeeded while the records say otherwise) is reconciled as its
//!   status event would have been ([`Engine::reconcile_run`](crate::engine::Engine::reconcile_run)): the execution ends with the
//!   reason, its stages are released, its tokens failed. A run Step Functions no longer knows
//!   counts as ended;
//! - with none recorded, [`LAUNCH_GRACE_SECONDS`] after it started: the start that died between
//!   recording the execution and starting its run is resumed (the run is started by name, so a
//!   run that did start is found, not doubled).
//!
//! It also collects old state machines: a version older than the pipeline's current one whose
//! executions among the newest it read have all ended, and whose machine Step Functions says
//! runs nothing (`ListExecutions` of its `RUNNING` runs; a deleted machine's runs would end at
//! their next transition), no longer needs its machine, which is deleted
//! ([`Swept::machines_deleted`]), so updates never run the account into Step Functions' quota of
//! state machines. A stage retry of such an execution later creates the machine again
//! (by the same name: the definition is the version's).
//!
//! Lost status events (EventBridge delivers at least once, but a rule can be disabled or a target
//! throttled), runs stopped while the reconciler was failing, and the local emulator (which emits
//! no Step Functions status events at all) are all covered by it. Each sweep looks at no more
//! than [`MAX_RUNS_PER_SWEEP`] runs and starts no pipeline after [`SWEEP_BUDGET_SECONDS`], so
//! it finishes well inside the orchestrator's timeout however many pipelines the account has;
//! each sweep begins at another pipeline, so what one did not reach, a later one does
//! ([`Swept::unswept`] says how many it left). `{"sweep": {"now": true, "pipeline": NAME}}`
//! sweeps one pipeline at once.

use serde_json::json;

use crate::abort::RunEnded;
use crate::execution::{ExecutionIds, PipelineExecutionStatus};

/// How many of each pipeline's newest executions a sweep reads.
pub const SWEEP_EXECUTIONS_PER_PIPELINE: usize = 100;
/// The most state machine runs one sweep asks about.
pub const MAX_RUNS_PER_SWEEP: usize = 200;
/// How long an execution may stay without a recorded run before the sweep resumes its start.
pub const LAUNCH_GRACE_SECONDS: f64 = 300.0;
/// How long a sweep starts new pipelines for (the orchestrator's timeout is 30 s).
pub const SWEEP_BUDGET_SECONDS: f64 = 15.0;
/// Scheduled sweeps closer together than this do the work once (EventBridge may deliver a
/// schedule twice; the local emulator delivers it once per event put on the bus).
pub const SWEEP_INTERVAL_SECONDS: f64 = 240.0;

/// How a state machine run is, as Step Functions says.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunStatus {
    /// Still running.
    Running,
    /// Ended: `SUCCEEDED`, `FAILED`, `TIMED_OUT` or `ABORTED`, with its error and cause when it
    /// has them.
    Ended {
        /// The run's status.
        status: String,
        /// Its error, if any.
        error: Option<String>,
        /// Its cause, if any.
        cause: Option<String>,
    },
    /// Step Functions does not know the run (it was never started, or is long gone).
    Missing,
}

/// What one sweep did.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Swept {
    /// Executions in progress that were looked at.
    pub in_progress: usize,
    /// Executions whose run had ended: reconciled.
    pub reconciled: Vec<String>,
    /// Executions whose start was resumed.
    pub resumed: Vec<String>,
    /// State machines of old pipeline versions deleted (nothing of theirs runs).
    pub machines_deleted: Vec<String>,
    /// True when a scheduled sweep found another one done less than
    /// [`SWEEP_INTERVAL_SECONDS`] ago and did nothing.
    pub skipped: bool,
    /// What could not be checked (kept for the next sweep), one line each.
    pub problems: Vec<String>,
    /// Pipelines this sweep did not reach in its time budget (a later sweep begins elsewhere).
    pub unswept: usize,
}

/// The order a sweep visits `count` pipelines in: all of them, beginning at an index that
/// changes from sweep to sweep (`seed`), so that sweeps cut short by their budget still reach
/// every pipeline in turn.
pub fn sweep_order(count: usize, seed: u64) -> impl Iterator<Item = usize> {
    let start = if count == 0 {
        0
    } else {
        (seed % count as u64) as usize
    };
    (0..count).map(move |i| (start + i) % count)
}

/// The versions older than `current` that `executions` (a pipeline's newest) ran, none of whose
/// executions among them is still in progress: their state machines are no longer needed.
pub fn idle_old_versions(
    current: u32,
    executions: &[crate::execution::PipelineExecution],
) -> Vec<u32> {
    let mut seen = std::collections::BTreeSet::new();
    let mut running = std::collections::BTreeSet::new();
    for execution in executions {
        seen.insert(execution.pipeline_version);
        if matches!(
            execution.status,
            PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
        ) {
            running.insert(execution.pipeline_version);
        }
    }
    seen.into_iter()
        .filter(|v| *v < current && !running.contains(v))
        .collect()
}

/// The run `run` of `execution`, as the reconciler reads an ended run, when `status` says it has
/// ended (or Step Functions lost it).
pub fn ended_run(
    execution: &crate::execution::PipelineExecution,
    run: &str,
    status: RunStatus,
) -> Option<RunEnded> {
    let (status, error, cause) = match status {
        RunStatus::Running => return None,
        RunStatus::Missing => (
            "ABORTED".to_string(),
            "Pipewright.RunMissing".to_string(),
            "Step Functions has no record of the execution's state machine run".to_string(),
        ),
        RunStatus::Ended {
            status,
            error,
            cause,
        } => {
            let error = error.filter(|e| !e.is_empty()).unwrap_or_else(|| {
                match status.as_str() {
                    "SUCCEEDED" => "Pipewright.RunEnded",
                    "TIMED_OUT" => "States.Timeout",
                    "ABORTED" => "Execution.Aborted",
                    _ => "States.Failed",
                }
                .to_string()
            });
            let cause = cause.filter(|c| !c.is_empty()).unwrap_or_else(|| {
                match status.as_str() {
                    "SUCCEEDED" => {
                        "the state machine run ended but the execution was not recorded as ended"
                    }
                    "TIMED_OUT" => "the state machine run timed out",
                    "ABORTED" => "the state machine run was stopped outside Pipewright",
                    _ => "the state machine run failed",
                }
                .to_string()
            });
            (status, error, cause)
        }
    };
    Some(RunEnded {
        ids: ExecutionIds {
            pipeline_name: execution.pipeline_name.clone(),
            pipeline_version: execution.pipeline_version,
            pipeline_execution_id: execution.pipeline_execution_id.clone(),
        },
        execution_arn: run.to_string(),
        status,
        error: json!({ "Error": error, "Cause": cause }),
    })
}

#[cfg(test)]
mod order_tests {
    #[test]
    fn every_pipeline_is_visited_once_from_a_moving_start() {
        let order: Vec<usize> = super::sweep_order(5, 7).collect();
        assert_eq!(order, vec![2, 3, 4, 0, 1]);
        assert_eq!(super::sweep_order(0, 3).count(), 0);
        let starts: std::collections::BTreeSet<usize> = (0..50)
            .filter_map(|seed| super::sweep_order(5, seed).next())
            .collect();
        assert_eq!(starts.len(), 5);
    }
}
