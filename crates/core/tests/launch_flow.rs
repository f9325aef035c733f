//! Starts are never lost, over in-memory ports: an idempotency key claimed by a launcher that
//! died before it started the state machine run is resumed by the next delivery of the same
//! change (EventBridge and webhooks deliver at least once); a key whose run started starts
//! nothing more.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{ExecutionStore, StartRequest};
use pipewright_core::events::TriggerType;
use pipewright_core::execution::{ExecutionTrigger, PipelineExecutionStatus};
use support::{three_stages, World};

fn request(id: &str, key: &str) -> StartRequest {
    StartRequest {
        pipeline_name: "launches".into(),
        pipeline_execution_id: id.into(),
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::CloudWatchEvent,
            trigger_detail: "event".into(),
        },
        variables: vec![],
        source_revisions: vec![],
        idempotency_key: Some(key.into()),
        now: 10.0,
    }
}

fn runs(world: &World) -> Vec<String> {
    world
        .machines
        .started
        .lock()
        .unwrap()
        .iter()
        .map(|(_, name, _)| name.clone())
        .collect()
}

#[tokio::test]
async fn a_claimed_key_without_a_run_is_resumed_by_the_next_delivery() {
    let world = World::with_pipeline(three_stages("launches", ExecutionMode::Queued)).await;
    let engine = world.engine();
    let first = engine
        .start_execution(request("exec-1", "event-1"))
        .await
        .unwrap();
    assert!(first.new);
    assert_eq!(runs(&world), ["exec-1"]);

    // A launcher claimed `event-2` for exec-2 and died before starting its run.
    let mut claimed = world.snapshot("exec-1").await.execution;
    claimed.pipeline_execution_id = "exec-2".into();
    claimed.state_machine_execution_arn = None;
    world
        .executions
        .create_execution(&claimed, Some("event-2"), &[])
        .await
        .unwrap();

    // The redelivered event finds the key, and starts the run the first launcher did not.
    let again = engine
        .start_execution(request("exec-3", "event-2"))
        .await
        .unwrap();
    assert_eq!(again.pipeline_execution_id, "exec-2");
    assert!(!again.new);
    assert_eq!(runs(&world), ["exec-1", "exec-2"]);
    let resumed = world.snapshot("exec-2").await.execution;
    assert_eq!(resumed.status, PipelineExecutionStatus::InProgress);
    assert!(resumed.state_machine_execution_arn.is_some());

    // Once started, further deliveries of either change start nothing.
    for (id, key) in [("exec-4", "event-1"), ("exec-5", "event-2")] {
        let dup = engine.start_execution(request(id, key)).await.unwrap();
        assert!(!dup.new);
    }
    assert_eq!(runs(&world), ["exec-1", "exec-2"]);
}
