//! Starting executions: the record, the `STARTED` event, the state machine run (created on
//! first use), a start resumed when its run was never recorded, and the checks of what a start
//! asks for (pipeline variables, source revision overrides).

use serde_json::json;

use crate::asl;
use crate::declaration::PipelineDeclaration;
use crate::events::PipelineState;
use crate::execution::{
    ExecutionType, PipelineExecution, PipelineExecutionStatus, ResolvedPipelineVariable,
    SourceRevisionOverride,
};
use crate::store::StoreError;

use super::{Engine, EngineError, PortError, StartRequest, Started};

impl Engine<'_> {
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
            .ok_or_else(|| EngineError::StateMachine(PortError::Other(NO_TARGETS.into())))
    }

    /// The state machine of version `version` of `declaration` (created on first use, named
    /// by [`asl::machine_name`]); its ARN.
    pub(crate) async fn ensure_machine(
        &self,
        version: u32,
        declaration: &PipelineDeclaration,
    ) -> Result<String, PortError> {
        let targets = self
            .config
            .targets
            .as_ref()
            .ok_or_else(|| PortError::Other(NO_TARGETS.into()))?;
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

/// Why a function without [`asl::AslTargets`] cannot start a state machine run.
const NO_TARGETS: &str =
    "this function cannot start executions (no ORCHESTRATOR_ARN / ACTION_ARN / APPROVAL_ARN)";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variable_overrides_must_be_declared_and_sized() {
        let text = include_str!("../../../../infra/pipelines/sample.json");
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
