//! `Deploy/AWS/CloudFormation` on the local stack: the action creates, updates and deletes a
//! stack of the emulator's CloudFormation with the pipeline role, and completes on the stack's
//! "CloudFormation Stack Status Change" event (which the local stack's gateway puts on the bus,
//! as AWS does). Outputs become output variables and the output file.

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use std::time::Duration;

use pipewright_e2e::pipelines::{
    action_failure, clients, commands_action, drain_events, eventually, execution_records,
    latest_action, s3_source_with, start, subscribe_to, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, unique, TEST_ROLE_ARN};
use serde_json::{json, Value};

/// A template with a parameter-named queue and its outputs.
const TEMPLATE: &str = r#"{
  "Parameters": {"QueueName": {"Type": "String"}, "Env": {"Type": "String"}, "Version": {"Type": "String"}},
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "QueueName"}}}},
  "Outputs": {
    "QueueUrl": {"Value": {"Ref": "Queue"}},
    "Env": {"Value": {"Ref": "Env"}},
    "Version": {"Value": {"Ref": "Version"}}
  }
}"#;

fn deploy(configuration: Value, outputs: bool) -> Value {
    let mut action = json!({
        "name": "Stack",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
        "configuration": configuration,
        "inputArtifacts": [{"name": "Src"}],
        "namespace": "StackOutputs"
    });
    if outputs {
        action["outputArtifacts"] = json!([{"name": "StackOut"}]);
    }
    json!({"name": "Deploy", "actions": [action]})
}

async fn stack_of(c: &Clients, name: &str) -> Option<aws_sdk_cloudformation::types::Stack> {
    aws_sdk_cloudformation::Client::new(&c.sdk)
        .describe_stacks()
        .stack_name(name)
        .send()
        .await
        .ok()
        .and_then(|o| o.stacks().first().cloned())
        .filter(|s| s.stack_status().map(|s| s.as_str()) != Some("DELETE_COMPLETE"))
}

