//! RetryStageExecution over in-memory ports: FAILED_ACTIONS keeps what succeeded, ALL_ACTIONS
//! runs everything again, and the refusals CodePipeline documents.

mod support;

use pipewright_core::engine::{ActionOutcome, Engine, ExecutionIds};
use pipewright_core::execution::{
    ActionExecutionStatus, FailureType, PipelineExecutionStatus, StageExecutionStatus,
};
use serde_json::{json, Value};
use support::World;

const A: &str = "aaaaaaaa-0000-4000-8000-00000000000a";
const B: &str = "bbbbbbbb-0000-4000-8000-00000000000b";

/// Source → Build (Compile and Lint in parallel) → Deploy, QUEUED.
fn pipeline() -> Value {
    let commands = |name: &str| {
        json!({
            "name": name,
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": ["true"],
            "inputArtifacts": [{"name": "Src"}]
        })
    };
    json!({
        "name": "retried",
        "roleArn": "arn:aws:iam::123456789012:role/retried",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "executionMode": "QUEUED",
        "stages": [
            support::s3_source_stage("Src"),
            {"name": "Build", "actions": [commands("Compile"), commands("Lint")]},
            {"name": "Deploy", "actions": [commands("Ship")]}
        ]
    })
}

fn ids(id: &str) -> ExecutionIds {
    support::ids("retried", id)
}

/// Run Build of `id` (attempt as recorded), with each action succeeding or not; the state
/// machine's group check and leave follow.
async fn run_build(engine: &Engine<'_>, id: &str, tag: &str, compile: bool, lint: bool) {
    engine
        .enter_stage(&ids(id), "Build", &format!("t-enter-{tag}"), 20.0)
        .await
        .unwrap();
    for (action, succeed) in [("Compile", compile), ("Lint", lint)] {
        let prepared = engine
            .begin_action(
                &ids(id),
                "Build",
                action,
                &format!("{action}-{tag}-{id}"),
                &format!("t-{action}-{tag}"),
                21.0,
            )
            .await
            .unwrap();
        if let Some(prepared) = prepared {
            let outcome = if succeed {
                support::success()
            } else {
                ActionOutcome::failed(FailureType::JobFailed, format!("{action} broke"))
            };
            engine
                .complete_action(&prepared.record, outcome, 22.0)
                .await
                .unwrap();
        }
    }
    let failed = engine
        .check_group(&ids(id), "Build", 1, 23.0)
        .await
        .unwrap();
    engine
        .leave_stage(&ids(id), "Build", !failed, 24.0)
        .await
        .unwrap();
}

async fn failed_in_build(world: &World, id: &str) {
    let engine = world.engine();
    world.run_source(&engine, "retried", id, "v1").await;
    run_build(&engine, id, "first", true, false).await;
    assert_eq!(
        world.snapshot(id).await.execution.status,
        PipelineExecutionStatus::Failed
    );
}

fn retry(id: &str, mode: &str) -> Value {
    json!({"pipelineName": "retried", "stageName": "Build", "pipelineExecutionId": id, "retryMode": mode})
}

