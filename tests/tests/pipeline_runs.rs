//! Whole pipelines on the local stack: the sample pipeline (S3 source → two Commands actions in
//! parallel → Commands test → S3 deploy) started through CodePipeline's API and through an S3
//! source-change event, with real artifacts, variables, records and EventBridge events.

use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_s3::primitives::ByteStream;
use pipewright_e2e::{root, stack, unique, Stack};
use serde_json::{json, Value};

const INDEX_HTML: &str = "<html><body>pipewright sample</body></html>\n";

/// Clients for one test.
struct Clients {
    sdk: aws_config::SdkConfig,
    s3: aws_sdk_s3::Client,
    codepipeline: aws_sdk_codepipeline::Client,
    dynamo: aws_sdk_dynamodb::Client,
}

async fn clients(stack: &Stack) -> Clients {
    let sdk = stack.sdk().await;
    let target = pipewright_aws::config::Target::local(stack.endpoint.clone());
    let codepipeline = aws_sdk_codepipeline::Client::from_conf(
        aws_sdk_codepipeline::config::Builder::from(&sdk)
            .endpoint_url(&stack.api_endpoint)
            .build(),
    );
    Clients {
        s3: pipewright_aws::config::s3_client(&sdk, &target),
        dynamo: aws_sdk_dynamodb::Client::new(&sdk),
        codepipeline,
        sdk,
    }
}

