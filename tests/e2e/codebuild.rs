//! `Build/AWS/CodeBuild` on the local stack: the action starts a build of a project made as
//! CodePipeline users make them (source and artifacts `CODEPIPELINE`), on the input artifact,
//! with the pipeline role; the emulator's CodeBuild runs the source's `buildspec.yml` for real
//! (its commands in a sandbox of the local container CLI), writes the output artifact, and the
//! build's "CodeBuild Build State Change" event (which the local stack's gateway puts on the
//! bus, as AWS does) completes the action. The most common pipeline, Source → CodeBuild →
//! CloudFormation (→ Step Functions), runs end to end.

use aws_sdk_codebuild::types::{
    ArtifactsType, ComputeType, EnvironmentType, ProjectArtifacts, ProjectEnvironment,
    ProjectSource, SourceType,
};
use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use std::time::Duration;

use pipewright_e2e::pipelines::{
    action_failure, clients, commands_action, drain_events, eventually, execution_records,
    latest_action, s3_source_with, start, subscribe_to, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, unique, TEST_ROLE_ARN};
use serde_json::{json, Value};

/// A build project as CodePipeline users have them: its source and artifacts are the
/// pipeline's, its buildspec the source's `buildspec.yml`.
pub(crate) async fn project(c: &Clients) -> String {
    let name = unique("web-build");
    aws_sdk_codebuild::Client::new(&c.sdk)
        .create_project()
        .name(&name)
        .source(
            ProjectSource::builder()
                .r#type(SourceType::Codepipeline)
                .build()
                .unwrap(),
        )
        .artifacts(
            ProjectArtifacts::builder()
                .r#type(ArtifactsType::Codepipeline)
                .build()
                .unwrap(),
        )
        .environment(
            ProjectEnvironment::builder()
                .r#type(EnvironmentType::LinuxContainer)
                .image("aws/codebuild/standard:7.0")
                .compute_type(ComputeType::BuildGeneral1Small)
                .build()
                .unwrap(),
        )
        .service_role(TEST_ROLE_ARN)
        .send()
        .await
        .expect("CreateProject");
    name
}

fn build_stage(project: &str) -> Value {
    json!({"name": "Build", "actions": [{
        "name": "Compile",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {
            "ProjectName": project,
            "EnvironmentVariables": json!([
                {"name": "STAGE", "value": "prod", "type": "PLAINTEXT"},
                {"name": "REVISION", "value": "#{SourceVariables.VersionId}"}
            ]).to_string()
        },
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "BuildOut"}],
        "namespace": "BuildVars"
    }]})
}

/// A template with a parameter-named queue and its outputs.
const TEMPLATE: &str = r#"{
  "Parameters": {"QueueName": {"Type": "String"}, "Env": {"Type": "String"}, "Version": {"Type": "String"}},
  "Resources": {"Queue": {"Type": "AWS::SQS::Queue", "Properties": {"QueueName": {"Ref": "QueueName"}}}},
  "Outputs": {"Env": {"Value": {"Ref": "Env"}}, "Version": {"Value": {"Ref": "Version"}}}
}"#;

/// Reads the source, uses the action's variables, exports `VERSION`, writes the template and
/// its configuration as the build's artifact.
const BUILDSPEC: &str = r#"version: 0.2
env:
  variables:
    GREETING: hello
  exported-variables:
    - VERSION
    - SEEN_REVISION
phases:
  build:
    commands:
      - test "$STAGE" = prod
      - test -f "$CODEBUILD_SRC_DIR/version.txt"
      - export VERSION=$(cat version.txt)
      - export SEEN_REVISION="$REVISION"
      - mkdir -p out
      - cp infra/template.json out/template.json
      - sed "s/ENV/$STAGE/" infra/config.tpl > out/config.json
artifacts:
  base-directory: out
  files:
    - '**/*'
"#;

/// A state machine that passes its input on.
async fn state_machine(c: &Clients) -> String {
    aws_sdk_sfn::Client::new(&c.sdk)
        .create_state_machine()
        .name(unique("release-flow"))
        .definition(
            json!({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}})
                .to_string(),
        )
        .role_arn(TEST_ROLE_ARN)
        .send()
        .await
        .expect("CreateStateMachine")
        .state_machine_arn()
        .to_string()
}

