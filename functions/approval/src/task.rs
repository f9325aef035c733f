//! The `runAction` task of an approval action: record it as started, sign its links (the review
//! link, and the approve and reject links when one-click approval is on), send the notice. The action then waits for its decision (a link or PutApprovalResult) or its
//! timeout; this task's task token is answered by whoever decides.

use lambda_runtime::Error;
use pipewright_aws::approvals::ApprovalChannel;
use pipewright_core::approvals::{
    link_url, sign_link, ApprovalNotice, Decision, LinkClaims, LinkPurpose, PendingApproval,
};
use pipewright_core::engine::ExecutionIds;
use pipewright_core::engine::{ActionOutcome, Engine, TaskRequest};
use pipewright_core::execution::FailureType;
use serde_json::{json, Value};
use tracing::Instrument;

/// Handle one `runAction` task of an `Approval/AWS/Manual` action.
pub async fn handle(
    engine: &Engine<'_>,
    channel: &ApprovalChannel,
    region: &str,
    request: TaskRequest,
) -> Result<Value, Error> {
    let TaskRequest::RunAction {
        ids,
        stage,
        action,
        task_token,
        ..
    } = request
    else {
        return Err("the approval function runs only the runAction tasks of approvals".into());
    };
    // The approval token: the action execution id, derived from the task token (secret, one per
    // run of the action, the same when the task is delivered again).
    let token = pipewright_core::engine::action_execution_id(&task_token);
    let span =
        tracing::info_span!("approval", execution = %ids.pipeline_execution_id, %stage, %action);
    let task = ApprovalTask {
        ids: &ids,
        stage: &stage,
        action: &action,
        token: &token,
        task_token: &task_token,
    };
    start(engine, channel, region, task).instrument(span).await
}

/// The approval a `runAction` task starts.
struct ApprovalTask<'t> {
    ids: &'t ExecutionIds,
    stage: &'t str,
    action: &'t str,
    token: &'t str,
    task_token: &'t str,
}

/// Record the approval as started and send its notice.
async fn start(
    engine: &Engine<'_>,
    channel: &ApprovalChannel,
    region: &str,
    ApprovalTask {
        ids,
        stage,
        action,
        token,
        task_token,
    }: ApprovalTask<'_>,
) -> Result<Value, Error> {
    let Some(pending) = engine
        .begin_approval(ids, stage, action, token, task_token, pipewright_aws::now())
        .await?
    else {
        tracing::info!("approval could not start (configuration); recorded as failed");
        return Ok(json!({ "status": "Failed" }));
    };
    match notify(channel, region, &pending).await {
        Ok(Some((topic, message_id))) => {
            tracing::info!(%topic, %message_id, "approval notice sent");
        }
        Ok(None) => {
            tracing::info!("no topic to notify: the approval waits for PutApprovalResult");
        }
        Err((kind, message)) => {
            tracing::warn!(kind = kind.as_str(), %message, "the approval notice could not be sent");
            let started = engine
                .executions
                .find_job(&pending.token)
                .await?
                .ok_or("the approval vanished")?;
            let outcome = ActionOutcome::failed(kind, message);
            engine
                .complete_action(&started, outcome, pipewright_aws::now())
                .await?;
            return Ok(json!({ "status": "Failed" }));
        }
    }
    Ok(json!({ "status": "InProgress" }))
}

/// Sign the links and publish the notice; `None` when there is no topic to publish to.
async fn notify(
    channel: &ApprovalChannel,
    region: &str,
    pending: &PendingApproval,
) -> Result<Option<(String, String)>, (FailureType, String)> {
    let Some(topic) = channel.topic_for(pending.notification_arn.as_deref()) else {
        return Ok(None);
    };
    let keys = channel
        .keys()
        .await
        .map_err(|e| (FailureType::JobFailed, e))?;
    let base = channel
        .base_url()
        .await
        .map_err(|e| (FailureType::JobFailed, e))?;
    let link = |purpose: LinkPurpose| {
        link_url(
            base,
            &sign_link(&keys.current, &LinkClaims::new(pending, purpose, &topic)),
        )
    };
    let one_click = (channel.one_click_links() && pending.one_click_links).then(|| {
        (
            link(Decision::Approved.into()),
            link(Decision::Rejected.into()),
        )
    });
    let notice = ApprovalNotice {
        pending,
        region,
        review_url: link(LinkPurpose::Review),
        one_click,
        console: channel.console_url().map(str::to_string),
    };
    let id = channel
        .publish(&topic, &notice.subject(), &notice.sns_message())
        .await?;
    Ok(Some((topic, id)))
}
