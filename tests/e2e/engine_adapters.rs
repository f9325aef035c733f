//! The engine's AWS adapters against the emulator: the execution store on the stack's
//! ExecutionsTable, events through an EventBridge rule to SQS, task tokens answered from a real
//! `.waitForTaskToken` state, state machines created and started.

use std::time::{Duration, Instant};

use aws_config::SdkConfig;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_sfn::types::ExecutionStatus;
use pipewright_aws::events::EventBridgePublisher;
use pipewright_aws::execution_store::DynamoExecutionStore;
use pipewright_aws::sfn::{SfnStateMachines, SfnTaskCallbacks, MAX_CAUSE_CHARS};
use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::{EventPublisher, ExecutionStore, StateMachines, TaskCallbacks};
use pipewright_core::events::{self, EventEntry, TriggerType};
use pipewright_core::execution::{
    ActionExecution, ActionExecutionStatus, ExecutionTrigger, ExecutionType, PipelineExecution,
    PipelineExecutionStatus, StageExecution, StageExecutionStatus,
};
use pipewright_core::store::StoreError;
use pipewright_e2e::{stack, unique, Stack};
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";
/// A fixed start time, exactly representable, so records compare equal after a round trip.
const T0: f64 = 1_700_000_000.25;

async fn store(stack: &Stack, sdk: &SdkConfig) -> DynamoExecutionStore {
    DynamoExecutionStore::new(
        aws_sdk_dynamodb::Client::new(sdk),
        stack.output("ExecutionsTableName"),
    )
    .with_events_table(stack.output("EventsTableName"))
}

fn execution(pipeline: &str, id: &str, start_time: f64) -> PipelineExecution {
    PipelineExecution {
        pipeline_name: pipeline.into(),
        pipeline_version: 1,
        pipeline_execution_id: id.into(),
        status: PipelineExecutionStatus::InProgress,
        status_summary: None,
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::StartPipelineExecution,
            trigger_detail: "engine_adapters".into(),
        },
        variables: Vec::new(),
        source_revisions: Vec::new(),
        source_revision_overrides: Vec::new(),
        execution_mode: ExecutionMode::Superseded,
        execution_type: ExecutionType::Standard,
        start_time,
        last_update_time: start_time,
        state_machine_execution_arn: None,
        stop_reason: None,
        rollback: None,
    }
}

fn stage(id: &str, name: &str, attempt: u32, start_time: f64) -> StageExecution {
    StageExecution {
        pipeline_execution_id: id.into(),
        stage_name: name.into(),
        status: StageExecutionStatus::InProgress,
        attempt,
        start_time,
        last_update_time: start_time,
        retry_mode: None,
        conditions: Vec::new(),
        entered_by: None,
        retry_trigger: None,
    }
}

fn action(id: &str, stage: &str, name: &str, attempt: u32, token: &str) -> ActionExecution {
    serde_json::from_value(json!({
        "pipelineExecutionId": id,
        "actionExecutionId": format!("{id}-{name}-{attempt}"),
        "pipelineVersion": 1,
        "stageName": stage,
        "actionName": name,
        "attempt": attempt,
        "status": "InProgress",
        "startTime": T0 + f64::from(attempt),
        "lastUpdateTime": T0 + f64::from(attempt),
        "input": {
            "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "Commands", "version": "1"}
        },
        "taskToken": token,
    }))
    .expect("an action execution")
}

async fn raw_item(
    sdk: &SdkConfig,
    table: &str,
    pk: &str,
    sk: &str,
) -> Option<std::collections::HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(sdk)
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S(pk.into()))
        .key("sk", AttributeValue::S(sk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("dynamodb:GetItem")
        .item()
        .cloned()
}

/// Every item under partition key `pk`.
async fn raw_items(
    sdk: &SdkConfig,
    table: &str,
    pk: &str,
) -> Vec<std::collections::HashMap<String, AttributeValue>> {
    aws_sdk_dynamodb::Client::new(sdk)
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(pk.into()))
        .consistent_read(true)
        .send()
        .await
        .expect("dynamodb:Query")
        .items()
        .to_vec()
}

/// A pipeline event of execution `id` in `state`, changed at `at`.
fn outbox_event(pipeline: &str, id: &str, state: &str, at: f64) -> EventEntry {
    let state: events::PipelineState = serde_json::from_value(json!(state)).unwrap();
    events::pipeline_event(&events::PipelineEventInput {
        execution: events::ExecutionRef {
            pipeline_arn: events::pipeline_arn(REGION, ACCOUNT, pipeline),
            pipeline: pipeline.into(),
            pipeline_version: 1,
            execution_id: id.into(),
            attempt: 1,
        },
        state,
        start_time: None,
        trigger: None,
        stop_comments: None,
    })
    .at(at)
}

