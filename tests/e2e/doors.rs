//! The control plane's two doors, driven by clients no one here wrote (boto3 / botocore 1.43
//! and the `pipewright` CLI): the key door takes requests botocore signs for `codepipeline`
//! with a Pipewright key, the IAM door requests signed for `lambda` (botocore with the README's
//! `before-sign` hook; the CLI by default). Unknown keys, wrong secrets, skewed clocks, the
//! wrong signing name, a key denied an operation or a pipeline, and a revoked key are refused
//! with AWS's exceptions and change nothing; keys are made and revoked through the IAM door
//! only.

use std::process::Command;

use pipewright_e2e::{root, stack, unique, Stack};
use serde_json::json;

/// The scenario, in Python: argv = the pipeline declaration (JSON).
const SCENARIO: &str = r#"
import datetime, json, os, sys, time, urllib.error, urllib.request
import boto3, botocore.auth, botocore.exceptions
from botocore.awsrequest import AWSRequest
from botocore.config import Config

key_url, iam_url = os.environ["PIPEWRIGHT_ENDPOINT"], os.environ["PIPEWRIGHT_IAM_ENDPOINT"]
decl = json.loads(sys.argv[1])
name = decl["name"]
arn = f"arn:aws:codepipeline:us-east-1:123456789012:{name}"
config = Config(retries={"max_attempts": 1, "mode": "standard"})

def sign_for_lambda(request, **kwargs):
    request.context.setdefault("signing", {})["signing_name"] = "lambda"

def client(url, key=None, secret=None, iam=False):
    kw = dict(aws_access_key_id=key, aws_secret_access_key=secret) if key else {}
    c = boto3.client("codepipeline", endpoint_url=url, config=config, **kw)
    if iam:
        # The README's lines: sign CodePipeline calls for the IAM door's Function URL.
        c.meta.events.register("before-sign.codepipeline", sign_for_lambda)
    return c

def refused(code, status, call, *mentions, **kw):
    try:
        call(**kw)
    except botocore.exceptions.ClientError as e:
        got = (e.response["Error"]["Code"], e.response["ResponseMetadata"]["HTTPStatusCode"])
        assert got == (code, status), (got, e.response)
        for m in mentions:
            assert m in str(e), (m, str(e))
        return str(e)
    raise SystemExit(f"expected {code} from {call.__name__}({kw})")

def raw(url, target, body, service, key=None, secret=None):
    """A request botocore signs for `service` (the key operations have no SDK model)."""
    creds = boto3.Session(aws_access_key_id=key, aws_secret_access_key=secret).get_credentials() \
        if key else boto3.Session().get_credentials()
    req = AWSRequest(method="POST", url=url, data=json.dumps(body).encode(),
                     headers={"Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": target})
    botocore.auth.SigV4Auth(creds, service, "us-east-1").add_auth(req)
    p = req.prepare()
    try:
        with urllib.request.urlopen(urllib.request.Request(p.url, data=p.body, headers=dict(p.headers), method="POST")) as r:
            return r.status, json.load(r)
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read() or b"null")

def keys(op, body):
    status, answer = raw(iam_url, "Pipewright_20261207." + op, body, "lambda")
    assert status == 200, (op, status, answer)
    return answer

admin, iam = client(key_url), client(iam_url, iam=True)

# Both doors serve the local credentials: the key door as an admin key, the IAM door as IAM.
admin.create_pipeline(pipeline=decl)
assert name in [p["name"] for p in iam.list_pipelines()["pipelines"]]
assert iam.get_pipeline(name=name)["pipeline"]["name"] == name

# A key that may read the pipelines of this test only.
made = keys("CreateAccessKey", {"name": "reader", "allow": ["codepipeline:Get*", "codepipeline:List*"],
                                "pipelines": [name.rsplit("-", 1)[0] + "-*"]})["accessKey"]
reader = client(key_url, made["accessKeyId"], made["secretAccessKey"])
assert reader.get_pipeline(name=name)["pipeline"]["name"] == name
assert reader.get_pipeline_state(name=name)["pipelineName"] == name

# Denied an operation (and nothing changes), denied another pipeline, denied ListPipelines (IAM's
# resource * is not covered by a pattern).
refused("AccessDeniedException", 400, reader.delete_pipeline, "codepipeline:DeletePipeline", arn, name=name)
refused("AccessDeniedException", 400, reader.start_pipeline_execution, "codepipeline:StartPipelineExecution", name=name)
assert admin.get_pipeline(name=name)["pipeline"]["name"] == name
assert admin.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"] == []
refused("AccessDeniedException", 400, reader.get_pipeline, "someone-else", name="someone-else")
refused("AccessDeniedException", 400, reader.list_pipelines, "codepipeline:ListPipelines")

