//! The control plane through its local Function URL, driven by the real AWS CLI and boto3:
//! clients that speak CodePipeline's protocol reach Pipewright by changing only the endpoint.
//! Both parse every answer with botocore's own service model (`codepipeline/2015-07-09`), so a
//! member of the wrong type or a timestamp that is not one fails the client, not only the
//! assertions.
//!
//! Two scenarios share the stack and run side by side:
//! - the AWS CLI: pipelines (create with tags, get, list with paging, update, delete), tags,
//!   executions (start with variables and a client request token, get, list with paging, stop
//!   and abandon a running one, roll a stage back), GetPipelineState, ListActionExecutions,
//!   stage transitions, and the errors the CLI prints;
//! - boto3: the paginators, tags and their limits, a manual approval answered with
//!   PutApprovalResult, RetryStageExecution of a failing stage, bad enums and a malformed body.

use std::path::PathBuf;
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pipewright_e2e::pipelines::{
    clients, commands_action, source_action, versioned_source, zip_of,
};
use pipewright_e2e::{root, stack, unique, Stack};
use serde_json::{json, Value};

const ACCOUNT: &str = "123456789012";

/// An AWS config file that makes the CLI print the timestamps it parsed as ISO 8601 (CLI v1
/// prints the wire's epoch seconds otherwise).
fn cli_config() -> &'static PathBuf {
    static FILE: OnceLock<PathBuf> = OnceLock::new();
    FILE.get_or_init(|| {
        let path =
            std::env::temp_dir().join(format!("pipewright-cli-{}.config", std::process::id()));
        std::fs::write(&path, "[default]\ncli_timestamp_format = iso8601\n").unwrap();
        path
    })
}

fn client_env(cmd: &mut Command, stack: &Stack) {
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_CONFIG_FILE", cli_config())
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("AWS_PAGER", "")
        .env("PIPEWRIGHT_ENDPOINT", &stack.api_endpoint)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE");
}

fn aws(stack: &Stack, args: &[&str]) -> Output {
    let mut cmd = Command::new("aws");
    client_env(&mut cmd, stack);
    cmd.args([
        "codepipeline",
        "--endpoint-url",
        &stack.api_endpoint,
        "--output",
        "json",
    ])
    .args(args);
    cmd.output()
        .expect("the AWS CLI runs (scripts/install-tools installs it)")
}

