//! What the orchestrator function receives (state machine tasks, status changes of runs, the
//! sweep) and how each is handled.

use std::collections::BTreeMap;

use serde_json::{json, Value};

use super::{Engine, EngineError, ExecutionIds};

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
        /// What each branch of the group's `Parallel` ended with (`{failedAction, error}` for
        /// a failed task); absent from definitions compiled before it was passed.
        #[serde(default)]
        branches: Vec<Value>,
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
        /// The run that leaves (`$$.Execution.Id`): a leave from a run the execution no longer
        /// records as current (an automatic retry started another) does nothing.
        #[serde(default)]
        run: Option<String>,
        /// What the stage's work rules found (`$.rules`, answered by its `runRules` task), by
        /// [`crate::conditions::work_rule_key`]; empty when the stage has none.
        #[serde(default)]
        work_rules: BTreeMap<String, crate::conditions::WorkRuleResult>,
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
    /// `checkEntry`: the stage's beforeEntry conditions, once its work rules ran (returns
    /// `{"refused": bool}`).
    #[serde(rename_all = "camelCase")]
    CheckEntry {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// Stage.
        stage: String,
        /// What the work rules found (`$.rules`).
        #[serde(default)]
        work_rules: BTreeMap<String, crate::conditions::WorkRuleResult>,
    },
    /// `runRules` (waits for its token): run the work rules (`Commands`, `CodeBuild`) of the
    /// stage's `kind` conditions (`BEFORE_ENTRY`, `ON_SUCCESS`, `ON_FAILURE`); the action
    /// function's.
    #[serde(rename_all = "camelCase")]
    RunRules {
        /// The execution.
        #[serde(flatten)]
        ids: ExecutionIds,
        /// Stage.
        stage: String,
        /// Which conditions.
        kind: crate::conditions::ConditionKind,
        /// Token to answer, with the results by [`crate::conditions::work_rule_key`].
        task_token: String,
        /// The run that asks (`$$.Execution.Id`): a run a retry replaced runs nothing.
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
                let force = event["sweep"]["now"].as_bool().unwrap_or(false);
                let only = event["sweep"]["pipeline"].as_str();
                let swept = self.scheduled_sweep_of(now, force, only).await?;
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
            TaskRequest::CheckGroup {
                ids,
                stage,
                group,
                branches,
            } => {
                let failed = self
                    .check_group_after(&ids, &stage, group, &branches, now)
                    .await?;
                Ok(json!({ "failed": failed }))
            }
            TaskRequest::LeaveStage {
                ids,
                stage,
                outcome,
                run,
                work_rules,
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
                self.leave_stage_of_run(&ids, &stage, succeeded, run.as_deref(), &work_rules, now)
                    .await?;
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
            TaskRequest::CheckEntry {
                ids,
                stage,
                work_rules,
            } => {
                let refused = self.check_entry(&ids, &stage, &work_rules, now).await?;
                Ok(json!({ "refused": refused }))
            }
            TaskRequest::RunAction { .. } | TaskRequest::RunRules { .. } => {
                Err(EngineError::Invalid(
                    "op: runAction and runRules are handled by the action function".into(),
                ))
            }
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
}
