//! What the integration tests share, each test binary pulling it in with `mod support;`:
//! in-memory ports ([`World`]) and a few steps of a run, here; random *valid* pipelines for the
//! property tests in [`generate`]; structural checks of a compiled ASL definition in [`asl`].

// Each test binary compiles this module on its own and uses only part of it.
#![allow(dead_code)]

pub mod asl;
pub mod generate;
pub mod model;

use pipewright_core::asl::AslTargets;
use pipewright_core::control_plane::{handle, ApiError, ServiceContext, Services};
use pipewright_core::engine::memory::{
    MemoryExecutionStore, MemoryFunctions, MemoryMachines, MemoryTasks,
};
use pipewright_core::engine::{
    ActionOutcome, Engine, EngineConfig, ExecutionIds, ExecutionStore, StartRequest,
};
use pipewright_core::events::TriggerType;
use pipewright_core::execution::{
    ActionExecutionStatus, ExecutionSnapshot, ExecutionTrigger, FailureType,
    PipelineExecutionStatus,
};
use pipewright_core::store::memory::MemoryPipelineStore;
use pipewright_core::store::{PipelineRecord, PipelineStore};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// The ports, in memory.
#[derive(Default)]
pub struct World {
    pub pipelines: MemoryPipelineStore,
    pub executions: MemoryExecutionStore,
    pub tasks: MemoryTasks,
    pub machines: MemoryMachines,
    pub functions: MemoryFunctions,
    pub checks: pipewright_core::engine::memory::MemoryRuleChecks,
}

/// The caller the control plane sees in [`World::api`].
pub const CALLER: &str = "arn:aws:iam::123456789012:user/approver";

impl World {
    /// A world holding `declaration` (JSON) as version 1.
    pub async fn with_pipeline(declaration: Value) -> Self {
        let world = Self::default();
        world.add_pipeline(declaration).await;
        world
    }

    /// Store `declaration` (JSON, validated) as version 1.
    pub async fn add_pipeline(&self, declaration: Value) {
        let mut declaration = pipewright_core::parse_pipeline(&declaration.to_string()).unwrap();
        pipewright_core::validate(&declaration).unwrap();
        declaration.version = Some(1);
        let record = PipelineRecord {
            declaration,
            created: 1.0,
            updated: 1.0,
            tags: vec![],
        };
        self.pipelines.create(&record).await.unwrap();
    }