/// The CLI's output of a call that must succeed.
fn ok(stack: &Stack, args: &[&str]) -> Value {
    let out = aws(stack, args);
    assert!(
        out.status.success(),
        "aws codepipeline {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
    if out.stdout.iter().all(u8::is_ascii_whitespace) {
        return json!({});
    }
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

/// The CLI's stderr of a call that must fail with service error `code` (exit 254 in CLI v2,
/// 255 in v1), after checking that it names `code` and everything in `mentions`.
fn fails(stack: &Stack, args: &[&str], code: &str, mentions: &[&str]) -> String {
    let out = aws(stack, args);
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(
        matches!(out.status.code(), Some(254 | 255)),
        "aws codepipeline {}: expected a service error, got {:?}: {stderr}",
        args.join(" "),
        out.status.code()
    );
    assert!(
        stderr.contains(&format!("({code})")),
        "{}: expected {code}: {stderr}",
        args.join(" ")
    );
    for m in mentions {
        assert!(
            stderr.contains(m),
            "{}: expected {m:?} in {stderr}",
            args.join(" ")
        );
    }
    stderr
}

/// A timestamp as the CLI prints one it parsed: an ISO 8601 string.
fn assert_timestamp(v: &Value) {
    let s = v.as_str().unwrap_or_else(|| panic!("not a timestamp: {v}"));
    assert!(
        s.starts_with("20") && s.contains('T'),
        "not a timestamp: {s}"
    );
}

fn temp_json(name: &str, value: &Value) -> PathBuf {
    let path = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&path, value.to_string()).unwrap();
    path
}

fn sample_declaration(name: &str) -> Value {
    let text = std::fs::read_to_string(root().join("infra/pipelines/sample.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["pipeline"]["name"] = json!(name);
    v["pipeline"].take()
}

fn commands(name: &str, commands: &[&str]) -> Value {
    json!({"name": name, "actions": [commands_action(name, commands)]})
}

fn source_stage(bucket: &str) -> Value {
    let configuration =
        json!({"S3Bucket": bucket, "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"});
    json!({"name": "Source", "actions": [source_action("Source", "S3", configuration)]})
}

/// Poll `check` (every half second, up to two minutes) until it returns a value.
fn eventually<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Some(v) = check() {
            return v;
        }
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

fn execution_status(stack: &Stack, name: &str, id: &str) -> Value {
    let got = ok(
        stack,
        &[
            "get-pipeline-execution",
            "--pipeline-name",
            name,
            "--pipeline-execution-id",
            id,
        ],
    );
    got["pipelineExecution"].clone()
}

fn wait_status(stack: &Stack, name: &str, id: &str, status: &str) -> Value {
    eventually(&format!("{name} {id} {status}"), || {
        let e = execution_status(stack, name, id);
        match e["status"].as_str() {
            Some(s) if s == status => Some(e),
            Some("InProgress" | "Stopping") => None,
            other => panic!("{id}: expected {status}, got {other:?}: {e}"),
        }
    })
}

/// Every CodePipeline operation Pipewright implements that the CLI can reach without a job
/// worker, on one pipeline: Source (S3) → Build (Commands `sleep #{variables.Sleep}`) → Deploy.
#[tokio::test]
async fn the_aws_cli_drives_pipelines_tags_executions_and_transitions() {
    let stack = stack();
    let c = clients(stack).await;
    let name = unique("cli");
    let arn = format!("arn:aws:codepipeline:us-east-1:{ACCOUNT}:{name}");
    let bucket = unique("pipewright-src");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("README.md", "hi\n")])).await;
    let declaration = json!({
        "name": name,
        "roleArn": pipewright_e2e::TEST_ROLE_ARN,
        "artifactStore": {"type": "S3", "location": stack.output("ArtifactBucketName")},
        "pipelineType": "V2",
        "executionMode": "QUEUED",
        "variables": [{"name": "Sleep", "defaultValue": "0"}],
        "stages": [
            source_stage(&bucket),
            commands("Build", &["sleep #{variables.Sleep}"]),
            commands("Deploy", &["true"])
        ]
    });

    // ------------------------------------------------------------ pipelines and tags
    let file = temp_json(
        &name,
        &json!({
            "pipeline": declaration,
            "tags": [{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}]
        }),
    );
    let input = format!("file://{}", file.display());
    let created = ok(stack, &["create-pipeline", "--cli-input-json", &input]);
    assert_eq!(created["pipeline"]["name"], json!(name));
    assert_eq!(created["pipeline"]["version"], 1);
    assert_eq!(
        created["tags"],
        json!([{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}])
    );
    fails(
        stack,
        &["create-pipeline", "--cli-input-json", &input],
        "PipelineNameInUseException",
        &[&name],
    );

    let got = ok(stack, &["get-pipeline", "--name", &name]);
    assert_eq!(got["metadata"]["pipelineArn"], json!(arn));
    assert_eq!(got["pipeline"]["version"], 1);
    assert_eq!(got["pipeline"]["stages"], declaration["stages"]);
    assert_timestamp(&got["metadata"]["created"]);
    assert_timestamp(&got["metadata"]["updated"]);

    let tags_of = || ok(stack, &["list-tags-for-resource", "--resource-arn", &arn])["tags"].clone();
    assert_eq!(
        tags_of(),
        json!([{"key": "env", "value": "prod"}, {"key": "team", "value": "a"}])
    );
    assert_eq!(
        ok(
            stack,
            &[
                "tag-resource",
                "--resource-arn",
                &arn,
                "--tags",
                "key=env,value=dev",
                "key=owner,value=me"
            ]
        ),
        json!({})
    );
    ok(
        stack,
        &[
            "untag-resource",
            "--resource-arn",
            &arn,
            "--tag-keys",
            "team",
            "absent",
        ],
    );
    assert_eq!(
        tags_of(),
        json!([{"key": "env", "value": "dev"}, {"key": "owner", "value": "me"}])
    );
    let page = ok(
        stack,
        &[
            "list-tags-for-resource",
            "--resource-arn",
            &arn,
            "--max-items",
            "1",
        ],
    );
    assert_eq!(page["tags"], json!([{"key": "env", "value": "dev"}]));
    let token = page["NextToken"].as_str().expect("a NextToken").to_string();
    let rest = ok(
        stack,
        &[
            "list-tags-for-resource",
            "--resource-arn",
            &arn,
            "--starting-token",
            &token,
        ],
    );
    assert_eq!(rest["tags"], json!([{"key": "owner", "value": "me"}]));
    fails(
        stack,
        &[
            "tag-resource",
            "--resource-arn",
            &arn,
            "--tags",
            "key=aws:owner,value=me",
        ],
        "InvalidTagsException",
        &["aws:"],
    );
    fails(
        stack,
        &[
            "list-tags-for-resource",
            "--resource-arn",
            &format!("arn:aws:codepipeline:eu-west-1:{ACCOUNT}:{name}"),
        ],
        "InvalidArnException",
        &["resourceArn"],
    );
    fails(
        stack,
        &[
            "untag-resource",
            "--resource-arn",
            &format!("{arn}-missing"),
            "--tag-keys",
            "env",
        ],
        "ResourceNotFoundException",
        &[&format!("{name}-missing")],
    );
    // Tags are not a pipeline version.
    let again = ok(stack, &["get-pipeline", "--name", &name]);
    assert_eq!(again["pipeline"]["version"], 1);
    assert_eq!(again["metadata"]["updated"], got["metadata"]["updated"]);

    let update = temp_json(
        &format!("{name}-update"),
        &json!({ "pipeline": got["pipeline"] }),
    );
    let updated = ok(
        stack,
        &[
            "update-pipeline",
            "--cli-input-json",
            &format!("file://{}", update.display()),
        ],
    );
    assert_eq!(updated["pipeline"]["version"], 2);
    assert_eq!(
        tags_of().as_array().unwrap().len(),
        2,
        "tags outlive versions"
    );

    // ListPipelines: the CLI's paginator over pages of one, then by hand with its tokens.
    let all = ok(stack, &["list-pipelines", "--page-size", "1"]);
    let mine: Vec<&Value> = all["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["name"] == json!(name))
        .collect();
    assert_eq!(mine.len(), 1, "{all}");
    assert_eq!(mine[0]["version"], 2);
    assert_eq!(mine[0]["executionMode"], "QUEUED");
    assert_timestamp(&mine[0]["updated"]);
    let mut names = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let mut args = vec!["list-pipelines", "--max-items", "2", "--page-size", "2"];
        if let Some(t) = &token {
            args.extend(["--starting-token", t.as_str()]);
        }
        let page = ok(stack, &args);
        let items = page["pipelines"].as_array().unwrap();
        assert!(items.len() <= 2);
        names.extend(
            items
                .iter()
                .map(|p| p["name"].as_str().unwrap().to_string()),
        );
        match page["NextToken"].as_str() {
            Some(t) => token = Some(t.to_string()),
            None => break,
        }
    }
    assert_eq!(names.iter().filter(|n| **n == name).count(), 1, "{names:?}");
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "every pipeline once, in name order");

    // ------------------------------------------------------------ executions
    let start_slow = [
        "start-pipeline-execution",
        "--name",
        &name,
        "--variables",
        "name=Sleep,value=20",
        "--client-request-token",
        "cli-request-1",
    ];
    let first = ok(stack, &start_slow)["pipelineExecutionId"]
        .as_str()
        .expect("an id")
        .to_string();
    let same = ok(stack, &start_slow)["pipelineExecutionId"].clone();
    assert_eq!(same, json!(first), "same token, same execution");

    // ListActionExecutions for that execution shows Build running.
    let actions = eventually("Build running", || {
        let listed = ok(
            stack,
            &[
                "list-action-executions",
                "--pipeline-name",
                &name,
                "--filter",
                &format!("pipelineExecutionId={first}"),
            ],
        );
        let details = listed["actionExecutionDetails"].as_array().unwrap().clone();
        details
            .iter()
            .any(|a| a["stageName"] == "Build" && a["status"] == "InProgress")
            .then_some(details)
    });
    for a in &actions {
        assert_eq!(a["pipelineExecutionId"], json!(first));
        assert_eq!(a["pipelineVersion"], 2);
        assert_timestamp(&a["startTime"]);
    }
    let source = actions
        .iter()
        .find(|a| a["stageName"] == "Source")
        .expect("the Source action");
    assert_eq!(source["status"], "Succeeded");
    assert_eq!(source["input"]["actionTypeId"]["provider"], "S3");

    let running = execution_status(stack, &name, &first);
    assert_eq!(running["status"], "InProgress");
    assert_eq!(running["pipelineVersion"], 2);
    assert_eq!(
        running["variables"],
        json!([{"name": "Sleep", "resolvedValue": "20"}])
    );
    assert_eq!(running["trigger"]["triggerType"], "StartPipelineExecution");
    // As CodePipeline records it: who started it (here the key door's name of the caller's
    // access key; through the IAM door, the caller's ARN).
    assert!(
        running["trigger"]["triggerDetail"]
            .as_str()
            .is_some_and(|d| d.starts_with("pipewright-key/local-admin")),
        "{running}"
    );

    let state = ok(stack, &["get-pipeline-state", "--name", &name]);
    assert_eq!(state["pipelineName"], json!(name));
    assert_eq!(state["pipelineVersion"], 2);
    let build = &state["stageStates"][1];
    assert_eq!(build["stageName"], "Build");
    assert_eq!(
        build["latestExecution"]["pipelineExecutionId"],
        json!(first)
    );
    assert_eq!(build["latestExecution"]["status"], "InProgress");
    assert_eq!(
        build["actionStates"][0]["latestExecution"]["status"],
        "InProgress"
    );
    assert_eq!(build["inboundTransitionState"]["enabled"], true);

    let stopped = ok(
        stack,
        &[
            "stop-pipeline-execution",
            "--pipeline-name",
            &name,
            "--pipeline-execution-id",
            &first,
            "--abandon",
            "--reason",
            "stopped from the CLI",
        ],
    );
    assert_eq!(stopped["pipelineExecutionId"], json!(first));
    let stop_asked = Instant::now();
    let ended = wait_status(stack, &name, &first, "Stopped");
    assert!(
        stop_asked.elapsed() < Duration::from_secs(15),
        "abandoning does not wait for the 20-second command"
    );
    assert_eq!(ended["pipelineExecutionId"], json!(first));
    fails(
        stack,
        &[
            "stop-pipeline-execution",
            "--pipeline-name",
            &name,
            "--pipeline-execution-id",
            &first,
        ],
        "PipelineExecutionNotStoppableException",
        &[],
    );

    // Transitions: GetPipelineState shows the inbound transition disabled, then enabled.
    ok(
        stack,
        &[
            "disable-stage-transition",
            "--pipeline-name",
            &name,
            "--stage-name",
            "Deploy",
            "--transition-type",
            "Inbound",
            "--reason",
            "change freeze",
        ],
    );
    let state = ok(stack, &["get-pipeline-state", "--name", &name]);
    let deploy = &state["stageStates"][2]["inboundTransitionState"];
    assert_eq!(deploy["enabled"], false, "{state}");
    assert_eq!(deploy["disabledReason"], "change freeze");
    assert_timestamp(&deploy["lastChangedAt"]);
    ok(
        stack,
        &[
            "enable-stage-transition",
            "--pipeline-name",
            &name,
            "--stage-name",
            "Build",
            "--transition-type",
            "Outbound",
        ],
    );
    let state = ok(stack, &["get-pipeline-state", "--name", &name]);
    assert_eq!(
        state["stageStates"][2]["inboundTransitionState"]["enabled"], true,
        "{state}"
    );

    // A second execution with the default variables runs to the end.
    let second = ok(stack, &["start-pipeline-execution", "--name", &name])["pipelineExecutionId"]
        .as_str()
        .expect("an id")
        .to_string();
    assert_ne!(second, first);
    let done = wait_status(stack, &name, &second, "Succeeded");
    assert_eq!(
        done["variables"],
        json!([{"name": "Sleep", "resolvedValue": "0"}])
    );

    // ListPipelineExecutions: newest first, and the CLI's paging.
    let listed = ok(
        stack,
        &["list-pipeline-executions", "--pipeline-name", &name],
    );
    let summaries = listed["pipelineExecutionSummaries"].as_array().unwrap();
    let ids: Vec<&str> = summaries
        .iter()
        .map(|s| s["pipelineExecutionId"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [second.as_str(), first.as_str()]);
    assert_eq!(summaries[1]["status"], "Stopped");
    assert_eq!(
        summaries[1]["stopTrigger"]["reason"],
        "stopped from the CLI"
    );
    assert_timestamp(&summaries[0]["startTime"]);
    assert_timestamp(&summaries[0]["lastUpdateTime"]);
    let page = ok(
        stack,
        &[
            "list-pipeline-executions",
            "--pipeline-name",
            &name,
            "--max-items",
            "1",
        ],
    );
    assert_eq!(
        page["pipelineExecutionSummaries"][0]["pipelineExecutionId"],
        json!(second)
    );
    let token = page["NextToken"].as_str().expect("a NextToken").to_string();
    let rest = ok(
        stack,
        &[
            "list-pipeline-executions",
            "--pipeline-name",
            &name,
            "--starting-token",
            &token,
        ],
    );
    assert_eq!(
        rest["pipelineExecutionSummaries"][0]["pipelineExecutionId"],
        json!(first)
    );
    assert!(rest.get("NextToken").is_none(), "{rest}");

    // RollbackStage: Build again with the second execution's revisions and variables.
    let rollback = ok(
        stack,
        &[
            "rollback-stage",
            "--pipeline-name",
            &name,
            "--stage-name",
            "Build",
            "--target-pipeline-execution-id",
            &second,
        ],
    )["pipelineExecutionId"]
        .as_str()
        .expect("an id")
        .to_string();
    let rolled = wait_status(stack, &name, &rollback, "Succeeded");
    assert_eq!(rolled["executionType"], "ROLLBACK");
    assert_eq!(
        rolled["rollbackMetadata"]["rollbackTargetPipelineExecutionId"],
        json!(second)
    );

    // ------------------------------------------------------------ errors as the CLI prints them
    fails(
        stack,
        &["get-pipeline", "--name", &format!("{name}-missing")],
        "PipelineNotFoundException",
        &[&format!("{name}-missing")],
    );
    fails(
        stack,
        &[
            "start-pipeline-execution",
            "--name",
            &format!("{name}-missing"),
        ],
        "PipelineNotFoundException",
        &[&format!("{name}-missing")],
    );
    fails(
        stack,
        &[
            "retry-stage-execution",
            "--pipeline-name",
            &name,
            "--stage-name",
            "Build",
            "--pipeline-execution-id",
            &first,
            "--retry-mode",
            "SOME_ACTIONS",
        ],
        "ValidationException",
        &["retryMode", "SOME_ACTIONS"],
    );
    fails(
        stack,
        &[
            "disable-stage-transition",
            "--pipeline-name",
            &name,
            "--stage-name",
            "Build",
            "--transition-type",
            "Sideways",
            "--reason",
            "no",
        ],
        "ValidationException",
        &["transitionType"],
    );
    let mut bad = sample_declaration(&format!("{name}-bad"));
    bad["executionMode"] = json!("FASTEST");
    let bad_file = temp_json(&format!("{name}-bad"), &json!({ "pipeline": bad }));
    fails(
        stack,
        &[
            "create-pipeline",
            "--cli-input-json",
            &format!("file://{}", bad_file.display()),
        ],
        "ValidationException",
        &["executionMode"],
    );
    fails(
        stack,
        &[
            "get-pipeline-execution",
            "--pipeline-name",
            &name,
            "--pipeline-execution-id",
            "00000000-0000-4000-8000-000000000000",
        ],
        "PipelineExecutionNotFoundException",
        &[],
    );

    // ------------------------------------------------------------ delete
    assert_eq!(ok(stack, &["delete-pipeline", "--name", &name]), json!({}));
    fails(
        stack,
        &["get-pipeline", "--name", &name],
        "PipelineNotFoundException",
        &[&name],
    );
    fails(
        stack,
        &["list-tags-for-resource", "--resource-arn", &arn],
        "ResourceNotFoundException",
        &[],
    );
    for f in [file, update, bad_file] {
        let _ = std::fs::remove_file(f);
    }
}