#[tokio::test]
async fn failed_actions_runs_only_what_failed_and_the_execution_goes_on() {
    let world = World::with_pipeline(pipeline()).await;
    failed_in_build(&world, A).await;
    let out = world
        .api("RetryStageExecution", retry(A, "FAILED_ACTIONS"))
        .await
        .unwrap();
    assert_eq!(out, json!({"pipelineExecutionId": A}));
    let snapshot = world.snapshot(A).await;
    assert_eq!(
        snapshot.execution.status,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(snapshot.execution.status_summary, None);
    // The same execution resumes at Build in a new state machine run.
    let started = world.machines.started.lock().unwrap().clone();
    let (_, name, input) = started.last().unwrap();
    assert_eq!(name, &format!("{A}-retry-2"));
    assert_eq!(input["startStage"], "Build");
    assert_eq!(input["pipelineExecutionId"], A);

    let engine = world.engine();
    run_build(&engine, A, "second", true, true).await;
    let snapshot = world.snapshot(A).await;
    let build = snapshot.stage("Build").unwrap();
    assert_eq!(
        (build.attempt, build.status),
        (2, StageExecutionStatus::Succeeded)
    );
    // Compile kept its first result (never ran again); Lint ran again and succeeded.
    let compile = snapshot.latest_action("Build", "Compile").unwrap();
    assert_eq!(
        (compile.attempt, compile.status),
        (2, ActionExecutionStatus::Succeeded)
    );
    assert_eq!(world.answer("t-Compile-second"), Some(Ok(json!({}))));
    let lint = snapshot.latest_action("Build", "Lint").unwrap();
    assert_eq!(
        (lint.attempt, lint.status),
        (2, ActionExecutionStatus::Succeeded)
    );
    let compile_starts = world
        .events()
        .iter()
        .filter(|e| e.1 == "Compile" && e.2 == "STARTED")
        .count();
    assert_eq!(compile_starts, 1, "Compile ran once");
    assert!(world.events().contains(&(
        "Stage Execution State Change".into(),
        "Build".into(),
        "RESUMED".into()
    )));
    assert!(world
        .events()
        .iter()
        .any(|e| e.0 == "Pipeline Execution State Change" && e.2 == "RESUMED"));
    // The retried attempt's stage events say when it was retried; the first attempt's do not.
    let retried_at: Vec<Option<Value>> = world
        .executions
        .outbox()
        .iter()
        .filter(|e| {
            e.detail.get("stage") == Some(&json!("Build")) && e.detail.get("action").is_none()
        })
        .map(|e| e.detail.get("stage-last-retry-attempt-time").cloned())
        .collect();
    assert!(
        retried_at.first().is_some_and(Option::is_none),
        "{retried_at:?}"
    );
    assert!(
        retried_at.last().is_some_and(Option::is_some),
        "{retried_at:?}"
    );
    // GetPipelineState counts the retry, by hand.
    let state = world
        .api("GetPipelineState", json!({"name": "retried"}))
        .await
        .unwrap();
    let build_state = state["stageStates"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["stageName"] == "Build")
        .unwrap();
    assert_eq!(
        build_state["retryStageMetadata"],
        json!({"autoStageRetryAttempt": 0, "manualStageRetryAttempt": 1,
               "latestRetryTrigger": "ManualStageRetry"})
    );
    // And on to Deploy and success.
    engine
        .enter_stage(&ids(A), "Deploy", "t-deploy", 30.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-deploy"), Some(Ok(json!({}))));
}

#[tokio::test]
async fn all_actions_runs_every_action_again() {
    let world = World::with_pipeline(pipeline()).await;
    failed_in_build(&world, A).await;
    world
        .api("RetryStageExecution", retry(A, "ALL_ACTIONS"))
        .await
        .unwrap();
    run_build(&world.engine(), A, "second", true, true).await;
    let compile_starts = world
        .events()
        .iter()
        .filter(|e| e.1 == "Compile" && e.2 == "STARTED")
        .count();
    assert_eq!(compile_starts, 2);
    assert_eq!(
        world.snapshot(A).await.stage("Build").unwrap().status,
        StageExecutionStatus::Succeeded
    );
}

#[tokio::test]
async fn retries_are_refused_when_codepipeline_refuses_them() {
    let world = World::with_pipeline(pipeline()).await;
    let engine = world.engine();
    world.run_source(&engine, "retried", A, "v1").await;
    // Running: not retryable.
    let err = world
        .api("RetryStageExecution", retry(A, "FAILED_ACTIONS"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "StageNotRetryableException", "{err:?}");
    run_build(&engine, A, "first", true, false).await;
    // A stage that did not fail.
    let mut body = retry(A, "FAILED_ACTIONS");
    body["stageName"] = json!("Source");
    let err = world.api("RetryStageExecution", body).await.unwrap_err();
    assert_eq!(err.kind, "StageNotRetryableException", "{err:?}");
    // Bad members.
    let mut body = retry(A, "SOME_ACTIONS");
    assert_eq!(
        world
            .api("RetryStageExecution", body.clone())
            .await
            .unwrap_err()
            .kind,
        "ValidationException"
    );
    body["retryMode"] = json!("ALL_ACTIONS");
    body["stageName"] = json!("Nope");
    assert_eq!(
        world
            .api("RetryStageExecution", body)
            .await
            .unwrap_err()
            .kind,
        "StageNotFoundException"
    );
    // Another execution entered Build since.
    world.run_source(&engine, "retried", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-b", 40.0)
        .await
        .unwrap();
    let err = world
        .api("RetryStageExecution", retry(A, "FAILED_ACTIONS"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "NotLatestPipelineExecutionException", "{err:?}");
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
}

#[tokio::test]
async fn a_changed_pipeline_cannot_be_retried() {
    let world = World::with_pipeline(pipeline()).await;
    failed_in_build(&world, A).await;
    let mut changed = pipeline();
    changed["version"] = json!(1);
    changed["stages"][2]["actions"][0]["commands"] = json!(["echo changed"]);
    world
        .api("UpdatePipeline", json!({"pipeline": changed}))
        .await
        .unwrap();
    let err = world
        .api("RetryStageExecution", retry(A, "FAILED_ACTIONS"))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "StageNotRetryableException");
    assert!(err.message.contains("changed"), "{}", err.message);
}

#[tokio::test]
async fn a_change_of_variables_alone_leaves_a_failed_stage_retryable() {
    let world = World::with_pipeline(pipeline()).await;
    failed_in_build(&world, A).await;
    let mut changed = pipeline();
    changed["version"] = json!(1);
    changed["variables"] = json!([{"name": "Region", "defaultValue": "eu-west-1"}]);
    world
        .api("UpdatePipeline", json!({"pipeline": changed}))
        .await
        .unwrap();
    world
        .api("RetryStageExecution", retry(A, "FAILED_ACTIONS"))
        .await
        .unwrap();
    // The retry runs the version the execution ran.
    let started = world.machines.started.lock().unwrap().clone();
    assert!(
        started
            .iter()
            .any(|s| s.0.contains("retried") && s.2["pipelineVersion"] == 1),
        "{started:?}"
    );
}