fn expires_in_a_year(item: &std::collections::HashMap<String, AttributeValue>) {
    let expires: f64 = item["expiresAt"]
        .as_n()
        .expect("expiresAt is a number")
        .parse()
        .unwrap();
    let year = 365.0 * 86_400.0;
    let now = pipewright_aws::now();
    assert!(
        (expires - (now + year)).abs() < 600.0,
        "expiresAt {expires} is not now + 365 days"
    );
}

#[tokio::test]
async fn an_idempotency_key_starts_one_execution() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let store = store(stack, &sdk).await;
    let table = stack.output("ExecutionsTableName");
    let pipeline = unique("idem");
    let key = unique("event-id");
    let first = unique("exec");
    let second = unique("exec");

    store
        .create_execution(&execution(&pipeline, &first, T0), Some(&key), &[])
        .await
        .expect("first create");
    let err = store
        .create_execution(&execution(&pipeline, &second, T0 + 1.0), Some(&key), &[])
        .await
        .unwrap_err();
    assert_eq!(err, StoreError::Conflict(first.clone()));

    // Nothing of the second was written: no execution, no list entry.
    assert_eq!(store.snapshot(&second).await.unwrap(), None);
    let page = store.list_executions(&pipeline, None, 10).await.unwrap();
    let ids: Vec<&str> = page
        .items
        .iter()
        .map(|e| e.pipeline_execution_id.as_str())
        .collect();
    assert_eq!(ids, [first.as_str()]);

    // The claim names the first execution and expires with the records.
    let claim = raw_item(&sdk, table, &format!("IDEMPOTENCY#{key}"), "IDEMPOTENCY")
        .await
        .expect("the idempotency item");
    assert_eq!(claim["pipelineExecutionId"].as_s().unwrap(), &first);
    expires_in_a_year(&claim);
    let listed = raw_item(
        &sdk,
        table,
        &format!("PIPELINE#{pipeline}"),
        &format!("EXEC#001700000000250#{first}"),
    )
    .await
    .expect("the list item, keyed by start time in ms");
    assert_eq!(listed["status"].as_s().unwrap(), "InProgress");
    expires_in_a_year(&listed);

    // The same execution id again (without a key) is refused with a message, not an id.
    let err = store
        .create_execution(&execution(&pipeline, &first, T0), None, &[])
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("exists")),
        "{err:?}"
    );
    // A different key for a new execution is fine.
    store
        .create_execution(
            &execution(&pipeline, &second, T0 + 1.0),
            Some(&unique("other")),
            &[],
        )
        .await
        .expect("a new key starts a new execution");
}

