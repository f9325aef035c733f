//! Polling sources and schedules on the local stack.
//!
//! - Polling: the stack's polling rule sends the trigger function a plain `Scheduled Event`
//!   every minute; the tests also send it themselves (`events/trigger-scheduled-poll.json`) to
//!   poll now. Either way one change starts one execution, so a background poll running at the
//!   same time changes nothing the tests check (they count executions, not who started them).
//! - Schedules: an input naming a pipeline (`events/trigger-schedule-rule-start.json`,
//!   `events/trigger-scheduler-start.json`), invoked directly and delivered by an EventBridge
//!   scheduled rule with an InputTransformer.

use std::time::{Duration, Instant};

use aws_sdk_s3::primitives::ByteStream;
use pipewright_e2e::pipelines::{
    clients, source_action, versioned_source, zip_of, Clients, PipelineBuilder,
};
use pipewright_e2e::triggers::{execution_record, executions, invoke_trigger, sample, started};
use pipewright_e2e::{stack, unique, Stack};
use serde_json::{json, Value};

/// A V2 pipeline (PARALLEL) whose first stage is `source` (output artifact `Src`), then a
/// Commands action; it declares the variable `SiteBucket` the Scheduler sample overrides.
fn create(stack: &Stack, name: &str, source: Value) {
    PipelineBuilder::new(stack, "polling")
        .named(name)
        .variable("SiteBucket", "pipewright-unused")
        .source(source)
        .commands("Build", &["ls"])
        .create(stack);
}

fn source(provider: &str, configuration: Value) -> Value {
    source_action("App", provider, configuration)
}

/// Poll now, as the stack's polling rule does; the answer.
async fn poll(c: &Clients, stack: &Stack) -> Value {
    let mut event = sample("trigger-scheduled-poll.json");
    event["id"] = json!(unique("poll"));
    let answer = invoke_trigger(c, stack, &event).await;
    assert_eq!(answer["failed"], json!([]), "{answer}");
    answer
}

/// `times` polls at once; their answers.
async fn polls_at_once(c: &Clients, stack: &Stack, times: usize) -> Vec<Value> {
    futures::future::join_all((0..times).map(|_| poll(c, stack))).await
}

/// What the answers say they started for `pipeline`: (execution id, new).
fn started_for(answers: &[Value], pipeline: &str) -> Vec<(String, bool)> {
    answers
        .iter()
        .flat_map(started)
        .filter(|(p, _, _)| p == pipeline)
        .map(|(_, id, new)| (id, new))
        .collect()
}

/// The poll state the stack keeps for `pipeline` (None before its first poll).
async fn poll_state(c: &Clients, stack: &Stack, pipeline: &str) -> Option<Value> {
    let item = c
        .dynamo
        .get_item()
        .table_name(stack.output("ExecutionsTableName"))
        .key(
            "pk",
            aws_sdk_dynamodb::types::AttributeValue::S(format!("PIPELINE#{pipeline}")),
        )
        .key(
            "sk",
            aws_sdk_dynamodb::types::AttributeValue::S("POLL".into()),
        )
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem")
        .item?;
    Some(serde_json::from_str(item["record"].as_s().unwrap()).unwrap())
}

async fn put_version(c: &Clients, bucket: &str, key: &str, text: &str) -> String {
    c.s3.put_object()
        .bucket(bucket)
        .key(key)
        .body(ByteStream::from(zip_of(&[("a.txt", text)])))
        .send()
        .await
        .expect("PutObject")
        .version_id()
        .expect("a version id")
        .to_string()
}