/// boto3 with botocore's own model: paginators, tags, a manual approval answered through
/// PutApprovalResult, RetryStageExecution of a stage that fails, and the errors.
const BOTO3_SCENARIO: &str = r#"
import datetime, json, os, sys, time, urllib.error, urllib.request
import boto3

endpoint = os.environ["PIPEWRIGHT_ENDPOINT"]
cp = boto3.client("codepipeline", endpoint_url=endpoint)
prefix, sample, gate = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
account = "123456789012"

def expect(error, call, *mentions, **kwargs):
    try:
        call(**kwargs)
    except getattr(cp.exceptions, error) as e:
        assert e.response["Error"]["Code"] == error, e.response
        assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400, e.response
        for m in mentions:
            assert m in str(e), (m, str(e))
        return e
    raise SystemExit(f"expected {error} from {call.__name__}({kwargs})")

def eventually(what, check, timeout=120):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = check()
        if v is not None:
            return v
        time.sleep(0.4)
    raise SystemExit(f"gave up waiting: {what}")

def status_of(name, id):
    return cp.get_pipeline_execution(pipelineName=name, pipelineExecutionId=id)["pipelineExecution"]

def wait_end(name, id):
    def ended():
        e = status_of(name, id)
        return None if e["status"] in ("InProgress", "Stopping") else e
    return eventually(f"{name} {id} to end", ended)