#[tokio::test]
async fn actions_complete_once_and_snapshots_hold_everything() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let store = store(stack, &sdk).await;
    let table = stack.output("ExecutionsTableName");
    let pipeline = unique("actions");
    let id = unique("exec");
    let token = unique("secret-task-token");

    let mut exec = execution(&pipeline, &id, T0);
    store.create_execution(&exec, None, &[]).await.unwrap();
    store
        .put_stage(&pipeline, &stage(&id, "Build", 1, T0), &[])
        .await
        .unwrap();

    // Begin: a new action, once.
    let started = action(&id, "Build", "Compile", 1, &token);
    store.put_action(&started, None, &[]).await.expect("begin");
    let err = store.put_action(&started, None, &[]).await.unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("exists")),
        "{err:?}"
    );

    // The token is only inside `record`; status is a top-level attribute.
    let item = raw_item(
        &sdk,
        table,
        &format!("EXEC#{id}"),
        "ACTION#Build#Compile#001",
    )
    .await
    .expect("the action item");
    assert_eq!(item["status"].as_s().unwrap(), "InProgress");
    expires_in_a_year(&item);
    for (name, value) in &item {
        if name != "record" {
            assert!(
                !format!("{value:?}").contains(&token),
                "attribute {name} holds the token"
            );
        }
    }

    // Complete: InProgress -> Succeeded once; a second completion conflicts.
    let mut done = started.clone();
    done.status = ActionExecutionStatus::Succeeded;
    done.task_token = None;
    done.last_update_time = T0 + 10.0;
    done.output
        .output_variables
        .insert("BUILD_ID".into(), "42".into());
    // The change and its event are written together (the outbox); a write refused by its
    // condition writes no event.
    let succeeded = outbox_event(&pipeline, &id, "SUCCEEDED", T0 + 10.0);
    let failed = outbox_event(&pipeline, &id, "FAILED", T0 + 11.0);
    store
        .put_action(
            &done,
            Some(ActionExecutionStatus::InProgress),
            std::slice::from_ref(&succeeded),
        )
        .await
        .expect("complete");
    let mut late = started.clone();
    late.status = ActionExecutionStatus::Failed;
    let err = store
        .put_action(
            &late,
            Some(ActionExecutionStatus::InProgress),
            std::slice::from_ref(&failed),
        )
        .await
        .unwrap_err();
    let outbox = raw_items(
        &sdk,
        stack.output("EventsTableName"),
        &format!("OUTBOX#{id}"),
    )
    .await;
    assert_eq!(outbox.len(), 1, "{outbox:?}");
    assert_eq!(
        outbox[0]["sk"].as_s().unwrap(),
        succeeded.event_id().unwrap()
    );
    let kept: EventEntry = serde_json::from_str(outbox[0]["event"].as_s().unwrap()).unwrap();
    assert_eq!(kept, succeeded);
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("Succeeded")),
        "{err:?}"
    );
    assert!(!err.to_string().contains(&token), "{err}");
    // Completing an action that never began conflicts too.
    let never = action(&id, "Build", "Never", 1, "t");
    let err = store
        .put_action(&never, Some(ActionExecutionStatus::InProgress), &[])
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict(_)), "{err:?}");

    // A retry of the stage: attempt 2 of the stage and of the action.
    store
        .put_stage(&pipeline, &stage(&id, "Build", 2, T0 + 20.0), &[])
        .await
        .unwrap();
    let retry = action(&id, "Build", "Compile", 2, &token);
    store.put_action(&retry, None, &[]).await.unwrap();

    // The execution ends once.
    exec.status = PipelineExecutionStatus::Succeeded;
    exec.last_update_time = T0 + 30.0;
    store
        .put_execution(&exec, &[PipelineExecutionStatus::InProgress], &[])
        .await
        .expect("finish");
    let err = store
        .put_execution(
            &exec,
            &[
                PipelineExecutionStatus::InProgress,
                PipelineExecutionStatus::Stopping,
            ],
            &[],
        )
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("is Succeeded")),
        "{err:?}"
    );
    let err = store
        .put_execution(
            &execution(&pipeline, &unique("missing"), T0),
            &[PipelineExecutionStatus::InProgress],
            &[],
        )
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::NotFound(_)), "{err:?}");

    let snapshot = store.snapshot(&id).await.unwrap().expect("a snapshot");
    assert_eq!(snapshot.execution, exec);
    assert_eq!(
        snapshot.stages,
        [
            stage(&id, "Build", 1, T0),
            stage(&id, "Build", 2, T0 + 20.0)
        ]
    );
    assert_eq!(snapshot.actions, [done.clone(), retry.clone()]);
    assert_eq!(snapshot.latest_action("Build", "Compile"), Some(&retry));
    assert_eq!(snapshot.stage("Build").map(|s| s.attempt), Some(2));
    // The list entry follows the execution.
    let page = store.list_executions(&pipeline, None, 10).await.unwrap();
    assert_eq!(page.items, [exec]);
    assert_eq!(store.snapshot(&unique("nothing")).await.unwrap(), None);
}

#[tokio::test]
async fn executions_list_newest_first_page_by_page() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let store = store(stack, &sdk).await;
    let pipeline = unique("listing");
    let other = unique("listing-other");
    let ids: Vec<String> = (0..5).map(|i| format!("{pipeline}-e{i}")).collect();
    // Written out of order: the order comes from the start times.
    for i in [2usize, 0, 4, 1, 3] {
        let start = T0 + 60.0 * i as f64;
        store
            .create_execution(&execution(&pipeline, &ids[i], start), None, &[])
            .await
            .unwrap();
    }
    store
        .create_execution(&execution(&other, &unique("x"), T0 + 1_000.0), None, &[])
        .await
        .unwrap();

    let mut seen = Vec::new();
    let mut token: Option<String> = None;
    let mut pages = 0;
    loop {
        let page = store
            .list_executions(&pipeline, token.as_deref(), 2)
            .await
            .unwrap();
        assert!(page.items.len() <= 2);
        seen.extend(page.items.iter().map(|e| e.pipeline_execution_id.clone()));
        pages += 1;
        match page.next_token {
            Some(t) => token = Some(t),
            None => break,
        }
        assert!(pages < 10, "pagination does not end");
    }
    let newest_first: Vec<String> = ids.iter().rev().cloned().collect();
    assert_eq!(seen, newest_first);
    assert_eq!(pages, 3);

    let all = store.list_executions(&pipeline, None, 100).await.unwrap();
    assert_eq!(all.items.len(), 5);
    assert_eq!(all.next_token, None);
    let exact = store.list_executions(&pipeline, None, 5).await.unwrap();
    assert_eq!(exact.next_token, None, "no token when nothing is left");
}