/// Wait until `pipeline` has `n` executions (at most `limit`); them.
async fn wait_for_executions(
    c: &Clients,
    pipeline: &str,
    n: usize,
    limit: Duration,
) -> Vec<(String, String, String)> {
    let deadline = Instant::now() + limit;
    loop {
        let listed = executions(c, pipeline).await;
        if listed.len() >= n || Instant::now() > deadline {
            return listed;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

#[tokio::test]
async fn a_polling_s3_source_starts_one_execution_per_new_version_and_none_without() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = unique("pipewright-poll");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("a.txt", "1\n")])).await;
    let (polling, events) = (unique("poll-s3"), unique("poll-s3-events"));
    create(
        stack,
        &polling,
        source(
            "S3",
            json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip", "PollForSourceChanges": "true"}),
        ),
    );
    create(
        stack,
        &events,
        source(
            "S3",
            json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"}),
        ),
    );

    // The first poll records the version there; no poll starts anything without a change.
    let t = Instant::now();
    let answers = vec![poll(&c, stack).await, poll(&c, stack).await];
    assert!(started_for(&answers, &polling).is_empty(), "{answers:?}");
    assert!(poll_state(&c, stack, &polling).await.is_some());
    assert!(executions(&c, &polling).await.is_empty());
    println!("two polls without a change: {:?}", t.elapsed());

    // A new version: polls at once (the same poll delivered three times) start one execution,
    // pinned to it, recorded as PollForSourceChanges.
    let v2 = put_version(&c, &bucket, "app.zip", "2\n").await;
    let t = Instant::now();
    let answers = polls_at_once(&c, stack, 3).await;
    println!("three polls at once after a change: {:?}", t.elapsed());
    let fresh: Vec<_> = started_for(&answers, &polling)
        .into_iter()
        .filter(|(_, new)| *new)
        .collect();
    assert!(fresh.len() <= 1, "{answers:?}");
    let listed = executions(&c, &polling).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    let (id, trigger, detail) = &listed[0];
    assert_eq!(trigger, "PollForSourceChanges");
    assert!(
        detail.contains(&format!("s3://{bucket}/app.zip version {v2}")),
        "{detail}"
    );
    assert_eq!(
        execution_record(&c, stack, id).await["sourceRevisionOverrides"],
        json!([{"actionName": "App", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": v2}])
    );

    // Delivered again later: nothing new.
    let answers = vec![poll(&c, stack).await, poll(&c, stack).await];
    assert!(
        started_for(&answers, &polling).iter().all(|(_, new)| !new),
        "{answers:?}"
    );
    assert_eq!(executions(&c, &polling).await.len(), 1);

    // The next version: the next execution.
    let v3 = put_version(&c, &bucket, "app.zip", "3\n").await;
    poll(&c, stack).await;
    let listed = executions(&c, &polling).await;
    assert_eq!(listed.len(), 2, "{listed:?}");
    assert!(listed[0].2.contains(&v3), "{listed:?}");

    // The pipeline that follows events is never started by a poll.
    assert!(executions(&c, &events).await.is_empty());
    assert!(poll_state(&c, stack, &events).await.is_none());
}

#[tokio::test]
async fn the_stacks_polling_rule_polls_by_itself() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = unique("pipewright-poll");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("a.txt", "1\n")])).await;
    let name = unique("poll-rule");
    create(
        stack,
        &name,
        source(
            "S3",
            json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip", "PollForSourceChanges": "true"}),
        ),
    );
    poll(&c, stack).await;
    let version = put_version(&c, &bucket, "app.zip", "2\n").await;
    // No poll from the test: the rule (rate(1 minute)) fires within a minute.
    let t = Instant::now();
    let listed = wait_for_executions(&c, &name, 1, Duration::from_secs(90)).await;
    println!(
        "the polling rule started the execution after {:?}",
        t.elapsed()
    );
    assert_eq!(listed.len(), 1, "the polling rule started nothing in 90 s");
    assert_eq!(listed[0].1, "PollForSourceChanges");
    assert!(listed[0].2.contains(&version), "{listed:?}");
}

