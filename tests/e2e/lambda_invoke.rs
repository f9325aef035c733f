//! The `Invoke/AWS/Lambda` action on the local stack: a real job-worker function
//! (`tests/fixtures/job-worker`) created in the emulator is invoked asynchronously with the job
//! event and reports back through the control plane's PutJobSuccessResult / PutJobFailureResult,
//! as a CodePipeline user's function does.

use std::process::Command;
use std::sync::OnceLock;

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::{Architecture, Environment, FunctionCode, Runtime};
use pipewright_e2e::pipelines::{
    clients, create_pipeline, execution_records, latest_action, start, start_with,
    versioned_source, wait_for, zip_of, Clients,
};
use pipewright_e2e::{root, stack, unique, Stack};
use pipewright_local::package::{zip_bootstrap, Profile, Workspace};
use serde_json::{json, Value};

/// The job-worker function's deployment zip, built once per test binary.
/// The job workers' Pipewright key: the job operations only.
fn worker_key(stack: &Stack) -> &'static (String, String) {
    static KEY: OnceLock<(String, String)> = OnceLock::new();
    KEY.get_or_init(|| {
        pipewright_e2e::signing::create_key(
            stack,
            "job-worker",
            &[
                "codepipeline:PutJobSuccessResult",
                "codepipeline:PutJobFailureResult",
                "codepipeline:AcknowledgeJob",
                "codepipeline:GetJobDetails",
            ],
            &["*"],
        )
    })
}

fn worker_zip() -> &'static [u8] {
    static ZIP: OnceLock<Vec<u8>> = OnceLock::new();
    ZIP.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            // The workspace's binaries, as the stack builds them (one feature set, no rebuild).
            .args(["build", "--workspace", "--bins", "--manifest-path"])
            .arg(root().join("Cargo.toml"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
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
    create_worker_with_timeout(c, stack, 30).await
}

/// [`create_worker`] with a function timeout of `seconds`.
async fn create_worker_with_timeout(c: &Clients, stack: &Stack, seconds: i32) -> String {
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
        .timeout(seconds)
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
                // A key that may answer jobs and nothing else (the function's role signs
                // everything else).
                .variables("PIPEWRIGHT_ACCESS_KEY_ID", &worker_key(stack).0)
                .variables("PIPEWRIGHT_SECRET_ACCESS_KEY", &worker_key(stack).1)
                .variables("RUST_LOG", "info")
                .build(),
        )
        .send()
        .await
        .expect("CreateFunction");
    name
}

/// A pipeline S3 source → Invoke (the worker, `user_parameters`) → Commands echoing the
/// worker's `greeting`; returns its name.
async fn pipeline(c: &Clients, stack: &Stack, function: &str, user_parameters: &str) -> String {
    let name = unique("invoke");
    let source_bucket = unique("pipewright-src");
    versioned_source(
        c,
        &source_bucket,
        "app.zip",
        zip_of(&[("README.md", "# app\n")]),
    )
    .await;
    let declaration = json!({
        "name": name,
        "roleArn": pipewright_e2e::TEST_ROLE_ARN,
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
    create_pipeline(stack, &declaration);
    name
}

/// The latest record of action `stage`/`name` of execution `id`.
async fn action_record(c: &Clients, stack: &Stack, id: &str, stage: &str, name: &str) -> Value {
    latest_action(&execution_records(c, stack, id).await, stage, name).clone()
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
    store.put_action(&started, None, &[]).await.expect("begin");
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
        .put_action(&action("Other", &job), None, &[])
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
        .put_action(&done, Some(ActionExecutionStatus::InProgress), &[])
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

/// A `LambdaInvoke` stage-condition rule whose function runs longer than the orchestrator that
/// calls it may (30 s): the rule fails at its budget, saying so, instead of the orchestrator
/// timing out with the stage half-checked; the execution ends Failed like any failed
/// `beforeEntry` condition, and the next execution, whose rule answers, runs through.
#[tokio::test]
async fn a_rule_function_slower_than_the_orchestrator_fails_its_rule_and_the_next_execution_runs() {
    let stack = stack();
    let c = clients(stack).await;
    let gate = create_worker_with_timeout(&c, stack, 60).await;
    let rule = json!({"name": "Slow", "ruleTypeId": {"category": "Rule", "owner": "AWS",
        "provider": "LambdaInvoke", "version": "1"},
        "configuration": {"FunctionName": gate, "UserParameters": "#{variables.nap}"}});
    let name = pipewright_e2e::pipelines::PipelineBuilder::new(stack, "slow-rule")
        .mode("QUEUED")
        .variable("nap", "0")
        .s3_source(&pipewright_e2e::pipelines::source_bucket(&c).await)
        .stage(json!({"name": "Gate",
            "actions": [pipewright_e2e::pipelines::commands_action("Gate", &["true"])],
            "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [rule]}]}}))
        .create(stack);
    let started = std::time::Instant::now();
    let slow = start_with(&c, &name, &[("nap", "40")]).await;
    let (status, summary) = wait_for(&c, &name, &slow).await;
    assert_eq!(status, PipelineExecutionStatus::Failed, "{summary:?}");
    let records = execution_records(&c, stack, &slow).await;
    let gate_stage = records
        .iter()
        .filter(|(sk, _)| sk.starts_with("STAGE#Gate"))
        .map(|(_, r)| r)
        .next_back()
        .expect("a Gate stage record");
    let said = gate_stage.to_string();
    assert!(
        said.contains(&format!("function {gate} did not answer in time")),
        "{gate_stage:#}"
    );
    // The function is done sleeping before the next rule call (one invocation at a time).
    tokio::time::sleep(std::time::Duration::from_secs(42).saturating_sub(started.elapsed())).await;
    let quick = start_with(&c, &name, &[("nap", "0")]).await;
    let (status, summary) = wait_for(&c, &name, &quick).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
}
