//! The engine's operations driven as the compiled state machine drives them, over in-memory
//! ports: records, events and task answers at every step.

use std::collections::BTreeMap;

use pipewright_core::asl::AslTargets;
use pipewright_core::control_plane::{handle, ServiceContext, Services};
use pipewright_core::engine::memory::{
    MemoryEvents, MemoryExecutionStore, MemoryMachines, MemoryTasks,
};
use pipewright_core::engine::{ActionOutcome, Engine, EngineConfig, ExecutionIds, StartRequest};
use pipewright_core::events::TriggerType;
use pipewright_core::execution::{
    ActionExecutionStatus, ArtifactDetail, ExecutionTrigger, PipelineExecutionStatus,
    StageExecutionStatus,
};
use pipewright_core::store::memory::MemoryPipelineStore;
use pipewright_core::store::{PipelineRecord, PipelineStore};
use serde_json::{json, Value};

struct World {
    pipelines: MemoryPipelineStore,
    executions: MemoryExecutionStore,
    events: MemoryEvents,
    tasks: MemoryTasks,
    machines: MemoryMachines,
}

impl World {
    async fn new() -> Self {
        let world = Self {
            pipelines: MemoryPipelineStore::default(),
            executions: MemoryExecutionStore::default(),
            events: MemoryEvents::default(),
            tasks: MemoryTasks::default(),
            machines: MemoryMachines::default(),
        };
        let mut declaration =
            pipewright_core::parse_pipeline(include_str!("../../../infra/pipelines/sample.json"))
                .unwrap();
        declaration.version = Some(1);
        let record = PipelineRecord {
            declaration,
            created: 1.0,
            updated: 1.0,
            tags: vec![],
        };
        world.pipelines.create(&record).await.unwrap();
        world
    }

    fn engine(&self) -> Engine<'_> {
        Engine {
            pipelines: &self.pipelines,
            executions: &self.executions,
            events: &self.events,
            tasks: &self.tasks,
            machines: &self.machines,
            config: EngineConfig {
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
                artifact_bucket: "artifacts".into(),
                targets: Some(AslTargets {
                    orchestrator_arn: "arn:aws:lambda:us-east-1:123456789012:function:orchestrator"
                        .into(),
                    action_arn: "arn:aws:lambda:us-east-1:123456789012:function:action".into(),
                }),
            },
        }
    }

    fn events(&self) -> Vec<(String, String, String)> {
        self.events
            .published
            .lock()
            .unwrap()
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

    fn answer(&self, token: &str) -> Option<Result<Value, String>> {
        self.tasks.answers.lock().unwrap().get(token).cloned()
    }
}

fn start_request(id: &str) -> StartRequest {
    StartRequest {
        pipeline_name: "pipewright-sample".into(),
        pipeline_execution_id: id.into(),
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::StartPipelineExecution,
            trigger_detail: "test".into(),
        },
        variables: vec![],
        source_revisions: vec![],
        idempotency_key: Some(format!("key-{id}")),
        now: 10.0,
    }
}

fn succeeded(
    outputs: &[ArtifactDetail],
    version: &str,
    variables: &[(&str, &str)],
) -> ActionOutcome {
    let mut outcome = ActionOutcome::failed("x", "x");
    outcome.status = ActionExecutionStatus::Succeeded;
    outcome.result = Default::default();
    outcome.output_artifacts = outputs
        .iter()
        .map(|o| {
            let mut o = o.clone();
            o.s3_location.version_id = Some(version.into());
            o
        })
        .collect();
    outcome.output_variables = variables
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect::<BTreeMap<_, _>>();
    outcome
}

