//! Helpers for tests that run whole pipelines: clients pointed at the stack, source zips,
//! creating a pipeline over CodePipeline's wire protocol, starting and waiting, and reading the
//! execution records straight from the executions table.

use std::io::Write;
use std::time::{Duration, Instant};

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_s3::primitives::ByteStream;
use serde_json::{json, Value};

use crate::Stack;

/// How long an execution may take before a test gives up on it.
pub const EXECUTION_TIMEOUT: Duration = Duration::from_secs(180);

/// SDK clients for one test: AWS services at the emulator, CodePipeline at the control plane.
pub struct Clients {
    /// The shared SDK configuration.
    pub sdk: aws_config::SdkConfig,
    /// S3 (path-style).
    pub s3: aws_sdk_s3::Client,
    /// Lambda.
    pub lambda: aws_sdk_lambda::Client,
    /// The official CodePipeline SDK client, pointed at Pipewright's control plane.
    pub codepipeline: aws_sdk_codepipeline::Client,
    /// DynamoDB.
    pub dynamo: aws_sdk_dynamodb::Client,
}

/// Clients for `stack`.
pub async fn clients(stack: &Stack) -> Clients {
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
        sdk,
    }
}

/// A zip holding `files` (path, contents).
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut writer = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    for (path, body) in files {
        writer
            .start_file(*path, zip::write::SimpleFileOptions::default())
            .expect("zip entry");
        writer.write_all(body.as_bytes()).expect("zip write");
    }
    writer.finish().expect("zip finish").into_inner()
}

/// Create a versioned bucket and put `zip` at `key`; returns the object's version id.
pub async fn versioned_source(c: &Clients, bucket: &str, key: &str, zip: Vec<u8>) -> String {
    c.s3.create_bucket()
        .bucket(bucket)
        .send()
        .await
        .expect("CreateBucket");
    c.s3.put_bucket_versioning()
        .bucket(bucket)
        .versioning_configuration(
            aws_sdk_s3::types::VersioningConfiguration::builder()
                .status(aws_sdk_s3::types::BucketVersioningStatus::Enabled)
                .build(),
        )
        .send()
        .await
        .expect("PutBucketVersioning");
    let put =
        c.s3.put_object()
            .bucket(bucket)
            .key(key)
            .body(ByteStream::from(zip))
            .send()
            .await
            .expect("PutObject");
    put.version_id().expect("a version id").to_string()
}

/// CreatePipeline over CodePipeline's JSON 1.1 protocol, as any client sends it, through the
/// control plane's local Function URL.
pub fn create_pipeline(stack: &Stack, declaration: &Value) {
    api_call(stack, "CreatePipeline", &json!({ "pipeline": declaration }));
}

/// Control-plane operation `op` with `body`, as raw AWS JSON 1.1 (the declarations stay JSON)
/// signed with the local admin key through the key door; asserts HTTP 200 and returns the
/// response.
pub fn api_call(stack: &Stack, op: &str, body: &Value) -> Value {
    let (status, answer) = crate::signing::call(
        &stack.api_endpoint,
        &format!("CodePipeline_20150709.{op}"),
        body,
        Some(&crate::signing::Signer::local("codepipeline")),
    );
    assert_eq!(status, 200, "{op}: {answer}");
    answer
}

/// StartPipelineExecution; returns the execution id.
pub async fn start(c: &Clients, name: &str) -> String {
    start_with(c, name, &[]).await
}

/// StartPipelineExecution with pipeline variables (name, value); returns the execution id.
pub async fn start_with(c: &Clients, name: &str, variables: &[(&str, &str)]) -> String {
    let variables = variables
        .iter()
        .map(|(k, v)| {
            aws_sdk_codepipeline::types::PipelineVariable::builder()
                .name(*k)
                .value(*v)
                .build()
                .expect("a pipeline variable")
        })
        .collect();
    c.codepipeline
        .start_pipeline_execution()
        .name(name)
        .set_variables(Some(variables))
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .expect("an id")
        .to_string()
}

