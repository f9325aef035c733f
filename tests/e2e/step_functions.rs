//! `Invoke/AWS/StepFunctions` on the local stack: the action starts an execution of a state
//! machine in the emulator with the pipeline role, and completes when the execution's status
//! event ("Step Functions Execution Status Change", which the local stack's gateway puts on the
//! bus as AWS does) reaches the action function. No Lambda waits in between.

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use pipewright_e2e::pipelines::{
    action_failure, clients, commands_action, execution_records, latest_action, s3_source_with,
    start, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, unique, TEST_ROLE_ARN};
use serde_json::{json, Value};

/// A state machine of `definition` (not named `pipewright-`: those are the engine's own).
pub(crate) async fn state_machine(c: &Clients, definition: Value) -> String {
    aws_sdk_sfn::Client::new(&c.sdk)
        .create_state_machine()
        .name(unique("deploy-flow"))
        .definition(definition.to_string())
        .role_arn(TEST_ROLE_ARN)
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn()
        .to_string()
}

/// The input an execution was started with.
pub(crate) async fn execution_input(c: &Clients, execution_arn: &str) -> Value {
    let described = aws_sdk_sfn::Client::new(&c.sdk)
        .describe_execution()
        .execution_arn(execution_arn)
        .send()
        .await
        .expect("DescribeExecution");
    serde_json::from_str(described.input().unwrap_or("null")).unwrap()
}

#[tokio::test]
async fn a_state_machine_runs_with_the_pipelines_input_and_its_output_goes_on() {
    let stack = stack();
    let c = clients(stack).await;
    // Its output is its input with a field of its own added.
    let machine = state_machine(
        &c,
        json!({"StartAt": "Stamp", "States": {"Stamp": {
            "Type": "Pass", "Result": "deployed", "ResultPath": "$.result", "End": true}}}),
    )
    .await;
    let source = s3_source_with(&c, &[("README.md", "hi\n")]).await;
    let mut show = commands_action(
        "Show",
        &["cat output.json", "echo arn=#{Flow.ExecutionArn}"],
    );
    show["inputArtifacts"] = json!([{"name": "FlowOutput"}]);
    let name = PipelineBuilder::new(stack, "sfn")
        .source(source)
        .stage(json!({"name": "Invoke", "actions": [{
            "name": "Flow",
            "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "StepFunctions", "version": "1"},
            "configuration": {
                "StateMachineArn": machine,
                "ExecutionNamePrefix": "release",
                "Input": "{\"version\": \"#{SourceVariables.VersionId}\", \"stage\": \"prod\"}"
            },
            "outputArtifacts": [{"name": "FlowOutput"}],
            "namespace": "Flow"
        }]}))
        .stage(json!({"name": "After", "actions": [show]}))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    let records = execution_records(&c, stack, &id).await;
    let source = latest_action(&records, "Source", "Source");
    let version = source["output"]["outputVariables"]["VersionId"]
        .as_str()
        .unwrap()
        .to_string();
    let flow = latest_action(&records, "Invoke", "Flow");
    let job = flow["actionExecutionId"].as_str().unwrap();
    let execution_arn = flow["output"]["outputVariables"]["ExecutionArn"]
        .as_str()
        .unwrap()
        .to_string();
    // Named as CodePipeline names it, the action's id after the prefix.
    assert!(
        execution_arn.ends_with(&format!(":release-{job}")),
        "{execution_arn}"
    );
    assert_eq!(
        flow["output"]["outputVariables"]["StateMachineArn"],
        json!(machine)
    );
    assert_eq!(
        flow["output"]["executionResult"]["externalExecutionId"],
        json!(execution_arn)
    );
    assert!(flow["output"]["executionResult"]["externalExecutionUrl"]
        .as_str()
        .unwrap()
        .contains("/states/home"));
    // The state machine got the input with the pipeline's variable resolved...
    assert_eq!(
        execution_input(&c, &execution_arn).await,
        json!({"version": version, "stage": "prod"})
    );
    // ... and the next action read its output from the output artifact, and its variables.
    let log = latest_action(&records, "After", "Show")["logTail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        log.contains(r#""result":"deployed""#) && log.contains(&version),
        "{log}"
    );
    assert!(log.contains(&format!("arn={execution_arn}")), "{log}");
}

#[tokio::test]
async fn input_from_a_file_of_the_artifact_and_a_failing_execution() {
    let stack = stack();
    let c = clients(stack).await;
    let fails = state_machine(
        &c,
        json!({"StartAt": "Check", "States": {"Check": {"Type": "Choice",
            "Choices": [{"Variable": "$.ok", "BooleanEquals": true, "Next": "Done"}],
            "Default": "Broken"},
            "Done": {"Type": "Succeed"},
            "Broken": {"Type": "Fail", "Error": "CheckFailed", "Cause": "the release is not ok"}}}),
    )
    .await;
    let invoke = |input: &str| {
        json!({"name": "Invoke", "actions": [{
            "name": "Flow",
            "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "StepFunctions", "version": "1"},
            "configuration": {"StateMachineArn": fails, "InputType": "FilePath", "Input": input},
            "inputArtifacts": [{"name": "Src"}]
        }]})
    };
    let source = s3_source_with(
        &c,
        &[
            ("input/good.json", r#"{"ok": true}"#),
            ("input/bad.json", r#"{"ok": false}"#),
        ],
    )
    .await;

    let good = PipelineBuilder::new(stack, "sfn-file")
        .source(source.clone())
        .stage(invoke("input/good.json"))
        .create(stack);
    let bad = PipelineBuilder::new(stack, "sfn-fail")
        .source(source.clone())
        .stage(invoke("input/bad.json"))
        .create(stack);
    let missing = PipelineBuilder::new(stack, "sfn-missing")
        .source(source)
        .stage(invoke("input/none.json"))
        .create(stack);
    let (good_id, bad_id, missing_id) = (
        start(&c, &good).await,
        start(&c, &bad).await,
        start(&c, &missing).await,
    );

    let (status, summary) = wait_for(&c, &good, &good_id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let records = execution_records(&c, stack, &good_id).await;
    let arn = latest_action(&records, "Invoke", "Flow")["output"]["outputVariables"]
        ["ExecutionArn"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(execution_input(&c, &arn).await, json!({"ok": true}));

    // A failed execution fails the action with Step Functions' error and cause.
    let (status, _) = wait_for(&c, &bad, &bad_id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let records = execution_records(&c, stack, &bad_id).await;
    let (code, message) = action_failure(latest_action(&records, "Invoke", "Flow"));
    assert_eq!(code, "JobFailed");
    assert!(
        message.contains("ended FAILED: CheckFailed: the release is not ok"),
        "{message}"
    );

    // A file the artifact does not have: a configuration error naming it; nothing started.
    let (status, _) = wait_for(&c, &missing, &missing_id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let records = execution_records(&c, stack, &missing_id).await;
    let (code, message) = action_failure(latest_action(&records, "Invoke", "Flow"));
    assert_eq!(code, "ConfigurationError");
    assert!(
        message.contains("input artifact Src has no file input/none.json"),
        "{message}"
    );
}
