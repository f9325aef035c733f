//! Manual approvals on the local stack: the notice on SNS, its signed links served by the
//! approval function behind its (local) Function URL, PutApprovalResult through the official
//! CodePipeline SDK, and the action's timeout. The test stack caps action timeouts at
//! [`pipewright_e2e::ACTION_TIMEOUT_CAP_SECONDS`], so an unanswered approval fails in about a
//! minute, not in days.

use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus, PipelineExecutionStatus};
use aws_sdk_dynamodb::types::AttributeValue;
use pipewright_core::approvals::{sign_link, verify_link, LinkKey, LinkKeys, LinkPurpose};
use pipewright_e2e::approvals::{confirm, link_token, open, wait_for_notice, Notice};
use pipewright_e2e::pipelines::{
    clients, commands_action, execution_records, latest_action, source_action, source_bucket,
    start, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, Stack};
use serde_json::{json, Value};

/// Source (S3) → Approve (manual) → Ship (Commands); returns the pipeline's name.
async fn approval_pipeline(c: &Clients, stack: &Stack) -> String {
    approval_pipeline_with(c, stack, json!({})).await
}

/// [`approval_pipeline`] with `extra` added to the approval's configuration.
async fn approval_pipeline_with(c: &Clients, stack: &Stack, extra: Value) -> String {
    approval_pipeline_in(c, stack, extra, "PARALLEL").await
}

/// [`approval_pipeline_with`] in execution mode `mode`.
async fn approval_pipeline_in(c: &Clients, stack: &Stack, extra: Value, mode: &str) -> String {
    let mut configuration = json!({
        "CustomData": "Ship #{SourceVariables.VersionId}?",
        "ExternalEntityLink": "https://example.com/changes"
    });
    for (k, v) in extra.as_object().into_iter().flatten() {
        configuration[k] = v.clone();
    }
    let mut source = source_action(
        "Source",
        "S3",
        json!({"S3Bucket": source_bucket(c).await, "S3ObjectKey": "app.zip"}),
    );
    source["outputArtifacts"] = json!([{"name": "SourceArtifact"}]);
    source["namespace"] = json!("SourceVariables");
    let mut ship = commands_action("Ship", &["echo shipped"]);
    ship["inputArtifacts"] = json!([{"name": "SourceArtifact"}]);
    PipelineBuilder::new(stack, "approve")
        .mode(mode)
        .source(source)
        .stage(json!({"name": "Approve", "actions": [{
            "name": "Release",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
            "configuration": configuration
        }]}))
        .stage(json!({"name": "Ship", "actions": [ship]}))
        .create(stack)
}

/// Start an execution and wait for its approval notice.
async fn waiting(c: &Clients, stack: &Stack, name: &str) -> (String, Notice) {
    let id = start(c, name).await;
    let notice = tokio::task::block_in_place(|| wait_for_notice(stack, &id));
    (id, notice)
}

async fn status_of(c: &Clients, name: &str, id: &str) -> PipelineExecutionStatus {
    c.codepipeline
        .get_pipeline_execution()
        .pipeline_name(name)
        .pipeline_execution_id(id)
        .send()
        .await
        .expect("GetPipelineExecution")
        .pipeline_execution()
        .and_then(|e| e.status().cloned())
        .expect("a status")
}

async fn approval_record(c: &Clients, stack: &Stack, id: &str) -> Value {
    let records = execution_records(c, stack, id).await;
    latest_action(&records, "Approve", "Release").clone()
}

async fn put_approval(
    c: &Clients,
    name: &str,
    token: &str,
    status: ApprovalStatus,
    summary: &str,
) -> Result<(), String> {
    c.codepipeline
        .put_approval_result()
        .pipeline_name(name)
        .stage_name("Approve")
        .action_name("Release")
        .token(token)
        .result(
            ApprovalResult::builder()
                .status(status)
                .summary(summary)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            use aws_sdk_codepipeline::error::ProvideErrorMetadata;
            format!(
                "{}: {}",
                e.code().unwrap_or("?"),
                e.message().unwrap_or("?")
            )
        })
}

