//! The engine's side of stage conditions: when a stage's conditions run (before entry, on
//! success, on failure), what their results do to the stage ([`After`]: release, retry in
//! place, roll back), and OverrideStageCondition ([`OverrideError`]). The rules themselves are
//! evaluated by [`crate::conditions`], which knows nothing of the engine.

use std::collections::BTreeMap;

use serde_json::json;

use crate::conditions::*;
use crate::declaration::{Condition, ConditionResult, PipelineDeclaration, StageDeclaration};
use crate::engine::{Engine, EngineError, ExecutionIds};
use crate::execution::{
    ExecutionSnapshot, PipelineExecutionStatus, StageExecution, StageExecutionStatus,
};

/// What a stage's conditions ask for after its end is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum After {
    /// Release the stage.
    Nothing,
    /// Retry the stage in place (`onFailure: RETRY`), with this retry mode.
    Retry(String),
    /// Roll the stage back to the last successful execution (`ROLLBACK`).
    Rollback,
}

impl Engine<'_> {
    #[allow(clippy::too_many_arguments)]
    async fn run_conditions(
        &self,
        kind: ConditionKind,
        conditions: &[Condition],
        snapshot: &ExecutionSnapshot,
        declaration: &PipelineDeclaration,
        stage: &str,
        work: &BTreeMap<String, WorkRuleResult>,
        now: f64,
    ) -> Result<Vec<ConditionRun>, EngineError> {
        let base = self.with_rollback_base(snapshot.clone()).await?;
        let variables = crate::engine::variable_scope(&base, declaration);
        let ctx = RuleContext {
            pipeline_name: &snapshot.execution.pipeline_name,
            stage_name: stage,
            pipeline_execution_id: &snapshot.execution.pipeline_execution_id,
            variables: &variables,
            now,
            deadline: tokio::time::Instant::now() + RULE_CALL_BUDGET,
            kind,
            work,
        };
        let mut runs = Vec::new();
        for condition in conditions {
            runs.push(run_condition(kind, condition, &ctx, self.checks).await);
        }
        Ok(runs)
    }

    /// `beforeEntry` of `stage`: the runs go on `record`; returns the result that keeps the
    /// execution out of the stage (`FAIL` or `SKIP`), if any. `work` is what the conditions'
    /// work rules (Commands, CodeBuild) found; `None` at admission, when they have not run yet:
    /// conditions with work rules are then left to [`Engine::check_entry`] (nothing is checked).
    pub(crate) async fn check_before_entry(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        record: &mut StageExecution,
        work: Option<&BTreeMap<String, WorkRuleResult>>,
        now: f64,
    ) -> Result<Option<ConditionResult>, EngineError> {
        let execution = &snapshot.execution;
        let Some(pipeline) = self
            .pipelines
            .get(&execution.pipeline_name, Some(execution.pipeline_version))
            .await?
        else {
            return Ok(None);
        };
        let Some(declared) = pipeline.declaration.stages.iter().find(|s| s.name == stage) else {
            return Ok(None);
        };
        let Some(before) = declared.before_entry.as_ref() else {
            return Ok(None);
        };
        let no_work = BTreeMap::new();
        let work = match work {
            Some(work) => work,
            None if !work_rules_of(declared, ConditionKind::BeforeEntry).is_empty() => {
                return Ok(None)
            }
            None => &no_work,
        };
        let mut runs = self
            .run_conditions(
                ConditionKind::BeforeEntry,
                &before.conditions,
                snapshot,
                &pipeline.declaration,
                stage,
                work,
                now,
            )
            .await?;
        let refused = first_failed(&before.conditions, &runs, ConditionResult::Fail);
        if let Some((i, result)) = refused {
            runs[i].applied = Some(result);
            // The failing condition last, so summaries name it.
            let failed = runs.remove(i);
            runs.push(failed);
        }
        record.conditions.extend(runs);
        Ok(refused.map(|(_, r)| r))
    }

    /// `onSuccess` of `stage`: when a condition fails, the summary that fails the execution and
    /// what follows (`FAIL` or `ROLLBACK`).
    pub(crate) async fn check_on_success(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &StageDeclaration,
        record: &mut StageExecution,
        work: &BTreeMap<String, WorkRuleResult>,
        now: f64,
    ) -> Result<Option<(String, After)>, EngineError> {
        let Some(on_success) = &stage.on_success else {
            return Ok(None);
        };
        let declaration = self.declaration_of(snapshot).await?;
        let mut runs = self
            .run_conditions(
                ConditionKind::OnSuccess,
                &on_success.conditions,
                snapshot,
                &declaration,
                &stage.name,
                work,
                now,
            )
            .await?;
        let failed = first_failed(&on_success.conditions, &runs, ConditionResult::Fail);
        let out = failed.map(|(i, result)| {
            runs[i].applied = Some(result);
            let summary = format!(
                "stage {} failed its onSuccess condition: {}",
                stage.name, runs[i].summary
            );
            let then = if result == ConditionResult::Rollback {
                After::Rollback
            } else {
                After::Nothing
            };
            (summary, then)
        });
        record.conditions.extend(runs);
        Ok(out)
    }

    /// `onFailure` of `stage`: what follows the failure.
    pub(crate) async fn check_on_failure(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &StageDeclaration,
        record: &mut StageExecution,
        work: &BTreeMap<String, WorkRuleResult>,
        now: f64,
    ) -> Result<After, EngineError> {
        let Some(on_failure) = &stage.on_failure else {
            return Ok(After::Nothing);
        };
        let result = match &on_failure.conditions {
            None => on_failure.result,
            Some(conditions) => {
                let declaration = self.declaration_of(snapshot).await?;
                let mut runs = self
                    .run_conditions(
                        ConditionKind::OnFailure,
                        conditions,
                        snapshot,
                        &declaration,
                        &stage.name,
                        work,
                        now,
                    )
                    .await?;
                let met = runs.iter().position(|r| r.status == "Succeeded");
                let result = met.and_then(|i| conditions[i].result.or(on_failure.result));
                if let (Some(i), Some(r)) = (met, result) {
                    runs[i].applied = Some(r);
                }
                record.conditions.extend(runs);
                result
            }
        };
        let mut run = ConditionRun {
            kind: ConditionKind::OnFailure,
            status: "Succeeded".into(),
            summary: String::new(),
            applied: result,
            rules: Vec::new(),
            at: now,
        };
        let after = match result {
            Some(ConditionResult::Retry) if record.attempt <= MAX_AUTOMATIC_RETRIES => {
                let mode = on_failure
                    .retry_configuration
                    .as_ref()
                    .and_then(|c| c.retry_mode)
                    .map_or(crate::control::FAILED_ACTIONS, |m| m.as_str());
                run.summary = format!("retrying the stage ({mode})");
                After::Retry(mode.to_string())
            }
            Some(ConditionResult::Retry) => {
                run.summary = format!(
                    "not retried: the stage was already retried {MAX_AUTOMATIC_RETRIES} time(s)"
                );
                After::Nothing
            }
            Some(ConditionResult::Rollback) => {
                run.summary = "rolling the stage back".into();
                After::Rollback
            }
            _ => return Ok(After::Nothing),
        };
        record.conditions.push(run);
        Ok(after)
    }

    async fn declaration_of(
        &self,
        snapshot: &ExecutionSnapshot,
    ) -> Result<PipelineDeclaration, EngineError> {
        let e = &snapshot.execution;
        self.pipelines
            .get(&e.pipeline_name, Some(e.pipeline_version))
            .await?
            .map(|p| p.declaration)
            .ok_or_else(|| EngineError::PipelineNotFound(e.pipeline_name.clone()))
    }

    /// After a stage's end is recorded: retry it in place (keeping the stage), roll it back, or
    /// just release it. A retry or rollback that cannot start is logged; the failure stands.
    pub(crate) async fn after_conditions(
        &self,
        ids: &ExecutionIds,
        stage: &str,
        after: After,
        now: f64,
    ) -> Result<(), EngineError> {
        let snapshot = self
            .executions
            .snapshot(&ids.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(ids.pipeline_execution_id.clone()))?;
        let mode = snapshot.execution.execution_mode;
        match after {
            After::Retry(retry_mode) => {
                match self
                    .retry_stage_as(
                        &ids.pipeline_name,
                        stage,
                        &ids.pipeline_execution_id,
                        &retry_mode,
                        true,
                        now,
                    )
                    .await
                {
                    // It keeps the stage: the retry enters it again.
                    Ok(()) => return Ok(()),
                    Err(e) => {
                        tracing::warn!("automatic retry of {stage} did not start: {e}");
                        self.fail_after_retry(&snapshot, stage, &e.to_string(), now)
                            .await?;
                    }
                }
            }
            After::Rollback => {
                self.release_stage(ids, mode, stage, now).await?;
                let attempt = snapshot.stage(stage).map_or(1, |s| s.attempt);
                let target = self
                    .last_success(&ids.pipeline_name, stage, &ids.pipeline_execution_id)
                    .await?;
                match target {
                    Some(target) => {
                        let id = derived_id(&format!(
                            "rollback {} {stage} {attempt}",
                            ids.pipeline_execution_id
                        ));
                        if let Err(e) = self
                            .rollback_stage(
                                &ids.pipeline_name,
                                stage,
                                &target,
                                crate::events::TriggerType::AutomatedRollback,
                                &id,
                                now,
                            )
                            .await
                        {
                            tracing::warn!("automatic rollback of {stage} did not start: {e}");
                        }
                    }
                    None => tracing::warn!(
                        "automatic rollback of {stage}: no earlier successful execution to roll back to"
                    ),
                }
                return Ok(());
            }
            After::Nothing => {}
        }
        self.release_stage(ids, mode, stage, now).await
    }

    /// An automatic retry could not start: the execution fails as the stage did.
    async fn fail_after_retry(
        &self,
        snapshot: &ExecutionSnapshot,
        stage: &str,
        why: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        self.end_in_progress(
            snapshot,
            PipelineExecutionStatus::Failed,
            crate::events::PipelineState::Failed,
            &format!("stage {stage} failed and its automatic retry did not start: {why}"),
            now,
        )
        .await
    }

    /// The latest successful STANDARD execution of the current pipeline version that ran
    /// `stage` to success (not `except`).
    async fn last_success(
        &self,
        pipeline_name: &str,
        stage: &str,
        except: &str,
    ) -> Result<Option<String>, EngineError> {
        let Some(pipeline) = self.pipelines.get(pipeline_name, None).await? else {
            return Ok(None);
        };
        let mut token: Option<String> = None;
        for _ in 0..5 {
            let page = self
                .executions
                .list_executions(pipeline_name, token.as_deref(), 50)
                .await?;
            for e in &page.items {
                if e.pipeline_execution_id == except
                    || e.status != PipelineExecutionStatus::Succeeded
                    || e.execution_type != crate::execution::ExecutionType::Standard
                    || e.pipeline_version != pipeline.version()
                {
                    continue;
                }
                if let Some(s) = self.executions.snapshot(&e.pipeline_execution_id).await? {
                    if s.stage(stage)
                        .is_some_and(|r| r.status == StageExecutionStatus::Succeeded)
                    {
                        return Ok(Some(e.pipeline_execution_id.clone()));
                    }
                }
            }
            match page.next_token {
                Some(t) => token = Some(t),
                None => break,
            }
        }
        Ok(None)
    }
}