#[tokio::test]
async fn a_polling_codecommit_source_starts_one_execution_per_new_commit() {
    let stack = stack();
    let c = clients(stack).await;
    let codecommit = aws_sdk_codecommit::Client::new(&c.sdk);
    let repository = unique("pipewright-poll-repo");
    codecommit
        .create_repository()
        .repository_name(&repository)
        .send()
        .await
        .expect("CreateRepository");
    let put = |parent: Option<String>, text: &str| {
        codecommit
            .put_file()
            .repository_name(&repository)
            .branch_name("main")
            .file_path("README.md")
            .file_content(aws_sdk_codecommit::primitives::Blob::new(text.as_bytes()))
            .set_parent_commit_id(parent)
            .send()
    };
    let first = put(None, "1\n").await.expect("PutFile").commit_id;
    let (main, dev) = (unique("poll-cc-main"), unique("poll-cc-dev"));
    for (name, branch) in [(&main, "main"), (&dev, "dev")] {
        create(
            stack,
            name,
            source(
                "CodeCommit",
                json!({"RepositoryName": repository, "BranchName": branch, "PollForSourceChanges": "true"}),
            ),
        );
    }
    poll(&c, stack).await;
    assert_eq!(
        poll_state(&c, stack, &main).await.unwrap()["sources"]["App"]["revision"],
        json!({"type": "COMMIT_ID", "value": first})
    );
    // A branch that does not exist has nothing to record.
    assert!(poll_state(&c, stack, &dev).await.is_none());

    let second = put(Some(first.clone()), "2\n")
        .await
        .expect("PutFile")
        .commit_id;
    let answers = polls_at_once(&c, stack, 2).await;
    assert!(started_for(&answers, &dev).is_empty(), "{answers:?}");
    let listed = executions(&c, &main).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].1, "PollForSourceChanges");
    assert_eq!(
        execution_record(&c, stack, &listed[0].0).await["sourceRevisionOverrides"],
        json!([{"actionName": "App", "revisionType": "COMMIT_ID", "revisionValue": second}])
    );
    poll(&c, stack).await;
    assert_eq!(executions(&c, &main).await.len(), 1);
    assert!(executions(&c, &dev).await.is_empty());
}