/// A zip holding `files` (path, contents).
fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, body) in files {
        writer
            .start_file(*path, zip::write::SimpleFileOptions::default())
            .unwrap();
        writer.write_all(body.as_bytes()).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

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
    for bucket in [&source_bucket, &site_bucket] {
        c.s3.create_bucket()
            .bucket(bucket)
            .send()
            .await
            .expect("create bucket");
    }
    c.s3.put_bucket_versioning()
        .bucket(&source_bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("versioning");
    let put =
        c.s3.put_object()
            .bucket(&source_bucket)
            .key("app.zip")
            .body(ByteStream::from(zip_of(&[
                ("src/index.html", INDEX_HTML),
                ("README.md", "# sample\n"),
            ])))
            .send()
            .await
            .expect("put source");
    let text = std::fs::read_to_string(root().join("infra/pipelines/sample.json")).unwrap();
    let mut declaration: Value = serde_json::from_str::<Value>(&text).unwrap()["pipeline"].clone();
    declaration["name"] = json!(name);
    declaration["artifactStore"]["location"] = json!(stack.output("ArtifactBucketName"));
    declaration["stages"][0]["actions"][0]["configuration"]["S3Bucket"] = json!(source_bucket);
    declaration["variables"][0]["defaultValue"] = json!(site_bucket);
    edit(&mut declaration);
    create_pipeline(stack, &declaration).await;
    Sample {
        name,
        source_bucket,
        site_bucket,
        declaration,
        source_version: put.version_id().expect("a version id").to_string(),
    }
}

async fn create_pipeline(stack: &Stack, declaration: &Value) {
    // CodePipeline's JSON 1.1 protocol as any client sends it, through the local Function URL.
    let body = json!({ "pipeline": declaration }).to_string();
    let mut response = ureq::post(&stack.api_endpoint)
        .header("Content-Type", "application/x-amz-json-1.1")
        .header("X-Amz-Target", "CodePipeline_20150709.CreatePipeline")
        .config()
        .http_status_as_error(false)
        .build()
        .send(body.as_bytes())
        .expect("CreatePipeline request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(status, 200, "CreatePipeline: {text}");
}

/// Wait until the execution leaves InProgress; returns its final status and summary.
async fn wait_for(
    c: &Clients,
    pipeline: &str,
    id: &str,
) -> (PipelineExecutionStatus, Option<String>) {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let out = c
            .codepipeline
            .get_pipeline_execution()
            .pipeline_name(pipeline)
            .pipeline_execution_id(id)
            .send()
            .await
            .expect("GetPipelineExecution");
        let execution = out.pipeline_execution().expect("an execution");
        let status = execution.status().cloned().expect("a status");
        if status != PipelineExecutionStatus::InProgress {
            return (status, execution.status_summary().map(str::to_string));
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} still InProgress after 180 s"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every record the executions table holds for `id`: (sk, record JSON).
async fn records(c: &Clients, stack: &Stack, id: &str) -> Vec<(String, Value)> {
    let out = c
        .dynamo
        .query()
        .table_name(stack.output("ExecutionsTableName"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("EXEC#{id}")))
        .consistent_read(true)
        .send()
        .await
        .expect("Query");
    out.items()
        .iter()
        .map(|i| {
            let sk = i["sk"].as_s().unwrap().to_string();
            let record = serde_json::from_str(i["record"].as_s().unwrap()).unwrap();
            (sk, record)
        })
        .collect()
}

fn action<'r>(records: &'r [(String, Value)], stage: &str, name: &str) -> &'r Value {
    records
        .iter()
        .filter(|(sk, _)| sk.starts_with(&format!("ACTION#{stage}#{name}#")))
        .map(|(_, r)| r)
        .last()
        .unwrap_or_else(|| panic!("no record of action {stage}.{name}"))
}

async fn start(c: &Clients, name: &str) -> String {
    c.codepipeline
        .start_pipeline_execution()
        .name(name)
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .expect("an id")
        .to_string()
}

/// An SQS queue receiving this pipeline's events through an EventBridge rule on the default bus.
async fn subscribe(c: &Clients, pipeline: &str) -> String {
    let sqs = aws_sdk_sqs::Client::new(&c.sdk);
    let events = aws_sdk_eventbridge::Client::new(&c.sdk);
    let queue = sqs
        .create_queue()
        .queue_name(pipeline)
        .send()
        .await
        .expect("CreateQueue");
    let url = queue.queue_url().unwrap().to_string();
    let attrs = sqs
        .get_queue_attributes()
        .queue_url(&url)
        .attribute_names(aws_sdk_sqs::types::QueueAttributeName::QueueArn)
        .send()
        .await
        .unwrap();
    let arn =
        attrs.attributes().unwrap()[&aws_sdk_sqs::types::QueueAttributeName::QueueArn].clone();
    let pattern = json!({ "source": ["pipewright"], "detail": { "pipeline": [pipeline] } });
    events
        .put_rule()
        .name(pipeline)
        .event_pattern(pattern.to_string())
        .send()
        .await
        .expect("PutRule");
    events
        .put_targets()
        .rule(pipeline)
        .targets(
            aws_sdk_eventbridge::types::Target::builder()
                .id("queue")
                .arn(arn)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("PutTargets");
    url
}

/// Every event in the queue, in arrival order, as (detail-type word, stage.action, state).
async fn drain(c: &Clients, url: &str, settle: Duration) -> Vec<(String, String, String)> {
    let sqs = aws_sdk_sqs::Client::new(&c.sdk);
    let mut out = Vec::new();
    let deadline = Instant::now() + settle;
    while Instant::now() < deadline {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .unwrap();
        for m in got.messages() {
            let event: Value = serde_json::from_str(m.body().unwrap()).unwrap();
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
            out.push((kind, place, d["state"].as_str().unwrap().to_string()));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap())
                .send()
                .await
                .unwrap();
        }
        if got.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    out
}

#[tokio::test]
async fn the_sample_pipeline_runs_end_to_end() {
    let stack = stack();
    let c = clients(stack).await;
    let s = sample(&c, stack, |_| {}).await;
    let queue = subscribe(&c, &s.name).await;
    let id = start(&c, &s.name).await;
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
    let records = records(&c, stack, &id).await;
    let compile = action(&records, "Build", "Compile");
    assert_eq!(compile["status"], "Succeeded");
    assert!(compile["logTail"]
        .as_str()
        .unwrap()
        .contains(&format!("building revision {}", s.source_version)));
    assert_eq!(
        compile["output"]["outputVariables"]["BUILD_ID"],
        json!(format!("build-{id}"))
    );
    let tests = action(&records, "Test", "UnitTests");
    assert!(tests["logTail"]
        .as_str()
        .unwrap()
        .contains(&format!("tested build build-{id}")));
    // Inputs are read by the S3 version the producer wrote.
    let output = &compile["output"]["outputArtifacts"][0]["s3location"];
    let input = &tests["input"]["inputArtifacts"][0]["s3location"];
    assert_eq!(output, input);
    assert!(input["versionId"].is_string());
    let source = action(&records, "Source", "Source");
    assert_eq!(
        source["output"]["outputVariables"]["VersionId"],
        json!(s.source_version)
    );

    // Every state change went out on EventBridge, each once, in an order that makes sense.
    let events = drain(&c, &queue, Duration::from_secs(3)).await;
    let mut expected: Vec<(String, String, String)> = vec![
        ("Pipeline".into(), String::new(), "STARTED".into()),
        ("Pipeline".into(), String::new(), "SUCCEEDED".into()),
    ];
    let stages = [
        ("Source", vec!["Source"]),
        ("Build", vec!["Compile", "Docs"]),
        ("Test", vec!["UnitTests"]),
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
    let s = sample(&c, stack, |_| {}).await;
    let (a, b) = tokio::join!(start(&c, &s.name), start(&c, &s.name));
    assert_ne!(a, b);
    let (ra, rb) = tokio::join!(wait_for(&c, &s.name, &a), wait_for(&c, &s.name, &b));
    assert_eq!(ra.0, PipelineExecutionStatus::Succeeded, "{ra:?}");
    assert_eq!(rb.0, PipelineExecutionStatus::Succeeded, "{rb:?}");
    let (records_a, records_b) = (records(&c, stack, &a).await, records(&c, stack, &b).await);
    for (stage, name) in [
        ("Source", "Source"),
        ("Build", "Compile"),
        ("Build", "Docs"),
    ] {
        let (x, y) = (
            action(&records_a, stage, name),
            action(&records_b, stage, name),
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
        action(&records_a, "Test", "UnitTests"),
        action(&records_b, "Test", "UnitTests"),
    );
    assert_eq!(
        ta["input"]["inputArtifacts"][0]["s3location"],
        action(&records_a, "Build", "Compile")["output"]["outputArtifacts"][0]["s3location"]
    );
    assert_eq!(
        tb["input"]["inputArtifacts"][0]["s3location"],
        action(&records_b, "Build", "Compile")["output"]["outputArtifacts"][0]["s3location"]
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

    let records = records(&c, stack, &id).await;
    assert_eq!(action(&records, "Build", "Compile")["status"], "Failed");
    // Its sibling in the same action group still ran to the end.
    assert_eq!(action(&records, "Build", "Docs")["status"], "Succeeded");
    // Later stages never started.
    assert!(!records
        .iter()
        .any(|(sk, _)| sk.starts_with("STAGE#Test") || sk.starts_with("ACTION#Test")));
}

#[tokio::test]
async fn an_s3_object_created_event_starts_the_pipeline_once() {
    let stack = stack();
    let c = clients(stack).await;
    let s = sample(&c, stack, |_| {}).await;
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
