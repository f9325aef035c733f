//! DeletePipeline leaves nothing running and nothing to inherit, over in-memory ports: running
//! and waiting executions end Failed saying the pipeline was deleted (their task tokens failed),
//! the state machines of every version are deleted, the stage locks (with a disabled transition)
//! and listings go, and a pipeline created again under the name starts clean.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::ExecutionStore;
use pipewright_core::execution::PipelineExecutionStatus;
use serde_json::json;
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";
const C: &str = "cccccccc-0000-4000-8000-000000000003";

#[tokio::test]
async fn deleting_a_pipeline_ends_what_runs_and_a_new_one_starts_clean() {
    let world = World::with_pipeline(three_stages("gone", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.in_build("gone", A).await;
    world.run_source(&engine, "gone", B, "v2").await;
    engine
        .enter_stage(&support::ids("gone", B), "Build", "t-enter-b", 40.0)
        .await
        .unwrap();
    world
        .api(
            "DisableStageTransition",
            json!({"pipelineName": "gone", "stageName": "Deploy",
                   "transitionType": "Inbound", "reason": "freeze"}),
        )
        .await
        .unwrap();
    // The pipeline's state machine exists (the executions started it).
    assert!(!world.machines.machines.lock().unwrap().is_empty());

    world
        .api("DeletePipeline", json!({"name": "gone"}))
        .await
        .unwrap();

    for id in [A, B] {
        let execution = world.snapshot(id).await.execution;
        assert_eq!(execution.status, PipelineExecutionStatus::Failed, "{id}");
        let summary = execution.status_summary.unwrap_or_default();
        assert!(summary.contains("was deleted"), "{summary}");
    }
    // The running action's task and the waiting execution's were told.
    assert!(matches!(
        world.answer(&format!("t-build-{A}")),
        Some(Err(_))
    ));
    assert!(matches!(world.answer("t-enter-b"), Some(Err(_))));
    let a = world.snapshot(A).await;
    assert_eq!(
        a.latest_action("Build", "Build").unwrap().status,
        pipewright_core::execution::ActionExecutionStatus::Failed
    );
    assert!(
        world.machines.machines.lock().unwrap().is_empty(),
        "machines deleted"
    );
    let (lock, _) = world.executions.stage_lock("gone", "Deploy").await.unwrap();
    assert!(lock.disabled.is_none() && lock.is_idle(), "{lock:?}");
    assert!(world
        .executions
        .latest_stage_executions("gone")
        .await
        .unwrap()
        .is_empty());
    // Deleting again (or a pipeline that never was) is not an error.
    world
        .api("DeletePipeline", json!({"name": "gone"}))
        .await
        .unwrap();

    // The same name again: no history, no frozen transition, a stage free to enter.
    world
        .add_pipeline(three_stages("gone", ExecutionMode::Queued))
        .await;
    let listed = world
        .api("ListPipelineExecutions", json!({"pipelineName": "gone"}))
        .await
        .unwrap();
    assert_eq!(listed["pipelineExecutionSummaries"], json!([]));
    let state = world
        .api("GetPipelineState", json!({"name": "gone"}))
        .await
        .unwrap();
    for stage in state["stageStates"].as_array().unwrap() {
        assert!(stage.get("latestExecution").is_none(), "{stage:#}");
        if let Some(transition) = stage.get("inboundTransitionState") {
            assert_eq!(transition["enabled"], json!(true), "{stage:#}");
        }
    }
    world.run_source(&engine, "gone", C, "v3").await;
    engine
        .enter_stage(&support::ids("gone", C), "Build", "t-enter-c", 60.0)
        .await
        .unwrap();
    assert!(
        matches!(world.answer("t-enter-c"), Some(Ok(_))),
        "C enters at once"
    );
}