    pub fn engine(&self) -> Engine<'_> {
        Engine {
            pipelines: &self.pipelines,
            executions: &self.executions,
            tasks: &self.tasks,
            machines: &self.machines,
            functions: &self.functions,
            checks: &self.checks,
            config: EngineConfig {
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
                artifact_bucket: "artifacts".into(),
                targets: Some(AslTargets {
                    orchestrator_arn: "arn:aws:lambda:us-east-1:123456789012:function:orchestrator"
                        .into(),
                    action_arn: "arn:aws:lambda:us-east-1:123456789012:function:action".into(),
                    approval_arn: "arn:aws:lambda:us-east-1:123456789012:function:approval".into(),
                    action_timeout_cap_seconds: None,
                }),
                action_timeout_cap_seconds: None,
            },
        }
    }

    /// (detail-type without `CodePipeline `, stage or action, state) of every event.
    pub fn events(&self) -> Vec<(String, String, String)> {
        self.executions
            .outbox()
            .iter()
            .map(|e| {
                let what = e
                    .detail
                    .get("action")
                    .or_else(|| e.detail.get("stage"))
                    .and_then(Value::as_str)
                    .unwrap_or("");
                (
                    e.detail_type.replace("CodePipeline ", ""),
                    what.to_string(),
                    e.detail["state"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    /// How task token `token` was answered, if it was.
    pub fn answer(&self, token: &str) -> Option<Result<Value, String>> {
        self.tasks.answers.lock().unwrap().get(token).cloned()
    }

    pub async fn snapshot(&self, id: &str) -> ExecutionSnapshot {
        self.executions.snapshot(id).await.unwrap().unwrap()
    }

    /// Call operation `op` of the control plane at time 50 as [`CALLER`].
    pub async fn api(&self, op: &str, body: Value) -> Result<Value, ApiError> {
        let engine = self.engine();
        let services = Services {
            pipelines: &self.pipelines,
            engine: Some(&engine),
            start_on_create: false,
        };
        let ctx = ServiceContext {
            region: "us-east-1".into(),
            account_id: "123456789012".into(),
            now: 50.0,
            new_id: "99999999-9999-4999-8999-999999999999".into(),
            caller: Some(CALLER.into()),
        };
        handle(
            &services,
            &ctx,
            &format!("CodePipeline_20150709.{op}"),
            body.to_string().as_bytes(),
        )
        .await
    }

    /// Start execution `id` of `pipeline` at 10 and run its `Source` stage (one action named
    /// `Source`, output version `version`) to success by 14.
    pub async fn run_source(&self, engine: &Engine<'_>, pipeline: &str, id: &str, version: &str) {
        engine
            .start_execution(StartRequest {
                pipeline_name: pipeline.into(),
                pipeline_execution_id: id.into(),
                trigger: ExecutionTrigger {
                    trigger_type: TriggerType::StartPipelineExecution,
                    trigger_detail: "test".into(),
                },
                variables: vec![],
                source_revisions: vec![],
                idempotency_key: None,
                now: 10.0,
            })
            .await
            .unwrap();
        let ids = ExecutionIds {
            pipeline_version: self.snapshot(id).await.execution.pipeline_version,
            ..ids(pipeline, id)
        };
        engine
            .enter_stage(&ids, "Source", "t-enter-source", 11.0)
            .await
            .unwrap();
        let source = engine
            .begin_action(
                &ids,
                "Source",
                "Source",
                &format!("src-{id}"),
                "t-src",
                12.0,
            )
            .await
            .unwrap()
            .unwrap();
        let mut outcome = success();
        outcome.output_artifacts = source
            .outputs
            .iter()
            .map(|o| {
                let mut o = o.clone();
                o.s3_location.version_id = Some(version.into());
                o
            })
            .collect();
        outcome.output_variables = [("VersionId".to_string(), version.to_string())].into();
        outcome.source_revision = Some(pipewright_core::execution::SourceRevision {
            action_name: "Source".into(),
            revision_id: Some(version.into()),
            revision_summary: Some("app.zip".into()),
            revision_url: None,
            revision_change_id: None,
        });
        engine
            .complete_action(&source.record, outcome, 13.0)
            .await
            .unwrap();
        engine
            .leave_stage(&ids, "Source", true, 14.0)
            .await
            .unwrap();
    }

    /// Execution `id` of `pipeline` (a [`three_stages`] pipeline) ran its source and is inside
    /// Build with its action running: enter token `t-enter-build-<id>`, action execution
    /// `act-<id>` with task token `t-build-<id>`.
    pub async fn in_build(&self, pipeline: &str, id: &str) {
        let engine = self.engine();
        self.run_source(&engine, pipeline, id, "v1").await;
        engine
            .enter_stage(
                &ids(pipeline, id),
                "Build",
                &format!("t-enter-build-{id}"),
                20.0,
            )
            .await
            .unwrap();
        engine
            .begin_action(
                &ids(pipeline, id),
                "Build",
                "Build",
                &format!("act-{id}"),
                &format!("t-build-{id}"),
                21.0,
            )
            .await
            .unwrap()
            .unwrap();
    }

    /// Overwrite execution `id`'s status (as stopping it would).
    pub async fn set_status(&self, id: &str, status: PipelineExecutionStatus) {
        let mut execution = self.snapshot(id).await.execution;
        let from = execution.status;
        execution.status = status;
        self.executions
            .put_execution(&execution, &[from], &[])
            .await
            .unwrap();
    }
}

/// Execution `id` of version 1 of `pipeline`.
pub fn ids(pipeline: &str, id: &str) -> ExecutionIds {
    ExecutionIds {
        pipeline_name: pipeline.into(),
        pipeline_version: 1,
        pipeline_execution_id: id.into(),
    }
}

/// A successful outcome with no result details, outputs or variables.
pub fn success() -> ActionOutcome {
    let mut outcome = ActionOutcome::failed(FailureType::JobFailed, "x");
    outcome.status = ActionExecutionStatus::Succeeded;
    outcome.result = Default::default();
    outcome
}

/// Stage `Source`: one S3 action `Source` (bucket `src`, key `app.zip`) whose output artifact
/// is `artifact`.
pub fn s3_source_stage(artifact: &str) -> Value {
    serde_json::json!({"name": "Source", "actions": [{
        "name": "Source",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
        "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip"},
        "outputArtifacts": [{"name": artifact}]
    }]})
}

/// The sample declarations directly in `infra/pipelines` (`*.json`, `*.yaml`, `*.yml`), sorted.
pub fn sample_files() -> Vec<PathBuf> {
    declaration_files(&pipelines_dir())
}

/// `infra/pipelines`, where the sample declarations are.
pub fn pipelines_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../infra/pipelines")
}

/// The declaration files (`*.json`, `*.yaml`, `*.yml`) directly in `dir`, sorted.
pub fn declaration_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| {
            matches!(
                path.extension().and_then(|e| e.to_str()),
                Some("json" | "yaml" | "yml")
            )
        })
        .collect();
    files.sort();
    files
}

/// Pipeline `name` in `mode`: Source (S3, artifact `Src`) → Build (Commands) → Deploy
/// (Commands).
pub fn three_stages(name: &str, mode: pipewright_core::declaration::ExecutionMode) -> Value {
    let commands = |stage: &str| {
        serde_json::json!({"name": stage, "actions": [{
            "name": stage,
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["true"],
            "inputArtifacts": [{"name": "Src"}]
        }]})
    };
    serde_json::json!({
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/three",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": mode.as_str(),
        "stages": [
            s3_source_stage("Src"),
            commands("Build"),
            commands("Deploy")
        ]
    })
}
