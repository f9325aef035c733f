//! Whole pipelines on the local stack: the sample pipeline (S3 source → two Commands actions in
//! parallel → Commands test → manual approval → S3 deploy) started through CodePipeline's API and through an S3
//! source-change event, with real artifacts, variables, records and EventBridge events.

use std::time::Duration;

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use aws_sdk_lambda::primitives::Blob;
use pipewright_e2e::pipelines::{
    approve_when_asked, clients, create_pipeline, drain_events, execution_records, latest_action,
    outbox_ids, start, subscribe, versioned_source, wait_for, without_approvals, zip_of, Clients,
};
use pipewright_e2e::{root, stack, unique, Stack};
use serde_json::{json, Value};

const INDEX_HTML: &str = "<html><body>pipewright sample</body></html>\n";

/// A source bucket with `app.zip`, a site bucket, and the sample pipeline pointing at both.
struct Sample {
    name: String,
    source_bucket: String,
    site_bucket: String,
    declaration: Value,
    source_version: String,
}

async fn sample(c: &Clients, stack: &Stack, edit: impl FnOnce(&mut Value)) -> Sample {
    let name = unique("run");
    let source_bucket = unique("pipewright-src");
    let site_bucket = unique("pipewright-site");
    c.s3.create_bucket()
        .bucket(&site_bucket)
        .send()
        .await
        .expect("create bucket");
    let source_version = versioned_source(
        c,
        &source_bucket,
        "app.zip",
        zip_of(&[("src/index.html", INDEX_HTML), ("README.md", "# sample\n")]),
    )
    .await;
    let text = std::fs::read_to_string(root().join("infra/pipelines/sample.json")).unwrap();
    let mut declaration: Value = serde_json::from_str::<Value>(&text).unwrap()["pipeline"].clone();
    declaration["name"] = json!(name);
    // The sample's role reaches the sample's own buckets only; these have names of their own.
    declaration["roleArn"] = json!(pipewright_e2e::TEST_ROLE_ARN);
    declaration["artifactStore"]["location"] = json!(stack.output("ArtifactBucketName"));
    declaration["stages"][0]["actions"][0]["configuration"]["S3Bucket"] = json!(source_bucket);
    declaration["variables"][0]["defaultValue"] = json!(site_bucket);
    edit(&mut declaration);
    create_pipeline(stack, &declaration);
    Sample {
        name,
        source_bucket,
        site_bucket,
        declaration,
        source_version,
    }
}

/// Events as (detail-type word, stage.action, state).
fn kinds(events: &[Value]) -> Vec<(String, String, String)> {
    events
        .iter()
        .map(|event| {
            assert_eq!(event["source"], "pipewright");
            let d = &event["detail"];
            let kind = event["detail-type"]
                .as_str()
                .unwrap()
                .split(' ')
                .nth(1)
                .unwrap()
                .to_string();
            let place = [d["stage"].as_str(), d["action"].as_str()]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(".");
            (kind, place, d["state"].as_str().unwrap().to_string())
        })
        .collect()
}

