//! UpdatePipeline while executions run: an execution that started on a structure the pipeline
//! no longer has finishes the stage it is in and is CANCELED before the next one (a waiting one
//! when its turn comes); a change that leaves the stages alone (execution mode, variables)
//! cancels nothing.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::ExecutionIds;
use pipewright_core::execution::{PipelineExecutionStatus, StageExecutionStatus};
use serde_json::{json, Value};
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-0000000000a1";
const B: &str = "bbbbbbbb-0000-4000-8000-0000000000b2";

fn ids(id: &str) -> ExecutionIds {
    support::ids("moving", id)
}

async fn update(world: &World, change: impl FnOnce(&mut Value)) {
    let mut declaration = world
        .api("GetPipeline", json!({"name": "moving"}))
        .await
        .unwrap()["pipeline"]
        .clone();
    change(&mut declaration);
    world
        .api("UpdatePipeline", json!({ "pipeline": declaration }))
        .await
        .unwrap();
}

fn cancel_events(world: &World) -> usize {
    world
        .events()
        .iter()
        .filter(|(kind, _, state)| kind == "Pipeline Execution State Change" && state == "CANCELED")
        .count()
}

#[tokio::test]
async fn a_structure_change_cancels_the_execution_at_its_next_stage() {
    let world = World::with_pipeline(three_stages("moving", ExecutionMode::Superseded)).await;
    let engine = world.engine();
    world.run_source(&engine, "moving", A, "v1").await;
    // While A is between Source and Build, Deploy is renamed.
    update(&world, |d| d["stages"][2]["name"] = json!("Release")).await;
    engine
        .enter_stage(&ids(A), "Build", "t-build-a", 20.0)
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-build-a"),
        Some(Err("Pipewright.Stopped".into())),
        "the state machine ends"
    );
    let a = world.snapshot(A).await;
    assert_eq!(a.execution.status, PipelineExecutionStatus::Cancelled);
    let summary = a.execution.status_summary.clone().unwrap();
    assert!(
        summary.contains("pipeline structure was updated") && summary.contains("Build"),
        "{summary}"
    );
    assert!(a.stage("Build").is_none(), "Build never started");
    assert_eq!(cancel_events(&world), 1);
    let got = world
        .api(
            "GetPipelineExecution",
            json!({"pipelineName": "moving", "pipelineExecutionId": A}),
        )
        .await
        .unwrap();
    assert_eq!(got["pipelineExecution"]["status"], "Cancelled");
    // The stage is free for the next execution.
    let b_ids = ExecutionIds {
        pipeline_version: 2,
        ..ids(B)
    };
    world.run_source(&engine, "moving", B, "v2").await;
    engine
        .enter_stage(&b_ids, "Build", "t-build-b", 30.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-build-b"), Some(Ok(json!({}))));
}

#[tokio::test]
async fn a_waiting_execution_is_cancelled_when_its_turn_comes_and_passes_it_on() {
    let world = World::with_pipeline(three_stages("moving", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.run_source(&engine, "moving", A, "v1").await;
    engine
        .enter_stage(&ids(A), "Build", "t-build-a", 20.0)
        .await
        .unwrap();
    world.run_source(&engine, "moving", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-build-b", 21.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-build-b"), None, "B waits behind A");
    update(&world, |d| {
        d["stages"][1]["actions"][0]["name"] = json!("Compile")
    })
    .await;
    // A was inside Build: it is never cancelled there; it finishes Build and is cancelled in
    // front of Deploy, which hands Build to B, cancelled in turn.
    engine
        .leave_stage(&ids(A), "Build", true, 40.0)
        .await
        .unwrap();
    engine
        .enter_stage(&ids(A), "Deploy", "t-deploy-a", 41.0)
        .await
        .unwrap();
    let a = world.snapshot(A).await;
    assert_eq!(
        a.stage("Build").unwrap().status,
        StageExecutionStatus::Succeeded
    );
    assert_eq!(a.execution.status, PipelineExecutionStatus::Cancelled);
    assert!(a.stage("Deploy").is_none());
    assert_eq!(
        world.answer("t-deploy-a"),
        Some(Err("Pipewright.Stopped".into()))
    );
    assert_eq!(
        world.answer("t-build-b"),
        Some(Err("Pipewright.Stopped".into()))
    );
    assert_eq!(
        world.snapshot(B).await.execution.status,
        PipelineExecutionStatus::Cancelled
    );
    assert_eq!(cancel_events(&world), 2);
}

#[tokio::test]
async fn changing_only_the_execution_mode_or_variables_cancels_nothing() {
    let world = World::with_pipeline(three_stages("moving", ExecutionMode::Superseded)).await;
    let engine = world.engine();
    world.run_source(&engine, "moving", A, "v1").await;
    update(&world, |d| {
        d["executionMode"] = json!("QUEUED");
        d["variables"] = json!([{"name": "Region", "defaultValue": "eu-west-1"}]);
    })
    .await;
    engine
        .enter_stage(&ids(A), "Build", "t-build-a", 20.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-build-a"), Some(Ok(json!({}))));
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(cancel_events(&world), 0);
}

#[tokio::test]
async fn parallel_executions_are_not_cancelled_by_a_structure_change() {
    let world = World::with_pipeline(three_stages("moving", ExecutionMode::Parallel)).await;
    let engine = world.engine();
    world.run_source(&engine, "moving", A, "v1").await;
    update(&world, |d| d["stages"][2]["name"] = json!("Release")).await;
    engine
        .enter_stage(&ids(A), "Build", "t-build-a", 20.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-build-a"), Some(Ok(json!({}))));
    assert_eq!(cancel_events(&world), 0);
}
