//! The `Invoke/AWS/Lambda` action on the local stack: a real job-worker function
//! (`tests/fixtures/job-worker`) created in the emulator is invoked asynchronously with the job
//! event and reports back through the control plane's PutJobSuccessResult / PutJobFailureResult,
//! as a CodePipeline user's function does.

use std::io::Write;
use std::process::Command;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use aws_sdk_s3::primitives::ByteStream;
use pipewright_e2e::{root, stack, unique, Stack};
use pipewright_local::package::{zip_bootstrap, Profile, Workspace};
use serde_json::{json, Value};

/// Clients for one test.
struct Clients {
    s3: aws_sdk_s3::Client,
    lambda: aws_sdk_lambda::Client,
    codepipeline: aws_sdk_codepipeline::Client,
    dynamo: aws_sdk_dynamodb::Client,
}

async fn clients(stack: &Stack) -> Clients {
    let sdk = stack.sdk().await;
    let target = pipewright_aws::config::Target::local(stack.endpoint.clone());
    Clients {
        s3: pipewright_aws::config::s3_client(&sdk, &target),
        lambda: aws_sdk_lambda::Client::new(&sdk),
        codepipeline: aws_sdk_codepipeline::Client::from_conf(
            aws_sdk_codepipeline::config::Builder::from(&sdk)
                .endpoint_url(&stack.api_endpoint)
                .build(),
        ),
        dynamo: aws_sdk_dynamodb::Client::new(&sdk),
    }
}

/// The job-worker function's deployment zip, built once per test binary.
fn worker_zip() -> &'static [u8] {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "job-worker", "--manifest-path"])
            .arg(root().join("Cargo.toml"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p job-worker failed");
        let workspace = Workspace::open(&root()).expect("cargo metadata");
        let binary = workspace.binary(Profile::Dev, "job-worker");
        let path = workspace
            .target_dir()
            .join(format!("job-worker-{}.zip", std::process::id()));
        zip_bootstrap(&binary, &path).expect("zip the job worker");
        let zip = std::fs::read(&path).expect("read the zip");
        let _ = std::fs::remove_file(&path);
        zip
    })
}

