//! What an action may touch (docs/security.md): a Commands action that tries to escape gets
//! nothing of the stack, a run leaves nothing to the next, an action's identity is its
//! pipeline role's session, and a role that cannot be assumed or lacks a permission fails the
//! action with a message naming the role and the call.

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use pipewright_core::access::pipeline_roles::session_name;
use pipewright_e2e::pipelines::{
    action_failure, clients, execution_records, function_of, latest_action, source_bucket, start,
    wait_for, PipelineBuilder,
};
use pipewright_e2e::{stack, unique, Stack, TEST_ROLE_ARN};
use pipewright_local::roles::{ensure_pipeline_role, PipelineRole, PIPELINE_ROLE_PATH};
use serde_json::{json, Value};

/// A shell function signing a request with the commands' own credentials (curl's SigV4):
/// `call SERVICE URL [curl options]`, printing the HTTP status then the body.
const CALL: &str = r#"call() { svc=$1; url=$2; shift 2; curl -s -o /tmp/answer -w '%{http_code} ' --aws-sigv4 "aws:amz:$AWS_REGION:$svc" --user "$AWS_ACCESS_KEY_ID:$AWS_SECRET_ACCESS_KEY" -H "x-amz-security-token: $AWS_SESSION_TOKEN" "$@" "$url"; head -c 300 /tmp/answer; }"#;

/// The value of output variable `name` of action record `action`.
fn variable<'a>(action: &'a Value, name: &str) -> &'a str {
    action["output"]["outputVariables"][name]
        .as_str()
        .unwrap_or_else(|| panic!("no output variable {name}: {action:#}"))
}

/// An S3 source pipeline whose source action ran; returns its source artifact's (bucket, key).
async fn another_pipelines_artifact(stack: &Stack) -> (String, String) {
    let c = clients(stack).await;
    let bucket = source_bucket(&c).await;
    let name = PipelineBuilder::new(stack, "other")
        .s3_source(&bucket)
        .commands("Build", &["true"])
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let records = execution_records(&c, stack, &id).await;
    let at =
        &latest_action(&records, "Source", "Source")["output"]["outputArtifacts"][0]["s3location"];
    (
        at["bucket"].as_str().unwrap().to_string(),
        at["key"].as_str().unwrap().to_string(),
    )
}

