//! Every state-machine task is idempotent under re-delivery (Step Functions retrying a task,
//! Lambda delivering an invocation again), over in-memory ports: a repeated enterStage,
//! runAction, checkGroup, leaveStage or finishExecution gives the same answer, records nothing
//! twice, publishes no second event, and finishes what a first run that died midway left
//! undone.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{action_execution_id, ExecutionIds};
use pipewright_core::execution::{ActionExecutionStatus, FailureType, PipelineExecutionStatus};
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

fn ids(id: &str) -> ExecutionIds {
    support::ids("again", id)
}

/// Events as (detail-type word, stage or action, state), with every event id distinct.
fn events(world: &World) -> Vec<(String, String, String)> {
    let outbox = world.executions.outbox();
    let mut ids: Vec<&str> = outbox.iter().map(|e| e.event_id().unwrap()).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), outbox.len(), "an event id repeats");
    world.events()
}

fn count(events: &[(String, String, String)], what: &str, state: &str) -> usize {
    events
        .iter()
        .filter(|(_, w, s)| w == what && s == state)
        .count()
}

#[tokio::test]
async fn an_enter_delivered_twice_opens_one_attempt_and_answers_the_same() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.run_source(&engine, "again", A, "v1").await;
    for at in [20.0, 21.0] {
        engine
            .enter_stage(&ids(A), "Build", "t-enter-build", at)
            .await
            .unwrap();
    }
    let snapshot = world.snapshot(A).await;
    let attempts: Vec<u32> = snapshot
        .stages
        .iter()
        .filter(|s| s.stage_name == "Build")
        .map(|s| s.attempt)
        .collect();
    assert_eq!(attempts, [1]);
    let entered = snapshot.stage("Build").unwrap();
    assert_ne!(
        entered.entered_by.as_deref(),
        Some("t-enter-build"),
        "never the token"
    );
    let calls: Vec<_> = world
        .tasks
        .calls
        .lock()
        .unwrap()
        .iter()
        .filter(|(t, _)| t == "t-enter-build")
        .map(|(_, answer)| answer.is_ok())
        .collect();
    assert_eq!(calls, [true, true], "the same answer, sent again");
    assert_eq!(count(&events(&world), "Build", "STARTED"), 1);
}

#[tokio::test]
async fn a_run_action_delivered_again_is_the_same_action_execution() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.run_source(&engine, "again", A, "v1").await;
    engine
        .enter_stage(&ids(A), "Build", "t-enter-build", 20.0)
        .await
        .unwrap();
    let id = action_execution_id("t-build");
    assert_eq!(id, action_execution_id("t-build"));
    assert_ne!(id, action_execution_id("t-build-2"));
    let first = engine
        .begin_action(&ids(A), "Build", "Build", &id, "t-build", 21.0)
        .await
        .unwrap()
        .unwrap();
    // The first run died before completing: the task comes again and runs the action again,
    // under the same record and output keys.
    let second = engine
        .begin_action(&ids(A), "Build", "Build", &id, "t-build", 25.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(second.record, first.record);
    assert_eq!(second.outputs, first.outputs);
    assert_eq!(second.commands, first.commands);
    assert_eq!(second.inputs, first.inputs);
    engine
        .complete_action(&second.record, support::success(), 30.0)
        .await
        .unwrap();
    // Delivered once more after it completed: nothing runs, nothing is recorded.
    let third = engine
        .begin_action(&ids(A), "Build", "Build", &id, "t-build", 31.0)
        .await
        .unwrap();
    assert!(third.is_none());
    let snapshot = world.snapshot(A).await;
    let runs: Vec<_> = snapshot
        .actions
        .iter()
        .filter(|a| a.stage_name == "Build")
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, ActionExecutionStatus::Succeeded);
    // The group check agrees, however often it runs.
    for _ in 0..2 {
        assert!(!engine.check_group(&ids(A), "Build", 1, 32.0).await.unwrap());
    }
    let events = events(&world);
    assert_eq!(
        count(&events, "Build", "STARTED"),
        2,
        "one stage, one action"
    );
    assert_eq!(count(&events, "Build", "SUCCEEDED"), 1);
}