#[tokio::test]
async fn a_scheduled_start_starts_one_execution_per_firing() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = unique("pipewright-sched");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("a.txt", "1\n")])).await;
    let name = unique("sched");
    create(
        stack,
        &name,
        source("S3", json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip"})),
    );

    // An EventBridge rule's firing, delivered three times at once, then once more.
    let mut firing = sample("trigger-schedule-rule-start.json");
    firing["pipelineName"] = json!(name);
    let t = Instant::now();
    let answers =
        futures::future::join_all((0..3).map(|_| invoke_trigger(&c, stack, &firing))).await;
    println!("three deliveries at once of one firing: {:?}", t.elapsed());
    let ids: Vec<(String, String, bool)> = answers.iter().flat_map(started).collect();
    assert_eq!(ids.len(), 3, "{answers:?}");
    assert!(ids.iter().all(|(_, id, _)| *id == ids[0].1), "{answers:?}");
    assert_eq!(
        ids.iter().filter(|(_, _, new)| *new).count(),
        1,
        "{answers:?}"
    );
    let again = started(&invoke_trigger(&c, stack, &firing).await);
    assert_eq!(again[0].1, ids[0].1);
    assert!(!again[0].2);
    let listed = executions(&c, &name).await;
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert_eq!(listed[0].1, "CloudWatchEvent");
    assert_eq!(
        listed[0].2,
        "arn:aws:events:us-east-1:123456789012:rule/pipewright-sample-nightly at 2026-11-22T03:00:00Z"
    );

    // The next firing: the next execution.
    firing["scheduledTime"] = json!("2026-11-23T03:00:00Z");
    firing["eventId"] = json!(unique("event"));
    assert!(started(&invoke_trigger(&c, stack, &firing).await)[0].2);
    assert_eq!(executions(&c, &name).await.len(), 2);

    // An EventBridge Scheduler firing with a variable override, delivered twice.
    let mut scheduled = sample("trigger-scheduler-start.json");
    scheduled["pipelineName"] = json!(name);
    let first = started(&invoke_trigger(&c, stack, &scheduled).await);
    let second = started(&invoke_trigger(&c, stack, &scheduled).await);
    assert_eq!(first[0].1, second[0].1);
    assert!(first[0].2 && !second[0].2);
    let record = execution_record(&c, stack, &first[0].1).await;
    assert_eq!(
        record["variables"],
        json!([{"name": "SiteBucket", "resolvedValue": "pipewright-sample-site-nightly"}]),
        "{record}"
    );
    assert!(record["trigger"]["triggerDetail"]
        .as_str()
        .unwrap()
        .starts_with("arn:aws:scheduler:"));
    assert_eq!(executions(&c, &name).await.len(), 3);

    // A pipeline that does not exist, an unusable input: answered, nothing started.
    let mut missing = firing.clone();
    missing["pipelineName"] = json!(unique("no-such-pipeline"));
    let answer = invoke_trigger(&c, stack, &missing).await;
    assert!(started(&answer).is_empty(), "{answer}");
    assert!(
        answer["ignored"]
            .as_str()
            .unwrap()
            .contains("does not exist"),
        "{answer}"
    );
    let answer = invoke_trigger(&c, stack, &json!({"pipelineName": name, "pipeline": "x"})).await;
    assert!(
        answer["ignored"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{answer}"
    );
    assert_eq!(executions(&c, &name).await.len(), 3);
}

#[tokio::test]
async fn a_scheduled_eventbridge_rule_starts_the_pipeline_through_the_trigger() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = unique("pipewright-sched");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("a.txt", "1\n")])).await;
    let name = unique("sched-rule");
    create(
        stack,
        &name,
        source("S3", json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip"})),
    );
    let events = aws_sdk_eventbridge::Client::new(&c.sdk);
    let rule = unique("pipewright-nightly");
    let rule_arn = events
        .put_rule()
        .name(&rule)
        .schedule_expression("rate(1 day)")
        .send()
        .await
        .expect("PutRule")
        .rule_arn
        .expect("a rule ARN");
    // As the README shows: the rule's own event id and time go into the input.
    let template = json!({
        "pipelineName": name,
        "schedule": "<aws.events.rule-arn>",
        "scheduledTime": "<time>",
        "eventId": "<id>"
    })
    .to_string();
    events
        .put_targets()
        .rule(&rule)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("pipewright-trigger")
                .arn(stack.output("TriggerFunctionArn"))
                .input_transformer(
                    aws_sdk_eventbridge::types::InputTransformer::builder()
                        .input_paths_map("id", "$.id")
                        .input_paths_map("time", "$.time")
                        .input_template(template)
                        .build()
                        .expect("an input transformer"),
                )
                .build()
                .expect("a target"),
        )
        .send()
        .await
        .expect("PutTargets");

    let t = Instant::now();
    let listed = wait_for_executions(&c, &name, 1, Duration::from_secs(30)).await;
    println!(
        "the scheduled rule started the execution after {:?}",
        t.elapsed()
    );
    events
        .remove_targets()
        .rule(&rule)
        .ids("pipewright-trigger")
        .send()
        .await
        .expect("RemoveTargets");
    events
        .delete_rule()
        .name(&rule)
        .send()
        .await
        .expect("DeleteRule");
    // One execution per firing. One run here saw two executions within 2 s of the rule's
    // creation, so the emulator may fire a new rule more than once: each firing (its own
    // scheduled time) may start one execution, never two.
    assert!(!listed.is_empty(), "the rule started nothing in 30 s");
    if listed.len() > 1 {
        println!("the rule fired {} times: {listed:?}", listed.len());
    }
    let mut details: Vec<&str> = listed.iter().map(|e| e.2.as_str()).collect();
    details.sort();
    details.dedup();
    assert_eq!(
        details.len(),
        listed.len(),
        "two executions for one firing: {listed:?}"
    );
    for (_, trigger, detail) in &listed {
        assert_eq!(trigger, "CloudWatchEvent");
        assert!(detail.starts_with(&format!("{rule_arn} at ")), "{listed:?}");
    }
}