#[tokio::test]
async fn a_failing_action_fails_its_stage_and_the_execution_after_its_sibling_finishes() {
    let world = World::new().await;
    let engine = world.engine();
    let id = "11111111-1111-4111-8111-111111111111";
    let started = engine.start_execution(start_request(id)).await.unwrap();
    assert!(started.new);
    // The same idempotency key does not start a second execution.
    let again = engine.start_execution(start_request(id)).await.unwrap();
    assert_eq!(
        (again.pipeline_execution_id.as_str(), again.new),
        (id, false)
    );
    assert_eq!(world.machines.started.lock().unwrap().len(), 1);

    let ids = ExecutionIds {
        pipeline_name: "pipewright-sample".into(),
        pipeline_version: 1,
        pipeline_execution_id: id.into(),
    };
    engine
        .enter_stage(&ids, "Source", "t-enter-source", 11.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-enter-source"), Some(Ok(json!({}))));

    let source = engine
        .begin_action(&ids, "Source", "Source", "a-source", "t-source", 12.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        source.outputs[0].s3_location.key,
        "pipewright-sample/SourceArtifact/a-source.zip"
    );
    engine
        .complete_action(
            &source.record,
            succeeded(&source.outputs, "v-src", &[("VersionId", "v-src")]),
            13.0,
        )
        .await
        .unwrap();
    assert_eq!(world.answer("t-source"), Some(Ok(json!({}))));
    assert!(!engine.check_group(&ids, "Source", 1, 14.0).await.unwrap());
    engine
        .leave_stage(&ids, "Source", true, 14.0)
        .await
        .unwrap();

    engine
        .enter_stage(&ids, "Build", "t-enter-build", 15.0)
        .await
        .unwrap();
    let compile = engine
        .begin_action(&ids, "Build", "Compile", "a-compile", "t-compile", 16.0)
        .await
        .unwrap()
        .unwrap();
    // Variables resolve just before the action runs; inputs are pinned to the version written.
    assert_eq!(compile.commands[0], "echo building revision v-src");
    assert_eq!(compile.commands[1], format!("export BUILD_ID=build-{id}"));
    assert_eq!(
        compile.inputs[0].s3_location.version_id.as_deref(),
        Some("v-src")
    );
    let docs = engine
        .begin_action(&ids, "Build", "Docs", "a-docs", "t-docs", 16.0)
        .await
        .unwrap()
        .unwrap();
    engine
        .complete_action(
            &compile.record,
            ActionOutcome::failed("JobFailed", "exit code 2: make: *** [all] Error 2"),
            17.0,
        )
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-compile"),
        Some(Err("Pipewright.ActionFailed".into()))
    );
    // Completing twice changes nothing (at-least-once callers).
    engine
        .complete_action(&compile.record, succeeded(&compile.outputs, "v", &[]), 17.5)
        .await
        .unwrap();
    engine
        .complete_action(&docs.record, succeeded(&docs.outputs, "v-docs", &[]), 18.0)
        .await
        .unwrap();
    assert!(engine.check_group(&ids, "Build", 1, 19.0).await.unwrap());
    engine
        .leave_stage(&ids, "Build", false, 19.0)
        .await
        .unwrap();

    let snapshot = world.executions_snapshot(id).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
    let summary = snapshot.execution.status_summary.clone().unwrap();
    assert!(
        summary.contains("Compile") && summary.contains("exit code 2"),
        "{summary}"
    );
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::Failed
    );
    assert_eq!(
        snapshot.latest_action("Build", "Compile").unwrap().status,
        ActionExecutionStatus::Failed
    );
    assert_eq!(
        snapshot.latest_action("Build", "Docs").unwrap().status,
        ActionExecutionStatus::Succeeded
    );
    assert!(
        snapshot.stage("Test").is_none(),
        "a later stage never starts"
    );
    assert!(
        snapshot.actions.iter().all(|a| a.task_token.is_none()),
        "tokens are dropped once answered"
    );

    let events = world.events();
    let expect = |kind: &str, what: &str, state: &str| {
        (
            format!("{kind} Execution State Change"),
            what.to_string(),
            state.to_string(),
        )
    };
    assert_eq!(
        events,
        vec![
            expect("Pipeline", "", "STARTED"),
            expect("Stage", "Source", "STARTED"),
            expect("Action", "Source", "STARTED"),
            expect("Action", "Source", "SUCCEEDED"),
            expect("Stage", "Source", "SUCCEEDED"),
            expect("Stage", "Build", "STARTED"),
            expect("Action", "Compile", "STARTED"),
            expect("Action", "Docs", "STARTED"),
            expect("Action", "Compile", "FAILED"),
            expect("Action", "Docs", "SUCCEEDED"),
            expect("Stage", "Build", "FAILED"),
            expect("Pipeline", "", "FAILED"),
        ]
    );
}