#[tokio::test]
async fn a_commands_action_that_tries_to_escape_gets_nothing_and_leaves_nothing() {
    let stack = stack();
    let c = clients(stack).await;
    let (artifacts, other_key) = another_pipelines_artifact(stack).await;
    let api_function = function_of(&c, "pipewright-local", "ApiFunction").await;
    let bucket = source_bucket(&c).await;

    let escape = [
        CALL,
        // Every process it can see, and whether any is not of its own sandbox.
        "PROCS=$(ls -d /proc/[0-9]* | wc -l)",
        "STRANGERS=$(for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c -e 'fakeclou[d]' -e 'lambda-hos[t]' -e 'target/debu[g]' || true)",
        // Every credential in any environment it can read (its own, its sandbox's init), each
        // tried on the stack's table, the stack's functions and another pipeline's artifact;
        // what answered 2xx is listed in ALLOWED.
        r#"for p in /proc/[0-9]*; do tr '\0' '\n' < $p/environ 2>/dev/null | awk '/^AWS_ACCESS_KEY_ID=/{k=substr($0,19)} /^AWS_SECRET_ACCESS_KEY=/{s=substr($0,23)} /^AWS_SESSION_TOKEN=/{t=substr($0,19)} END{if(k!="")print k" "s" "t}'; done | sort -u > /tmp/creds"#,
        "CREDS=$(wc -l < /tmp/creds)",
        r#"ALLOWED=$(while read k s t; do export AWS_ACCESS_KEY_ID=$k AWS_SECRET_ACCESS_KEY=$s AWS_SESSION_TOKEN=$t; call dynamodb "$AWS_ENDPOINT_URL/" -H 'X-Amz-Target: DynamoDB_20120810.Scan' -H 'Content-Type: application/x-amz-json-1.0' -d "{\"TableName\":\"$EXECUTIONS_TABLE\"}" | grep -q '^2' && echo "dynamodb:$k"; call lambda "$AWS_ENDPOINT_URL/2015-03-31/functions/$API_FUNCTION/invocations" -X POST -d '{}' | grep -q '^2' && echo "lambda:$k"; call s3 "$AWS_ENDPOINT_URL/$ARTIFACTS/$OTHER_KEY" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD' | grep -q '^2' && echo "s3:$k"; done < /tmp/creds | tr '\n' ' ')"#,
        // The same calls with its own credentials, for their messages.
        "DDB=$(call dynamodb \"$AWS_ENDPOINT_URL/\" -H 'X-Amz-Target: DynamoDB_20120810.Scan' -H 'Content-Type: application/x-amz-json-1.0' -d \"{\\\"TableName\\\":\\\"$EXECUTIONS_TABLE\\\"}\")",
        "INVOKE=$(call lambda \"$AWS_ENDPOINT_URL/2015-03-31/functions/$API_FUNCTION/invocations\" -X POST -d '{}')",
        "OTHER_ARTIFACT=$(call s3 \"$AWS_ENDPOINT_URL/$ARTIFACTS/$OTHER_KEY\" -H 'x-amz-content-sha256: UNSIGNED-PAYLOAD')",
        // Who it is.
        "IDENTITY=$(call sts \"$AWS_ENDPOINT_URL/\" -d 'Action=GetCallerIdentity&Version=2011-06-15' | sed -n 's:.*<Arn>\\(.*\\)</Arn>.*:\\1:p')",
        // What it leaves behind: a daemon out of its session, files in /tmp.
        "setsid sh -c 'while true; do date > /tmp/daemon-alive; sleep 1; done' </dev/null >/dev/null 2>&1 &",
        "nohup sleep 600 </dev/null >/dev/null 2>&1 &",
        "echo secret > /tmp/leftover; mkdir -p /tmp/locked && echo x > /tmp/locked/f && chmod 500 /tmp/locked",
        "sleep 1",
    ];
    let aftermath = [
        "sleep 2",
        "LEFT=$(ls -A /tmp | grep -v '^run$' | tr '\\n' ' ')",
        "DAEMONS=$(for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c -e 'sleep 60[0]' -e 'daemon-aliv[e]' || true)",
    ];
    let mut escape_action = json!({
        "name": "Escape",
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": escape,
        "inputArtifacts": [{"name": "Src"}],
        "environmentVariables": [
            {"name": "EXECUTIONS_TABLE", "value": stack.output("ExecutionsTableName")},
            {"name": "API_FUNCTION", "value": api_function},
            {"name": "ARTIFACTS", "value": artifacts},
            {"name": "OTHER_KEY", "value": other_key}
        ],
        "outputVariables": ["PROCS", "STRANGERS", "CREDS", "ALLOWED", "DDB", "INVOKE", "OTHER_ARTIFACT", "IDENTITY"]
    });
    escape_action["runOrder"] = json!(1);
    let name = PipelineBuilder::new(stack, "escape")
        .s3_source(&bucket)
        .stage(json!({"name": "Escape", "actions": [escape_action]}))
        .stage(json!({"name": "Aftermath", "actions": [{
            "name": "Aftermath",
            "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
            "commands": aftermath,
            "inputArtifacts": [{"name": "Src"}],
            "outputVariables": ["LEFT", "DAEMONS"]
        }]}))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let records = execution_records(&c, stack, &id).await;
    let escape = latest_action(&records, "Escape", "Escape");

    // It sees its own sandbox's processes only.
    let procs: usize = variable(escape, "PROCS").parse().unwrap();
    assert!(procs < 20, "the commands see {procs} processes: {escape:#}");
    assert_eq!(variable(escape, "STRANGERS"), "0", "{escape:#}");
    // Every credential it found (its own, and the runner's, which has no permissions) is
    // refused by the stack's table, functions and other pipelines' artifacts.
    let creds: usize = variable(escape, "CREDS").trim().parse().unwrap();
    assert!(creds >= 1, "{escape:#}");
    assert_eq!(variable(escape, "ALLOWED").trim(), "", "{escape:#}");
    for (call, permission) in [
        ("DDB", "dynamodb:Scan"),
        ("INVOKE", "lambda:InvokeFunction"),
        ("OTHER_ARTIFACT", "s3:GetObject"),
    ] {
        let answer = variable(escape, call);
        assert!(
            (answer.starts_with("400 ") || answer.starts_with("403 "))
                && answer.contains("AccessDenied")
                && answer.contains(permission),
            "{call}: {answer}"
        );
    }
    // Its identity is its pipeline role's session, named after pipeline, execution and action.
    assert_eq!(
        variable(escape, "IDENTITY"),
        format!(
            "arn:aws:sts::123456789012:assumed-role/pipewright-tests/{}",
            session_name(&name, &id, "Escape")
        )
    );
    // The runner swept what it left (no process of the run, nothing in /tmp) before answering,
    // or the summary would say it ended its sandbox instead; and the next run finds no daemon
    // and no file.
    let summary = escape["output"]["executionResult"]["externalExecutionSummary"]
        .as_str()
        .unwrap_or_default();
    assert!(
        summary.ends_with("command(s) succeeded"),
        "the sweep did not leave the sandbox clean: {summary}"
    );
    let aftermath = latest_action(&records, "Aftermath", "Aftermath");
    assert_eq!(variable(aftermath, "DAEMONS"), "0", "{aftermath:#}");
    assert_eq!(variable(aftermath, "LEFT").trim(), "", "{aftermath:#}");
}