# ---------------------------------------------------------------- pipelines, ListPipelines paginator
names = [f"{prefix}-{i}" for i in range(5)]
for n in names:
    sample["name"] = n
    out = cp.create_pipeline(pipeline=sample, tags=[{"key": "batch", "value": prefix}])
    assert out["pipeline"]["version"] == 1
    assert out["tags"] == [{"key": "batch", "value": prefix}], out
seen = []
for page in cp.get_paginator("list_pipelines").paginate(PaginationConfig={"PageSize": 2}):
    assert len(page["pipelines"]) <= 2
    for p in page["pipelines"]:
        assert isinstance(p["created"], datetime.datetime), p
        assert isinstance(p["version"], int), p
    seen += [p["name"] for p in page["pipelines"] if p["name"].startswith(prefix + "-")]
assert seen == names, seen
got = cp.get_pipeline(name=names[0])
assert got["metadata"]["created"].year >= 2024, got["metadata"]
assert got["metadata"]["pipelineArn"] == f"arn:aws:codepipeline:us-east-1:{account}:{names[0]}"
sample["name"] = names[0]
assert cp.update_pipeline(pipeline=sample)["pipeline"]["version"] == 2
expect("PipelineNotFoundException", cp.get_pipeline, prefix + "-missing", name=prefix + "-missing")
bad = dict(sample, name=prefix + "-bad")
bad["stages"] = bad["stages"][:1]
expect("InvalidStructureException", cp.create_pipeline, "pipeline.stages", pipeline=bad)