/// Wait until GetPipelineState shows approval `stage`/`action` waiting with its token (as a
/// CodePipeline console or script reads it), then approve it with PutApprovalResult; returns
/// the token.
pub async fn approve_when_asked(c: &Clients, pipeline: &str, stage: &str, action: &str) -> String {
    use aws_sdk_codepipeline::types::{ApprovalResult, ApprovalStatus};
    let deadline = Instant::now() + EXECUTION_TIMEOUT;
    let token = loop {
        let state = c
            .codepipeline
            .get_pipeline_state()
            .name(pipeline)
            .send()
            .await
            .expect("GetPipelineState");
        let token = state
            .stage_states()
            .iter()
            .filter(|s| s.stage_name() == Some(stage))
            .flat_map(|s| s.action_states())
            .filter(|a| a.action_name() == Some(action))
            .find_map(|a| a.latest_execution()?.token().map(str::to_string));
        if let Some(token) = token {
            break token;
        }
        assert!(
            Instant::now() < deadline,
            "approval {stage}/{action} of {pipeline} never waited"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    c.codepipeline
        .put_approval_result()
        .pipeline_name(pipeline)
        .stage_name(stage)
        .action_name(action)
        .token(&token)
        .result(
            ApprovalResult::builder()
                .status(ApprovalStatus::Approved)
                .summary("approved by the test")
                .build()
                .expect("a complete result"),
        )
        .send()
        .await
        .expect("PutApprovalResult");
    token
}

/// The declaration without its stages of manual approvals (for tests about something else).
pub fn without_approvals(declaration: &mut Value) {
    if let Some(stages) = declaration["stages"].as_array_mut() {
        stages.retain(|s| {
            !s["actions"]
                .as_array()
                .into_iter()
                .flatten()
                .any(|a| a["actionTypeId"]["category"] == "Approval")
        });
    }
}

/// Wait until the execution ends (leaves InProgress and Stopping); returns its final status and
/// summary.
pub async fn wait_for(
    c: &Clients,
    pipeline: &str,
    id: &str,
) -> (PipelineExecutionStatus, Option<String>) {
    wait_until_ended(c, pipeline, id, Instant::now() + EXECUTION_TIMEOUT).await
}

/// [`wait_for`], giving up at `deadline`.
pub async fn wait_until_ended(
    c: &Clients,
    pipeline: &str,
    id: &str,
    deadline: Instant,
) -> (PipelineExecutionStatus, Option<String>) {
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
        if !matches!(
            status,
            PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
        ) {
            return (status, execution.status_summary().map(str::to_string));
        }
        assert!(
            Instant::now() < deadline,
            "execution {id} of {pipeline} never ended"
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// Every record the executions table holds for execution `id`: (sort key, record JSON).
pub async fn execution_records(c: &Clients, stack: &Stack, id: &str) -> Vec<(String, Value)> {
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
            let sk = i["sk"].as_s().expect("sk").to_string();
            let record =
                serde_json::from_str(i["record"].as_s().expect("record")).expect("record JSON");
            (sk, record)
        })
        .collect()
}

/// The ids of the outbox items of execution `id` (the events its state changes wrote).
pub async fn outbox_ids(
    c: &Clients,
    stack: &Stack,
    id: &str,
) -> std::collections::BTreeSet<String> {
    let out = c
        .dynamo
        .query()
        .table_name(stack.output("EventsTableName"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("OUTBOX#{id}")))
        .consistent_read(true)
        .send()
        .await
        .expect("query the outbox");
    out.items()
        .iter()
        .map(|item| item["sk"].as_s().expect("sk").clone())
        .collect()
}

/// The latest attempt's record of action `stage`/`name` among `records`.
pub fn latest_action<'r>(records: &'r [(String, Value)], stage: &str, name: &str) -> &'r Value {
    records
        .iter()
        .filter(|(sk, _)| sk.starts_with(&format!("ACTION#{stage}#{name}#")))
        .map(|(_, r)| r)
        .next_back()
        .unwrap_or_else(|| panic!("no record of action {stage}.{name}"))
}

/// An SQS queue receiving this pipeline's events through an EventBridge rule on the default bus.
pub async fn subscribe(c: &Clients, pipeline: &str) -> String {
    let pattern = json!({ "source": ["pipewright"], "detail": { "pipeline": [pipeline] } });
    subscribe_to(c, pipeline, &pattern).await
}