# A key cannot mint keys.
status, answer = raw(key_url, "Pipewright_20261207.CreateAccessKey",
                     {"name": "escalate", "allow": ["codepipeline:*"]}, "codepipeline",
                     made["accessKeyId"], made["secretAccessKey"])
assert (status, answer["__type"]) == (400, "AccessDeniedException"), (status, answer)
assert "IAM door only" in answer["message"], answer
assert "escalate" not in [k["name"] for k in keys("ListAccessKeys", {})["accessKeys"]]

# Unknown key, wrong secret, no signature.
refused("UnrecognizedClientException", 403, client(key_url, "PWKNOSUCHKEY0000000A", "x" * 40).list_pipelines)
refused("InvalidSignatureException", 403,
        client(key_url, made["accessKeyId"], "not-the-secret-of-this-key-000000000000").get_pipeline, name=name)
status, answer = raw(key_url, "CodePipeline_20150709.ListPipelines", {}, "codepipeline", "x", "y")
assert status == 403, (status, answer)
try:
    urllib.request.urlopen(urllib.request.Request(key_url, data=b"{}", method="POST",
        headers={"X-Amz-Target": "CodePipeline_20150709.DeletePipeline", "Content-Type": "application/x-amz-json-1.1"}))
    raise SystemExit("an unsigned request was answered")
except urllib.error.HTTPError as e:
    assert e.code == 403 and json.loads(e.read())["__type"] == "UnrecognizedClientException"

# A clock 20 minutes off (botocore's own SigV4 signer, whose clock can be set; boto3's default
# may be the CRT's).
real = botocore.auth.get_current_datetime
botocore.auth.get_current_datetime = lambda: real() - datetime.timedelta(minutes=20)
try:
    status, answer = raw(key_url, "CodePipeline_20150709.GetPipeline", {"name": name}, "codepipeline",
                         made["accessKeyId"], made["secretAccessKey"])
finally:
    botocore.auth.get_current_datetime = real
assert (status, answer["__type"]) == (403, "InvalidSignatureException"), (status, answer)
assert "15 minutes" in answer["message"], answer
# The same request, signed now, passes.
status, answer = raw(key_url, "CodePipeline_20150709.GetPipeline", {"name": name}, "codepipeline",
                     made["accessKeyId"], made["secretAccessKey"])
assert status == 200 and answer["pipeline"]["name"] == name, (status, answer)

# The IAM door checks what an AWS_IAM Function URL checks: signed for lambda, not codepipeline.
try:
    client(iam_url).list_pipelines()
    raise SystemExit("the IAM door took a request signed for codepipeline")
except botocore.exceptions.ClientError as e:
    assert e.response["ResponseMetadata"]["HTTPStatusCode"] == 403, e.response

# Revoked: refused within the key door's one-minute cache.
keys("RevokeAccessKey", {"accessKeyId": made["accessKeyId"]})
assert made["accessKeyId"] not in [k["accessKeyId"] for k in keys("ListAccessKeys", {})["accessKeys"]]
deadline = time.time() + 90
while True:
    try:
        reader.get_pipeline(name=name)
    except botocore.exceptions.ClientError as e:
        assert e.response["Error"]["Code"] == "UnrecognizedClientException", e.response
        break
    assert time.time() < deadline, "a revoked key still works after 90 s"
    time.sleep(2)
assert admin.get_pipeline(name=name)["pipeline"]["name"] == name
print("ok")
"#;

/// `name`: an S3 source that is never polled, then a manual approval.
fn declaration(stack: &Stack, name: &str) -> serde_json::Value {
    use pipewright_e2e::pipelines::{source_action, PipelineBuilder};
    PipelineBuilder::new(stack, "doors")
        .named(name)
        .source(source_action(
            "Source",
            "S3",
            json!({"S3Bucket": "nowhere", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"}),
        ))
        .stage(json!({"name": "Approve", "actions": [{
            "name": "Approve",
            "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}
        }]}))
        .build()
}

fn env<'a>(cmd: &'a mut Command, stack: &Stack) -> &'a mut Command {
    cmd.env("AWS_ACCESS_KEY_ID", pipewright_local::LOCAL_ACCESS_KEY_ID)
        .env(
            "AWS_SECRET_ACCESS_KEY",
            pipewright_local::LOCAL_SECRET_ACCESS_KEY,
        )
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_EC2_METADATA_DISABLED", "true")
        .env("PIPEWRIGHT_ENDPOINT", &stack.api_endpoint)
        .env("PIPEWRIGHT_IAM_ENDPOINT", &stack.iam_endpoint)
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
}