#[tokio::test]
async fn stage_pointers_follow_the_latest_execution_to_enter() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let store = store(stack, &sdk).await;
    let table = stack.output("ExecutionsTableName");
    let pipeline = unique("pointers");
    let older = unique("older");
    let newer = unique("newer");
    store
        .create_execution(&execution(&pipeline, &older, T0), None, &[])
        .await
        .unwrap();
    store
        .create_execution(&execution(&pipeline, &newer, T0 + 5.0), None, &[])
        .await
        .unwrap();

    // The older execution enters Build, then the newer one does.
    store
        .put_stage(&pipeline, &stage(&older, "Build", 1, T0 + 1.0), &[])
        .await
        .unwrap();
    store
        .put_stage(&pipeline, &stage(&older, "Source", 1, T0), &[])
        .await
        .unwrap();
    store
        .put_stage(&pipeline, &stage(&newer, "Build", 1, T0 + 6.0), &[])
        .await
        .unwrap();
    // The older one finishes Build late: its record changes, the pointer does not.
    let mut late = stage(&older, "Build", 1, T0 + 1.0);
    late.status = StageExecutionStatus::Succeeded;
    late.last_update_time = T0 + 9.0;
    store
        .put_stage(&pipeline, &late, &[])
        .await
        .expect("not an error");
    let snapshot = store.snapshot(&older).await.unwrap().unwrap();
    assert_eq!(
        snapshot.stage("Build").unwrap().status,
        StageExecutionStatus::Succeeded
    );
    // The newer one finishes Build: same execution, the pointer follows.
    let mut done = stage(&newer, "Build", 1, T0 + 6.0);
    done.status = StageExecutionStatus::Failed;
    done.last_update_time = T0 + 10.0;
    store.put_stage(&pipeline, &done, &[]).await.unwrap();

    let mut latest = store.latest_stage_executions(&pipeline).await.unwrap();
    latest.sort_by(|a, b| a.stage_name.cmp(&b.stage_name));
    assert_eq!(latest, vec![done, stage(&older, "Source", 1, T0)]);
    let item = raw_item(&sdk, table, &format!("PIPELINE#{pipeline}"), "STAGE#Build")
        .await
        .expect("the pointer item");
    assert_eq!(item["pipelineExecutionId"].as_s().unwrap(), &newer);
    assert_eq!(item["status"].as_s().unwrap(), "Failed");
    expires_in_a_year(&item);

    // The pointers share the list's partition but never show up as executions.
    let listed = store.list_executions(&pipeline, None, 100).await.unwrap();
    let ids: Vec<&str> = listed
        .items
        .iter()
        .map(|e| e.pipeline_execution_id.as_str())
        .collect();
    assert_eq!(ids, vec![newer.as_str(), older.as_str()]);
}

async fn queue(sdk: &SdkConfig, name: &str) -> (aws_sdk_sqs::Client, String, String) {
    let sqs = aws_sdk_sqs::Client::new(sdk);
    let url = sqs
        .create_queue()
        .queue_name(name)
        .send()
        .await
        .expect("sqs:CreateQueue")
        .queue_url()
        .expect("a queue URL")
        .to_string();
    let arn = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .expect("sqs:GetQueueAttributes")
        .attributes()
        .and_then(|a| a.get(&aws_sdk_sqs::types::QueueAttributeName::QueueArn))
        .expect("a queue ARN")
        .clone();
    (sqs, url, arn)
}

