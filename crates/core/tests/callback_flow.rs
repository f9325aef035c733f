//! Task callbacks are answered exactly once, over in-memory ports: when Step Functions refuses
//! the first SendTaskSuccess (throttled, unreachable), the action stays recorded with its result
//! and its token, and the next completion attempt (a retried PutJobSuccessResult, a re-delivered
//! task) sends the callback the first one decided; once sent, nothing sends it again.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{ActionOutcome, ExecutionIds};
use pipewright_core::execution::{ActionExecutionStatus, FailureType};
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn ids() -> ExecutionIds {
    support::ids("callbacks", A)
}

#[tokio::test]
async fn a_lost_callback_is_sent_by_the_next_completion_and_only_once() {
    let world = World::with_pipeline(three_stages("callbacks", ExecutionMode::Queued)).await;
    let engine = world.engine();
    world.run_source(&engine, "callbacks", A, "v1").await;
    engine
        .enter_stage(&ids(), "Build", "t-enter-build", 20.0)
        .await
        .unwrap();
    let prepared = engine
        .begin_action(&ids(), "Build", "Build", "act-1", "t-build", 21.0)
        .await
        .unwrap()
        .unwrap();
    let calls_before = world.tasks.calls.lock().unwrap().len();

    // Step Functions refuses the first callback.
    *world.tasks.failing.lock().unwrap() = 1;
    let err = engine
        .complete_action(&prepared.record, support::success(), 30.0)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Rate exceeded"), "{err}");
    let recorded = world.snapshot(A).await;
    let action = recorded.latest_action("Build", "Build").unwrap();
    assert_eq!(action.status, ActionExecutionStatus::Succeeded);
    assert_eq!(action.task_token.as_deref(), Some("t-build"));
    assert_eq!(world.answer("t-build"), None);

    // The completion is retried — even with another outcome, the first decision is what goes out.
    let again = engine
        .complete_action(
            &prepared.record,
            ActionOutcome::failed(FailureType::JobFailed, "a late, conflicting report"),
            31.0,
        )
        .await
        .unwrap();
    assert!(!again, "the action was completed before");
    assert!(matches!(world.answer("t-build"), Some(Ok(_))));
    let action = world.snapshot(A).await;
    let action = action.latest_action("Build", "Build").unwrap();
    assert_eq!(action.status, ActionExecutionStatus::Succeeded);
    assert_eq!(action.task_token, None, "the token is cleared once sent");

    // Sent once: a third attempt sends nothing.
    engine
        .complete_action(&prepared.record, support::success(), 32.0)
        .await
        .unwrap();
    let calls: Vec<String> = world.tasks.calls.lock().unwrap()[calls_before..]
        .iter()
        .map(|(token, _)| token.clone())
        .collect();
    assert_eq!(calls, ["t-build"]);
    // One SUCCEEDED event for the action, whatever the retries.
    let succeeded = world
        .events()
        .into_iter()
        .filter(|(kind, what, state)| {
            kind == "Action Execution State Change" && what == "Build" && state == "SUCCEEDED"
        })
        .count();
    assert_eq!(succeeded, 1);
}