#[tokio::test]
async fn a_build_runs_its_buildspec_and_feeds_cloudformation() {
    let stack = stack();
    let c = clients(stack).await;
    let project = project(&c).await;
    let stack_name = unique("built-stack");
    let queue_name = unique("built-queue");
    let src = s3_source_with(
        &c,
        &[
            ("buildspec.yml", BUILDSPEC),
            ("version.txt", "2.4.1"),
            ("infra/template.json", TEMPLATE),
            ("infra/config.tpl", r#"{"Parameters": {"Env": "ENV"}}"#),
        ],
    )
    .await;
    let deploy = json!({"name": "Deploy", "actions": [{
        "name": "Stack",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CloudFormation", "version": "1"},
        "configuration": {
            "ActionMode": "CREATE_UPDATE",
            "StackName": stack_name,
            "TemplatePath": "BuildOut::template.json",
            "TemplateConfiguration": "BuildOut::config.json",
            "ParameterOverrides": json!({"QueueName": queue_name, "Version": "#{BuildVars.VERSION}"}).to_string(),
            "RoleArn": TEST_ROLE_ARN
        },
        "inputArtifacts": [{"name": "BuildOut"}],
        "namespace": "StackOutputs"
    }]});
    let machine = state_machine(&c).await;
    let invoke = json!({"name": "Release", "actions": [{
        "name": "Flow",
        "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "StepFunctions", "version": "1"},
        "configuration": {
            "StateMachineArn": machine,
            "Input": "{\"version\": \"#{BuildVars.VERSION}\", \"env\": \"#{StackOutputs.Env}\"}"
        },
        "namespace": "Flow"
    }]});
    let name = PipelineBuilder::new(stack, "built")
        .source(src)
        .stage(build_stage(&project))
        .stage(deploy)
        .stage(invoke)
        .create(stack);
    let events = subscribe_to(
        &c,
        &unique("build-events"),
        &json!({"source": ["aws.codebuild"], "detail-type": ["CodeBuild Build State Change"]}),
    )
    .await;

    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    // The stack was made from the build's artifact, with the build's exported variable.
    let created = aws_sdk_cloudformation::Client::new(&c.sdk)
        .describe_stacks()
        .stack_name(&stack_name)
        .send()
        .await
        .expect("DescribeStacks");
    let outputs: std::collections::BTreeMap<String, String> = created.stacks()[0]
        .outputs()
        .iter()
        .map(|o| {
            (
                o.output_key().unwrap().into(),
                o.output_value().unwrap().into(),
            )
        })
        .collect();
    assert_eq!(
        outputs["Env"], "prod",
        "the build wrote config.json with $STAGE"
    );
    assert_eq!(
        outputs["Version"], "2.4.1",
        "#{{BuildVars.VERSION}} is the exported variable"
    );

    // The action's record: the build, its exported variables, its artifact.
    let records = execution_records(&c, stack, &id).await;
    let source = latest_action(&records, "Source", "Source");
    let action = latest_action(&records, "Build", "Compile");
    let variables = &action["output"]["outputVariables"];
    assert_eq!(variables["VERSION"], "2.4.1");
    assert_eq!(
        variables["SEEN_REVISION"], source["output"]["outputVariables"]["VersionId"],
        "#{{SourceVariables.VersionId}} was resolved in EnvironmentVariables"
    );
    let build_id = action["output"]["executionResult"]["externalExecutionId"]
        .as_str()
        .expect("the build id")
        .to_string();
    assert!(build_id.starts_with(&format!("{project}:")), "{build_id}");
    assert!(action["output"]["executionResult"]["externalExecutionUrl"]
        .as_str()
        .unwrap()
        .contains("/codebuild/"));
    let output = &action["output"]["outputArtifacts"][0]["s3location"];
    assert!(output["versionId"].is_string(), "{output}");

    // CodeBuild ran the build on the source artifact, at its version.
    let builds = aws_sdk_codebuild::Client::new(&c.sdk)
        .batch_get_builds()
        .ids(&build_id)
        .send()
        .await
        .expect("BatchGetBuilds");
    let build = &builds.builds()[0];
    assert_eq!(build.build_status().unwrap().as_str(), "SUCCEEDED");
    let input = &source["output"]["outputArtifacts"][0]["s3location"];
    assert_eq!(
        build.source().and_then(|s| s.location()),
        Some(
            format!(
                "{}/{}",
                input["bucket"].as_str().unwrap(),
                input["key"].as_str().unwrap()
            )
            .as_str()
        )
    );

    // The state machine ran on variables of both the build and the stack.
    let execution_arn = latest_action(&records, "Release", "Flow")["output"]["outputVariables"]
        ["ExecutionArn"]
        .as_str()
        .expect("the execution's ARN")
        .to_string();
    let described = aws_sdk_sfn::Client::new(&c.sdk)
        .describe_execution()
        .execution_arn(&execution_arn)
        .send()
        .await
        .expect("DescribeExecution");
    let input: Value = serde_json::from_str(described.input().unwrap_or("null")).unwrap();
    assert_eq!(input, json!({"version": "2.4.1", "env": "prod"}));

    // The build's state event reached the bus.
    let build_arn = build.arn().unwrap().to_string();
    eventually(
        "the build's state event",
        Duration::from_millis(200),
        || async {
            drain_events(&c, &events, Duration::from_millis(500))
                .await
                .into_iter()
                .find(|e| e["detail"]["build-id"] == json!(build_arn))
                .filter(|e| e["detail"]["build-status"] == "SUCCEEDED")
        },
    )
    .await;
}

#[tokio::test]
async fn a_failing_build_fails_the_action_saying_where_and_why() {
    let stack = stack();
    let c = clients(stack).await;
    let project = project(&c).await;
    let src = s3_source_with(
        &c,
        &[(
            "buildspec.yml",
            "version: 0.2\nphases:\n  build:\n    commands:\n      - echo compiling\n      - exit 3\n",
        )],
    )
    .await;
    let name = PipelineBuilder::new(stack, "build-fails")
        .source(src)
        .stage(build_stage(&project))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, _) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let records = execution_records(&c, stack, &id).await;
    let action = latest_action(&records, "Build", "Compile");
    let (code, message) = action_failure(action);
    assert_eq!(code, "JobFailed");
    assert!(
        message.starts_with("Build terminated with state: FAILED. Phase: BUILD"),
        "{message}"
    );
    assert!(message.contains(&format!("Build: {project}:")), "{message}");
}