/// Messages from `url` until `count` arrived or 30 s passed.
async fn receive(sqs: &aws_sdk_sqs::Client, url: &str, count: usize) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut bodies = Vec::new();
    while bodies.len() < count && Instant::now() < deadline {
        let out = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .wait_time_seconds(1)
            .send()
            .await
            .expect("sqs:ReceiveMessage");
        for m in out.messages() {
            bodies.push(serde_json::from_str(m.body().unwrap_or("null")).expect("a JSON body"));
            if let Some(handle) = m.receipt_handle() {
                sqs.delete_message()
                    .queue_url(url)
                    .receipt_handle(handle)
                    .send()
                    .await
                    .expect("sqs:DeleteMessage");
            }
        }
    }
    bodies
}

#[tokio::test]
async fn events_reach_a_rule_on_the_bus() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let pipeline = unique("events");
    let (sqs, url, queue_arn) = queue(&sdk, &unique("events-q")).await;
    let eventbridge = aws_sdk_eventbridge::Client::new(&sdk);
    let rule = unique("events-rule");
    let rule_arn = eventbridge
        .put_rule()
        .name(&rule)
        .event_pattern(
            json!({"source": ["pipewright"], "detail": {"pipeline": [pipeline]}}).to_string(),
        )
        .send()
        .await
        .expect("events:PutRule")
        .rule_arn()
        .expect("a rule ARN")
        .to_string();
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"Service": "events.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": queue_arn,
            "Condition": {"ArnEquals": {"aws:SourceArn": rule_arn}}
        }]
    });
    sqs.set_queue_attributes()
        .queue_url(&url)
        .attributes(
            aws_sdk_sqs::types::QueueAttributeName::Policy,
            policy.to_string(),
        )
        .send()
        .await
        .expect("sqs:SetQueueAttributes");
    eventbridge
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(&queue_arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("events:PutTargets");

    // Twelve entries: two PutEvents calls.
    let arn = events::pipeline_arn(REGION, ACCOUNT, &pipeline);
    let entries: Vec<EventEntry> = (0..12)
        .map(|i| EventEntry {
            source: events::SOURCE.into(),
            detail_type: events::PIPELINE_DETAIL_TYPE.into(),
            resources: vec![arn.clone()],
            detail: json!({"pipeline": pipeline, "execution-id": format!("e{i}"), "state": "STARTED", "version": 1}),
            time: Some("2023-10-26T13:49:39Z".into()),
        })
        .collect();
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), "default");
    publisher.publish(&entries).await.expect("published");

    let mut received = receive(&sqs, &url, entries.len()).await;
    assert_eq!(received.len(), entries.len(), "{received:#?}");
    received.sort_by_key(|e| {
        e["detail"]["execution-id"]
            .as_str()
            .unwrap_or_default()
            .trim_start_matches('e')
            .parse::<u32>()
            .unwrap_or(u32::MAX)
    });
    for (event, entry) in received.iter().zip(&entries) {
        assert_eq!(event["source"], "pipewright");
        assert_eq!(event["detail-type"], events::PIPELINE_DETAIL_TYPE);
        assert_eq!(event["detail"], entry.detail);
        assert_eq!(event["resources"], json!([arn]));
        assert_eq!(event["time"], "2023-10-26T13:49:39Z");
    }
    assert!(publisher.publish(&[]).await.is_ok());
}

fn waiting_definition(queue_url: &str) -> Value {
    json!({
        "StartAt": "Wait",
        "States": {
            "Wait": {
                "Type": "Task",
                "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken",
                "Parameters": {
                    "QueueUrl": queue_url,
                    "MessageBody": {"token.$": "$$.Task.Token", "input.$": "$"}
                },
                "End": true
            }
        }
    })
}