/// Create a job-worker function that reports to the stack's control plane; returns its name.
async fn create_worker(c: &Clients, stack: &Stack) -> String {
    let name = unique("pipewright-job-worker");
    c.lambda
        .create_function()
        .function_name(&name)
        .runtime(Runtime::Providedal2023)
        .handler("bootstrap")
        .role("arn:aws:iam::123456789012:role/pipewright-job-worker")
        .architectures(if cfg!(target_arch = "aarch64") {
            Architecture::Arm64
        } else {
            Architecture::X8664
        })
        .timeout(30)
        .code(
            FunctionCode::builder()
                .zip_file(Blob::new(worker_zip()))
                .build(),
        )
        .environment(
            Environment::builder()
                // The SDKs' service-specific endpoint variable: CodePipeline calls go to the
                // local control plane, everything else to the emulator.
                .variables("AWS_ENDPOINT_URL_CODEPIPELINE", &stack.api_endpoint)
                .variables("RUST_LOG", "info")
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction");
    name
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

/// A pipeline S3 source → Invoke (the worker, `user_parameters`) → Commands echoing the
/// worker's `greeting`; returns its name.
async fn pipeline(c: &Clients, stack: &Stack, function: &str, user_parameters: &str) -> String {
    let name = unique("invoke");
    let source_bucket = unique("pipewright-src");
    c.s3.create_bucket()
        .bucket(&source_bucket)
        .send()
        .await
        .expect("create bucket");
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
    c.s3.put_object()
        .bucket(&source_bucket)
        .key("app.zip")
        .body(ByteStream::from(zip_of(&[("README.md", "# app\n")])))
        .send()
        .await
        .expect("put source");
    let declaration = json!({
        "name": name,
        "roleArn": "arn:aws:iam::123456789012:role/pipewright-pipeline",
        "artifactStore": {"type": "S3", "location": stack.output("ArtifactBucketName")},
        "pipelineType": "V2",
        "stages": [
            {"name": "Source", "actions": [{
                "name": "Source",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": source_bucket, "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"},
                "outputArtifacts": [{"name": "SourceArtifact"}]
            }]},
            {"name": "Invoke", "actions": [{
                "name": "Worker",
                "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
                "configuration": {"FunctionName": function, "UserParameters": user_parameters},
                "inputArtifacts": [{"name": "SourceArtifact"}],
                "namespace": "InvokeVars"
            }]},
            {"name": "Build", "actions": [{
                "name": "Echo",
                "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                "commands": ["echo greeting=#{InvokeVars.greeting}"],
                "inputArtifacts": [{"name": "SourceArtifact"}]
            }]}
        ]
    });
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
    name
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

/// The latest record of action `stage`/`name` of execution `id`.
async fn action_record(c: &Clients, stack: &Stack, id: &str, stage: &str, name: &str) -> Value {
    let out = c
        .dynamo
        .query()
        .table_name(stack.output("ExecutionsTableName"))
        .key_condition_expression("pk = :pk AND begins_with(sk, :sk)")
        .expression_attribute_values(":pk", AttributeValue::S(format!("EXEC#{id}")))
        .expression_attribute_values(":sk", AttributeValue::S(format!("ACTION#{stage}#{name}#")))
        .consistent_read(true)
        .send()
        .await
        .expect("Query");
    let item = out
        .items()
        .last()
        .unwrap_or_else(|| panic!("no record of action {stage}.{name}"));
    serde_json::from_str(item["record"].as_s().unwrap()).unwrap()
}

#[tokio::test]
async fn a_lambda_job_reports_success_and_its_variables_reach_the_next_stage() {
    let stack = stack();
    let c = clients(stack).await;
    let worker = create_worker(&c, stack).await;
    let name = pipeline(&c, stack, &worker, "hello").await;
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    let invoke = action_record(&c, stack, &id, "Invoke", "Worker").await;
    assert_eq!(invoke["status"], "Succeeded");
    assert_eq!(
        invoke["output"]["outputVariables"],
        json!({"greeting": "hello"})
    );
    assert_eq!(
        invoke["output"]["executionResult"]["externalExecutionSummary"],
        "greeted hello"
    );
    assert!(invoke.get("taskToken").is_none());
    let echo = action_record(&c, stack, &id, "Build", "Echo").await;
    let log = echo["logTail"].as_str().unwrap();
    assert!(log.contains("greeting=hello"), "{log}");
}

#[tokio::test]
async fn a_lambda_job_failure_fails_the_execution_with_its_message() {
    let stack = stack();
    let c = clients(stack).await;
    let worker = create_worker(&c, stack).await;
    let name = pipeline(&c, stack, &worker, "fail").await;
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let summary = summary.expect("a status summary");
    assert!(
        summary.contains("Worker") && summary.contains("JobFailed: the worker was asked to fail"),
        "{summary}"
    );
    let invoke = action_record(&c, stack, &id, "Invoke", "Worker").await;
    assert_eq!(invoke["status"], "Failed");
    assert!(invoke["output"]["executionResult"]["externalExecutionId"].is_string());
}

#[tokio::test]
async fn a_lambda_job_with_a_continuation_token_is_invoked_again() {
    let stack = stack();
    let c = clients(stack).await;
    let worker = create_worker(&c, stack).await;
    let name = pipeline(&c, stack, &worker, "again").await;
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let invoke = action_record(&c, stack, &id, "Invoke", "Worker").await;
    assert_eq!(
        invoke["output"]["outputVariables"],
        json!({"greeting": "again", "continuedWith": "round-2"})
    );
}

#[tokio::test]
async fn a_missing_function_fails_the_action_as_a_configuration_error() {
    let stack = stack();
    let c = clients(stack).await;
    let name = pipeline(&c, stack, "pipewright-no-such-function", "hello").await;
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let summary = summary.expect("a status summary");
    assert!(summary.contains("ConfigurationError"), "{summary}");
}

#[tokio::test]
async fn job_results_for_unknown_jobs_are_refused() {
    let stack = stack();
    let c = clients(stack).await;
    let err = c
        .codepipeline
        .put_job_success_result()
        .job_id("0a1b2c3d-0000-4000-8000-00000000abcd")
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_job_not_found_exception()),
        "{err:?}"
    );
    let err = c
        .codepipeline
        .put_job_failure_result()
        .job_id("not-a-job")
        .failure_details(
            aws_sdk_codepipeline::types::FailureDetails::builder()
                .r#type(aws_sdk_codepipeline::types::FailureType::JobFailed)
                .message("m")
                .build()
                .unwrap(),
        )
        .send()
        .await
        .unwrap_err();
    assert!(
        err.as_service_error()
            .is_some_and(|e| e.is_validation_exception()),
        "{err:?}"
    );
}

#[tokio::test]
async fn the_job_index_finds_the_action_as_it_is_now() {
    use pipewright_core::engine::ExecutionStore;
    use pipewright_core::execution::{ActionExecution, ActionExecutionStatus};
    use pipewright_core::store::StoreError;

    let stack = stack();
    let c = clients(stack).await;
    let store = pipewright_aws::execution_store::DynamoExecutionStore::new(
        c.dynamo.clone(),
        stack.output("ExecutionsTableName"),
    );
    let id = unique("exec");
    let job = format!("{:08x}-0000-4000-8000-000000000000", std::process::id());
    let token = unique("secret-task-token");
    let action = |name: &str, job: &str| -> ActionExecution {
        serde_json::from_value(json!({
            "pipelineExecutionId": id, "actionExecutionId": job, "pipelineVersion": 1,
            "stageName": "Invoke", "actionName": name, "attempt": 1, "status": "InProgress",
            "startTime": 1.0, "lastUpdateTime": 1.0, "taskToken": token,
            "input": {"actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"}}
        }))
        .unwrap()
    };
    let started = action("Worker", &job);
    store.put_action(&started, None).await.expect("begin");
    assert_eq!(store.find_job(&job).await.unwrap(), Some(started.clone()));

    // The index item points at the action and holds no token.
    let item = c
        .dynamo
        .get_item()
        .table_name(stack.output("ExecutionsTableName"))
        .key("pk", AttributeValue::S(format!("JOB#{job}")))
        .key("sk", AttributeValue::S("JOB".into()))
        .consistent_read(true)
        .send()
        .await
        .unwrap()
        .item
        .expect("the job item");
    assert_eq!(item["pipelineExecutionId"].as_s().unwrap(), &id);
    assert_eq!(item["actionName"].as_s().unwrap(), "Worker");
    assert!(item.contains_key("expiresAt"));
    assert!(!format!("{item:?}").contains(&token));

    // A job id belongs to one action execution.
    let err = store
        .put_action(&action("Other", &job), None)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, StoreError::Conflict(m) if m.contains("job")),
        "{err:?}"
    );
    assert!(store.find_job(&job).await.unwrap().is_some());
    let snapshot_actions = c
        .dynamo
        .query()
        .table_name(stack.output("ExecutionsTableName"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("EXEC#{id}")))
        .consistent_read(true)
        .send()
        .await
        .unwrap();
    assert_eq!(
        snapshot_actions.items().len(),
        1,
        "nothing else was written"
    );

    // It follows the record: completed, without its token.
    let mut done = started.clone();
    done.status = ActionExecutionStatus::Succeeded;
    done.task_token = None;
    store
        .put_action(&done, Some(ActionExecutionStatus::InProgress))
        .await
        .unwrap();
    assert_eq!(store.find_job(&job).await.unwrap(), Some(done));
    assert_eq!(
        store
            .find_job("ffffffff-0000-4000-8000-000000000000")
            .await
            .unwrap(),
        None
    );
}
