//! The control plane through its local Function URL, driven by the real AWS CLI and boto3:
//! clients that speak CodePipeline's protocol reach Pipewright by changing only the endpoint.

use std::process::{Command, Output};

use pipewright_e2e::{root, stack, unique, Stack};
use serde_json::{json, Value};

fn client_env(cmd: &mut Command, stack: &Stack) {
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
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

fn json_of(out: &Output) -> Value {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON output")
}

fn sample_file(name: &str) -> std::path::PathBuf {
    let text = std::fs::read_to_string(root().join("infra/pipelines/sample.json")).unwrap();
    let mut v: Value = serde_json::from_str(&text).unwrap();
    v["pipeline"]["name"] = json!(name);
    let path = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&path, v.to_string()).unwrap();
    path
}

#[test]
fn the_aws_cli_creates_reads_lists_updates_and_deletes_a_pipeline() {
    let stack = stack();
    let name = unique("cli");
    let file = sample_file(&name);
    let input = format!("file://{}", file.display());

    let created = json_of(&aws(
        stack,
        &["create-pipeline", "--cli-input-json", &input],
    ));
    assert_eq!(created["pipeline"]["name"], json!(name));
    assert_eq!(created["pipeline"]["version"], 1);

    let got = json_of(&aws(stack, &["get-pipeline", "--name", &name]));
    assert_eq!(
        got["metadata"]["pipelineArn"],
        json!(format!(
            "arn:aws:codepipeline:us-east-1:123456789012:{name}"
        ))
    );
    assert!(got["metadata"]["created"].is_string() || got["metadata"]["created"].is_number());

    let listed = json_of(&aws(stack, &["list-pipelines"]));
    assert!(
        listed["pipelines"]
            .as_array()
            .unwrap()
            .iter()
            .any(|p| p["name"] == json!(name)),
        "{listed}"
    );

    let updated = json_of(&aws(
        stack,
        &["update-pipeline", "--cli-input-json", &input],
    ));
    assert_eq!(updated["pipeline"]["version"], 2);

    let again = aws(stack, &["create-pipeline", "--cli-input-json", &input]);
    assert!(!again.status.success());
    let stderr = String::from_utf8_lossy(&again.stderr);
    assert!(stderr.contains("PipelineNameInUseException"), "{stderr}");

    let out = aws(stack, &["delete-pipeline", "--name", &name]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let missing = aws(stack, &["get-pipeline", "--name", &name]);
    assert!(!missing.status.success());
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(stderr.contains("PipelineNotFoundException"), "{stderr}");
    let _ = std::fs::remove_file(file);
}

/// boto3: responses parse under botocore's own service model, errors carry CodePipeline's codes,
/// and the ListPipelines paginator walks every page.
#[test]
fn boto3_sees_codepipeline() {
    let stack = stack();
    let prefix = unique("boto");
    let script = r#"
import json, os, sys
import boto3, botocore.exceptions
cp = boto3.client("codepipeline", endpoint_url=os.environ["PIPEWRIGHT_ENDPOINT"])
prefix = sys.argv[1]
sample = json.load(open(sys.argv[2]))["pipeline"]
names = [f"{prefix}-{i}" for i in range(5)]
for n in names:
    sample["name"] = n
    assert cp.create_pipeline(pipeline=sample)["pipeline"]["version"] == 1
seen = []
for page in cp.get_paginator("list_pipelines").paginate(PaginationConfig={"PageSize": 2}):
    assert len(page["pipelines"]) <= 2
    seen += [p["name"] for p in page["pipelines"] if p["name"].startswith(prefix + "-")]
assert seen == names, seen
got = cp.get_pipeline(name=names[0])
assert got["metadata"]["created"].year >= 2024, got["metadata"]
try:
    cp.get_pipeline(name=prefix + "-missing")
    raise SystemExit("expected PipelineNotFoundException")
except cp.exceptions.PipelineNotFoundException as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 400
bad = dict(sample, name=prefix + "-bad")
bad["stages"] = bad["stages"][:1]
try:
    cp.create_pipeline(pipeline=bad)
    raise SystemExit("expected InvalidStructureException")
except cp.exceptions.InvalidStructureException as e:
    assert "pipeline.stages" in str(e), str(e)
for n in names:
    cp.delete_pipeline(name=n)
print("ok")
"#;
    let mut cmd = Command::new("python3");
    client_env(&mut cmd, stack);
    let out = cmd
        .arg("-c")
        .arg(script)
        .arg(&prefix)
        .arg(root().join("infra/pipelines/sample.json"))
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