#[tokio::test]
async fn the_sample_pipeline_runs_end_to_end() {
    let stack = stack();
    let c = clients(stack).await;
    let s = sample(&c, stack, |_| {}).await;
    let queue = subscribe(&c, &s.name).await;
    let id = start(&c, &s.name).await;
    // A person approves before Deploy: the token comes from GetPipelineState.
    let token = approve_when_asked(&c, &s.name, "Approve", "Release").await;
    let (status, summary) = wait_for(&c, &s.name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    // The Deploy stage extracted the build output into the site bucket.
    let deployed =
        c.s3.get_object()
            .bucket(&s.site_bucket)
            .key("dist/index.html")
            .send()
            .await
            .expect("deployed file");
    let body = deployed.body.collect().await.unwrap().into_bytes();
    assert_eq!(String::from_utf8_lossy(&body), INDEX_HTML);

    // Variables flowed: the source's VersionId into Compile, Compile's BUILD_ID into UnitTests.
    let records = execution_records(&c, stack, &id).await;
    let compile = latest_action(&records, "Build", "Compile");
    assert_eq!(compile["status"], "Succeeded");
    assert!(compile["logTail"]
        .as_str()
        .unwrap()
        .contains(&format!("building revision {}", s.source_version)));
    assert_eq!(
        compile["output"]["outputVariables"]["BUILD_ID"],
        json!(format!("build-{id}"))
    );
    let tests = latest_action(&records, "Test", "UnitTests");
    assert!(tests["logTail"]
        .as_str()
        .unwrap()
        .contains(&format!("tested build build-{id}")));
    // Inputs are read by the S3 version the producer wrote.
    let output = &compile["output"]["outputArtifacts"][0]["s3location"];
    let input = &tests["input"]["inputArtifacts"][0]["s3location"];
    assert_eq!(output, input);
    assert!(input["versionId"].is_string());
    let approval = latest_action(&records, "Approve", "Release");
    assert_eq!(approval["actionExecutionId"], json!(token));
    assert_eq!(
        approval["output"]["executionResult"]["externalExecutionSummary"],
        "approved by the test"
    );
    let source = latest_action(&records, "Source", "Source");
    assert_eq!(
        source["output"]["outputVariables"]["VersionId"],
        json!(s.source_version)
    );

    // Every state change went out on EventBridge (through the outbox), each once, in an order
    // that makes sense, each with its own stable id.
    let raw = drain_events(&c, &queue, Duration::from_secs(3)).await;
    let events = kinds(&raw);
    let ids: std::collections::BTreeSet<&str> = raw
        .iter()
        .map(|e| e["detail"]["event-id"].as_str().expect("detail.event-id"))
        .collect();
    assert_eq!(ids.len(), raw.len(), "event ids repeat: {raw:#?}");
    // The outbox holds exactly the events that went out.
    let outbox = outbox_ids(&c, stack, &id).await;
    assert_eq!(
        outbox,
        ids.iter().map(|i| i.to_string()).collect(),
        "outbox"
    );
    let mut expected: Vec<(String, String, String)> = vec![
        ("Pipeline".into(), String::new(), "STARTED".into()),
        ("Pipeline".into(), String::new(), "SUCCEEDED".into()),
    ];
    let stages = [
        ("Source", vec!["Source"]),
        ("Build", vec!["Compile", "Docs"]),
        ("Test", vec!["UnitTests"]),
        ("Approve", vec!["Release"]),
        ("Deploy", vec!["Publish"]),
    ];
    for (stage, actions) in &stages {
        for state in ["STARTED", "SUCCEEDED"] {
            expected.push(("Stage".into(), stage.to_string(), state.into()));
            for a in actions {
                expected.push(("Action".into(), format!("{stage}.{a}"), state.into()));
            }
        }
    }
    let mut got_sorted = events.clone();
    got_sorted.sort();
    expected.sort();
    assert_eq!(got_sorted, expected, "events: {events:#?}");
    let at = |kind: &str, place: &str, state: &str| {
        events
            .iter()
            .position(|e| e.0 == kind && e.1 == place && e.2 == state)
            .unwrap()
    };
    assert_eq!(at("Pipeline", "", "STARTED"), 0);
    assert_eq!(at("Pipeline", "", "SUCCEEDED"), events.len() - 1);
    let mut last_stage_end = 0;
    for (stage, actions) in &stages {
        let (begin, end) = (
            at("Stage", stage, "STARTED"),
            at("Stage", stage, "SUCCEEDED"),
        );
        assert!(
            begin > last_stage_end || *stage == "Source",
            "{stage} started before the previous stage ended"
        );
        for a in actions {
            let place = format!("{stage}.{a}");
            assert!(begin < at("Action", &place, "STARTED"));
            assert!(at("Action", &place, "STARTED") < at("Action", &place, "SUCCEEDED"));
            assert!(at("Action", &place, "SUCCEEDED") < end);
        }
        last_stage_end = end;
    }
    let _ = (&s.source_bucket, &s.declaration);
}

#[tokio::test]
async fn two_executions_at_once_keep_separate_artifacts_and_records() {
    let stack = stack();
    let c = clients(stack).await;
    let s = sample(&c, stack, without_approvals).await;
    let (a, b) = tokio::join!(start(&c, &s.name), start(&c, &s.name));
    assert_ne!(a, b);
    let (ra, rb) = tokio::join!(wait_for(&c, &s.name, &a), wait_for(&c, &s.name, &b));
    assert_eq!(ra.0, PipelineExecutionStatus::Succeeded, "{ra:?}");
    assert_eq!(rb.0, PipelineExecutionStatus::Succeeded, "{rb:?}");
    let (records_a, records_b) = (
        execution_records(&c, stack, &a).await,
        execution_records(&c, stack, &b).await,
    );
    for (stage, name) in [
        ("Source", "Source"),
        ("Build", "Compile"),
        ("Build", "Docs"),
    ] {
        let (x, y) = (
            latest_action(&records_a, stage, name),
            latest_action(&records_b, stage, name),
        );
        assert_eq!(x["pipelineExecutionId"], json!(a));
        assert_eq!(y["pipelineExecutionId"], json!(b));
        let (kx, ky) = (
            &x["output"]["outputArtifacts"][0]["s3location"],
            &y["output"]["outputArtifacts"][0]["s3location"],
        );
        assert_ne!(
            kx["key"], ky["key"],
            "{stage}.{name} wrote both executions' artifacts to one key"
        );
    }
    // Each Test stage read its own execution's build output.
    let (ta, tb) = (
        latest_action(&records_a, "Test", "UnitTests"),
        latest_action(&records_b, "Test", "UnitTests"),
    );
    assert_eq!(
        ta["input"]["inputArtifacts"][0]["s3location"],
        latest_action(&records_a, "Build", "Compile")["output"]["outputArtifacts"][0]["s3location"]
    );
    assert_eq!(
        tb["input"]["inputArtifacts"][0]["s3location"],
        latest_action(&records_b, "Build", "Compile")["output"]["outputArtifacts"][0]["s3location"]
    );
}

#[tokio::test]
async fn a_failing_command_fails_its_stage_and_the_execution() {
    let stack = stack();
    let c = clients(stack).await;
    let s = sample(&c, stack, |d| {
        d["stages"][1]["actions"][0]["commands"] = json!(["echo about to fail", "exit 3"]);
    })
    .await;
    let id = start(&c, &s.name).await;
    let (status, summary) = wait_for(&c, &s.name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let summary = summary.expect("a status summary");
    assert!(
        summary.contains("Compile") && summary.contains("exit code 3"),
        "{summary}"
    );

    let records = execution_records(&c, stack, &id).await;
    assert_eq!(
        latest_action(&records, "Build", "Compile")["status"],
        "Failed"
    );
    // Its sibling in the same action group still ran to the end.
    assert_eq!(
        latest_action(&records, "Build", "Docs")["status"],
        "Succeeded"
    );
    // Later stages never started.
    assert!(!records
        .iter()
        .any(|(sk, _)| sk.starts_with("STAGE#Test") || sk.starts_with("ACTION#Test")));
}

#[tokio::test]
async fn an_s3_object_created_event_starts_the_pipeline_once() {
    let stack = stack();
    let c = clients(stack).await;
    let s = sample(&c, stack, without_approvals).await;
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events/trigger-s3-object-created.json")).unwrap(),
    )
    .unwrap();
    event["id"] = json!(unique("event"));
    event["detail"]["bucket"]["name"] = json!(s.source_bucket);
    event["detail"]["object"]["version-id"] = json!(s.source_version);
    let lambda = aws_sdk_lambda::Client::new(&c.sdk);
    let mut ids = Vec::new();
    // EventBridge delivers at least once: the same event three times starts one execution.
    for _ in 0..3 {
        let out = lambda
            .invoke()
            .function_name(stack.output("TriggerFunctionName"))
            .payload(Blob::new(event.to_string()))
            .send()
            .await
            .expect("Invoke trigger");
        assert!(out.function_error().is_none());
        let result: Value = serde_json::from_slice(out.payload().unwrap().as_ref()).unwrap();
        let started = result["started"].as_array().unwrap();
        assert_eq!(started.len(), 1, "{result}");
        assert_eq!(started[0]["pipelineName"], json!(s.name));
        ids.push(
            started[0]["pipelineExecutionId"]
                .as_str()
                .unwrap()
                .to_string(),
        );
    }
    assert!(ids.iter().all(|id| id == &ids[0]), "{ids:?}");
    let (status, summary) = wait_for(&c, &s.name, &ids[0]).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let listed = c
        .codepipeline
        .list_pipeline_executions()
        .pipeline_name(&s.name)
        .send()
        .await
        .unwrap();
    assert_eq!(listed.pipeline_execution_summaries().len(), 1);
    let trigger = listed.pipeline_execution_summaries()[0].trigger().unwrap();
    assert_eq!(trigger.trigger_type().unwrap().as_str(), "CloudWatchEvent");
}
