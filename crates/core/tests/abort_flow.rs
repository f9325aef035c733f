//! Aborting an execution whose state machine failed where its definition has no other path (a
//! function error in a check, leave or finish task): over in-memory ports, the execution ends
//! Failed with a reason a person can act on, what was running is recorded Failed, the stage is
//! released to the next execution, and a repeated abort changes nothing.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{ExecutionIds, TaskRequest};
use pipewright_core::execution::{
    ActionExecutionStatus, FailureType, PipelineExecutionStatus, StageExecutionStatus,
};
use serde_json::json;
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn ids(id: &str) -> ExecutionIds {
    support::ids("abortable", id)
}

/// The `abortExecution` task of `id` as the compiled definition sends it, after a Lambda
/// function error was caught.
fn abort_task(id: &str) -> TaskRequest {
    serde_json::from_value(json!({
        "op": "abortExecution",
        "pipelineName": "abortable",
        "pipelineVersion": 1,
        "pipelineExecutionId": id,
        "error": {
            "Error": "Lambda.Unknown",
            "Cause": "{\"errorType\":\"Runtime.ExitError\",\"errorMessage\":\"process exited: signal 9\"}"
        }
    }))
    .expect("the compiled payload decodes")
}

#[tokio::test]
async fn an_aborted_execution_fails_with_its_reason_and_hands_the_stage_on() {
    let world = World::with_pipeline(three_stages("abortable", ExecutionMode::Queued)).await;
    world.in_build("abortable", A).await;
    // B waits in front of Build, which A holds.
    let engine = world.engine();
    world.run_source(&engine, "abortable", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-enter-build-B", 30.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-enter-build-B"), None);

    engine
        .handle_orchestrator_task(abort_task(A), 40.0)
        .await
        .unwrap();

    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
    let summary = snapshot.execution.status_summary.clone().unwrap();
    assert!(
        summary.contains("Lambda.Unknown: process exited: signal 9"),
        "{summary}"
    );
    assert!(summary.contains("retry the failed stage"), "{summary}");
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::Failed
    );
    let action = snapshot.latest_action("Build", "Build").unwrap();
    assert_eq!(action.status, ActionExecutionStatus::Failed);
    let error = action
        .output
        .execution_result
        .error_details
        .as_ref()
        .unwrap();
    assert_eq!(error.code, FailureType::JobFailed.into());
    assert!(error.message.contains("aborted"), "{}", error.message);
    // The action's task was told, and the stage went to B.
    assert_eq!(
        world.answer(&format!("t-build-{A}")),
        Some(Err("Pipewright.Aborted".into()))
    );
    assert!(matches!(world.answer("t-enter-build-B"), Some(Ok(_))));

    let a_events = |world: &World| {
        world
            .events()
            .into_iter()
            .filter(|(kind, what, state)| {
                state == "FAILED" && (kind == "Pipeline Execution State Change" || what == "Build")
            })
            .count()
    };
    // Pipeline FAILED, stage Build FAILED, action Build FAILED.
    assert_eq!(a_events(&world), 3, "{:?}", world.events());

    // A repeated abort (a retried task) records and publishes nothing more.
    engine
        .handle_orchestrator_task(abort_task(A), 41.0)
        .await
        .unwrap();
    assert_eq!(a_events(&world), 3, "{:?}", world.events());
    assert_eq!(world.snapshot(A).await.execution.last_update_time, 40.0);
}

#[tokio::test]
async fn aborting_a_stopping_execution_ends_it_stopped() {
    let world = World::with_pipeline(three_stages("abortable", ExecutionMode::Queued)).await;
    world.in_build("abortable", A).await;
    world
        .api(
            "StopPipelineExecution",
            json!({"pipelineName": "abortable", "pipelineExecutionId": A, "abandon": false}),
        )
        .await
        .unwrap();
    let engine = world.engine();
    engine
        .handle_orchestrator_task(abort_task(A), 40.0)
        .await
        .unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Stopped);
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::Failed
    );
}

#[tokio::test]
async fn an_older_runs_abort_changes_nothing() {
    let world = World::with_pipeline(three_stages("abortable", ExecutionMode::Queued)).await;
    world.in_build("abortable", A).await;
    let engine = world.engine();
    let current = world
        .snapshot(A)
        .await
        .execution
        .state_machine_execution_arn
        .expect("the run is recorded");
    let mut stale = abort_task(A);
    if let TaskRequest::AbortExecution { run, .. } = &mut stale {
        *run = Some(format!("{current}-retry-1-replaced"));
    }
    let events_before = world.events().len();
    engine.handle_orchestrator_task(stale, 40.0).await.unwrap();
    let snapshot = world.snapshot(A).await;
    assert_eq!(
        snapshot.execution.status,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::InProgress
    );
    assert_eq!(world.events().len(), events_before);
    // The current run's abort does abort.
    let mut own = abort_task(A);
    if let TaskRequest::AbortExecution { run, .. } = &mut own {
        *run = Some(current);
    }
    engine.handle_orchestrator_task(own, 41.0).await.unwrap();
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
}

/// QUEUED holds the stage an execution left until it queues in front of the next one; when the
/// next stage's Enter task fails before that (its catcher leaves the stage Failed), the stage it
/// left is released too, so the execution behind it goes on.
#[tokio::test]
async fn a_failed_entry_in_queued_mode_releases_the_stage_it_left() {
    let world = World::with_pipeline(three_stages("abortable", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.run_source(&engine, "abortable", A, "v1").await;
    // B waits in front of Source, which A still holds.
    engine
        .start_execution(pipewright_core::engine::StartRequest {
            pipeline_name: "abortable".into(),
            pipeline_execution_id: B.into(),
            trigger: pipewright_core::execution::ExecutionTrigger {
                trigger_type: pipewright_core::events::TriggerType::StartPipelineExecution,
                trigger_detail: "test".into(),
            },
            variables: vec![],
            source_revisions: vec![],
            idempotency_key: None,
            now: 15.0,
        })
        .await
        .unwrap();
    engine
        .enter_stage(&ids(B), "Source", "t-enter-source-B", 16.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-enter-source-B"), None);

    // A's Enter of Build failed before it queued there: its catcher leaves Build Failed.
    engine
        .leave_stage(&ids(A), "Build", false, 20.0)
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
    assert!(matches!(world.answer("t-enter-source-B"), Some(Ok(_))));
}