/// An SQS queue `name` receiving the events of the default bus that match `pattern`, through
/// an EventBridge rule of the same name; returns the queue's URL.
pub async fn subscribe_to(c: &Clients, name: &str, pattern: &Value) -> String {
    let pipeline = name;
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

/// Every event in the queue at `url` until it stays empty for `settle`, in arrival order.
pub async fn drain_events(c: &Clients, url: &str, settle: Duration) -> Vec<Value> {
    let sqs = aws_sdk_sqs::Client::new(&c.sdk);
    let mut out = Vec::new();
    let mut quiet_since = Instant::now();
    while quiet_since.elapsed() < settle {
        let got = sqs
            .receive_message()
            .queue_url(url)
            .max_number_of_messages(10)
            .send()
            .await
            .expect("ReceiveMessage");
        for m in got.messages() {
            out.push(serde_json::from_str(m.body().unwrap_or_default()).expect("an event"));
            sqs.delete_message()
                .queue_url(url)
                .receipt_handle(m.receipt_handle().unwrap_or_default())
                .send()
                .await
                .expect("DeleteMessage");
        }
        if got.messages().is_empty() {
            tokio::time::sleep(Duration::from_millis(200)).await;
        } else {
            quiet_since = Instant::now();
        }
    }
    out
}

/// The files of the first output artifact of action record `action` (its zip in the artifact
/// bucket): (name, unix permission bits, contents as text), sorted by name.
pub async fn output_files(c: &Clients, action: &Value) -> Vec<(String, u32, String)> {
    use std::io::Read;
    let at = &action["output"]["outputArtifacts"][0]["s3location"];
    let object =
        c.s3.get_object()
            .bucket(at["bucket"].as_str().unwrap())
            .key(at["key"].as_str().unwrap())
            .version_id(at["versionId"].as_str().unwrap())
            .send()
            .await
            .expect("the output artifact");
    let bytes = object.body.collect().await.unwrap().into_bytes();
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes.to_vec())).expect("a zip");
    let mut files = Vec::new();
    for i in 0..zip.len() {
        let mut f = zip.by_index(i).unwrap();
        let mut contents = Vec::new();
        f.read_to_end(&mut contents).unwrap();
        files.push((
            f.name().expect("a UTF-8 name").to_string(),
            f.unix_mode().unwrap_or(0) & 0o777,
            String::from_utf8_lossy(&contents).into_owned(),
        ));
    }
    files.sort();
    files
}

/// The error failed action record `action` recorded: (code, message).
pub fn action_failure(action: &Value) -> (String, String) {
    assert_eq!(action["status"], "Failed", "{action:#}");
    let e = &action["output"]["executionResult"]["errorDetails"];
    (
        e["code"].as_str().unwrap().to_string(),
        e["message"].as_str().unwrap().to_string(),
    )
}

/// A pipeline declaration in the shape most tests need, built step by step: a name of its own,
/// the stack's artifact store, V2, PARALLEL unless told otherwise, a source stage whose action
/// outputs the artifact `Src`, then stages of actions that read it.
///
/// ```ignore
/// let name = PipelineBuilder::new(stack, "retry")
///     .mode("QUEUED")
///     .s3_source(&bucket)
///     .commands("Build", &["make"])
///     .create(stack);
/// ```
#[derive(Debug, Clone)]
pub struct PipelineBuilder {
    declaration: Value,
}

impl PipelineBuilder {
    /// A pipeline named `<prefix>-<unique>` with no stages yet, on `stack`'s artifact bucket,
    /// run with the test pipeline role ([`crate::TEST_ROLE_ARN`]).
    pub fn new(stack: &Stack, prefix: &str) -> Self {
        Self {
            declaration: json!({
                "name": crate::unique(prefix),
                "roleArn": crate::TEST_ROLE_ARN,
                "artifactStore": {"type": "S3", "location": stack.output("ArtifactBucketName")},
                "pipelineType": "V2",
                "executionMode": "PARALLEL",
                "stages": []
            }),
        }
    }

    /// Name the pipeline `name` instead.
    pub fn named(mut self, name: &str) -> Self {
        self.declaration["name"] = json!(name);
        self
    }

    /// The pipeline's name.
    pub fn name(&self) -> &str {
        self.declaration["name"].as_str().expect("a name")
    }

    /// `executionMode`: SUPERSEDED, QUEUED or PARALLEL.
    pub fn mode(mut self, mode: &str) -> Self {
        self.declaration["executionMode"] = json!(mode);
        self
    }

    /// A pipeline variable with its default value.
    pub fn variable(mut self, name: &str, default: &str) -> Self {
        let variables = self.declaration.as_object_mut().expect("an object");
        variables
            .entry("variables")
            .or_insert_with(|| json!([]))
            .as_array_mut()
            .expect("variables is a list")
            .push(json!({"name": name, "defaultValue": default}));
        self
    }

    /// The pipeline's `triggers`.
    pub fn triggers(mut self, triggers: Value) -> Self {
        self.declaration["triggers"] = triggers;
        self
    }

