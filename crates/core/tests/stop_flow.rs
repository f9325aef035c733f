//! StopPipelineExecution over in-memory ports: stop and wait, stop and abandon, stopping a
//! waiting execution, and the refusals.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{ActionOutcome, ExecutionIds, ExecutionStore};
use pipewright_core::execution::{
    ActionExecutionStatus, FailureType, PipelineExecutionStatus, StageExecutionStatus,
};
use serde_json::json;
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn ids(id: &str) -> ExecutionIds {
    support::ids("stoppable", id)
}

fn stop(id: &str, abandon: bool) -> serde_json::Value {
    json!({"pipelineName": "stoppable", "pipelineExecutionId": id, "abandon": abandon, "reason": "bad commit"})
}

#[tokio::test]
async fn stop_and_wait_lets_the_running_action_finish_then_stops() {
    let world = World::with_pipeline(three_stages("stoppable", ExecutionMode::Queued)).await;
    world.in_build("stoppable", A).await;
    assert_eq!(
        world
            .api("StopPipelineExecution", stop(A, false))
            .await
            .unwrap(),
        json!({"pipelineExecutionId": A})
    );
    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Stopping);
    // ListPipelineExecutions' summaries carry the reason (`stopTrigger`).
    let got = world
        .api(
            "ListPipelineExecutions",
            json!({"pipelineName": "stoppable"}),
        )
        .await
        .unwrap();
    let summary = &got["pipelineExecutionSummaries"][0];
    assert_eq!(summary["stopTrigger"]["reason"], "bad commit");
    assert_eq!(summary["status"], "Stopping");
    // Asking again to stop and wait is a duplicate.
    let err = world
        .api("StopPipelineExecution", stop(A, false))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "DuplicatedStopRequestException");

    // The running action finishes normally.
    let engine = world.engine();
    let running = snapshot.latest_action("Build", "Build").unwrap().clone();
    assert_eq!(running.status, ActionExecutionStatus::InProgress);
    assert!(engine
        .complete_action(&running, support::success(), 30.0)
        .await
        .unwrap());
    // No further group or stage: the group check says stop, the stage ends Stopped.
    assert!(engine.check_group(&ids(A), "Build", 1, 31.0).await.unwrap());
    engine
        .leave_stage(&ids(A), "Build", false, 32.0)
        .await
        .unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Stopped);
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::Stopped
    );
    assert_eq!(
        snapshot.latest_action("Build", "Build").unwrap().status,
        ActionExecutionStatus::Succeeded
    );
    let events = world.events();
    let pipeline_states: Vec<&str> = events
        .iter()
        .filter(|e| e.0 == "Pipeline Execution State Change")
        .map(|e| e.2.as_str())
        .collect();
    assert_eq!(pipeline_states, ["STARTED", "STOPPING", "STOPPED"]);
    let stopping = world
        .executions
        .outbox()
        .iter()
        .find(|e| e.detail["state"] == "STOPPING")
        .unwrap()
        .detail
        .clone();
    assert_eq!(stopping["stop-execution-comments"], "bad commit");
    // Nothing enters Deploy; a stopped execution cannot be stopped again.
    engine
        .enter_stage(&ids(A), "Deploy", "t-deploy", 33.0)
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-deploy"),
        Some(Err("Pipewright.Stopped".into()))
    );
    assert!(world.snapshot(A).await.stage("Deploy").is_none());
    let err = world
        .api("StopPipelineExecution", stop(A, true))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "PipelineExecutionNotStoppableException");
}