#[tokio::test(flavor = "multi_thread")]
async fn approving_through_the_link_lets_the_execution_finish() {
    let stack = stack();
    let c = clients(stack).await;
    let name = approval_pipeline(&c, stack).await;
    let (id, notice) = waiting(&c, stack, &name).await;

    // The notice: CodePipeline's JSON and a readable email with both links.
    assert_eq!(notice.json["region"], "us-east-1");
    assert_eq!(notice.approval("pipelineName"), name);
    assert_eq!(notice.approval("stageName"), "Approve");
    assert_eq!(notice.approval("actionName"), "Release");
    assert_eq!(
        notice.approval("externalEntityLink"),
        "https://example.com/changes"
    );
    assert!(notice.approval("customData").starts_with("Ship "));
    assert_eq!(notice.topic, stack.output("ApprovalTopicArn"));
    assert!(
        notice.subject.starts_with("APPROVAL NEEDED"),
        "{}",
        notice.subject
    );
    let (approve, reject) = (
        notice.approval("approveLink"),
        notice.approval("rejectLink"),
    );
    assert!(notice.email.contains(&format!("Approve: {approve}")));
    assert!(notice.email.contains(&format!("Reject:  {reject}")));
    // CodePipeline's links point at the review page, which decides nothing, even when posted.
    let review = notice.approval("approvalReviewLink");
    assert_eq!(notice.json["consoleLink"], review);
    assert!(notice.email.contains(&format!("Review:  {review}")));
    let (status, page) = tokio::task::block_in_place(|| open(review));
    assert_eq!(status, 200, "{page}");
    assert!(
        page.contains(">Approve</button>") && page.contains(">Reject</button>"),
        "{page}"
    );
    let (status, page) =
        tokio::task::block_in_place(|| confirm(stack, &link_token(review), "sneaky"));
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("review link decides nothing"), "{page}");
    assert_eq!(
        approval_record(&c, stack, &id).await["actionExecutionId"],
        json!(notice.approval("token"))
    );

    // Opening the link (as a mail scanner would) decides nothing.
    for _ in 0..2 {
        let (status, page) = tokio::task::block_in_place(|| open(approve));
        assert_eq!(status, 200, "{page}");
        assert!(page.contains("Approve this change?"), "{page}");
        assert!(page.contains(&id));
    }
    assert_eq!(
        status_of(&c, &name, &id).await,
        PipelineExecutionStatus::InProgress
    );
    assert_eq!(
        approval_record(&c, stack, &id).await["status"],
        "InProgress"
    );

    // The page's button decides.
    let link = link_token(approve);
    let (status, page) = tokio::task::block_in_place(|| confirm(stack, &link, "ship it"));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Approved"), "{page}");
    let (final_status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(
        final_status,
        PipelineExecutionStatus::Succeeded,
        "{summary:?}"
    );
    let record = approval_record(&c, stack, &id).await;
    assert_eq!(record["status"], "Succeeded");
    assert_eq!(
        record["output"]["executionResult"]["externalExecutionSummary"],
        "ship it"
    );
    assert_eq!(
        record["updatedBy"],
        json!(format!("approval link sent to {}", notice.topic))
    );

    // Used: both links are refused from now on, and nothing changes.
    for token in [link.clone(), link_token(reject)] {
        let (status, page) = tokio::task::block_in_place(|| confirm(stack, &token, "again"));
        assert_eq!(status, 409, "{page}");
        assert!(page.contains("Already decided"), "{page}");
    }
    let (status, _) = tokio::task::block_in_place(|| open(approve));
    assert_eq!(status, 409);
    assert_eq!(approval_record(&c, stack, &id).await, record);
}