#[tokio::test(flavor = "multi_thread")]
async fn botocore_through_both_doors_keys_grants_and_every_refusal() {
    let stack = stack();
    let name = unique("doors");
    let out = env(&mut Command::new("python3"), stack)
        .arg("-c")
        .arg(SCENARIO)
        .arg(declaration(stack, &name).to_string())
        .output()
        .expect("python3 runs");
    assert!(
        out.status.success(),
        "the botocore scenario failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `pipewright` CLI: through the IAM door by default (signed for lambda), it makes, lists
/// and revokes keys; a key it made works on the key door (`--endpoint-url`) within its grant;
/// keys cannot be managed through the key door.
#[tokio::test(flavor = "multi_thread")]
async fn the_cli_manages_keys_through_the_iam_door() {
    let stack = stack();
    let cli = crate::cli::binary();
    let run = |args: &[&str], extra: &[(&str, &str)]| {
        let mut cmd = Command::new(cli);
        env(&mut cmd, stack).current_dir(root());
        for (k, v) in extra {
            cmd.env(k, v);
        }
        cmd.args(args).output().expect("pipewright runs")
    };
    let name = unique("cli-key");
    let made = run(
        &[
            "keys",
            "create",
            "--name",
            &name,
            "--allow",
            "codepipeline:ListPipelines",
            "--expires-in",
            "7",
            "--output",
            "json",
        ],
        &[],
    );
    assert!(
        made.status.success(),
        "{}",
        String::from_utf8_lossy(&made.stderr)
    );
    let key: serde_json::Value = serde_json::from_slice(&made.stdout).expect("JSON");
    let (id, secret) = (
        key["accessKeyId"].as_str().unwrap().to_string(),
        key["secretAccessKey"].as_str().unwrap().to_string(),
    );
    assert!(id.starts_with("PWK") && secret.len() == 40, "{key}");

    let listed = run(&["keys", "list"], &[]);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(text.contains(&id) && text.contains(&name), "{text}");
    assert!(!text.contains(&secret), "keys list shows a secret");

    // The key on the key door: allowed what it was granted, refused the rest (exit 5).
    let as_key = [
        ("AWS_ACCESS_KEY_ID", id.as_str()),
        ("AWS_SECRET_ACCESS_KEY", secret.as_str()),
        ("PIPEWRIGHT_IAM_ENDPOINT", ""),
    ];
    let denied = run(&["status", "anything"], &as_key);
    assert_eq!(
        denied.status.code(),
        Some(5),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("AccessDeniedException"),
        "{}",
        String::from_utf8_lossy(&denied.stderr)
    );
    // Keys are managed through the IAM door only.
    let refused = run(&["keys", "list"], &as_key);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("IAM door"));

    let revoked = run(&["keys", "revoke", &id], &[]);
    assert!(
        revoked.status.success(),
        "{}",
        String::from_utf8_lossy(&revoked.stderr)
    );
    let listed = run(&["keys", "list"], &[]);
    assert!(!String::from_utf8_lossy(&listed.stdout).contains(&id));
    let again = run(&["keys", "revoke", &id], &[]);
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("ResourceNotFoundException"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

/// Through the IAM door, the caller's own IAM policies decide, per operation and pipeline, as for
/// CodePipeline: a role allowed `codepipeline:Get*` on `<prefix>-*` (calling as an assumed-role
/// session) reads those pipelines and nothing else and creates pipelines only with roles it may
/// pass (`iam:PassRole`), a user with no CodePipeline policy is refused everything, key
/// management needs `codepipeline:ManagePipewrightAccessKeys`; the emulator's
/// IAM evaluates the policies (`iam:SimulatePrincipalPolicy`).
#[tokio::test(flavor = "multi_thread")]
async fn through_the_iam_door_the_callers_iam_policies_decide() {
    use pipewright_e2e::signing::{call, Signer};
    let stack = stack();
    let prefix = unique("iampol");
    let sdk = pipewright_e2e::pipelines::clients(stack).await.sdk;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let role = format!("{prefix}-reader");
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": "arn:aws:iam::123456789012:root"}, "Action": "sts:AssumeRole"}]});
    iam.create_role()
        .role_name(&role)
        .path("/teams/web/")
        .assume_role_policy_document(trust.to_string())
        .send()
        .await
        .expect("CreateRole");
    // As on AWS, calling the IAM door at all takes lambda:InvokeFunctionUrl on its function.
    let invoke = json!({"Effect": "Allow", "Action": "lambda:InvokeFunctionUrl", "Resource": "*"});
    // It may read and create its team's pipelines, and pass its team's pipeline roles only.
    let read_only = json!({"Version": "2012-10-17", "Statement": [invoke.clone(), {"Effect": "Allow",
        "Action": ["codepipeline:Get*", "codepipeline:List*", "codepipeline:CreatePipeline"],
        "Resource": format!("arn:aws:codepipeline:us-east-1:123456789012:{prefix}-*")},
        {"Effect": "Allow", "Action": "iam:PassRole",
        "Resource": format!("arn:aws:iam::123456789012:role/pipewright/{prefix}-*")}]});
    iam.put_role_policy()
        .role_name(&role)
        .policy_name("read")
        .policy_document(read_only.to_string())
        .send()
        .await
        .expect("PutRolePolicy");
    let user = format!("{prefix}-nobody");
    let stranger = format!("{prefix}-stranger");
    for name in [&user, &stranger] {
        iam.create_user()
            .user_name(name)
            .send()
            .await
            .expect("CreateUser");
    }
    iam.put_user_policy()
        .user_name(&user)
        .policy_name("invoke")
        .policy_document(json!({"Version": "2012-10-17", "Statement": [invoke]}).to_string())
        .send()
        .await
        .expect("PutUserPolicy");

    // The gateway authenticates them as Lambda would (SigV4 for lambda with their credentials).
    let (reader, nobody) = (
        Signer::new(
            &format!("AKIA{}R", prefix.len()),
            "reader-secret-0123456789",
            "lambda",
        ),
        Signer::new(
            &format!("AKIA{}N", prefix.len()),
            "nobody-secret-0123456789",
            "lambda",
        ),
    );
    let outsider = Signer::new(
        &format!("AKIA{}S", prefix.len()),
        "stranger-secret-0123456789",
        "lambda",
    );
    let lines = format!(
        "{} {} arn:aws:sts::123456789012:assumed-role/{role}/session-1\n{} {} arn:aws:iam::123456789012:user/{user}\n{} {} arn:aws:iam::123456789012:user/{stranger}\n",
        reader.access_key_id, reader.secret, nobody.access_key_id, nobody.secret,
        outsider.access_key_id, outsider.secret
    );
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&stack.iam_identities)
        .expect("the identities file");
    std::io::Write::write_all(&mut file, lines.as_bytes()).expect("identities written");

    // The administrator makes two pipelines: one the role may read, one it may not.
    let (mine, other) = (format!("{prefix}-app"), unique("elsewhere"));
    for name in [&mine, &other] {
        let (status, answer) = call(
            &stack.iam_endpoint,
            "CodePipeline_20150709.CreatePipeline",
            &json!({ "pipeline": declaration(stack, name) }),
            Some(&Signer::local("lambda")),
        );
        assert_eq!(status, 200, "CreatePipeline {name}: {answer}");
    }
    let get = |name: &str, signer: &Signer| {
        call(
            &stack.iam_endpoint,
            "CodePipeline_20150709.GetPipeline",
            &json!({ "name": name }),
            Some(signer),
        )
    };
    let (status, answer) = tokio::task::block_in_place(|| get(&mine, &reader));
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["pipeline"]["name"], mine.as_str());

    let denied = |status: u16, answer: &serde_json::Value, action: &str, resource: &str| {
        assert_eq!(status, 400, "{answer}");
        assert_eq!(answer["__type"], "AccessDeniedException", "{answer}");
        let message = answer["message"].as_str().unwrap_or_default();
        assert!(
            message.contains(action) && message.contains(resource),
            "{message}"
        );
    };
    let (status, answer) = tokio::task::block_in_place(|| get(&other, &reader));
    denied(
        status,
        &answer,
        "codepipeline:GetPipeline",
        &format!(":{other}"),
    );
    let (status, answer) = tokio::task::block_in_place(|| {
        call(
            &stack.iam_endpoint,
            "CodePipeline_20150709.DeletePipeline",
            &json!({ "name": mine }),
            Some(&reader),
        )
    });
    denied(
        status,
        &answer,
        "codepipeline:DeletePipeline",
        &format!(":{mine}"),
    );
    let (status, answer) = tokio::task::block_in_place(|| get(&mine, &nobody));
    denied(
        status,
        &answer,
        "codepipeline:GetPipeline",
        &format!(":{mine}"),
    );
    // Without lambda:InvokeFunctionUrl the URL itself refuses, as Lambda does.
    let (status, answer) = tokio::task::block_in_place(|| get(&mine, &outsider));
    assert_eq!(status, 403, "{answer}");
    assert_eq!(answer["Message"], "Forbidden", "{answer}");
    let (status, answer) = tokio::task::block_in_place(|| {
        call(
            &stack.iam_endpoint,
            "Pipewright_20261207.CreateAccessKey",
            &json!({ "name": "sneaky", "allow": ["codepipeline:*"] }),
            Some(&reader),
        )
    });
    denied(
        status,
        &answer,
        "codepipeline:ManagePipewrightAccessKeys",
        "*",
    );
    // Handing a pipeline a role takes iam:PassRole on it, as in CodePipeline: a role of
    // another team's is refused (and nothing is created); its own team's is passed.
    let create = |name: &str, role: &str| {
        let mut declaration = declaration(stack, name);
        declaration["roleArn"] = json!(role);
        tokio::task::block_in_place(|| {
            call(
                &stack.iam_endpoint,
                "CodePipeline_20150709.CreatePipeline",
                &json!({ "pipeline": declaration }),
                Some(&reader),
            )
        })
    };
    let claimed = format!("{prefix}-claims");
    let (status, answer) = create(&claimed, pipewright_e2e::TEST_ROLE_ARN);
    denied(
        status,
        &answer,
        "iam:PassRole",
        pipewright_e2e::TEST_ROLE_ARN,
    );
    let (status, answer) = tokio::task::block_in_place(|| get(&claimed, &Signer::local("lambda")));
    assert_eq!(status, 400, "{answer}");
    assert_eq!(answer["__type"], "PipelineNotFoundException", "{answer}");
    let own_role = format!("arn:aws:iam::123456789012:role/pipewright/{prefix}-deploy");
    let (status, answer) = create(&claimed, &own_role);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["pipeline"]["roleArn"], own_role.as_str());

    // Nothing changed: the pipeline is still there for the administrator.
    let (status, answer) = tokio::task::block_in_place(|| get(&mine, &Signer::local("lambda")));
    assert_eq!(status, 200, "{answer}");
}

