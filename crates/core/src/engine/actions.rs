//! Actions: beginning one (resolving what its provider needs), completing it and answering its
//! task token, and the variables an action sees.

use std::collections::BTreeMap;

use serde_json::json;

use crate::asl;
use crate::declaration::{ActionDeclaration, PipelineDeclaration};
use crate::events::ActionState;
use crate::execution::{
    artifact_key, ActionExecution, ActionExecutionInput, ActionExecutionOutput,
    ActionExecutionStatus, ArtifactDetail, ArtifactLocation, ExecutionSnapshot, FailureType,
};
use crate::store::StoreError;
use crate::variables;

use super::stages::stage_of;
use super::{
    truncate, ActionOutcome, Engine, EngineError, ExecutionIds, PreparedAction, ACTION_FAILED_ERROR,
};

impl Engine<'_> {
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
        let stage_record = snapshot.stage(stage);
        let attempt = stage_record.map(|s| s.attempt).unwrap_or(1);
        // The same task again: delivered twice (the same token, so the same id), or retried by
        // Step Functions after its invocation failed (a new token; the action runs once per
        // stage attempt). The first delivery recorded it.
        if let Some(earlier) = snapshot.actions.iter().find(|a| {
            a.action_execution_id == action_execution_id
                || (a.stage_name == stage && a.action_name == action && a.attempt == attempt)
        }) {
            return self
                .begin_again(&snapshot, declaration, action_decl, earlier.clone(), token)
                .await;
        }
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
        let Resolved {
            inputs,
            configuration,
            commands,
            scope,
            problems,
        } = resolve_action(&base, declaration, &action_decl);
        let outputs = self.output_locations(&ids.pipeline_name, &action_decl, action_execution_id);
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
            percent_complete: None,
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
                        s.actions.into_iter().find(|a| {
                            a.action_execution_id == action_execution_id
                                || (a.stage_name == stage
                                    && a.action_name == action
                                    && a.attempt == attempt)
                        })
                    });
                if let Some(earlier) = again {
                    return self
                        .begin_again(&snapshot, declaration, action_decl, earlier, token)
                        .await;
                }
                return Err(StoreError::Conflict(format!(
                    "action {stage}/{action} attempt {attempt} was recorded by another run"
                ))
                .into());
            }
            Err(e) => return Err(e.into()),
        }
        let role_arn = action_role(declaration, &action_decl);
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
            role_arn,
            pipeline_arn: self.pipeline_arn(&ids.pipeline_name),
        };
        if !problems.is_empty() {
            let outcome =
                ActionOutcome::failed(FailureType::ConfigurationError, problems.join("; "));
            self.complete_action(&prepared.record, outcome, now).await?;
            return Ok(None);
        }
        Ok(Some(prepared))
    }

    /// `runAction` came again (with `token`) for the action execution `earlier` recorded.
    /// Still running: the first delivery may have died mid-way, so it is prepared again from its
    /// record (same id, same output keys, no second `STARTED`), the record now awaited by this
    /// task's token, and the provider runs again. Ended: its callback is sent if it never went
    /// out, this task is answered as the action ended, and nothing runs.
    async fn begin_again(
        &self,
        snapshot: &ExecutionSnapshot,
        pipeline: &PipelineDeclaration,
        declaration: ActionDeclaration,
        earlier: ActionExecution,
        token: &str,
    ) -> Result<Option<PreparedAction>, EngineError> {
        if earlier.status != ActionExecutionStatus::InProgress {
            self.answer_unsent(&earlier).await?;
            if earlier.task_token.as_deref() != Some(token) {
                let mut this_task = earlier.clone();
                this_task.task_token = Some(token.to_string());
                self.answer_task(&this_task).await?;
            }
            return Ok(None);
        }
        let mut adopted = earlier;
        if adopted.task_token.as_deref() != Some(token) {
            adopted.task_token = Some(token.to_string());
            self.executions
                .put_action(&adopted, Some(ActionExecutionStatus::InProgress), &[])
                .await?;
        }
        self.prepared_from(snapshot, pipeline, declaration, adopted)
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
        let outputs = self.output_locations(
            &snapshot.execution.pipeline_name,
            &declaration,
            &earlier.action_execution_id,
        );
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
            role_arn: action_role(pipeline, &declaration),
            pipeline_arn: self.pipeline_arn(&snapshot.execution.pipeline_name),
            declaration,
            record: earlier,
        })
    }

    /// Where the output artifacts of action execution `id` (declared as `declaration`) of
    /// `pipeline` go (the version comes back from the write).
    fn output_locations(
        &self,
        pipeline: &str,
        declaration: &ActionDeclaration,
        id: &str,
    ) -> Vec<ArtifactDetail> {
        declaration
            .output_artifacts()
            .iter()
            .map(|a| ArtifactDetail {
                name: a.name.clone(),
                s3_location: ArtifactLocation {
                    bucket: self.config.artifact_bucket.clone(),
                    key: artifact_key(pipeline, &a.name, id),
                    version_id: None,
                },
            })
            .collect()
    }

    /// The ARN of pipeline `name` in the engine's account and region.
    fn pipeline_arn(&self, name: &str) -> String {
        crate::events::pipeline_arn(&self.config.region, &self.config.account_id, name)
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
        record.source_revision = outcome.source_revision;
        // Whatever the action printed or exported, the record fits its DynamoDB item.
        record.fit(crate::execution::MAX_RECORD_BYTES);
        let snapshot = self
            .executions
            .snapshot(&record.pipeline_execution_id)
            .await?
            .ok_or_else(|| EngineError::ExecutionNotFound(record.pipeline_execution_id.clone()))?;
        // The task that awaits it now (a retried task took the record over with its token).
        if let Some(current) = snapshot
            .actions
            .iter()
            .find(|a| a.action_execution_id == record.action_execution_id)
        {
            record.task_token.clone_from(&current.task_token);
        }
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

/// The role an action does its AWS work with: its own `roleArn`, else the pipeline's (blank
/// counts as absent).
pub fn action_role(pipeline: &PipelineDeclaration, action: &ActionDeclaration) -> Option<String> {
    action
        .role_arn
        .clone()
        .filter(|r| !r.trim().is_empty())
        .or_else(|| Some(pipeline.role_arn.clone()).filter(|r| !r.trim().is_empty()))
}

/// An action's declaration resolved against what its execution produced so far.
pub(crate) struct Resolved {
    /// Its input artifacts, where they are.
    pub inputs: Vec<ArtifactDetail>,
    /// Its configuration, variables resolved.
    pub configuration: BTreeMap<String, String>,
    /// Its commands, variables resolved.
    pub commands: Vec<String>,
    /// The variables visible to it.
    pub scope: BTreeMap<String, BTreeMap<String, String>>,
    /// What could not be resolved (a missing artifact, an unknown variable), for a person.
    pub problems: Vec<String>,
}

/// Resolve `action_decl` (of `declaration`) against `base`, the execution it runs in.
pub(crate) fn resolve_action(
    base: &ExecutionSnapshot,
    declaration: &PipelineDeclaration,
    action_decl: &ActionDeclaration,
) -> Resolved {
    let artifacts = base.artifacts();
    let scope = variable_scope(base, declaration);
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
    Resolved {
        inputs,
        configuration,
        commands,
        scope,
        problems,
    }
}
