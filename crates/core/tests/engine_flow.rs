//! The engine's operations driven as the compiled state machine drives them, over in-memory
//! ports: records, events and task answers at every step.

mod support;

use std::collections::BTreeMap;

use support::World;

use pipewright_core::control_plane::{handle, ServiceContext, Services};
use pipewright_core::engine::{ActionOutcome, ExecutionIds, StartRequest};
use pipewright_core::events::TriggerType;
use pipewright_core::execution::{
    ActionExecutionStatus, ArtifactDetail, ExecutionTrigger, FailureType, PipelineExecutionStatus,
    StageExecutionStatus,
};
use serde_json::{json, Value};

impl World {
    /// The sample pipeline (infra/pipelines/sample.json) as version 1.
    async fn new() -> Self {
        let sample: Value =
            serde_json::from_str(include_str!("../../../infra/pipelines/sample.json")).unwrap();
        World::with_pipeline(sample["pipeline"].clone()).await
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
    let mut outcome = support::success();
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
            ActionOutcome::failed(
                FailureType::JobFailed,
                "exit code 2: make: *** [all] Error 2",
            ),
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
    let error = world.error_of(id, "Build", "Compile").await;
    assert_eq!(error.code, FailureType::ConfigurationError.into());
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
        start_on_create: false,
    };
    let ctx = |id: &str| ServiceContext {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        now: 100.0,
        new_id: id.into(),
        caller: None,
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

    /// The error recorded on the latest run of `stage`/`action`.
    async fn error_of(
        &self,
        id: &str,
        stage: &str,
        action: &str,
    ) -> pipewright_core::execution::ErrorDetails {
        let snapshot = self.executions_snapshot(id).await;
        let run = snapshot
            .latest_action(stage, action)
            .expect("the action ran");
        run.output
            .execution_result
            .error_details
            .clone()
            .expect("an error")
    }
}

impl Snapshots for World {
    async fn executions_snapshot(&self, id: &str) -> pipewright_core::execution::ExecutionSnapshot {
        use pipewright_core::engine::ExecutionStore;
        self.executions.snapshot(id).await.unwrap().unwrap()
    }
}

// ---------------------------------------------------------------------- Lambda invoke jobs

/// Source (S3) → Invoke (Lambda, namespace InvokeVars, an output artifact) → Build (Commands
/// echoing the function's output variable).
fn invoke_pipeline() -> Value {
    json!({
        "name": "invoker",
        "roleArn": "arn:aws:iam::123456789012:role/invoker",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            support::s3_source_stage("SourceArtifact"),
            {"name": "Invoke", "actions": [{
                "name": "Invoke",
                "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                "configuration": {"FunctionName": "pipewright-worker", "UserParameters": "run #{codepipeline.PipelineExecutionId}"},
                "inputArtifacts": [{"name": "SourceArtifact"}],
                "outputArtifacts": [{"name": "Report"}],
                "namespace": "InvokeVars"
            }]},
            {"name": "Build", "actions": [{
                "name": "Echo",
                "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                "commands": ["echo #{InvokeVars.greeting}"],
                "inputArtifacts": [{"name": "Report"}]
            }]}
        ]
    })
}

impl World {
    /// A world holding [`invoke_pipeline`] too, with an execution `id` that has run its Source
    /// stage and begun its Invoke action as job `job_id` (token `t-invoke`).
    async fn at_invoke(id: &str, job_id: &str) -> (Self, pipewright_core::engine::PreparedAction) {
        let world = Self::new().await;
        world.add_pipeline(invoke_pipeline()).await;
        let engine = world.engine();
        let mut start = start_request(id);
        start.pipeline_name = "invoker".into();
        engine.start_execution(start).await.unwrap();
        let ids = invoker_ids(id);
        engine
            .enter_stage(&ids, "Source", "t0", 11.0)
            .await
            .unwrap();
        let source = engine
            .begin_action(&ids, "Source", "Source", "a-src", "t-src", 12.0)
            .await
            .unwrap()
            .unwrap();
        engine
            .complete_action(
                &source.record,
                succeeded(&source.outputs, "v-src", &[]),
                13.0,
            )
            .await
            .unwrap();
        engine
            .leave_stage(&ids, "Source", true, 14.0)
            .await
            .unwrap();
        engine
            .enter_stage(&ids, "Invoke", "t1", 15.0)
            .await
            .unwrap();
        let prepared = engine
            .begin_action(&ids, "Invoke", "Invoke", job_id, "t-invoke", 16.0)
            .await
            .unwrap()
            .unwrap();
        drop(engine);
        (world, prepared)
    }
}