    /// A stage named `Source` holding `action` (see [`source_action`]).
    pub fn source(self, action: Value) -> Self {
        self.stage(json!({"name": "Source", "actions": [action]}))
    }

    /// A stage `Source` with an S3 source action `Source` reading `app.zip` from `bucket` (see
    /// [`source_bucket`]).
    pub fn s3_source(self, bucket: &str) -> Self {
        self.source(source_action(
            "Source",
            "S3",
            json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip"}),
        ))
    }

    /// A stage named `stage` with one Commands action of the same name running `commands` in
    /// the artifact `Src`.
    pub fn commands(self, stage: &str, commands: &[&str]) -> Self {
        self.stage(json!({"name": stage, "actions": [commands_action(stage, commands)]}))
    }

    /// A stage as written.
    pub fn stage(mut self, stage: Value) -> Self {
        self.declaration["stages"]
            .as_array_mut()
            .expect("stages is a list")
            .push(stage);
        self
    }

    /// The declaration.
    pub fn build(self) -> Value {
        self.declaration
    }

    /// CreatePipeline with the declaration (see [`create_pipeline`]); returns the name.
    pub fn create(self, stack: &Stack) -> String {
        let name = self.name().to_string();
        create_pipeline(stack, &self.declaration);
        name
    }
}

/// A source action `name` of AWS provider `provider` with `configuration`, whose output
/// artifact is `Src`.
pub fn source_action(name: &str, provider: &str, configuration: Value) -> Value {
    json!({
        "name": name,
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": provider, "version": "1"},
        "configuration": configuration,
        "outputArtifacts": [{"name": "Src"}]
    })
}

/// A Commands action `name` running `commands` in the artifact `Src`.
pub fn commands_action(name: &str, commands: &[&str]) -> Value {
    json!({
        "name": name,
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": commands,
        "inputArtifacts": [{"name": "Src"}]
    })
}

/// The name of `stack`'s function of logical id `logical` (`<stack>-<logical>-<suffix>`).
pub async fn function_of(c: &Clients, stack_name: &str, logical: &str) -> String {
    let prefix = format!("{stack_name}-{logical}");
    let mut marker = None;
    loop {
        let page = c
            .lambda
            .list_functions()
            .set_marker(marker)
            .send()
            .await
            .expect("ListFunctions");
        if let Some(f) = page
            .functions()
            .iter()
            .filter_map(|f| f.function_name())
            .find(|n| n.starts_with(&prefix))
        {
            return f.to_string();
        }
        marker = page.next_marker().map(str::to_string);
        assert!(marker.is_some(), "no function {prefix}*");
    }
}

/// An S3 source action `Source` (namespace `SourceVariables`, output artifact `Src`) reading
/// `app.zip` holding `files` from a versioned bucket of its own.
pub async fn s3_source_with(c: &Clients, files: &[(&str, &str)]) -> Value {
    let bucket = crate::unique("pipewright-src");
    versioned_source(c, &bucket, "app.zip", zip_of(files)).await;
    let mut action = source_action(
        "Source",
        "S3",
        json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip"}),
    );
    action["namespace"] = json!("SourceVariables");
    action
}

/// A new versioned bucket of its own holding `app.zip` (a README); returns the bucket's name.
pub async fn source_bucket(c: &Clients) -> String {
    let bucket = crate::unique("pipewright-src");
    versioned_source(c, &bucket, "app.zip", zip_of(&[("README.md", "hi\n")])).await;
    bucket
}

/// Poll `check` every `every` until it returns a value; panics naming `what` after
/// [`EXECUTION_TIMEOUT`]. (A hung emulator fails the run sooner: see the watchdog.)
pub async fn eventually<T, F, Fut>(what: &str, every: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + EXECUTION_TIMEOUT;
    loop {
        if let Some(v) = check().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "gave up after {EXECUTION_TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(every).await;
    }
}

/// A shell command that succeeds when `bucket`/`key` exists, asked with the action's own
/// credentials (its pipeline role's session) through curl's SigV4: what a Commands action can
/// check of the world outside its sandbox.
pub fn s3_object_exists_command(bucket: &str, key: &str) -> String {
    format!(
        "test \"$(curl -s -o /dev/null -w '%{{http_code}}' --aws-sigv4 \"aws:amz:$AWS_REGION:s3\" \
         --user \"$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY\" -H \"x-amz-security-token: $AWS_SESSION_TOKEN\" \
         -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' \"$AWS_ENDPOINT_URL/{bucket}/{key}\")\" = 200"
    )
}
