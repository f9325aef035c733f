//! Disable/EnableStageTransition over in-memory ports: arrivals are held (and supersedable in
//! SUPERSEDED mode), enabling lets them go on, and GetPipelineState shows it all.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::ExecutionIds;
use pipewright_core::execution::PipelineExecutionStatus;
use serde_json::{json, Value};
use support::{three_stages, World, CALLER};

const A: &str = "aaaaaaaa-0000-4000-8000-0000000000a1";
const B: &str = "bbbbbbbb-0000-4000-8000-0000000000b2";

fn ids(id: &str) -> ExecutionIds {
    support::ids("gated", id)
}

fn disable(stage: &str, kind: &str) -> Value {
    json!({"pipelineName": "gated", "stageName": stage, "transitionType": kind, "reason": "change freeze (Friday)"})
}

fn enable(stage: &str, kind: &str) -> Value {
    json!({"pipelineName": "gated", "stageName": stage, "transitionType": kind})
}

/// Execution `id` ran Source and arrived in front of Build.
async fn at_build(world: &World, id: &str) {
    let engine = world.engine();
    world.run_source(&engine, "gated", id, "v").await;
    engine
        .enter_stage(&ids(id), "Build", &format!("t-build-{id}"), 20.0)
        .await
        .unwrap();
}

#[tokio::test]
async fn a_disabled_transition_holds_the_execution_until_it_is_enabled() {
    let world = World::with_pipeline(three_stages("gated", ExecutionMode::Queued)).await;
    assert_eq!(
        world
            .api("DisableStageTransition", disable("Build", "Inbound"))
            .await
            .unwrap(),
        json!({})
    );
    at_build(&world, A).await;
    assert_eq!(world.answer(&format!("t-build-{A}")), None, "held");
    let state = world
        .api("GetPipelineState", json!({"name": "gated"}))
        .await
        .unwrap();
    let build = &state["stageStates"][1];
    assert_eq!(build["inboundTransitionState"]["enabled"], false);
    assert_eq!(
        build["inboundTransitionState"]["disabledReason"],
        "change freeze (Friday)"
    );
    assert_eq!(build["inboundTransitionState"]["lastChangedBy"], CALLER);
    assert_eq!(build["inboundExecutions"][0]["pipelineExecutionId"], A);
    assert_eq!(
        state["stageStates"][2]["inboundTransitionState"]["enabled"],
        true
    );

    // Source's outbound transition is Build's inbound one.
    world
        .api("EnableStageTransition", enable("Source", "Outbound"))
        .await
        .unwrap();
    assert_eq!(world.answer(&format!("t-build-{A}")), Some(Ok(json!({}))));
    assert!(world.snapshot(A).await.stage("Build").is_some());
    let state = world
        .api("GetPipelineState", json!({"name": "gated"}))
        .await
        .unwrap();
    assert_eq!(
        state["stageStates"][1]["inboundTransitionState"]["enabled"],
        true
    );
    assert!(state["stageStates"][1].get("inboundExecutions").is_none());
}

#[tokio::test]
async fn a_held_execution_is_superseded_by_a_newer_one_in_superseded_mode() {
    let world = World::with_pipeline(three_stages("gated", ExecutionMode::Superseded)).await;
    world
        .api("DisableStageTransition", disable("Build", "Inbound"))
        .await
        .unwrap();
    at_build(&world, A).await;
    at_build(&world, B).await;
    assert_eq!(
        world.answer(&format!("t-build-{A}")),
        Some(Err("Pipewright.Superseded".into()))
    );
    let a = world.snapshot(A).await.execution;
    assert_eq!(a.status, PipelineExecutionStatus::Superseded);
    assert!(a.status_summary.unwrap().contains(B));
    assert!(world.events().contains(&(
        "Pipeline Execution State Change".into(),
        String::new(),
        "SUPERSEDED".into()
    )));
    world
        .api("EnableStageTransition", enable("Build", "Inbound"))
        .await
        .unwrap();
    assert_eq!(world.answer(&format!("t-build-{B}")), Some(Ok(json!({}))));
}

#[tokio::test]
async fn parallel_executions_are_held_too_and_all_go_when_enabled() {
    let world = World::with_pipeline(three_stages("gated", ExecutionMode::Parallel)).await;
    world
        .api("DisableStageTransition", disable("Build", "Inbound"))
        .await
        .unwrap();
    at_build(&world, A).await;
    at_build(&world, B).await;
    assert_eq!(world.answer(&format!("t-build-{A}")), None);
    assert_eq!(world.answer(&format!("t-build-{B}")), None);
    world
        .api("EnableStageTransition", enable("Build", "Inbound"))
        .await
        .unwrap();
    assert_eq!(world.answer(&format!("t-build-{A}")), Some(Ok(json!({}))));
    assert_eq!(world.answer(&format!("t-build-{B}")), Some(Ok(json!({}))));
}

#[tokio::test]
async fn transition_requests_are_checked() {
    let world = World::with_pipeline(three_stages("gated", ExecutionMode::Queued)).await;
    for (op, body, starts) in [
        (
            "DisableStageTransition",
            disable("Source", "Inbound"),
            "transitionType",
        ),
        (
            "DisableStageTransition",
            disable("Deploy", "Outbound"),
            "transitionType",
        ),
        (
            "DisableStageTransition",
            disable("Build", "Sideways"),
            "transitionType",
        ),
        (
            "DisableStageTransition",
            enable("Build", "Inbound"),
            "reason",
        ),
        (
            "EnableStageTransition",
            disable("Build", "Inbound"),
            "reason",
        ),
    ] {
        let err = world.api(op, body).await.unwrap_err();
        assert_eq!(err.kind, "ValidationException", "{err:?}");
        assert!(err.message.starts_with(starts), "{}", err.message);
    }
    let mut bad = disable("Build", "Inbound");
    bad["reason"] = json!("<script>");
    assert_eq!(
        world
            .api("DisableStageTransition", bad)
            .await
            .unwrap_err()
            .kind,
        "ValidationException"
    );
    assert_eq!(
        world
            .api("DisableStageTransition", disable("Nope", "Inbound"))
            .await
            .unwrap_err()
            .kind,
        "StageNotFoundException"
    );
    let mut other = disable("Build", "Inbound");
    other["pipelineName"] = json!("missing");
    assert_eq!(
        world
            .api("DisableStageTransition", other)
            .await
            .unwrap_err()
            .kind,
        "PipelineNotFoundException"
    );
    // Nothing was disabled.
    let state = world
        .api("GetPipelineState", json!({"name": "gated"}))
        .await
        .unwrap();
    let stages = state["stageStates"].as_array().unwrap();
    // The first stage has no inbound transition; the others are all enabled.
    assert!(stages[0].get("inboundTransitionState").is_none());
    for stage in &stages[1..] {
        assert_eq!(stage["inboundTransitionState"]["enabled"], true);
    }
}