fn invoker_ids(id: &str) -> ExecutionIds {
    support::ids("invoker", id)
}

#[tokio::test]
async fn the_job_event_has_codepipelines_shape() {
    let id = "66666666-6666-4666-8666-666666666666";
    let job = "a0000000-0000-4000-8000-000000000001";
    let (_world, prepared) = World::at_invoke(id, job).await;
    let event = pipewright_core::jobs::job_event(&prepared, None);
    let data = &event["CodePipeline.job"]["data"];
    assert_eq!(event["CodePipeline.job"]["id"], job);
    assert_eq!(event["CodePipeline.job"]["accountId"], "123456789012");
    assert_eq!(
        data["actionConfiguration"]["configuration"],
        json!({"FunctionName": "pipewright-worker", "UserParameters": format!("run {id}")})
    );
    assert_eq!(
        data["inputArtifacts"],
        json!([{"name": "SourceArtifact", "revision": "v-src", "location": {"type": "S3",
            "s3Location": {"bucketName": "artifacts", "objectKey": "invoker/SourceArtifact/a-src.zip"}}}])
    );
    assert_eq!(
        data["outputArtifacts"],
        json!([{"name": "Report", "revision": null, "location": {"type": "S3",
            "s3Location": {"bucketName": "artifacts", "objectKey": format!("invoker/Report/{job}.zip")}}}])
    );
    assert!(data.get("continuationToken").is_none());
    // The community event type of the Rust runtime reads it.
    use aws_lambda_events::event::codepipeline_job::CodePipelineJobEvent;
    let decoded: CodePipelineJobEvent = serde_json::from_value(event).unwrap();
    assert_eq!(decoded.code_pipeline_job.id.as_deref(), Some(job));
    let again = pipewright_core::jobs::job_event(&prepared, Some("step-2"));
    assert_eq!(
        again["CodePipeline.job"]["data"]["continuationToken"],
        "step-2"
    );
}

