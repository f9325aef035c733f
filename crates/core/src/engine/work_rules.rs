//! Work rules: the `Commands` and `CodeBuild` rules of a stage's `onSuccess` and `onFailure`
//! conditions. They run for minutes, so they do not run in the condition check (the
//! orchestrator's leave task, which has seconds): the state machine runs them first, in a
//! `runRules` task of the action function ([`crate::asl`]), which runs each as the action it
//! would be (a Commands action, a CodeBuild build, with the rule's commands, configuration,
//! input artifacts and role) and answers its token with what each found, by
//! [`work_rule_key`]. The leave task gets that answer in its payload and the check reads it
//! ([`crate::conditions::run_rule`]): a rule whose task failed or timed out has no result and
//! fails.

use std::collections::BTreeMap;

use serde_json::json;

use super::actions::{resolve_action, Resolved};
use super::stages::stage_of;
use super::{Engine, EngineError, ExecutionIds, PreparedAction};
use crate::conditions::{
    derived_id, rule_as_action, work_rule_key, work_rules_of, ConditionKind, WorkRuleResult,
};
use crate::declaration::RuleDeclaration;
use crate::execution::{
    ActionExecution, ActionExecutionInput, ActionExecutionOutput, ActionExecutionStatus,
};

/// One work rule, ready to run.
#[derive(Debug, Clone)]
pub struct WorkRule {
    /// Its key in the answer ([`work_rule_key`]).
    pub key: String,
    /// The rule as declared.
    pub rule: RuleDeclaration,
    /// The action it runs as; `Err` when it cannot run (an input artifact that was not
    /// produced, a variable that does not resolve): the rule fails saying so.
    pub prepared: Result<PreparedAction, String>,
}

/// Whether the work rules of `stage`'s `kind` conditions would decide anything in run `run` of
/// the execution: it is still in progress (not stopping: a stopping stage checks no condition),
/// `run` is its current run (a run a retry replaced decides nothing), the stage's latest attempt
/// is in progress, and the condition will be checked (beforeEntry: not for a retried or
/// overridden attempt; onFailure: not after a beforeEntry condition failed the stage). When not,
/// nothing runs: no build is started, no command runs, for a result nobody reads.
pub fn rules_matter(
    snapshot: &crate::execution::ExecutionSnapshot,
    stage: &str,
    kind: ConditionKind,
    run: Option<&str>,
) -> bool {
    use crate::execution::{PipelineExecutionStatus, StageExecutionStatus};
    let execution = &snapshot.execution;
    if execution.status != PipelineExecutionStatus::InProgress {
        return false;
    }
    if let (Some(run), Some(current)) = (run, &execution.state_machine_execution_arn) {
        if run != current {
            return false;
        }
    }
    let Some(attempt) = snapshot.stage(stage) else {
        return false;
    };
    if attempt.status != StageExecutionStatus::InProgress {
        return false;
    }
    match kind {
        ConditionKind::BeforeEntry => {
            attempt.retry_mode.is_none()
                && !attempt
                    .conditions
                    .iter()
                    .any(|c| c.kind == ConditionKind::BeforeEntry)
        }
        ConditionKind::OnFailure => !attempt.condition_failed(),
        ConditionKind::OnSuccess => true,
    }
}

impl Engine<'_> {
    /// The work rules of `stage`'s `kind` conditions in execution `ids`, each prepared as the
    /// action it runs as (in the stage's latest attempt; nothing is recorded).
    pub async fn prepare_work_rules(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        kind: ConditionKind,
        run: Option<&str>,
        now: f64,
    ) -> Result<Vec<WorkRule>, EngineError> {
        let (snapshot, pipeline) = self.load(ids).await?;
        let declaration = stage_of(&pipeline.declaration, stage)?;
        if !rules_matter(&snapshot, stage, kind, run) {
            return Ok(Vec::new());
        }
        let attempt = snapshot.stage(stage).map_or(1, |s| s.attempt);
        let base = self.with_rollback_base(snapshot.clone()).await?;
        let mut out = Vec::new();
        for rule in work_rules_of(declaration, kind) {
            let key = work_rule_key(stage, kind, &rule.name);
            let action = rule_as_action(rule);
            let Resolved {
                inputs,
                configuration,
                problems,
                ..
            } = resolve_action(&base, &pipeline.declaration, &action);
            if !problems.is_empty() {
                out.push(WorkRule {
                    key,
                    rule: rule.clone(),
                    prepared: Err(problems.join("; ")),
                });
                continue;
            }
            let id = derived_id(&format!(
                "work rule\0{}\0{stage}\0{attempt}\0{key}",
                ids.pipeline_execution_id
            ));
            let record = ActionExecution {
                pipeline_execution_id: ids.pipeline_execution_id.clone(),
                action_execution_id: id,
                pipeline_version: ids.pipeline_version,
                stage_name: stage.to_string(),
                action_name: rule.name.clone(),
                attempt,
                status: ActionExecutionStatus::InProgress,
                start_time: now,
                last_update_time: now,
                updated_by: Some("pipewright".into()),
                input: ActionExecutionInput {
                    action_type_id: action.action_type_id.clone(),
                    configuration: action.configuration().clone(),
                    resolved_configuration: configuration,
                    region: Some(
                        action
                            .region
                            .clone()
                            .unwrap_or_else(|| self.config.region.clone()),
                    ),
                    input_artifacts: inputs,
                    namespace: None,
                },
                output: ActionExecutionOutput::default(),
                log_tail: None,
                log_location: None,
                source_revision: None,
                task_token: None,
                percent_complete: None,
            };
            let prepared = self
                .prepared_from(&snapshot, &pipeline.declaration, action, record)
                .await?;
            out.push(WorkRule {
                key,
                rule: rule.clone(),
                prepared: Ok(prepared),
            });
        }
        Ok(out)
    }

    /// Answer a `runRules` task: what each work rule found, by key.
    pub async fn answer_work_rules(
        &self,
        token: &str,
        results: &BTreeMap<String, WorkRuleResult>,
    ) -> Result<(), EngineError> {
        self.tasks
            .succeed(token, &json!(results))
            .await
            .map_err(EngineError::Callback)
    }
}
