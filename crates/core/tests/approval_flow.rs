//! Manual approvals over in-memory ports: starting one, deciding it through PutApprovalResult
//! and through the engine (the links' path), and every refusal.

mod support;

use pipewright_core::approvals::{
    ApprovalAnswer, ApprovalError, ApprovalTarget, Decision, PendingApproval,
};
use pipewright_core::engine::ExecutionIds;
use pipewright_core::execution::{ActionExecutionStatus, PipelineExecutionStatus};
use serde_json::{json, Value};
use support::World;

/// Source (S3, namespace SourceVariables) → Approve (manual, CustomData with a variable) →
/// Deploy (Commands).
fn approval_pipeline() -> Value {
    json!({
        "name": "approver",
        "roleArn": "arn:aws:iam::123456789012:role/approver",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip"},
                "outputArtifacts": [{"name": "SourceArtifact"}],
                "namespace": "SourceVariables"
            }]},
            {"name": "Approve", "actions": [{
                "name": "Release",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
                "configuration": {
                    "CustomData": "Release #{SourceVariables.VersionId}?",
                    "ExternalEntityLink": "https://example.com/diff",
                    "NotificationArn": "arn:aws:sns:us-east-1:123456789012:pipewright-approvals"
                },
                "timeoutInMinutes": 60
            }]},
            {"name": "Deploy", "actions": [{
                "name": "Ship",
                "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                "commands": ["echo ship"],
                "inputArtifacts": [{"name": "SourceArtifact"}]
            }]}
        ]
    })
}

const TOKEN: &str = "a1b2c3d4-0000-4000-8000-000000000001";

fn ids(id: &str) -> ExecutionIds {
    support::ids("approver", id)
}

/// A world where execution `id` ran its source (VersionId `v-42`) and waits in approval
/// `Approve/Release` (token [`TOKEN`], task token `t-approve`, started at 20).
async fn waiting(id: &str) -> (World, PendingApproval) {
    waiting_in(approval_pipeline(), id).await
}

/// [`waiting`], for `pipeline` (a variant of [`approval_pipeline`]).
async fn waiting_in(pipeline: Value, id: &str) -> (World, PendingApproval) {
    let world = World::with_pipeline(pipeline).await;
    let engine = world.engine();
    world.run_source(&engine, "approver", id, "v-42").await;
    let ids = ids(id);
    engine
        .enter_stage(&ids, "Approve", "t1", 19.0)
        .await
        .unwrap();
    let pending = engine
        .begin_approval(&ids, "Approve", "Release", TOKEN, "t-approve", 20.0)
        .await
        .unwrap()
        .expect("the approval starts");
    drop(engine);
    (world, pending)
}

fn target(id: Option<&str>) -> ApprovalTarget {
    ApprovalTarget {
        pipeline_name: "approver".into(),
        stage_name: "Approve".into(),
        action_name: "Release".into(),
        pipeline_execution_id: id.map(str::to_string),
    }
}

fn put(token: &str, status: &str, summary: &str) -> Value {
    json!({
        "pipelineName": "approver", "stageName": "Approve", "actionName": "Release",
        "token": token, "result": {"status": status, "summary": summary}
    })
}

#[tokio::test]
async fn one_click_links_are_on_unless_the_action_turns_them_off() {
    let id = "11111111-0000-4000-8000-0000000000c1";
    let (_, pending) = waiting(id).await;
    assert!(pending.one_click_links);

    let mut pipeline = approval_pipeline();
    pipeline["stages"][1]["actions"][0]["configuration"]["OneClickLinks"] = json!("false");
    let (world, pending) = waiting_in(pipeline, id).await;
    assert!(!pending.one_click_links);
    // As a link's page reads it back while the approval waits.
    let engine = world.engine();
    let again = engine
        .pending_approval(TOKEN, &target(Some(id)), 21.0)
        .await
        .unwrap();
    assert!(!again.one_click_links);
    assert!(again
        .signed_in_commands()
        .contains("put-approval-result --pipeline-name approver --stage-name Approve"));
}