#[tokio::test(flavor = "multi_thread")]
async fn rejecting_through_the_link_fails_the_execution_with_the_summary() {
    let stack = stack();
    let c = clients(stack).await;
    let name = approval_pipeline(&c, stack).await;
    let (id, notice) = waiting(&c, stack, &name).await;
    let (status, page) = tokio::task::block_in_place(|| open(notice.approval("rejectLink")));
    assert_eq!(status, 200);
    assert!(page.contains("Reject this change?"), "{page}");
    // The review page's Reject button posts a reject link of its own.
    let (status, page) =
        tokio::task::block_in_place(|| open(notice.approval("approvalReviewLink")));
    assert_eq!(status, 200, "{page}");
    let link = button_value(&page, "Reject");
    let keys = link_keys(&c, stack).await;
    let claims = verify_link(&keys, &link, 0.0).expect("the button's link verifies");
    assert_eq!(claims.purpose, LinkPurpose::Rejected);
    assert_eq!(claims.pipeline_execution_id, id);
    let (status, page) = tokio::task::block_in_place(|| confirm(stack, &link, "not on a Friday"));
    assert_eq!(status, 200, "{page}");
    let (final_status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(final_status, PipelineExecutionStatus::Failed);
    let summary = summary.unwrap_or_default();
    assert!(summary.contains("not on a Friday"), "{summary}");
    let records = execution_records(&c, stack, &id).await;
    assert!(
        records.iter().all(|(sk, _)| !sk.contains("#Ship#")),
        "the stage after a rejection never starts"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn put_approval_result_approves_with_the_token_from_the_notice() {
    let stack = stack();
    let c = clients(stack).await;
    // SUPERSEDED: the execution holds the stage's lock while it waits.
    let name = approval_pipeline_in(&c, stack, json!({}), "SUPERSEDED").await;
    let (id, notice) = waiting(&c, stack, &name).await;
    let token = notice.approval("token");
    // The Step Functions task tokens the approval and its stage wait on are sealed at rest: what
    // the executions table holds completes nothing.
    let record = approval_record(&c, stack, &id).await;
    let sealed = record["taskToken"]
        .as_str()
        .expect("a waiting approval has its token");
    assert!(sealed.starts_with("sealed:v1:"), "{record}");
    let partition = c
        .dynamo
        .query()
        .table_name(stack.output("ExecutionsTableName"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("PIPELINE#{name}")))
        .consistent_read(true)
        .send()
        .await
        .expect("Query");
    let sks: Vec<String> = partition
        .items()
        .iter()
        .filter_map(|i| i.get("sk").and_then(|v| v.as_s().ok()).cloned())
        .collect();
    let lock = partition
        .items()
        .iter()
        .find(|i| {
            i.get("sk").and_then(|v| v.as_s().ok()).map(String::as_str) == Some("LOCK#Approve")
        })
        .and_then(|i| i.get("record"))
        .and_then(|r| r.as_s().ok())
        .map(|r| serde_json::from_str::<Value>(r).unwrap())
        .unwrap_or_else(|| panic!("no lock of stage Approve among {sks:?}"));
    let holder = lock["holderToken"].as_str().expect("the holder's token");
    assert!(holder.starts_with("sealed:v1:"), "{lock}");
    let err = aws_sdk_sfn::Client::new(&c.sdk)
        .send_task_success()
        .task_token(sealed)
        .output("{}")
        .send()
        .await
        .expect_err("a sealed token completes nothing");
    let code = err.as_service_error().and_then(|e| e.meta().code());
    assert!(
        matches!(code, Some("InvalidToken" | "TaskDoesNotExist")),
        "{err:?}"
    );
    assert_eq!(
        status_of(&c, &name, &id).await,
        PipelineExecutionStatus::InProgress
    );
    // A token of another shape is refused, and so is a decision without a status.
    let err = put_approval(
        &c,
        &name,
        "00000000-0000-4000-8000-000000000000",
        ApprovalStatus::Approved,
        "",
    )
    .await
    .unwrap_err();
    assert!(err.starts_with("InvalidApprovalTokenException"), "{err}");
    put_approval(&c, &name, token, ApprovalStatus::Approved, "by the API")
        .await
        .unwrap();
    let (final_status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(
        final_status,
        PipelineExecutionStatus::Succeeded,
        "{summary:?}"
    );
    let err = put_approval(&c, &name, token, ApprovalStatus::Rejected, "")
        .await
        .unwrap_err();
    assert!(
        err.starts_with("ApprovalAlreadyCompletedException"),
        "{err}"
    );
    // The link of a decided approval does nothing either.
    let (status, _) = tokio::task::block_in_place(|| {
        confirm(stack, &link_token(notice.approval("rejectLink")), "")
    });
    assert_eq!(status, 409);
}

#[tokio::test(flavor = "multi_thread")]
async fn forged_expired_and_foreign_links_are_refused_and_change_nothing() {
    let stack = stack();
    let c = clients(stack).await;
    let name = approval_pipeline(&c, stack).await;
    let (first, first_notice) = waiting(&c, stack, &name).await;
    let approve = link_token(first_notice.approval("approveLink"));

    // One flipped byte anywhere in the signed part: refused on GET and POST.
    let parts: Vec<&str> = approve.split('.').collect();
    let [key_id, payload, signature] = parts[..] else {
        panic!("a link is <key id>.<claims>.<signature>: {approve}")
    };
    for forged in [
        format!("{key_id}.{}.{signature}", flip(payload, payload.len() / 2)),
        format!("{key_id}.{payload}.{}", flip(signature, 3)),
        format!("{}.{payload}.{signature}", flip(key_id, 0)),
    ] {
        let url = format!("{}/?t={forged}", stack.approval_endpoint);
        let (status, page) = tokio::task::block_in_place(|| open(&url));
        assert!(status == 403 || status == 400, "{status} {page}");
        let (status, page) = tokio::task::block_in_place(|| confirm(stack, &forged, "x"));
        assert!(status == 403 || status == 400, "{status} {page}");
    }
    // A link past its expiry, signed with the stack's real key: refused.
    let keys = link_keys(&c, stack).await;
    let mut claims = verify_link(&keys, &approve, 0.0).expect("the real link verifies");
    claims.expires = 1;
    let expired = sign_link(&keys.current, &claims);
    let (status, page) = tokio::task::block_in_place(|| confirm(stack, &expired, "late"));
    assert_eq!(status, 410, "{page}");
    assert!(page.contains("expired"), "{page}");
    // The same claims re-pointed at another execution without the key: forged.
    let mut other = claims.clone();
    other.pipeline_execution_id = "00000000-0000-4000-8000-000000000000".into();
    other.expires = i64::MAX / 2;
    let (status, _) = tokio::task::block_in_place(|| {
        confirm(
            stack,
            &sign_link(
                &LinkKey::new(&b"not the key, but 32 bytes long!!"[..]),
                &other,
            ),
            "",
        )
    });
    assert_eq!(status, 403);
    assert_eq!(
        approval_record(&c, stack, &first).await["status"],
        "InProgress"
    );

    // A link for another execution: the first execution's links never decide the second.
    let (second, second_notice) = waiting(&c, stack, &name).await;
    let (status, page) = tokio::task::block_in_place(|| {
        confirm(
            stack,
            &link_token(first_notice.approval("rejectLink")),
            "first",
        )
    });
    assert_eq!(status, 200, "{page}");
    let (status, page) = tokio::task::block_in_place(|| confirm(stack, &approve, "reuse"));
    assert_eq!(status, 409, "{page}");
    assert_eq!(
        approval_record(&c, stack, &second).await["status"],
        "InProgress"
    );
    assert_eq!(
        wait_for(&c, &name, &first).await.0,
        PipelineExecutionStatus::Failed
    );
    // A link signed for the second execution's approval but naming the first: not its token.
    // (Read the keys again: another test may have rotated them since the second link was
    // signed.)
    let keys = link_keys(&c, stack).await;
    let mut swapped = verify_link(
        &keys,
        &link_token(second_notice.approval("approveLink")),
        0.0,
    )
    .unwrap();
    swapped.pipeline_execution_id = first.clone();
    let (status, page) =
        tokio::task::block_in_place(|| confirm(stack, &sign_link(&keys.current, &swapped), ""));
    assert_eq!(status, 404, "{page}");
    assert_eq!(
        approval_record(&c, stack, &second).await["status"],
        "InProgress"
    );
    let (status, _) = tokio::task::block_in_place(|| {
        confirm(
            stack,
            &link_token(second_notice.approval("approveLink")),
            "",
        )
    });
    assert_eq!(status, 200);
    assert_eq!(
        wait_for(&c, &name, &second).await.0,
        PipelineExecutionStatus::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn an_unanswered_approval_times_out_and_fails_and_its_links_die() {
    let stack = stack();
    let c = clients(stack).await;
    let name = approval_pipeline(&c, stack).await;
    let (id, notice) = waiting(&c, stack, &name).await;
    let (final_status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(final_status, PipelineExecutionStatus::Failed);
    let record = approval_record(&c, stack, &id).await;
    assert_eq!(record["status"], "Failed");
    assert_eq!(
        record["output"]["executionResult"]["errorDetails"]["code"],
        "TimedOut"
    );
    assert!(summary.unwrap_or_default().contains("Release"));
    let (status, page) = tokio::task::block_in_place(|| {
        confirm(
            stack,
            &link_token(notice.approval("approveLink")),
            "too late",
        )
    });
    assert!(status == 409 || status == 410, "{status} {page}");
    let err = put_approval(
        &c,
        &name,
        notice.approval("token"),
        ApprovalStatus::Approved,
        "too late",
    )
    .await
    .unwrap_err();
    assert!(
        err.starts_with("ApprovalAlreadyCompletedException"),
        "{err}"
    );
    assert_eq!(approval_record(&c, stack, &id).await, record);
}

#[tokio::test(flavor = "multi_thread")]
async fn after_the_link_key_is_rotated_sent_links_still_work_and_the_new_key_signs() {
    let stack = stack();
    let c = clients(stack).await;
    let name = approval_pipeline(&c, stack).await;
    let (id, notice) = waiting(&c, stack, &name).await;
    let sent = link_token(notice.approval("approveLink"));
    let before = link_keys(&c, stack).await;
    let claims = verify_link(&before, &sent, 0.0).expect("the sent link verifies");

    // Rotate as the docs say: put a new random value into the secret.
    let new_secret: String = (0..64)
        .map(|i| char::from(b'a' + ((i * 7 + id.len()) % 26) as u8))
        .chain(id.chars().filter(char::is_ascii_alphanumeric))
        .collect();
    aws_sdk_secretsmanager::Client::new(&c.sdk)
        .put_secret_value()
        .secret_id(stack.output("ApprovalLinkKeyArn"))
        .secret_string(&new_secret)
        .send()
        .await
        .expect("PutSecretValue");
    let after = link_keys(&c, stack).await;
    assert_eq!(after.current.id(), LinkKey::new(new_secret.as_bytes()).id());
    assert!(
        after.find(before.current.id()).is_some(),
        "the old key is AWSPREVIOUS"
    );

    // A link signed with the new key (as a container that read it first would sign) is taken
    // at once: the key id it names is looked up.
    let fresh = sign_link(&after.current, &claims);
    assert_ne!(fresh.split('.').next(), sent.split('.').next());
    let (status, page) =
        tokio::task::block_in_place(|| open(&format!("{}/?t={fresh}", stack.approval_endpoint)));
    assert_eq!(status, 200, "{page}");
    // The link sent before the rotation still decides.
    let (status, page) = tokio::task::block_in_place(|| confirm(stack, &sent, "rotated"));
    assert_eq!(status, 200, "{page}");
    assert_eq!(
        wait_for(&c, &name, &id).await.0,
        PipelineExecutionStatus::Succeeded
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn with_one_click_links_off_the_approver_decides_signed_in() {
    let stack = stack();
    let c = clients(stack).await;
    let name = approval_pipeline_with(&c, stack, json!({"OneClickLinks": "false"})).await;
    let (id, notice) = waiting(&c, stack, &name).await;
    assert!(
        notice.json["approval"].get("approveLink").is_none(),
        "{}",
        notice.json
    );
    assert!(
        notice.json["approval"].get("rejectLink").is_none(),
        "{}",
        notice.json
    );
    assert!(!notice.email.contains("Approve:"), "{}", notice.email);
    assert!(
        notice
            .email
            .contains("aws codepipeline put-approval-result"),
        "{}",
        notice.email
    );
    // The review page shows the approval and how to decide it, and no button.
    let review = notice.approval("approvalReviewLink");
    let (status, page) = tokio::task::block_in_place(|| open(review));
    assert_eq!(status, 200, "{page}");
    assert!(!page.contains("<form"), "{page}");
    assert!(page.contains("put-approval-result"), "{page}");
    // A one-click link, even one signed with the stack's real key, decides nothing.
    let keys = link_keys(&c, stack).await;
    let claims = verify_link(&keys, &link_token(review), 0.0).expect("the review link verifies");
    let approve = sign_link(&keys.current, &claims.with_purpose(LinkPurpose::Approved));
    let (status, page) =
        tokio::task::block_in_place(|| open(&format!("{}/?t={approve}", stack.approval_endpoint)));
    assert_eq!(status, 403, "{page}");
    assert!(page.contains("Decide signed in"), "{page}");
    let (status, page) = tokio::task::block_in_place(|| confirm(stack, &approve, "one click"));
    assert_eq!(status, 403, "{page}");
    assert_eq!(
        approval_record(&c, stack, &id).await["status"],
        "InProgress"
    );
    // Signed in, through the door, it is decided.
    put_approval(
        &c,
        &name,
        notice.approval("token"),
        ApprovalStatus::Approved,
        "signed in",
    )
    .await
    .unwrap();
    assert_eq!(
        wait_for(&c, &name, &id).await.0,
        PipelineExecutionStatus::Succeeded
    );
}

/// The link keys, as the approval function reads them: the secret's current and previous
/// versions (the test holds the stack's secrets, as its owner does).
async fn link_keys(c: &Clients, stack: &Stack) -> LinkKeys {
    let secrets = aws_sdk_secretsmanager::Client::new(&c.sdk);
    let version = |stage: &'static str| {
        secrets
            .get_secret_value()
            .secret_id(stack.output("ApprovalLinkKeyArn"))
            .version_stage(stage)
            .send()
    };
    let current = version("AWSCURRENT").await.expect("GetSecretValue");
    let previous = version("AWSPREVIOUS").await.ok();
    let key = |v: &aws_sdk_secretsmanager::operation::get_secret_value::GetSecretValueOutput| {
        LinkKey::new(v.secret_string().expect("a string secret").as_bytes())
    };
    LinkKeys {
        current: key(&current),
        previous: previous.iter().map(key).collect(),
    }
}

/// The link a button of a review page posts (`name="t" value="..."`).
fn button_value(page: &str, label: &str) -> String {
    let end = page
        .find(&format!("\">{label}</button>"))
        .unwrap_or_else(|| panic!("no {label} button: {page}"));
    let start = page[..end].rfind("value=\"").expect("a button value") + "value=\"".len();
    page[start..end].to_string()
}

/// `text` with the character at `at` changed.
fn flip(text: &str, at: usize) -> String {
    let mut bytes = text.as_bytes().to_vec();
    bytes[at] = if bytes[at] == b'A' { b'B' } else { b'A' };
    String::from_utf8(bytes).unwrap()
}