/// An S3 source naming the stack's own artifact bucket is refused before any read
/// (ConfigurationError): the bucket holds every pipeline's artifacts and logs. (What else an
/// action may read is its pipeline role's business: tests/e2e/isolation.rs.)
#[tokio::test(flavor = "multi_thread")]
async fn an_action_naming_the_artifact_bucket_is_refused() {
    use pipewright_e2e::pipelines::clients;
    let stack = stack();
    let c = clients(stack).await;
    let artifacts = stack.output("ArtifactBucketName").to_string();
    let own = failed_s3_source(&c, stack, "artifact-bucket", &artifacts, "any/logs/x.log").await;
    assert!(
        own.contains("ConfigurationError") && own.contains("artifact bucket"),
        "{own}"
    );
}

/// Run Source (S3 `bucket`/`key`) → Build once; it must fail: its summary.
async fn failed_s3_source(
    c: &pipewright_e2e::pipelines::Clients,
    stack: &Stack,
    prefix: &str,
    bucket: &str,
    key: &str,
) -> String {
    use pipewright_e2e::pipelines::{source_action, start, wait_for, PipelineBuilder};
    let name = PipelineBuilder::new(stack, prefix)
        .source(source_action(
            "Source",
            "S3",
            json!({"S3Bucket": bucket, "S3ObjectKey": key}),
        ))
        .commands("Build", &["cat README.md"])
        .create(stack);
    let id = start(c, &name).await;
    let (status, summary) = wait_for(c, &name, &id).await;
    assert_eq!(
        status,
        aws_sdk_codepipeline::types::PipelineExecutionStatus::Failed,
        "{summary:?}"
    );
    summary.unwrap_or_default()
}