#[tokio::test]
async fn an_approval_starts_with_its_configuration_resolved_and_waits() {
    let id = "11111111-0000-4000-8000-000000000001";
    let (world, pending) = waiting(id).await;
    assert_eq!(pending.token, TOKEN);
    assert_eq!(pending.custom_data.as_deref(), Some("Release v-42?"));
    assert_eq!(
        pending.external_entity_link.as_deref(),
        Some("https://example.com/diff")
    );
    assert_eq!(
        pending.notification_arn.as_deref(),
        Some("arn:aws:sns:us-east-1:123456789012:pipewright-approvals")
    );
    assert_eq!(pending.expires, 20.0 + 3600.0);
    assert_eq!(pending.source_revisions.len(), 1);
    let snapshot = world.snapshot(id).await;
    let run = snapshot.latest_action("Approve", "Release").unwrap();
    assert_eq!(run.status, ActionExecutionStatus::InProgress);
    assert_eq!(run.action_execution_id, TOKEN);
    // Not answered until someone decides.
    assert_eq!(world.answer("t-approve"), None);
    let engine = world.engine();
    let again = engine
        .pending_approval(TOKEN, &target(Some(id)), 30.0)
        .await
        .unwrap();
    assert_eq!(again.expires, pending.expires);
    assert_eq!(again.custom_data, pending.custom_data);
}

#[tokio::test]
async fn put_approval_result_approves_once_and_records_the_caller() {
    let id = "11111111-0000-4000-8000-000000000002";
    let (world, _) = waiting(id).await;
    let out = world
        .api("PutApprovalResult", put(TOKEN, "Approved", "looks good"))
        .await
        .unwrap();
    assert_eq!(out, json!({"approvedAt": 50.0}));
    let snapshot = world.snapshot(id).await;
    let run = snapshot.latest_action("Approve", "Release").unwrap();
    assert_eq!(run.status, ActionExecutionStatus::Succeeded);
    assert_eq!(
        run.updated_by.as_deref(),
        Some("arn:aws:iam::123456789012:user/approver")
    );
    assert_eq!(
        run.output
            .execution_result
            .external_execution_summary
            .as_deref(),
        Some("looks good")
    );
    assert_eq!(world.answer("t-approve"), Some(Ok(json!({}))));
    assert!(world.events().contains(&(
        "Action Execution State Change".into(),
        "Release".into(),
        "SUCCEEDED".into()
    )));

    // A second decision, either way, is refused and changes nothing.
    for status in ["Approved", "Rejected"] {
        let err = world
            .api("PutApprovalResult", put(TOKEN, status, "again"))
            .await
            .unwrap_err();
        assert_eq!(err.kind, "ApprovalAlreadyCompletedException", "{err:?}");
        assert!(err
            .message
            .contains("approved by arn:aws:iam::123456789012:user/approver"));
    }
    let after = world.snapshot(id).await;
    assert_eq!(after.latest_action("Approve", "Release"), Some(run));
}

#[tokio::test]
async fn a_rejection_fails_the_action_stage_and_execution_with_its_summary() {
    let id = "11111111-0000-4000-8000-000000000003";
    let (world, _) = waiting(id).await;
    let engine = world.engine();
    let decided = engine
        .decide_approval(
            &ApprovalAnswer {
                token: TOKEN.into(),
                target: target(Some(id)),
                decision: Decision::Rejected,
                summary: "not on a Friday".into(),
                decided_by: "approval link sent to topic".into(),
            },
            25.0,
        )
        .await
        .unwrap();
    assert_eq!(decided.decision, Decision::Rejected);
    assert_eq!(
        world.answer("t-approve"),
        Some(Err("Pipewright.ActionFailed".into()))
    );
    // The state machine's catch → group check → failed stage.
    assert!(engine
        .check_group(&ids(id), "Approve", 1, 26.0)
        .await
        .unwrap());
    engine
        .leave_stage(&ids(id), "Approve", false, 27.0)
        .await
        .unwrap();
    let snapshot = world.snapshot(id).await;
    assert_eq!(snapshot.execution.status, PipelineExecutionStatus::Failed);
    let summary = snapshot.execution.status_summary.unwrap();
    assert!(
        summary.contains("Rejected by approval link sent to topic: not on a Friday"),
        "{summary}"
    );
    // The execution is over: the token decides nothing more.
    let err = engine
        .pending_approval(TOKEN, &target(Some(id)), 28.0)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ApprovalError::AlreadyCompleted(m) if m.contains("rejected by approval link")),
        "{err:?}"
    );
}