#[tokio::test]
async fn a_leave_delivered_twice_releases_once_and_lets_the_next_execution_in() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.in_build("again", A).await;
    // B queues behind A at Build.
    world.run_source(&engine, "again", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-enter-build-b", 40.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-enter-build-b"), None, "B waits");
    let a = world.snapshot(A).await;
    let run = a.latest_action("Build", "Build").unwrap().clone();
    engine
        .complete_action(&run, support::success(), 41.0)
        .await
        .unwrap();
    // A leaves Build; the task is delivered twice. A holds Build (QUEUED) until it queues at
    // Deploy, so B still waits.
    for at in [42.0, 43.0] {
        engine
            .leave_stage(&ids(A), "Build", true, at)
            .await
            .unwrap();
    }
    assert_eq!(
        world.answer("t-enter-build-b"),
        None,
        "A holds Build until Deploy"
    );
    engine
        .enter_stage(&ids(A), "Deploy", "t-enter-deploy-a", 44.0)
        .await
        .unwrap();
    assert!(matches!(world.answer("t-enter-build-b"), Some(Ok(_))));
    let events = events(&world);
    assert_eq!(
        count(&events, "Build", "SUCCEEDED"),
        2,
        "A's stage and action, once each"
    );
}

#[tokio::test]
async fn a_failed_leave_delivered_twice_fails_the_execution_once() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Superseded)).await;
    let engine = world.engine();
    world.in_build("again", A).await;
    let a = world.snapshot(A).await;
    let run = a.latest_action("Build", "Build").unwrap().clone();
    engine
        .complete_action(
            &run,
            pipewright_core::engine::ActionOutcome::failed(FailureType::JobFailed, "exit 1"),
            41.0,
        )
        .await
        .unwrap();
    assert!(engine.check_group(&ids(A), "Build", 1, 42.0).await.unwrap());
    for at in [43.0, 44.0] {
        engine
            .leave_stage(&ids(A), "Build", false, at)
            .await
            .unwrap();
    }
    let execution = world.snapshot(A).await.execution;
    assert_eq!(execution.status, PipelineExecutionStatus::Failed);
    assert_eq!(execution.last_update_time, 43.0, "the first leave decided");
    let events = events(&world);
    assert_eq!(count(&events, "", "FAILED"), 1, "one pipeline FAILED");
    assert_eq!(
        count(&events, "Build", "FAILED"),
        2,
        "stage and action, once each"
    );
    // The stage is free: the next execution enters at once.
    world.run_source(&engine, "again", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-enter-build-b", 50.0)
        .await
        .unwrap();
    assert!(matches!(world.answer("t-enter-build-b"), Some(Ok(_))));
}

#[tokio::test]
async fn a_leave_that_died_before_failing_the_execution_is_finished_by_the_next_delivery() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Superseded)).await;
    let engine = world.engine();
    world.in_build("again", A).await;
    // The first leaveStage recorded the stage Failed and died before the execution was failed
    // and the stage released.
    let mut stage = world.snapshot(A).await.stage("Build").unwrap().clone();
    stage.status = pipewright_core::execution::StageExecutionStatus::Failed;
    use pipewright_core::engine::ExecutionStore;
    world
        .executions
        .put_stage("again", &stage, &[])
        .await
        .unwrap();
    engine
        .leave_stage(&ids(A), "Build", false, 45.0)
        .await
        .unwrap();
    let execution = world.snapshot(A).await.execution;
    assert_eq!(execution.status, PipelineExecutionStatus::Failed);
    assert!(
        execution
            .status_summary
            .unwrap_or_default()
            .contains("Build"),
        "the summary names the stage"
    );
    world.run_source(&engine, "again", B, "v2").await;
    engine
        .enter_stage(&ids(B), "Build", "t-enter-build-b", 50.0)
        .await
        .unwrap();
    assert!(matches!(world.answer("t-enter-build-b"), Some(Ok(_))));
}