#[tokio::test]
async fn stop_and_abandon_ends_at_once_and_hands_the_stage_to_the_next_execution() {
    let world = World::with_pipeline(three_stages("stoppable", ExecutionMode::Queued)).await;
    world.in_build("stoppable", A).await;
    // B queues in front of Build.
    let engine = world.engine();
    world.run_source(&engine, "stoppable", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-enter-build-b", 22.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-enter-build-b"), None);

    world
        .api("StopPipelineExecution", stop(A, true))
        .await
        .unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Stopped);
    let action = snapshot.latest_action("Build", "Build").unwrap();
    assert_eq!(action.status, ActionExecutionStatus::Abandoned);
    assert_eq!(
        world.answer(&format!("t-build-{A}")),
        Some(Err("Pipewright.Stopped".into()))
    );
    assert!(world.events().contains(&(
        "Action Execution State Change".into(),
        "Build".into(),
        "ABANDONED".into()
    )));
    // The stage went to B at once.
    assert_eq!(world.answer("t-enter-build-b"), Some(Ok(json!({}))));
    // The abandoned branch is caught; the stage ends Stopped; B keeps the stage.
    assert!(engine.check_group(&ids(A), "Build", 1, 40.0).await.unwrap());
    engine
        .leave_stage(&ids(A), "Build", false, 41.0)
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.stage("Build").unwrap().status,
        StageExecutionStatus::Stopped
    );
    let (lock, _) = world
        .executions
        .stage_lock("stoppable", "Build")
        .await
        .unwrap();
    assert_eq!(lock.holder.as_deref(), Some(B));
    // The provider reporting late changes nothing.
    let mut outcome = ActionOutcome::failed(FailureType::JobFailed, "x");
    outcome.status = ActionExecutionStatus::Succeeded;
    assert!(!engine.complete_action(action, outcome, 42.0).await.unwrap());
}

#[tokio::test]
async fn stopping_a_waiting_execution_takes_it_out_of_the_queue() {
    let world = World::with_pipeline(three_stages("stoppable", ExecutionMode::Queued)).await;
    world.in_build("stoppable", A).await;
    let engine = world.engine();
    world.run_source(&engine, "stoppable", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-enter-build-b", 22.0)
        .await
        .unwrap();
    world
        .api("StopPipelineExecution", stop(B, false))
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(B).await.execution.status,
        PipelineExecutionStatus::Stopped
    );
    assert_eq!(
        world.answer("t-enter-build-b"),
        Some(Err("Pipewright.Stopped".into()))
    );
    let state = world
        .api("GetPipelineState", json!({"name": "stoppable"}))
        .await
        .unwrap();
    assert!(
        state["stageStates"][1].get("inboundExecutions").is_none(),
        "{state}"
    );
    // A leaves (QUEUED: it holds Build until it queues for Deploy): nobody is left to enter.
    engine
        .leave_stage(&ids(A), "Build", true, 50.0)
        .await
        .unwrap();
    engine
        .enter_stage(&ids(A), "Deploy", "t-deploy", 51.0)
        .await
        .unwrap();
    let (lock, _) = world
        .executions
        .stage_lock("stoppable", "Build")
        .await
        .unwrap();
    assert!(lock.is_idle(), "{lock:?}");
}

#[tokio::test]
async fn stop_requests_are_checked() {
    let world = World::with_pipeline(three_stages("stoppable", ExecutionMode::Queued)).await;
    world.in_build("stoppable", A).await;
    let err = world
        .api(
            "StopPipelineExecution",
            json!({"pipelineName": "stoppable", "pipelineExecutionId": B}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, "PipelineExecutionNotFoundException");
    let err = world
        .api(
            "StopPipelineExecution",
            json!({"pipelineName": "nope", "pipelineExecutionId": A}),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, "PipelineNotFoundException");
    let err = world
        .api("StopPipelineExecution", json!({"pipelineName": "stoppable", "pipelineExecutionId": A, "reason": "x".repeat(201)}))
        .await
        .unwrap_err();
    assert!(err.message.starts_with("reason"), "{}", err.message);
    let err = world
        .api(
            "StopPipelineExecution",
            json!({"pipelineName": "stoppable", "pipelineExecutionId": A, "abandon": "yes"}),
        )
        .await
        .unwrap_err();
    assert!(err.message.starts_with("abandon"), "{}", err.message);
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::InProgress
    );
    // Stop and wait, then change to stop and abandon.
    world
        .api("StopPipelineExecution", stop(A, false))
        .await
        .unwrap();
    world
        .api("StopPipelineExecution", stop(A, true))
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Stopped
    );
}
