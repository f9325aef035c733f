//! The periodic sweep repairs what no event reported, over in-memory ports: a run that ended
//! without its status event (stopped by hand, failed, gone) ends its execution and frees its
//! stage; an execution whose start died before its run was recorded is started; running
//! executions are left alone.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::execution::PipelineExecutionStatus;
use pipewright_core::sweep::{RunStatus, LAUNCH_GRACE_SECONDS};
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";
const B: &str = "bbbbbbbb-0000-4000-8000-000000000002";

async fn run_of(world: &World, id: &str) -> String {
    world
        .snapshot(id)
        .await
        .execution
        .state_machine_execution_arn
        .expect("a recorded run")
}

#[tokio::test]
async fn a_run_stopped_by_hand_ends_its_execution_and_frees_the_stage() {
    let world = World::with_pipeline(three_stages("sweep", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.in_build("sweep", A).await;
    world.run_source(&engine, "sweep", B, "v2").await;
    engine
        .enter_stage(&support::ids("sweep", B), "Build", "t-enter-b", 40.0)
        .await
        .unwrap();
    assert_eq!(world.answer("t-enter-b"), None, "B waits behind A");

    // Nothing has ended yet: the sweep changes nothing.
    let swept = engine.sweep(50.0).await.unwrap();
    assert_eq!(swept.in_progress, 2);
    assert!(
        swept.reconciled.is_empty() && swept.resumed.is_empty(),
        "{swept:?}"
    );

    // A's run is stopped in the Step Functions console; the status event never comes.
    let run = run_of(&world, A).await;
    world.machines.ended.lock().unwrap().insert(
        run,
        RunStatus::Ended {
            status: "ABORTED".into(),
            error: None,
            cause: None,
        },
    );
    let swept = engine.sweep(60.0).await.unwrap();
    assert_eq!(swept.reconciled, [A]);
    let a = world.snapshot(A).await.execution;
    assert_eq!(a.status, PipelineExecutionStatus::Failed);
    assert!(
        a.status_summary
            .as_deref()
            .unwrap_or_default()
            .contains("stopped outside Pipewright"),
        "{:?}",
        a.status_summary
    );
    assert!(matches!(world.answer("t-enter-b"), Some(Ok(_))), "B enters");
    // A second sweep finds nothing more to do.
    let swept = engine.sweep(70.0).await.unwrap();
    assert!(swept.reconciled.is_empty(), "{swept:?}");
}

#[tokio::test]
async fn a_run_step_functions_lost_ends_its_execution() {
    let world = World::with_pipeline(three_stages("sweep", ExecutionMode::Superseded)).await;
    world.in_build("sweep", A).await;
    world.machines.started.lock().unwrap().clear();
    let swept = world.engine().sweep(50.0).await.unwrap();
    assert_eq!(swept.reconciled, [A]);
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
}

#[tokio::test]
async fn a_start_that_died_before_its_run_is_resumed_after_the_grace() {
    let world = World::with_pipeline(three_stages("sweep", ExecutionMode::Superseded)).await;
    let engine = world.engine();
    // Recorded, never started: the launcher died in between.
    let mut execution = {
        world.in_build("sweep", A).await;
        world.snapshot(A).await.execution
    };
    execution.pipeline_execution_id = B.into();
    execution.state_machine_execution_arn = None;
    execution.start_time = 100.0;
    use pipewright_core::engine::ExecutionStore;
    world
        .executions
        .create_execution(&execution, None, &[])
        .await
        .unwrap();
    let swept = engine
        .sweep(100.0 + LAUNCH_GRACE_SECONDS / 2.0)
        .await
        .unwrap();
    assert!(swept.resumed.is_empty(), "within the grace: {swept:?}");
    let swept = engine.sweep(100.0 + LAUNCH_GRACE_SECONDS).await.unwrap();
    assert_eq!(swept.resumed, [B]);
    let started = world.machines.started.lock().unwrap().clone();
    assert!(started.iter().any(|(_, name, _)| name == B), "{started:?}");
    assert!(world
        .snapshot(B)
        .await
        .execution
        .state_machine_execution_arn
        .is_some());
}

#[tokio::test]
async fn scheduled_sweeps_close_together_do_the_work_once() {
    let world = World::with_pipeline(three_stages("sweep", ExecutionMode::Superseded)).await;
    let engine = world.engine();
    let interval = pipewright_core::sweep::SWEEP_INTERVAL_SECONDS;
    assert!(
        !engine
            .scheduled_sweep(1_000.0, false)
            .await
            .unwrap()
            .skipped
    );
    assert!(
        engine
            .scheduled_sweep(1_001.0, false)
            .await
            .unwrap()
            .skipped
    );
    // Asked for explicitly, it always runs.
    assert!(!engine.scheduled_sweep(1_002.0, true).await.unwrap().skipped);
    assert!(
        !engine
            .scheduled_sweep(1_000.0 + interval, false)
            .await
            .unwrap()
            .skipped
    );
}

#[tokio::test]
async fn old_versions_lose_their_state_machine_once_nothing_of_theirs_runs() {
    let declaration = three_stages("gc", ExecutionMode::Superseded);
    let world = World::with_pipeline(declaration.clone()).await;
    let engine = world.engine();
    world.in_build("gc", A).await;
    let machines = || -> Vec<String> {
        world
            .machines
            .machines
            .lock()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    };
    let v1 = machines();
    assert_eq!(v1.len(), 1, "{v1:?}");

    // Version 2, started: its own machine.
    world
        .api(
            "UpdatePipeline",
            serde_json::json!({"pipeline": declaration}),
        )
        .await
        .unwrap();
    world
        .api("StartPipelineExecution", serde_json::json!({"name": "gc"}))
        .await
        .unwrap();
    assert_eq!(machines().len(), 2);

    // A (version 1) still runs: its machine stays.
    let swept = engine.sweep(50.0).await.unwrap();
    assert!(swept.machines_deleted.is_empty(), "{swept:?}");
    assert_eq!(machines().len(), 2);

    // A ended: version 1's machine goes, the current version's stays.
    engine
        .abort_execution(
            &support::ids("gc", A),
            &serde_json::json!({"Error": "States.TaskFailed", "Cause": "the build broke"}),
            None,
            55.0,
        )
        .await
        .unwrap();
    assert_eq!(
        world.snapshot(A).await.execution.status,
        PipelineExecutionStatus::Failed
    );
    // Its run has not reached its end yet (Step Functions still lists it RUNNING): deleting the
    // machine would end a run, so it stays.
    let run = run_of(&world, A).await;
    let swept = engine.sweep(58.0).await.unwrap();
    assert!(swept.machines_deleted.is_empty(), "{swept:?}");
    assert_eq!(machines().len(), 2);
    world.machines.ended.lock().unwrap().insert(
        run,
        RunStatus::Ended {
            status: "FAILED".into(),
            error: Some("Pipewright.Aborted".into()),
            cause: None,
        },
    );
    let swept = engine.sweep(60.0).await.unwrap();
    assert_eq!(swept.machines_deleted, v1);
    let left = machines();
    assert_eq!(left.len(), 1);
    assert!(!left.contains(&v1[0]), "{left:?}");

    // Retrying A's stage creates version 1's machine again, by the same name, and runs it.
    world
        .api(
            "RetryStageExecution",
            serde_json::json!({"pipelineName": "gc", "stageName": "Build",
                   "pipelineExecutionId": A, "retryMode": "ALL_ACTIONS"}),
        )
        .await
        .unwrap();
    assert!(machines().contains(&v1[0]), "{:?}", machines());
    let run = run_of(&world, A).await;
    assert!(run.contains(&format!(":{}:", v1[0])), "{run}");
}

#[test]
fn idle_old_versions_are_the_older_ones_with_nothing_running() {
    use pipewright_core::sweep::idle_old_versions;
    let execution = |version: u32, status: PipelineExecutionStatus| {
        let mut e: pipewright_core::execution::PipelineExecution =
            serde_json::from_value(serde_json::json!({
                "pipelineName": "p", "pipelineVersion": version,
                "pipelineExecutionId": format!("e{version}{status:?}"),
                "status": "Succeeded", "startTime": 0.0, "lastUpdateTime": 0.0,
                "trigger": {"triggerType": "StartPipelineExecution"},
                "executionMode": "SUPERSEDED", "executionType": "STANDARD",
            }))
            .unwrap();
        e.status = status;
        e
    };
    use PipelineExecutionStatus::*;
    let page = [
        execution(5, InProgress),
        execution(4, Succeeded),
        execution(3, Failed),
        execution(3, Stopping),
        execution(2, Superseded),
        execution(1, Succeeded),
    ];
    // 5 is current; 3 still stops.
    assert_eq!(idle_old_versions(5, &page), [1, 2, 4]);
    // After an update to 6, 5 runs: kept.
    assert_eq!(idle_old_versions(6, &page), [1, 2, 4]);
    assert!(idle_old_versions(1, &page).is_empty());
}

/// `{"sweep": {"now": true, "pipeline": NAME}}` sweeps that pipeline alone (what an operator, or
/// a test on a busy stack, asks for); the scheduled one sweeps them all.
#[tokio::test]
async fn a_sweep_of_one_pipeline_looks_at_that_pipeline_only() {
    let world = World::with_pipeline(three_stages("sweep", ExecutionMode::Queued)).await;
    world
        .add_pipeline(three_stages("other", ExecutionMode::Queued))
        .await;
    let engine = world.engine();
    world.in_build("sweep", A).await;
    world.in_build("other", B).await;
    let one = engine
        .scheduled_sweep_of(50.0, true, Some("other"))
        .await
        .unwrap();
    assert_eq!(one.in_progress, 1, "{one:?}");
    assert_eq!(one.unswept, 0);
    let all = engine.scheduled_sweep_of(51.0, true, None).await.unwrap();
    assert_eq!(all.in_progress, 2, "{all:?}");
    let missing = engine
        .scheduled_sweep_of(52.0, true, Some("nope"))
        .await
        .unwrap();
    assert_eq!(missing.in_progress, 0);
}