#[tokio::test]
async fn a_job_succeeds_through_put_job_success_result_after_a_continuation() {
    let id = "77777777-7777-4777-8777-777777777777";
    let job = "a0000000-0000-4000-8000-000000000002";
    let (world, prepared) = World::at_invoke(id, job).await;

    // "Invoke me again": the action stays in progress, the function gets the token.
    world
        .api(
            "PutJobSuccessResult",
            json!({"jobId": job, "continuationToken": "step-2",
                   "executionDetails": {"summary": "half way", "percentComplete": 50}}),
        )
        .await
        .unwrap();
    assert_eq!(world.answer("t-invoke"), None);
    let invoked = world.functions.invoked.lock().unwrap().clone();
    assert_eq!(invoked.len(), 1);
    assert_eq!(invoked[0].0, "pipewright-worker");
    assert_eq!(
        invoked[0].1,
        pipewright_core::jobs::job_event(&prepared, Some("step-2"))
    );
    let running = world.executions_snapshot(id).await;
    let running = running.latest_action("Invoke", "Invoke").unwrap();
    assert_eq!(running.status, ActionExecutionStatus::InProgress);
    assert_eq!(
        running
            .output
            .execution_result
            .external_execution_summary
            .as_deref(),
        Some("half way")
    );
    assert!(
        running.task_token.is_some(),
        "the token is kept until the job ends"
    );
    // GetPipelineState shows how far it got.
    let action_state = |state: &Value| {
        state["stageStates"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|s| s["actionStates"].as_array().unwrap().iter())
            .find(|a| a["actionName"] == "Invoke")
            .cloned()
            .unwrap()
    };
    let state = world
        .api("GetPipelineState", json!({"name": "invoker"}))
        .await
        .unwrap();
    assert_eq!(
        action_state(&state)["latestExecution"]["percentComplete"],
        50
    );

    world
        .api(
            "PutJobSuccessResult",
            json!({"jobId": job, "outputVariables": {"greeting": "hello"},
                   "currentRevision": {"revision": "rev-7", "changeIdentifier": "change-7",
                                       "revisionSummary": "the seventh"},
                   "executionDetails": {"summary": "done", "externalExecutionId": "run-1"}}),
        )
        .await
        .unwrap();
    // The revision the job worked on is kept, as the action's currentRevision.
    let state = world
        .api("GetPipelineState", json!({"name": "invoker"}))
        .await
        .unwrap();
    let current = &action_state(&state)["currentRevision"];
    assert_eq!(current["revisionId"], "rev-7");
    assert_eq!(current["revisionChangeId"], "change-7");
    assert_eq!(world.answer("t-invoke"), Some(Ok(json!({}))));
    let snapshot = world.executions_snapshot(id).await;
    let done = snapshot.latest_action("Invoke", "Invoke").unwrap();
    assert_eq!(done.status, ActionExecutionStatus::Succeeded);
    assert_eq!(done.output.output_variables["greeting"], "hello");
    assert_eq!(done.output.output_artifacts, prepared.outputs);
    let result = &done.output.execution_result;
    assert_eq!(result.external_execution_summary.as_deref(), Some("done"));
    assert_eq!(result.external_execution_id.as_deref(), Some("run-1"));
    assert!(done.task_token.is_none());

    // Once ended, a job takes no more results.
    let err = world
        .api("PutJobSuccessResult", json!({"jobId": job}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "InvalidJobStateException");
    let err = world
        .api(
            "PutJobFailureResult",
            json!({"jobId": job, "failureDetails": {"type": "JobFailed", "message": "late"}}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, "InvalidJobStateException");

    // The output variable reaches the next stage.
    let engine = world.engine();
    let ids = invoker_ids(id);
    engine
        .leave_stage(&ids, "Invoke", true, 51.0)
        .await
        .unwrap();
    engine.enter_stage(&ids, "Build", "t2", 52.0).await.unwrap();
    let echo = engine
        .begin_action(&ids, "Build", "Echo", "a-echo", "t-echo", 53.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(echo.commands, vec!["echo hello".to_string()]);
    assert_eq!(
        echo.inputs[0].s3_location.key,
        format!("invoker/Report/{job}.zip")
    );
}

#[tokio::test]
async fn a_job_fails_through_put_job_failure_result() {
    let id = "88888888-8888-4888-8888-888888888888";
    let job = "a0000000-0000-4000-8000-000000000003";
    let (world, _) = World::at_invoke(id, job).await;
    world
        .api(
            "PutJobFailureResult",
            json!({"jobId": job, "failureDetails": {"type": "ConfigurationError",
                   "message": "no such environment", "externalExecutionId": "run-9"}}),
        )
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-invoke"),
        Some(Err("Pipewright.ActionFailed".into()))
    );
    let engine = world.engine();
    let ids = invoker_ids(id);
    assert!(engine.check_group(&ids, "Invoke", 1, 51.0).await.unwrap());
    engine
        .leave_stage(&ids, "Invoke", false, 52.0)
        .await
        .unwrap();
    let snapshot = world.executions_snapshot(id).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
    let summary = snapshot.execution.status_summary.clone().unwrap();
    assert!(
        summary.contains("ConfigurationError: no such environment"),
        "{summary}"
    );
    let failed = snapshot.latest_action("Invoke", "Invoke").unwrap();
    assert_eq!(
        failed
            .output
            .execution_result
            .external_execution_id
            .as_deref(),
        Some("run-9")
    );
}

#[tokio::test]
async fn job_results_are_checked_and_unknown_jobs_refused() {
    let id = "99999999-0000-4000-8000-000000000000";
    let job = "a0000000-0000-4000-8000-000000000004";
    let (world, _) = World::at_invoke(id, job).await;
    let refused = |body: Value, op: &'static str| {
        let world = &world;
        async move { world.api(op, body).await.unwrap_err() }
    };
    let cases = [
        (
            "PutJobSuccessResult",
            json!({"jobId": "not-a-job"}),
            "ValidationException",
            "jobId",
        ),
        (
            "PutJobSuccessResult",
            json!({}),
            "ValidationException",
            "jobId",
        ),
        (
            "PutJobSuccessResult",
            json!({"jobId": job, "continuationToken": ""}),
            "ValidationException",
            "continuationToken",
        ),
        (
            "PutJobSuccessResult",
            json!({"jobId": job, "executionDetails": {"percentComplete": 101}}),
            "ValidationException",
            "executionDetails.percentComplete",
        ),
        (
            "PutJobSuccessResult",
            json!({"jobId": job, "outputVariables": {"a b": "x"}}),
            "ValidationException",
            "outputVariables",
        ),
        (
            "PutJobSuccessResult",
            json!({"jobId": job, "outputVariables": {"big": "x".repeat(130_000)}}),
            "OutputVariablesSizeExceededException",
            "outputVariables",
        ),
        (
            "PutJobFailureResult",
            json!({"jobId": job, "failureDetails": {"type": "Oops", "message": "m"}}),
            "ValidationException",
            "failureDetails.type",
        ),
        (
            "PutJobFailureResult",
            json!({"jobId": job, "failureDetails": {"type": "JobFailed", "message": ""}}),
            "ValidationException",
            "failureDetails.message",
        ),
        (
            "PutJobFailureResult",
            json!({"jobId": job, "failureDetails": {"type": "JobFailed", "message": "x".repeat(5001)}}),
            "ValidationException",
            "failureDetails.message",
        ),
        (
            "PutJobFailureResult",
            json!({"jobId": job}),
            "ValidationException",
            "failureDetails",
        ),
        (
            "PutJobSuccessResult",
            json!({"jobId": "b0000000-0000-4000-8000-000000000000"}),
            "JobNotFoundException",
            "job",
        ),
    ];
    for (op, body, kind, member) in cases {
        let err = refused(body.clone(), op).await;
        assert_eq!(err.kind, kind, "{op} {body}: {}", err.message);
        assert!(err.message.contains(member), "{op} {body}: {}", err.message);
    }
    // Nothing was applied: the job is still in progress.
    assert_eq!(world.answer("t-invoke"), None);

    // An action that is not a job worker has no job, whatever its id.
    let engine = world.engine();
    let ids = ExecutionIds {
        pipeline_name: "pipewright-sample".into(),
        pipeline_version: 1,
        pipeline_execution_id: "99999999-1111-4000-8000-000000000000".into(),
    };
    engine
        .start_execution(start_request(&ids.pipeline_execution_id))
        .await
        .unwrap();
    engine
        .enter_stage(&ids, "Source", "s0", 11.0)
        .await
        .unwrap();
    let source_job = "c0000000-0000-4000-8000-000000000000";
    engine
        .begin_action(&ids, "Source", "Source", source_job, "s1", 12.0)
        .await
        .unwrap()
        .unwrap();
    let err = refused(json!({"jobId": source_job}), "PutJobSuccessResult").await;
    assert_eq!(err.kind, "JobNotFoundException");
}

#[tokio::test]
async fn a_continuation_that_cannot_invoke_the_function_fails_the_action() {
    let id = "99999999-2222-4000-8000-000000000000";
    let job = "a0000000-0000-4000-8000-000000000005";
    let (world, _) = World::at_invoke(id, job).await;
    *world.functions.failure.lock().unwrap() = Some(pipewright_core::jobs::InvokeError {
        code: FailureType::ConfigurationError,
        message: "Function not found: pipewright-worker".into(),
    });
    world
        .api(
            "PutJobSuccessResult",
            json!({"jobId": job, "continuationToken": "again"}),
        )
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-invoke"),
        Some(Err("Pipewright.ActionFailed".into()))
    );
    let error = world.error_of(id, "Invoke", "Invoke").await;
    assert_eq!(error.code, FailureType::ConfigurationError.into());
    assert!(
        error.message.contains("Function not found"),
        "{}",
        error.message
    );
}