#[tokio::test]
async fn roles_that_cannot_be_assumed_or_lack_a_permission_fail_naming_the_role_and_the_call() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = source_bucket(&c).await;
    let account_role = |name: &str| format!("arn:aws:iam::123456789012:role/pipewright/{name}");

    // A role that does not exist.
    let missing = account_role(&unique("pipewright-missing"));
    // A role trusted for another pipeline only (the confused deputy: a pipeline naming a role
    // that is not its own).
    let theirs = unique("pipewright-theirs");
    ensure_pipeline_role(
        &stack.endpoint,
        &stack.outputs,
        &PipelineRole {
            name: &theirs,
            path: PIPELINE_ROLE_PATH,
            pipelines: "arn:aws:codepipeline:*:*:someone-else",
            statements: json!([{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]),
        },
    )
    .await
    .expect("the other pipeline's role");
    // A role with the managed policy only: its artifacts, not the source bucket.
    let bare = unique("pipewright-bare");
    ensure_pipeline_role(
        &stack.endpoint,
        &stack.outputs,
        &PipelineRole {
            name: &bare,
            path: PIPELINE_ROLE_PATH,
            pipelines: "*",
            statements: json!([{"Effect": "Allow", "Action": "sts:GetCallerIdentity", "Resource": "*"}]),
        },
    )
    .await
    .expect("the bare role");

    // A role outside the stack's PipelineRolePath, trusting the stack for every pipeline and
    // allowed everything: not one the stack may assume.
    let elsewhere = unique("pipewright-elsewhere");
    ensure_pipeline_role(
        &stack.endpoint,
        &stack.outputs,
        &PipelineRole {
            name: &elsewhere,
            path: "/",
            pipelines: "*",
            statements: json!([{"Effect": "Allow", "Action": "*", "Resource": "*"}]),
        },
    )
    .await
    .expect("a role outside the path");
    let elsewhere_arn = format!("arn:aws:iam::123456789012:role/{elsewhere}");

    for (role, code, says) in [
        (
            elsewhere_arn.clone(),
            "ConfigurationError",
            vec![elsewhere_arn.as_str(), "sts:AssumeRole"],
        ),
        (
            missing.clone(),
            "ConfigurationError",
            vec![missing.as_str(), "sts:AssumeRole"],
        ),
        (
            account_role(&theirs),
            "ConfigurationError",
            vec![theirs.as_str(), "sts:AssumeRole"],
        ),
        (
            account_role(&bare),
            "PermissionError",
            vec![bare.as_str(), "s3:", bucket.as_str()],
        ),
    ] {
        let mut declaration = PipelineBuilder::new(stack, "roles")
            .s3_source(&bucket)
            .commands("Build", &["true"])
            .build();
        declaration["roleArn"] = json!(role);
        let name = declaration["name"].as_str().unwrap().to_string();
        pipewright_e2e::pipelines::create_pipeline(stack, &declaration);
        let id = start(&c, &name).await;
        let (status, _) = wait_for(&c, &name, &id).await;
        assert_eq!(status, PipelineExecutionStatus::Failed, "{role}");
        let records = execution_records(&c, stack, &id).await;
        let (found, message) = action_failure(latest_action(&records, "Source", "Source"));
        assert_eq!(found, code, "{role}: {message}");
        for word in says {
            assert!(
                message.contains(word),
                "{role}: {message} should name {word}"
            );
        }
    }

    // The action's own roleArn wins over the pipeline's: the same pipeline, its source action
    // run with the suite's role, succeeds.
    let mut declaration = PipelineBuilder::new(stack, "roles")
        .s3_source(&bucket)
        .commands("Build", &["true"])
        .build();
    declaration["roleArn"] = json!(account_role(&bare));
    declaration["stages"][0]["actions"][0]["roleArn"] = json!(TEST_ROLE_ARN);
    let name = declaration["name"].as_str().unwrap().to_string();
    pipewright_e2e::pipelines::create_pipeline(stack, &declaration);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
}
