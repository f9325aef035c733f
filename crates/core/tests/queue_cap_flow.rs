//! The queue in front of a stage has a cap (`locks::MAX_WAITING`): an execution arriving at a
//! full queue ends Failed with a summary that says why, its token is failed, and the queue and
//! the execution inside are untouched.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::execution::PipelineExecutionStatus;
use pipewright_core::locks::MAX_WAITING;
use support::{three_stages, World};

fn id(n: usize) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

#[tokio::test]
async fn an_execution_arriving_at_a_full_queue_fails_and_says_why() {
    let world = World::with_pipeline(three_stages("queue", ExecutionMode::Queued)).await;
    let engine = world.engine();
    // One inside Build, MAX_WAITING queued in front of it.
    world.in_build("queue", &id(0)).await;
    for n in 1..=MAX_WAITING + 1 {
        world.run_source(&engine, "queue", &id(n), "v1").await;
        engine
            .enter_stage(
                &support::ids("queue", &id(n)),
                "Build",
                &format!("t-enter-{n}"),
                30.0 + n as f64,
            )
            .await
            .unwrap();
    }
    let last = world.snapshot(&id(MAX_WAITING + 1)).await.execution;
    assert_eq!(last.status, PipelineExecutionStatus::Failed);
    let summary = last.status_summary.unwrap();
    assert!(summary.contains("stage Build"), "{summary}");
    assert!(summary.contains(&MAX_WAITING.to_string()), "{summary}");
    let answer = world.answer(&format!("t-enter-{}", MAX_WAITING + 1));
    assert!(matches!(answer, Some(Err(_))), "{answer:?}");
    // The others still wait, in order; the one inside is untouched.
    for n in 1..=MAX_WAITING {
        assert_eq!(world.answer(&format!("t-enter-{n}")), None);
        let waiting = world.snapshot(&id(n)).await.execution;
        assert_eq!(waiting.status, PipelineExecutionStatus::InProgress);
    }
    let inside = world.snapshot(&id(0)).await.execution;
    assert_eq!(inside.status, PipelineExecutionStatus::InProgress);
    let failed_events = world
        .events()
        .into_iter()
        .filter(|(kind, _, state)| kind.starts_with("Pipeline") && state == "FAILED")
        .count();
    assert_eq!(failed_events, 1);
}