/// The status, output, error and cause of an execution once it stopped running (30 s at most).
async fn finished(
    sfn: &aws_sdk_sfn::Client,
    arn: &str,
) -> (
    ExecutionStatus,
    Option<String>,
    Option<String>,
    Option<String>,
) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let out = sfn
            .describe_execution()
            .execution_arn(arn)
            .send()
            .await
            .expect("states:DescribeExecution");
        let status = out.status().clone();
        if status != ExecutionStatus::Running || Instant::now() > deadline {
            return (
                status,
                out.output().map(str::to_string),
                out.error().map(str::to_string),
                out.cause().map(str::to_string),
            );
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn machines(stack: &Stack, sdk: &SdkConfig) -> SfnStateMachines {
    SfnStateMachines::new(
        aws_sdk_sfn::Client::new(sdk),
        Some(stack.output("StateMachineRoleArn").to_string()),
        REGION,
        ACCOUNT,
    )
}

#[tokio::test]
async fn task_tokens_are_answered() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machines = machines(stack, &sdk);
    let tasks = SfnTaskCallbacks::new(sfn.clone());
    let (sqs, url, _) = queue(&sdk, &unique("tokens-q")).await;
    let machine = machines
        .ensure(&unique("pipewright-tokens"), &waiting_definition(&url))
        .await
        .expect("ensure");

    // Success.
    let execution = machines
        .start(&machine, &unique("ok"), &json!({"n": 1}))
        .await
        .expect("start");
    let message = receive(&sqs, &url, 1).await;
    let token = message[0]["token"].as_str().expect("a token").to_string();
    assert_eq!(message[0]["input"], json!({"n": 1}));
    tasks
        .succeed(&token, &json!({"answer": 42}))
        .await
        .expect("SendTaskSuccess");
    let (status, output, _, _) = finished(&sfn, &execution).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    assert_eq!(
        serde_json::from_str::<Value>(output.as_deref().unwrap_or("null")).unwrap(),
        json!({"answer": 42})
    );
    // A token answered before is refused, without quoting it.
    let err = tasks.succeed(&token, &json!({})).await.unwrap_err();
    assert!(err.is_task_gone(), "{err:?}");
    assert!(!err.message().contains(&token), "{err}");

    // Failure, with a cause longer than Step Functions takes.
    let execution = machines
        .start(&machine, &unique("fail"), &json!({"n": 2}))
        .await
        .expect("start");
    let message = receive(&sqs, &url, 1).await;
    let token = message[0]["token"].as_str().expect("a token").to_string();
    let cause = "x".repeat(MAX_CAUSE_CHARS + 100);
    tasks
        .fail(&token, "Pipewright.ActionFailed", &cause)
        .await
        .expect("SendTaskFailure");
    let (status, _, error, cause) = finished(&sfn, &execution).await;
    assert_eq!(status, ExecutionStatus::Failed);
    assert_eq!(error.as_deref(), Some("Pipewright.ActionFailed"));
    assert!(cause.is_some_and(|c| c.len() <= MAX_CAUSE_CHARS));

    // An unknown token: an error that does not quote it.
    let bogus = unique("not-a-real-token");
    let err = tasks.fail(&bogus, "E", "c").await.unwrap_err();
    assert!(err.message().contains("SendTaskFailure"), "{err}");
    assert!(!err.message().contains(&bogus), "{err}");
}

#[tokio::test]
async fn state_machines_are_ensured_and_started_once() {
    let stack = stack();
    let sdk = stack.sdk().await;
    let sfn = aws_sdk_sfn::Client::new(&sdk);
    let machines = machines(stack, &sdk);
    let name = unique("pipewright-ensure");
    let definition = json!({"StartAt": "Done", "States": {"Done": {"Type": "Succeed"}}});

    let first = machines.ensure(&name, &definition).await.expect("create");
    assert_eq!(
        first,
        format!("arn:aws:states:{REGION}:{ACCOUNT}:stateMachine:{name}")
    );
    let second = machines.ensure(&name, &definition).await.expect("exists");
    assert_eq!(first, second);
    let described = sfn
        .describe_state_machine()
        .state_machine_arn(&first)
        .send()
        .await
        .expect("states:DescribeStateMachine");
    assert_eq!(
        described.r#type(),
        &aws_sdk_sfn::types::StateMachineType::Standard
    );
    assert_eq!(described.role_arn(), stack.output("StateMachineRoleArn"));

    let run = unique("run");
    let execution = machines
        .start(&first, &run, &json!({"pipelineName": "p"}))
        .await
        .expect("start");
    assert_eq!(
        execution,
        format!("arn:aws:states:{REGION}:{ACCOUNT}:execution:{name}:{run}")
    );
    let (status, _, _, _) = finished(&sfn, &execution).await;
    assert_eq!(status, ExecutionStatus::Succeeded);
    // Started again (an at-least-once caller), even with another input: the same execution.
    let again = machines
        .start(&first, &run, &json!({"pipelineName": "p", "retry": true}))
        .await
        .expect("start again");
    assert_eq!(again, execution);

    // Without a role, an existing machine is still found; a new one cannot be made.
    let no_role = SfnStateMachines::new(sfn.clone(), None, REGION, ACCOUNT);
    assert_eq!(no_role.ensure(&name, &definition).await.unwrap(), first);
    let err = no_role
        .ensure(&unique("pipewright-norole"), &definition)
        .await
        .unwrap_err();
    assert!(err.message().contains("STATE_MACHINE_ROLE_ARN"), "{err}");
}