# ---------------------------------------------------------------- action and rule types
types = cp.list_action_types(actionOwnerFilter="AWS")["actionTypes"]
build = [t for t in types if t["id"] == {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"}]
assert build and build[0]["actionConfigurationProperties"][0]["name"] == "ProjectName", build
assert build[0]["inputArtifactDetails"] == {"minimumCount": 1, "maximumCount": 5}, build
assert not [t for t in types if t["id"]["owner"] != "AWS"], types
action_type = cp.get_action_type(category="Deploy", owner="AWS", provider="CloudFormation", version="1")["actionType"]
assert any(p["name"] == "ActionMode" and not p["optional"] for p in action_type["properties"]), action_type
expect("ActionTypeNotFoundException", cp.get_action_type, "EKS", category="Deploy", owner="AWS", provider="EKS", version="1")
rules = cp.list_rule_types()["ruleTypes"]
assert {r["id"]["provider"] for r in rules} >= {"DeploymentWindow", "VariableCheck", "LambdaInvoke"}, rules

# ---------------------------------------------------------------- tags
arn = got["metadata"]["pipelineArn"]
cp.tag_resource(resourceArn=arn, tags=[{"key": f"k{i}", "value": str(i)} for i in range(6)])
cp.tag_resource(resourceArn=arn, tags=[{"key": "batch", "value": "replaced"}])
cp.untag_resource(resourceArn=arn, tagKeys=["k5", "never-there"])
tags = []
pages = 0
for page in cp.get_paginator("list_tags_for_resource").paginate(
        resourceArn=arn, PaginationConfig={"PageSize": 2}):
    pages += 1
    assert len(page["tags"]) <= 2, page
    tags += page["tags"]
assert pages == 3, pages
assert tags == [{"key": "batch", "value": "replaced"}] + [
    {"key": f"k{i}", "value": str(i)} for i in range(5)], tags
assert cp.get_pipeline(name=names[0])["pipeline"]["version"] == 2, "tagging made a version"
expect("TooManyTagsException", cp.tag_resource, "50",
       resourceArn=arn, tags=[{"key": f"more{i}", "value": ""} for i in range(45)])
expect("InvalidTagsException", cp.tag_resource, "tags[0].key",
       resourceArn=arn, tags=[{"key": "aws:cloudformation:stack-id", "value": "x"}])
expect("InvalidTagsException", cp.tag_resource, "tags[0].value",
       resourceArn=arn, tags=[{"key": "long", "value": "v" * 257}])
expect("InvalidArnException", cp.list_tags_for_resource, "resourceArn",
       resourceArn=f"arn:aws:codepipeline:us-east-1:999999999999:{names[0]}")
expect("InvalidArnException", cp.list_tags_for_resource, resourceArn="not-an-arn")
expect("ResourceNotFoundException", cp.tag_resource,
       resourceArn=arn + "-missing", tags=[{"key": "a", "value": "b"}])
expect("InvalidNextTokenException", cp.list_tags_for_resource, resourceArn=arn, nextToken="zz")
expect("ValidationException", cp.list_tags_for_resource, "maxResults", resourceArn=arn, maxResults=101)
assert len(cp.list_tags_for_resource(resourceArn=arn)["tags"]) == 6

# ---------------------------------------------------------------- approval, then a failing stage
gate_name = gate["name"]
cp.create_pipeline(pipeline=gate)
id = cp.start_pipeline_execution(name=gate_name, clientRequestToken="boto3-1")["pipelineExecutionId"]
assert cp.start_pipeline_execution(name=gate_name, clientRequestToken="boto3-1")["pipelineExecutionId"] == id

def approval_token():
    state = cp.get_pipeline_state(name=gate_name)
    for stage in state["stageStates"]:
        for action in stage.get("actionStates", []):
            latest = action.get("latestExecution", {})
            if stage["stageName"] == "Approve" and latest.get("token"):
                assert latest["status"] == "InProgress", latest
                return latest["token"]
token = eventually("the approval to wait", approval_token)
expect("ValidationException", cp.put_approval_result, "result.status",
       pipelineName=gate_name, stageName="Approve", actionName="Approve",
       result={"summary": "maybe", "status": "Maybe"}, token=token)
approved = cp.put_approval_result(pipelineName=gate_name, stageName="Approve", actionName="Approve",
                                  result={"summary": "ship it", "status": "Approved"}, token=token)
assert isinstance(approved["approvedAt"], datetime.datetime), approved
expect("ApprovalAlreadyCompletedException", cp.put_approval_result,
       pipelineName=gate_name, stageName="Approve", actionName="Approve",
       result={"summary": "again", "status": "Approved"}, token=token)

failed = wait_end(gate_name, id)
assert failed["status"] == "Failed", failed
state = cp.get_pipeline_state(name=gate_name)
stages = {s["stageName"]: s for s in state["stageStates"]}
assert stages["Approve"]["actionStates"][0]["latestExecution"]["status"] == "Succeeded", stages["Approve"]
assert stages["Approve"]["actionStates"][0]["latestExecution"]["summary"] == "ship it", stages["Approve"]
build = stages["Build"]["actionStates"][0]["latestExecution"]
assert build["status"] == "Failed", build
assert isinstance(build["lastStatusChange"], datetime.datetime), build
assert stages["Build"]["latestExecution"]["status"] == "Failed", stages["Build"]

retried = cp.retry_stage_execution(pipelineName=gate_name, stageName="Build",
                                   pipelineExecutionId=id, retryMode="FAILED_ACTIONS")
assert retried["pipelineExecutionId"] == id, retried
assert status_of(gate_name, id)["status"] == "InProgress"
again = wait_end(gate_name, id)
assert again["status"] == "Failed", again
expect("ValidationException", cp.retry_stage_execution, "retryMode",
       pipelineName=gate_name, stageName="Build", pipelineExecutionId=id, retryMode="SOME_ACTIONS")
expect("StageNotFoundException", cp.retry_stage_execution,
       pipelineName=gate_name, stageName="Nowhere", pipelineExecutionId=id, retryMode="ALL_ACTIONS")

actions = []
for page in cp.get_paginator("list_action_executions").paginate(
        pipelineName=gate_name, filter={"pipelineExecutionId": id}, PaginationConfig={"PageSize": 1}):
    assert len(page["actionExecutionDetails"]) <= 1, page
    actions += page["actionExecutionDetails"]
by_stage = {}
for a in actions:
    assert a["pipelineExecutionId"] == id, a
    assert isinstance(a["startTime"], datetime.datetime), a
    by_stage.setdefault(a["stageName"], []).append(a["status"])
assert by_stage == {"Build": ["Failed", "Failed"], "Approve": ["Succeeded"], "Source": ["Succeeded"]}, by_stage

executions = []
for page in cp.get_paginator("list_pipeline_executions").paginate(
        pipelineName=gate_name, PaginationConfig={"PageSize": 1}):
    executions += page["pipelineExecutionSummaries"]
assert [e["pipelineExecutionId"] for e in executions] == [id], executions
assert executions[0]["status"] == "Failed"
assert isinstance(executions[0]["lastUpdateTime"], datetime.datetime)

# ---------------------------------------------------------------- bodies botocore would never send
def raw(target, body):
    # Signed as botocore signs (the key door refuses anything unsigned before reading it).
    import botocore.auth
    from botocore.awsrequest import AWSRequest
    signed = AWSRequest(method="POST", url=endpoint, data=body, headers={
        "Content-Type": "application/x-amz-json-1.1",
        "X-Amz-Target": "CodePipeline_20150709." + target})
    botocore.auth.SigV4Auth(boto3.Session().get_credentials(), "codepipeline", "us-east-1").add_auth(signed)
    p = signed.prepare()
    request = urllib.request.Request(p.url, data=p.body, method="POST", headers=dict(p.headers))
    try:
        urllib.request.urlopen(request)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())
    raise SystemExit(f"{target} {body!r} succeeded")
code, err = raw("GetPipeline", b'{"name": "x"')
assert code == 400 and err["__type"] == "SerializationException", err
code, err = raw("TagResource", b'{"resourceArn": 7, "tags": []}')
assert code == 400 and err["__type"] == "ValidationException" and "resourceArn" in err["message"], err
code, err = raw("ListTagsForResource", b'{"resourceArn": "x", "extra": 1}')
assert code == 400 and err["__type"] == "ValidationException" and "extra" in err["message"], err

for n in names + [gate_name]:
    cp.delete_pipeline(name=n)
expect("ResourceNotFoundException", cp.list_tags_for_resource, resourceArn=arn)
print("ok")
"#;

#[tokio::test]
async fn boto3_parses_every_answer_with_botocores_model() {
    let stack = stack();
    let c = clients(stack).await;
    let prefix = unique("boto");
    let bucket = unique("pipewright-src");
    versioned_source(&c, &bucket, "app.zip", zip_of(&[("README.md", "hi\n")])).await;
    let sample = sample_declaration(&prefix);
    let gate = json!({
        "name": format!("{prefix}-gate"),
        "roleArn": pipewright_e2e::TEST_ROLE_ARN,
        "artifactStore": {"type": "S3", "location": stack.output("ArtifactBucketName")},
        "pipelineType": "V2",
        "executionMode": "QUEUED",
        "stages": [
            source_stage(&bucket),
            {"name": "Approve", "actions": [{
                "name": "Approve",
                "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
            }]},
            commands("Build", &["sleep 2", "exit 1"])
        ]
    });
    let mut cmd = Command::new("python3");
    client_env(&mut cmd, stack);
    let out = cmd
        .arg("-c")
        .arg(BOTO3_SCENARIO)
        .arg(&prefix)
        .arg(sample.to_string())
        .arg(gate.to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