#[tokio::test]
async fn an_unresolvable_variable_fails_the_action_before_it_runs() {
    let world = World::new().await;
    let engine = world.engine();
    let id = "22222222-2222-4222-8222-222222222222";
    engine.start_execution(start_request(id)).await.unwrap();
    let ids = ExecutionIds {
        pipeline_name: "pipewright-sample".into(),
        pipeline_version: 1,
        pipeline_execution_id: id.into(),
    };
    engine
        .enter_stage(&ids, "Source", "t0", 11.0)
        .await
        .unwrap();
    let source = engine
        .begin_action(&ids, "Source", "Source", "a1", "t1", 12.0)
        .await
        .unwrap()
        .unwrap();
    // The source succeeds without the VersionId variable the Build stage refers to.
    engine
        .complete_action(&source.record, succeeded(&source.outputs, "v1", &[]), 13.0)
        .await
        .unwrap();
    let prepared = engine
        .begin_action(&ids, "Build", "Compile", "a2", "t2", 14.0)
        .await
        .unwrap();
    assert!(prepared.is_none());
    assert_eq!(
        world.answer("t2"),
        Some(Err("Pipewright.ActionFailed".into()))
    );
    let snapshot = world.executions_snapshot(id).await;
    let error = snapshot
        .latest_action("Build", "Compile")
        .unwrap()
        .output
        .execution_result
        .error_details
        .clone()
        .unwrap();
    assert_eq!(error.code, "ConfigurationError");
    assert!(
        error.message.contains("#{SourceVariables.VersionId}"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn the_api_starts_gets_and_lists_executions() {
    let world = World::new().await;
    let engine = world.engine();
    let services = Services {
        pipelines: &world.pipelines,
        engine: Some(&engine),
    };
    let ctx = |id: &str| ServiceContext {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        now: 100.0,
        new_id: id.into(),
    };
    let call = |id: &'static str, op: &'static str, body: Value| {
        let services = &services;
        async move {
            handle(
                services,
                &ctx(id),
                &format!("CodePipeline_20150709.{op}"),
                body.to_string().as_bytes(),
            )
            .await
        }
    };
    let first = "33333333-3333-4333-8333-333333333333";
    let out = call(
        first,
        "StartPipelineExecution",
        json!({"name": "pipewright-sample", "clientRequestToken": "abc-1",
        "variables": [{"name": "SiteBucket", "value": "other-site"}]}),
    )
    .await
    .unwrap();
    assert_eq!(out["pipelineExecutionId"], first);
    // The same clientRequestToken returns the same execution.
    let out = call(
        "44444444-4444-4444-8444-444444444444",
        "StartPipelineExecution",
        json!({"name": "pipewright-sample", "clientRequestToken": "abc-1"}),
    )
    .await
    .unwrap();
    assert_eq!(out["pipelineExecutionId"], first);

    let got = call(
        first,
        "GetPipelineExecution",
        json!({"pipelineName": "pipewright-sample", "pipelineExecutionId": first}),
    )
    .await
    .unwrap();
    assert_eq!(got["pipelineExecution"]["status"], "InProgress");
    assert_eq!(
        got["pipelineExecution"]["variables"],
        json!([{"name": "SiteBucket", "resolvedValue": "other-site"}])
    );
    assert_eq!(
        got["pipelineExecution"]["trigger"]["triggerType"],
        "StartPipelineExecution"
    );

    let listed = call(
        first,
        "ListPipelineExecutions",
        json!({"pipelineName": "pipewright-sample"}),
    )
    .await
    .unwrap();
    assert_eq!(
        listed["pipelineExecutionSummaries"]
            .as_array()
            .unwrap()
            .len(),
        1
    );

    let err = call(
        first,
        "StartPipelineExecution",
        json!({"name": "pipewright-sample", "variables": [{"name": "Nope", "value": "x"}]}),
    )
    .await
    .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    assert!(
        err.message.starts_with("variables[0].name"),
        "{}",
        err.message
    );
    let err = call(first, "StartPipelineExecution", json!({"name": "missing"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "PipelineNotFoundException");
    let err = call(first, "GetPipelineExecution", json!({"pipelineName": "pipewright-sample", "pipelineExecutionId": "55555555-5555-4555-8555-555555555555"})).await.unwrap_err();
    assert_eq!(err.kind, "PipelineExecutionNotFoundException");
}

trait Snapshots {
    async fn executions_snapshot(&self, id: &str) -> pipewright_core::execution::ExecutionSnapshot;
}

impl Snapshots for World {
    async fn executions_snapshot(&self, id: &str) -> pipewright_core::execution::ExecutionSnapshot {
        use pipewright_core::engine::ExecutionStore;
        self.executions.snapshot(id).await.unwrap().unwrap()
    }
}
