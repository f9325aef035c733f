//! RollbackStage over in-memory ports: a ROLLBACK execution re-runs one stage with the target's
//! revisions, variables and artifacts, then ends; and the refusals.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{ActionOutcome, Engine, ExecutionIds};
use pipewright_core::execution::{ExecutionType, FailureType, PipelineExecutionStatus};
use serde_json::{json, Value};
use support::{three_stages, World};

const GOOD: &str = "aaaaaaaa-0000-4000-8000-0000000000a1";
const NEW_ID: &str = "99999999-9999-4999-8999-999999999999";

fn ids(id: &str) -> ExecutionIds {
    support::ids("rolled", id)
}

/// Run `stage` (one action named like it) of `id` to the end.
async fn run_stage(engine: &Engine<'_>, id: &str, stage: &str, succeed: bool) {
    engine
        .enter_stage(&ids(id), stage, &format!("t-enter-{stage}-{id}"), 30.0)
        .await
        .unwrap();
    let prepared = engine
        .begin_action(
            &ids(id),
            stage,
            stage,
            &format!("{stage}-{id}"),
            &format!("t-{stage}-{id}"),
            31.0,
        )
        .await
        .unwrap()
        .unwrap();
    let outcome = if succeed {
        support::success()
    } else {
        ActionOutcome::failed(FailureType::JobFailed, "no")
    };
    engine
        .complete_action(&prepared.record, outcome, 32.0)
        .await
        .unwrap();
    let failed = engine.check_group(&ids(id), stage, 1, 33.0).await.unwrap();
    engine
        .leave_stage(&ids(id), stage, !failed, 34.0)
        .await
        .unwrap();
}

/// `GOOD` ran every stage to success with source version `v-good`.
async fn succeeded(world: &World) {
    let engine = world.engine();
    world.run_source(&engine, "rolled", GOOD, "v-good").await;
    run_stage(&engine, GOOD, "Build", true).await;
    run_stage(&engine, GOOD, "Deploy", true).await;
    engine.finish_execution(&ids(GOOD), 40.0).await.unwrap();
}

fn rollback(stage: &str, target: &str) -> Value {
    json!({"pipelineName": "rolled", "stageName": stage, "targetPipelineExecutionId": target})
}

#[tokio::test]
async fn a_rollback_reruns_the_stage_with_the_targets_artifacts_and_ends() {
    let world = World::with_pipeline(three_stages("rolled", ExecutionMode::Queued)).await;
    succeeded(&world).await;
    let out = world
        .api("RollbackStage", rollback("Build", GOOD))
        .await
        .unwrap();
    assert_eq!(out, json!({"pipelineExecutionId": NEW_ID}));
    let started = world.machines.started.lock().unwrap().clone();
    let (_, name, input) = started.last().unwrap();
    assert_eq!(name, NEW_ID);
    assert_eq!(input["startStage"], "Build");

    let got = world
        .api(
            "GetPipelineExecution",
            json!({"pipelineName": "rolled", "pipelineExecutionId": NEW_ID}),
        )
        .await
        .unwrap();
    let e = &got["pipelineExecution"];
    assert_eq!(e["executionType"], "ROLLBACK");
    assert_eq!(e["trigger"]["triggerType"], "ManualRollback");
    assert_eq!(
        e["rollbackMetadata"]["rollbackTargetPipelineExecutionId"],
        GOOD
    );

    // The state machine runs Build: its input is the target's source artifact, by version.
    let engine = world.engine();
    engine
        .enter_stage(&ids(NEW_ID), "Build", "t-enter", 50.0)
        .await
        .unwrap();
    let prepared = engine
        .begin_action(&ids(NEW_ID), "Build", "Build", "rb-build", "t-rb", 51.0)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        prepared.inputs[0].s3_location.version_id.as_deref(),
        Some("v-good")
    );
    engine
        .complete_action(&prepared.record, support::success(), 52.0)
        .await
        .unwrap();
    assert!(!engine
        .check_group(&ids(NEW_ID), "Build", 1, 53.0)
        .await
        .unwrap());
    engine
        .leave_stage(&ids(NEW_ID), "Build", true, 54.0)
        .await
        .unwrap();
    // Then it ends instead of entering Deploy.
    engine
        .enter_stage(&ids(NEW_ID), "Deploy", "t-deploy", 55.0)
        .await
        .unwrap();
    assert_eq!(
        world.answer("t-deploy"),
        Some(Err("Pipewright.Finished".into()))
    );
    let snapshot = world.snapshot(NEW_ID).await;
    assert_eq!(
        snapshot.execution.status,
        PipelineExecutionStatus::Succeeded
    );
    assert_eq!(snapshot.execution.execution_type, ExecutionType::Rollback);
    assert!(snapshot.stage("Deploy").is_none());
    assert_eq!(
        snapshot.execution.source_revisions,
        world.snapshot(GOOD).await.execution.source_revisions
    );
}

#[tokio::test]
async fn rollbacks_are_refused_as_codepipeline_refuses_them() {
    let world = World::with_pipeline(three_stages("rolled", ExecutionMode::Queued)).await;
    succeeded(&world).await;
    for (body, kind) in [
        (rollback("Source", GOOD), "UnableToRollbackStageException"),
        (rollback("Nope", GOOD), "StageNotFoundException"),
        (
            rollback("Build", "00000000-0000-4000-8000-000000000000"),
            "PipelineExecutionNotFoundException",
        ),
        (rollback("Build", "not-an-id"), "ValidationException"),
    ] {
        let err = world.api("RollbackStage", body).await.unwrap_err();
        assert_eq!(err.kind, kind, "{err:?}");
    }
    // A failed target.
    let engine = world.engine();
    let failed = "ffffffff-0000-4000-8000-0000000000f1";
    world.run_source(&engine, "rolled", failed, "v-bad").await;
    run_stage(&engine, failed, "Build", false).await;
    let err = world
        .api("RollbackStage", rollback("Build", failed))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "UnableToRollbackStageException");
    // An outdated target: the pipeline changed since it ran.
    let mut changed = three_stages("rolled", ExecutionMode::Queued);
    changed["version"] = json!(1);
    changed["stages"][2]["actions"][0]["commands"] = json!(["echo v2"]);
    world
        .api("UpdatePipeline", json!({"pipeline": changed}))
        .await
        .unwrap();
    let err = world
        .api("RollbackStage", rollback("Build", GOOD))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "PipelineExecutionOutdatedException");
    assert_eq!(
        world.machines.started.lock().unwrap().len(),
        2,
        "no rollback started"
    );
}

#[tokio::test]
async fn parallel_pipelines_cannot_roll_back() {
    let world = World::with_pipeline(three_stages("rolled", ExecutionMode::Parallel)).await;
    succeeded(&world).await;
    let err = world
        .api("RollbackStage", rollback("Build", GOOD))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "UnableToRollbackStageException");
    assert!(err.message.contains("PARALLEL"));
}