/// Two input artifacts (the second a secondary source, `$CODEBUILD_SRC_DIR_Config`) and two
/// output artifacts (the buildspec's `secondary-artifacts` of the same names).
#[tokio::test]
async fn secondary_sources_and_artifacts_follow_the_artifact_names() {
    let stack = stack();
    let c = clients(stack).await;
    let project = project(&c).await;
    let buildspec = r#"version: 0.2
phases:
  build:
    commands:
      - mkdir -p app docs
      - cat main.txt "$CODEBUILD_SRC_DIR_Config/settings.txt" > app/bundle.txt
      - echo "docs of $(cat main.txt)" > docs/index.txt
artifacts:
  files:
    - '**/*'
  secondary-artifacts:
    App:
      base-directory: app
      files:
        - '**/*'
    Docs:
      base-directory: docs
      files:
        - '**/*'
"#;
    let main = s3_source_with(&c, &[("buildspec.yml", buildspec), ("main.txt", "main")]).await;
    let mut config = s3_source_with(&c, &[("settings.txt", "settings")]).await;
    config["name"] = json!("Config");
    config["namespace"] = json!("ConfigVariables");
    config["outputArtifacts"] = json!([{"name": "Config"}]);
    let build = json!({"name": "Build", "actions": [{
        "name": "Compile",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "configuration": {"ProjectName": project, "PrimarySource": "Src"},
        "inputArtifacts": [{"name": "Src"}, {"name": "Config"}],
        "outputArtifacts": [{"name": "App"}, {"name": "Docs"}]
    }]});
    let mut check = commands_action(
        "Check",
        &[
            "cat bundle.txt",
            "cat \"$CODEBUILD_SRC_DIR_Docs/index.txt\"",
        ],
    );
    check["inputArtifacts"] = json!([{"name": "App"}, {"name": "Docs"}]);
    let name = PipelineBuilder::new(stack, "build-two")
        .stage(json!({"name": "Source", "actions": [main, config]}))
        .stage(build)
        .stage(json!({"name": "Check", "actions": [check]}))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let records = execution_records(&c, stack, &id).await;
    let log = latest_action(&records, "Check", "Check")["logTail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        log.contains("mainsettings"),
        "the bundle joined both sources: {log}"
    );
    assert!(log.contains("docs of main"), "{log}");
}

/// A Commands action that names a project (`PipewrightCodeBuildProject`) runs as a build of it:
/// its commands, output variables and output files as CodePipeline gives them, the next action
/// (on the runner) reading both.
#[tokio::test]
async fn commands_run_on_codebuild_when_they_name_a_project() {
    let stack = stack();
    let c = clients(stack).await;
    let project = project(&c).await;
    let src = s3_source_with(&c, &[("README.md", "from the source\n")]).await;
    let on_codebuild = json!({
        "name": "Package",
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "configuration": {"PipewrightCodeBuildProject": project},
        "commands": [
            "mkdir -p out",
            "cp README.md out/readme.txt",
            "echo \"built by $CODEBUILD_BUILD_ID\" > out/result.txt",
            "export RESULT=packaged-$STAGE"
        ],
        "environmentVariables": [{"name": "STAGE", "value": "prod"}],
        "outputVariables": ["RESULT"],
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Package", "files": ["out/**/*"]}],
        "namespace": "PackageVars"
    });
    let mut after = commands_action(
        "Check",
        &[
            "cat out/readme.txt out/result.txt",
            "echo result=#{PackageVars.RESULT}",
        ],
    );
    after["inputArtifacts"] = json!([{"name": "Package"}]);
    let name = PipelineBuilder::new(stack, "cmd-build")
        .source(src)
        .stage(json!({"name": "Package", "actions": [on_codebuild]}))
        .stage(json!({"name": "Check", "actions": [after]}))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let records = execution_records(&c, stack, &id).await;
    let packaged = latest_action(&records, "Package", "Package");
    let build_id = packaged["output"]["executionResult"]["externalExecutionId"]
        .as_str()
        .expect("a build id");
    assert!(build_id.starts_with(&format!("{project}:")), "{build_id}");
    let log = latest_action(&records, "Check", "Check")["logTail"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(log.contains("from the source"), "{log}");
    assert!(log.contains(&format!("built by {build_id}")), "{log}");
    assert!(log.contains("result=packaged-prod"), "{log}");
}