#[tokio::test]
async fn create_update_and_delete_a_stack_with_parameters_and_outputs() {
    let stack = stack();
    let c = clients(stack).await;
    let stack_name = unique("app-stack");
    let queue = unique("app-queue");
    let src = s3_source_with(
        &c,
        &[
            ("infra/template.json", TEMPLATE),
            (
                "infra/prod.json",
                r#"{"Parameters": {"Env": "staging", "Version": "0"}, "Tags": {"team": "web"}}"#,
            ),
            ("build.json", r#"{"version": "1.2.3"}"#),
        ],
    )
    .await;
    let mut show = commands_action(
        "Show",
        &["cat outputs.json", "echo env=#{StackOutputs.Env}"],
    );
    show["inputArtifacts"] = json!([{"name": "StackOut"}]);
    let configuration = json!({
        "ActionMode": "CREATE_UPDATE",
        "StackName": stack_name,
        "TemplatePath": "Src::infra/template.json",
        "TemplateConfiguration": "Src::infra/prod.json",
        "ParameterOverrides": json!({
            "QueueName": queue,
            "Env": "prod",
            "Version": {"Fn::GetParam": ["Src", "build.json", "version"]}
        }).to_string(),
        "Capabilities": "CAPABILITY_IAM,CAPABILITY_AUTO_EXPAND",
        "RoleArn": TEST_ROLE_ARN,
        "OutputFileName": "outputs.json"
    });
    let name = PipelineBuilder::new(stack, "cfn")
        .source(src)
        .stage(deploy(configuration, true))
        .stage(json!({"name": "After", "actions": [show]}))
        .create(stack);

    // The stack's status events reach the bus (locally the gateway emulates CloudFormation's).
    let queue = subscribe_to(
        &c,
        &unique("stack-events"),
        &json!({"source": ["aws.cloudformation"], "detail-type": ["CloudFormation Stack Status Change"]}),
    )
    .await;

    // Created.
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let created = stack_of(&c, &stack_name).await.expect("the stack exists");
    let outputs: std::collections::BTreeMap<String, String> = created
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().to_string(),
                o.output_value().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        outputs["Env"], "prod",
        "overrides win over the configuration file"
    );
    assert_eq!(outputs["Version"], "1.2.3", "Fn::GetParam read build.json");
    assert!(created
        .tags()
        .iter()
        .any(|t| t.key() == Some("team") && t.value() == Some("web")));
    let records = execution_records(&c, stack, &id).await;
    let action = latest_action(&records, "Deploy", "Stack");
    assert_eq!(action["output"]["outputVariables"]["Env"], "prod");
    assert_eq!(
        action["output"]["executionResult"]["externalExecutionId"],
        json!(created.stack_id().unwrap())
    );
    let stack_id = created.stack_id().unwrap().to_string();
    let announced = eventually(
        "the stack's status event",
        Duration::from_millis(200),
        || async {
            drain_events(&c, &queue, Duration::from_millis(500))
                .await
                .into_iter()
                .find(|e| e["detail"]["stack-id"] == json!(stack_id))
        },
    )
    .await;
    assert_eq!(
        announced["detail"]["status-details"]["status"],
        "CREATE_COMPLETE"
    );
    let log = latest_action(&records, "After", "Show")["logTail"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(log.contains(r#""Version": "1.2.3""#), "{log}");
    assert!(log.contains("env=prod"), "{log}");

    // Run again: an update (or nothing to update) succeeds, the stack stays.
    let again = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &again).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    assert!(stack_of(&c, &stack_name).await.is_some());

    // DELETE_ONLY deletes it; a second delete finds nothing to delete and succeeds.
    let remover = PipelineBuilder::new(stack, "cfn-delete")
        .source(s3_source_with(&c, &[("README.md", "x")]).await)
        .stage(deploy(
            json!({"ActionMode": "DELETE_ONLY", "StackName": stack_name, "RoleArn": TEST_ROLE_ARN}),
            false,
        ))
        .create(stack);
    for _ in 0..2 {
        let id = start(&c, &remover).await;
        let (status, summary) = wait_for(&c, &remover, &id).await;
        assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
        assert!(
            stack_of(&c, &stack_name).await.is_none(),
            "the stack was deleted"
        );
    }
}

#[tokio::test]
async fn a_stack_that_fails_and_bad_configurations_fail_the_action_saying_why() {
    let stack = stack();
    let c = clients(stack).await;
    // A stack of someone else's exports a name; a template exporting it too fails to create.
    let export = unique("shared-export");
    let exporting = |queue: &str| {
        json!({
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}},
            "Outputs": {"Url": {"Value": {"Ref": "Queue"}, "Export": {"Name": export}}}
        })
        .to_string()
    };
    aws_sdk_cloudformation::Client::new(&c.sdk)
        .create_stack()
        .stack_name(unique("exporter"))
        .template_body(exporting(&unique("first-queue")))
        .send()
        .await
        .expect("CreateStack");
    let bad = exporting(&unique("second-queue"));
    let src = s3_source_with(
        &c,
        &[("bad.json", bad.as_str()), ("template.json", TEMPLATE)],
    )
    .await;
    let cases = [
        (
            json!({"ActionMode": "CREATE_UPDATE", "StackName": unique("bad-stack"), "TemplatePath": "Src::bad.json", "RoleArn": TEST_ROLE_ARN}),
            "JobFailed",
            "ended CREATE_FAILED",
        ),
        (
            json!({"ActionMode": "CREATE_UPDATE", "StackName": unique("no-file"), "TemplatePath": "Src::missing.json", "RoleArn": TEST_ROLE_ARN}),
            "ConfigurationError",
            "input artifact Src has no file missing.json",
        ),
        (
            json!({"ActionMode": "CREATE_UPDATE", "StackName": unique("bad-param"), "TemplatePath": "Src::template.json", "RoleArn": TEST_ROLE_ARN,
                   "ParameterOverrides": r#"{"Version": {"Fn::GetParam": ["Src", "nope.json", "v"]}}"#}),
            "ConfigurationError",
            "input artifact Src has no file nope.json",
        ),
        (
            json!({"ActionMode": "CHANGE_SET_EXECUTE", "StackName": unique("cs"), "ChangeSetName": "x"}),
            "ConfigurationError",
            "change set x of stack cs-",
        ),
    ];
    let mut runs = Vec::new();
    for (configuration, code, says) in cases {
        let name = PipelineBuilder::new(stack, "cfn-bad")
            .source(src.clone())
            .stage(deploy(configuration, false))
            .create(stack);
        let id = start(&c, &name).await;
        runs.push((name, id, code, says));
    }
    for (name, id, code, says) in runs {
        let (status, _) = wait_for(&c, &name, &id).await;
        assert_eq!(status, PipelineExecutionStatus::Failed, "{name}");
        let records = execution_records(&c, stack, &id).await;
        let (got, message) = action_failure(latest_action(&records, "Deploy", "Stack"));
        assert_eq!(got, code, "{message}");
        assert!(message.contains(says), "{message:?} lacks {says:?}");
    }
}

/// The change-set pair SAM pipelines use (CHANGE_SET_REPLACE, then CHANGE_SET_EXECUTE), with a
/// template too large for the request (CloudFormation reads it from the artifact bucket); then
/// REPLACE_ON_FAILURE replaces a stack that failed to create.
#[tokio::test]
async fn change_sets_are_replaced_then_executed_and_failed_stacks_replaced() {
    let stack = stack();
    let c = clients(stack).await;
    let cfn = aws_sdk_cloudformation::Client::new(&c.sdk);

    // More than the 51,200 bytes CloudFormation takes in a request.
    let mut large: Value = serde_json::from_str(TEMPLATE).unwrap();
    large["Metadata"] = json!({"Padding": "x".repeat(60_000)});
    let large = large.to_string();
    let stack_name = unique("planned-stack");
    let parameters =
        json!({"QueueName": unique("planned-queue"), "Env": "prod", "Version": "7"}).to_string();
    let src = s3_source_with(&c, &[("template.json", large.as_str())]).await;
    let plan = json!({"name": "Plan", "actions": [{
        "name": "Stack",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
        "configuration": {
            "ActionMode": "CHANGE_SET_REPLACE", "StackName": stack_name, "ChangeSetName": "pipeline-plan",
            "TemplatePath": "Src::template.json", "ParameterOverrides": parameters, "RoleArn": TEST_ROLE_ARN
        },
        "inputArtifacts": [{"name": "Src"}]
    }]});
    let apply = deploy(
        json!({"ActionMode": "CHANGE_SET_EXECUTE", "StackName": stack_name, "ChangeSetName": "pipeline-plan"}),
        false,
    );
    let name = PipelineBuilder::new(stack, "cfn-plan")
        .source(src)
        .stage(plan)
        .stage(apply)
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let created = stack_of(&c, &stack_name)
        .await
        .expect("the change set made the stack");
    assert_eq!(created.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    let records = execution_records(&c, stack, &id).await;
    let planned = latest_action(&records, "Plan", "Stack");
    assert!(
        planned["output"]["executionResult"]["externalExecutionSummary"]
            .as_str()
            .unwrap()
            .contains("change set pipeline-plan of stack"),
        "{planned}"
    );
    assert_eq!(
        latest_action(&records, "Deploy", "Stack")["output"]["outputVariables"]["Version"],
        "7",
        "the executed change set's stack outputs are the action's variables"
    );

    // A stack that failed to create is deleted and created again by REPLACE_ON_FAILURE.
    let export = unique("taken-export");
    let exporting = |queue: &str| {
        json!({
            "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": queue}}},
            "Outputs": {"Url": {"Value": {"Ref": "Queue"}, "Export": {"Name": export}}}
        })
        .to_string()
    };
    cfn.create_stack()
        .stack_name(unique("exporter"))
        .template_body(exporting(&unique("first-queue")))
        .send()
        .await
        .expect("CreateStack");
    let failed_name = unique("failed-stack");
    cfn.create_stack()
        .stack_name(&failed_name)
        .template_body(exporting(&unique("second-queue")))
        .send()
        .await
        .expect("CreateStack");
    let failed_status = eventually("the stack to fail", Duration::from_millis(200), || async {
        stack_of(&c, &failed_name)
            .await
            .and_then(|s| s.stack_status().map(|s| s.as_str().to_string()))
            .filter(|s| !s.ends_with("_IN_PROGRESS"))
    })
    .await;
    assert!(
        pipewright_core::cloudformation::needs_replacing(&failed_status),
        "{failed_status}"
    );
    let src = s3_source_with(&c, &[("template.json", TEMPLATE)]).await;
    let replace = json!({
        "ActionMode": "REPLACE_ON_FAILURE", "StackName": failed_name, "TemplatePath": "Src::template.json",
        "ParameterOverrides": json!({"QueueName": unique("third-queue"), "Env": "dev", "Version": "1"}).to_string(),
        "RoleArn": TEST_ROLE_ARN
    });
    let name = PipelineBuilder::new(stack, "cfn-replace")
        .source(src)
        .stage(deploy(replace, false))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let replaced = stack_of(&c, &failed_name)
        .await
        .expect("the stack was made again");
    assert_eq!(replaced.stack_status().unwrap().as_str(), "CREATE_COMPLETE");
    assert!(replaced
        .outputs()
        .iter()
        .any(|o| o.output_key() == Some("Env") && o.output_value() == Some("dev")));
}