#[tokio::test]
async fn a_finish_delivered_twice_succeeds_once() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Parallel)).await;
    let engine = world.engine();
    world.run_source(&engine, "again", A, "v1").await;
    for at in [60.0, 61.0] {
        engine.finish_execution(&ids(A), at).await.unwrap();
    }
    let execution = world.snapshot(A).await.execution;
    assert_eq!(execution.status, PipelineExecutionStatus::Succeeded);
    assert_eq!(execution.last_update_time, 60.0);
    assert_eq!(count(&events(&world), "", "SUCCEEDED"), 1);
}

/// The group check says why an action's task ended without a result: a task that timed out is
/// `TimedOut`; one whose function crashed or was killed is `JobFailed`, naming the error.
#[tokio::test]
async fn a_task_that_died_is_recorded_with_its_error_and_a_timeout_as_timed_out() {
    let killed = serde_json::json!([{
        "failedAction": "Build",
        "error": {
            "Error": "Lambda.Unknown",
            "Cause": "{\"errorType\":\"Runtime.ExitError\",\"errorMessage\":\"RequestId: r Error: Runtime exited with error: signal: killed\"}"
        }
    }]);
    let timed_out = serde_json::json!([{
        "failedAction": "Build",
        "error": {"Error": "States.Timeout", "Cause": ""}
    }]);
    for (branches, code, says) in [
        (
            killed,
            "JobFailed",
            "Lambda.Unknown: RequestId: r Error: Runtime exited with error: signal: killed",
        ),
        (timed_out, "TimedOut", "did not finish in time"),
        (serde_json::json!([]), "TimedOut", "did not finish in time"),
    ] {
        let world = World::with_pipeline(three_stages("again", ExecutionMode::Queued)).await;
        let engine = world.engine();
        world.in_build("again", A).await;
        let branches: Vec<serde_json::Value> = serde_json::from_value(branches).unwrap();
        assert!(engine
            .check_group_after(&ids(A), "Build", 1, &branches, 30.0)
            .await
            .unwrap());
        let build = world.snapshot(A).await;
        let build = build.latest_action("Build", "Build").unwrap();
        assert_eq!(build.status, ActionExecutionStatus::Failed);
        let details = build
            .output
            .execution_result
            .error_details
            .clone()
            .expect("error details");
        assert_eq!(details.code.as_str(), code);
        assert!(details.message.contains(says), "{}", details.message);
    }
}

/// An action whose task failed or timed out before it began (it never recorded a run) is
/// recorded Failed with that error, and the failed stage's summary names it and says why
/// (instead of a bare "stage Build failed").
#[tokio::test]
async fn an_action_that_never_began_is_named_in_the_stage_failure() {
    let world = World::with_pipeline(three_stages("again", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.run_source(&engine, "again", A, "v1").await;
    engine
        .enter_stage(&ids(A), "Build", "t-enter-build", 20.0)
        .await
        .unwrap();
    let branches: Vec<serde_json::Value> = serde_json::from_value(serde_json::json!([{
        "failedAction": "Build",
        "error": {"Error": "States.Timeout", "Cause": ""}
    }]))
    .unwrap();
    for at in [30.0, 31.0] {
        // Twice, as a retried check: one record.
        assert!(engine
            .check_group_after(&ids(A), "Build", 1, &branches, at)
            .await
            .unwrap());
    }
    let snapshot = world.snapshot(A).await;
    let runs: Vec<_> = snapshot
        .actions
        .iter()
        .filter(|a| a.stage_name == "Build")
        .collect();
    assert_eq!(runs.len(), 1);
    assert_eq!(runs[0].status, ActionExecutionStatus::Failed);
    engine
        .leave_stage(&ids(A), "Build", false, 32.0)
        .await
        .unwrap();
    let summary = world
        .snapshot(A)
        .await
        .execution
        .status_summary
        .unwrap_or_default();
    assert!(
        summary.contains("action Build: TimedOut: action Build did not start in time"),
        "{summary}"
    );
}