/// Why OverrideStageCondition was refused.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum OverrideError {
    /// `ConditionNotOverridableException`.
    #[error("{0}")]
    NotOverridable(String),
    /// `NotLatestPipelineExecutionException`.
    #[error("{0}")]
    NotLatest(String),
    /// The engine failed.
    #[error(transparent)]
    Engine(#[from] EngineError),
}

impl From<crate::store::StoreError> for OverrideError {
    fn from(e: crate::store::StoreError) -> Self {
        Self::Engine(e.into())
    }
}

impl Engine<'_> {
    /// OverrideStageCondition: the `kind` (`BEFORE_ENTRY` or `ON_SUCCESS`) condition that failed
    /// execution `id` in `stage` is overridden: with `BEFORE_ENTRY` the execution resumes by
    /// entering the stage (its entry conditions are not checked again); with `ON_SUCCESS` the
    /// stage counts as succeeded and the execution resumes at the next stage (or succeeds).
    pub async fn override_condition(
        &self,
        pipeline_name: &str,
        stage: &str,
        id: &str,
        kind: ConditionKind,
        by: &str,
        now: f64,
    ) -> Result<(), OverrideError> {
        let snapshot = self.snapshot_of(pipeline_name, id).await?;
        let mut record = snapshot.stage(stage).cloned().ok_or_else(|| {
            OverrideError::NotOverridable(format!("execution {id} never reached stage {stage}"))
        })?;
        let failed = snapshot.execution.status == PipelineExecutionStatus::Failed
            && record
                .conditions
                .iter()
                .any(|c| c.kind == kind && c.status == "Failed" && c.applied.is_some());
        if !failed || kind == ConditionKind::OnFailure {
            return Err(OverrideError::NotOverridable(format!(
                "no {} condition of stage {stage} failed execution {id}",
                match kind {
                    ConditionKind::BeforeEntry => "BEFORE_ENTRY",
                    ConditionKind::OnSuccess => "ON_SUCCESS",
                    ConditionKind::OnFailure => "ON_FAILURE",
                }
            )));
        }
        let latest = self
            .executions
            .latest_stage_executions(pipeline_name)
            .await?;
        if let Some(other) = latest
            .iter()
            .find(|p| p.stage_name == stage && p.pipeline_execution_id != id)
        {
            return Err(OverrideError::NotLatest(format!(
                "execution {} has entered stage {stage} since",
                other.pipeline_execution_id
            )));
        }
        for c in record
            .conditions
            .iter_mut()
            .filter(|c| c.kind == kind && c.status == "Failed")
        {
            c.status = "Overridden".into();
            c.summary = format!("{} (overridden by {by})", c.summary);
            c.at = now;
        }
        match kind {
            ConditionKind::BeforeEntry => {
                self.executions
                    .put_stage(pipeline_name, &record, &[])
                    .await?;
                self.retry_stage_as(
                    pipeline_name,
                    stage,
                    id,
                    crate::control::ALL_ACTIONS,
                    true,
                    now,
                )
                .await
                .map_err(|e| match e {
                    crate::control::RetryError::Engine(e) => OverrideError::Engine(e),
                    other => OverrideError::NotOverridable(other.to_string()),
                })
            }
            _ => {
                record.status = StageExecutionStatus::Succeeded;
                record.last_update_time = now;
                self.executions
                    .put_stage(pipeline_name, &record, &[])
                    .await?;
                let declaration = self.declaration_of(&snapshot).await?;
                let next = declaration
                    .stages
                    .iter()
                    .position(|s| s.name == stage)
                    .and_then(|i| declaration.stages.get(i + 1))
                    .map(|s| s.name.clone());
                self.resume_at(
                    &snapshot,
                    &declaration,
                    next.as_deref(),
                    &format!("{id}-override-{}", record.attempt),
                    now,
                )
                .await
                .map_err(OverrideError::Engine)
            }
        }
    }

    /// A failed execution runs again from stage `next` (none: it has no stage left and
    /// succeeds).
    async fn resume_at(
        &self,
        snapshot: &ExecutionSnapshot,
        declaration: &PipelineDeclaration,
        next: Option<&str>,
        run_name: &str,
        now: f64,
    ) -> Result<(), EngineError> {
        let mut execution = snapshot.execution.clone();
        execution.status = PipelineExecutionStatus::InProgress;
        execution.status_summary = None;
        execution.last_update_time = now;
        // The machine first: the new run's ARN is recorded with the resumed execution, before
        // the run starts (the reconciler and the Abort task act on the current run only).
        let run = match next {
            Some(next) => {
                let machine = self
                    .ensure_machine(execution.pipeline_version, declaration)
                    .await
                    .map_err(EngineError::StateMachine)?;
                execution.state_machine_execution_arn =
                    Some(crate::asl::run_arn(&machine, run_name));
                Some((machine, next))
            }
            None => None,
        };
        self.executions
            .put_execution(
                &execution,
                &[PipelineExecutionStatus::Failed],
                &[self.pipeline_event(&execution, crate::events::PipelineState::Resumed)],
            )
            .await?;
        let ids = ExecutionIds {
            pipeline_name: execution.pipeline_name.clone(),
            pipeline_version: execution.pipeline_version,
            pipeline_execution_id: execution.pipeline_execution_id.clone(),
        };
        let Some((machine, next)) = run else {
            return self.finish_execution(&ids, now).await;
        };
        let input = json!({
            "pipelineName": execution.pipeline_name,
            "pipelineVersion": execution.pipeline_version,
            "pipelineExecutionId": execution.pipeline_execution_id,
            "startStage": next,
        });
        self.machines
            .start(&machine, run_name, &input)
            .await
            .map_err(EngineError::StateMachine)?;
        Ok(())
    }
}