#[tokio::test]
async fn tokens_for_other_approvals_or_executions_are_invalid() {
    let id = "11111111-0000-4000-8000-000000000004";
    let (world, _) = waiting(id).await;
    let engine = world.engine();
    // A token nobody issued.
    let err = world
        .api(
            "PutApprovalResult",
            put("ffffffff-0000-4000-8000-000000000000", "Approved", ""),
        )
        .await
        .unwrap_err();
    assert_eq!(err.kind, "InvalidApprovalTokenException");
    // The source action's id is an action execution id, but not an approval's.
    let source_id = world
        .snapshot(id)
        .await
        .latest_action("Source", "Source")
        .unwrap()
        .action_execution_id
        .clone();
    let err = engine
        .pending_approval(&source_id, &target(Some(id)), 30.0)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::InvalidToken(_)), "{err:?}");
    // The right token named with another execution (a link from another run).
    let err = engine
        .pending_approval(
            TOKEN,
            &target(Some("11111111-0000-4000-8000-00000000ffff")),
            30.0,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::InvalidToken(_)), "{err:?}");
    // Unknown stage and action, bad members: named, nothing recorded.
    let mut body = put(TOKEN, "Approved", "");
    body["stageName"] = json!("Nope");
    assert_eq!(
        world.api("PutApprovalResult", body).await.unwrap_err().kind,
        "StageNotFoundException"
    );
    let mut body = put(TOKEN, "Approved", "");
    body["actionName"] = json!("Nope");
    assert_eq!(
        world.api("PutApprovalResult", body).await.unwrap_err().kind,
        "ActionNotFoundException"
    );
    let mut body = put(TOKEN, "Approved", "");
    body["pipelineName"] = json!("missing");
    assert_eq!(
        world.api("PutApprovalResult", body).await.unwrap_err().kind,
        "PipelineNotFoundException"
    );
    let err = world
        .api("PutApprovalResult", put(TOKEN, "Maybe", ""))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    assert!(err.message.starts_with("result.status"), "{}", err.message);
    let err = world
        .api(
            "PutApprovalResult",
            put(TOKEN, "Approved", &"x".repeat(513)),
        )
        .await
        .unwrap_err();
    assert!(err.message.starts_with("result.summary"), "{}", err.message);
    let err = world
        .api("PutApprovalResult", put("not a token!", "Approved", ""))
        .await
        .unwrap_err();
    assert!(err.message.starts_with("token"), "{}", err.message);
    let err = world
        .api("PutApprovalResult", json!({"pipelineName": "approver"}))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "ValidationException");
    let run = world.snapshot(id).await;
    assert_eq!(
        run.latest_action("Approve", "Release").unwrap().status,
        ActionExecutionStatus::InProgress
    );
    assert_eq!(world.answer("t-approve"), None);
}

#[tokio::test]
async fn an_expired_or_timed_out_approval_cannot_be_decided() {
    let id = "11111111-0000-4000-8000-000000000005";
    let (world, pending) = waiting(id).await;
    let engine = world.engine();
    // Past its timeout, before the state machine noticed.
    let err = engine
        .pending_approval(TOKEN, &target(Some(id)), pending.expires)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::Expired(_)), "{err:?}");
    // The task timed out: the group check records it as failed (TimedOut).
    assert!(engine
        .check_group(&ids(id), "Approve", 1, pending.expires + 1.0)
        .await
        .unwrap());
    let err = world
        .api("PutApprovalResult", put(TOKEN, "Approved", ""))
        .await
        .unwrap_err();
    assert_eq!(err.kind, "ApprovalAlreadyCompletedException");
    assert!(err.message.contains("timed out"), "{}", err.message);
    let run = world.snapshot(id).await;
    let action = run.latest_action("Approve", "Release").unwrap();
    assert_eq!(action.status, ActionExecutionStatus::Failed);
    assert_eq!(world.answer("t-approve"), None);
}

#[tokio::test]
async fn a_stopped_execution_refuses_decisions() {
    let id = "11111111-0000-4000-8000-000000000006";
    let (world, _) = waiting(id).await;
    world.set_status(id, PipelineExecutionStatus::Stopped).await;
    let err = world
        .engine()
        .pending_approval(TOKEN, &target(None), 30.0)
        .await
        .unwrap_err();
    assert!(matches!(err, ApprovalError::NotWaiting(_)), "{err:?}");
}