#[tokio::test]
async fn a_job_id_is_unique_across_actions() {
    let id = "99999999-3333-4000-8000-000000000000";
    let job = "a0000000-0000-4000-8000-000000000006";
    let (world, prepared) = World::at_invoke(id, job).await;
    use pipewright_core::engine::ExecutionStore;
    let found = world.executions.find_job(job).await.unwrap().unwrap();
    assert_eq!(found, prepared.record);
    let mut other = prepared.record.clone();
    other.action_name = "Other".into();
    assert!(matches!(
        world.executions.put_action(&other, None, &[]).await,
        Err(pipewright_core::store::StoreError::Conflict(_))
    ));
    assert_eq!(world.executions.find_job("nope").await.unwrap(), None);
}

#[tokio::test]
async fn create_pipeline_starts_the_new_pipeline_once_as_its_creator_when_the_stack_says_so() {
    let world = World::new().await;
    let engine = world.engine();
    let sample: Value =
        serde_json::from_str(include_str!("../../../infra/pipelines/sample.json")).unwrap();
    let declaration = |name: &str| {
        let mut p = sample.get("pipeline").cloned().unwrap_or(sample.clone());
        p["name"] = json!(name);
        p
    };
    let creator = "arn:aws:sts::123456789012:assumed-role/deployer/ci";
    for (start_on_create, name) in [(true, "fresh"), (false, "quiet")] {
        let services = Services {
            pipelines: &world.pipelines,
            engine: Some(&engine),
            start_on_create,
        };
        let calls = std::sync::atomic::AtomicU32::new(0x5555_5555);
        let call = |op: &str, body: Value| {
            // Each call makes a fresh id, as the Lambda handler does.
            let n = calls.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let ctx = ServiceContext {
                region: "us-east-1".into(),
                account_id: "123456789012".into(),
                now: 100.0,
                new_id: format!("{n:08x}-5555-4555-8555-555555555555"),
                caller: Some(creator.into()),
            };
            let services = &services;
            let target = format!("CodePipeline_20150709.{op}");
            async move { handle(services, &ctx, &target, body.to_string().as_bytes()).await }
        };
        call("CreatePipeline", json!({ "pipeline": declaration(name) }))
            .await
            .unwrap();
        let listed = call("ListPipelineExecutions", json!({ "pipelineName": name }))
            .await
            .unwrap();
        let summaries = listed["pipelineExecutionSummaries"].as_array().unwrap();
        if !start_on_create {
            assert!(summaries.is_empty(), "{listed}");
            continue;
        }
        assert_eq!(summaries.len(), 1, "{listed}");
        assert_eq!(
            summaries[0]["trigger"],
            json!({"triggerType": "CreatePipeline", "triggerDetail": creator})
        );
        assert_eq!(summaries[0]["status"], "InProgress");
        // The run is real: its state machine was started.
        let runs = world.machines.started.lock().unwrap().clone();
        assert_eq!(runs.len(), 1, "one state machine run: {runs:?}");
        assert!(runs[0].1.contains("55555555"), "{runs:?}");
        // A StartPipelineExecution names its caller too.
        let out = call("StartPipelineExecution", json!({ "name": name }))
            .await
            .unwrap();
        let got = call(
            "GetPipelineExecution",
            json!({"pipelineName": name, "pipelineExecutionId": out["pipelineExecutionId"]}),
        )
        .await
        .unwrap();
        assert_eq!(
            got["pipelineExecution"]["trigger"],
            json!({"triggerType": "StartPipelineExecution", "triggerDetail": creator})
        );
    }
}
