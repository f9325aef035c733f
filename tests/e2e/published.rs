//! Pipelines as CodePipeline users have them run unchanged on the local stack: each definition
//! of `infra/pipelines/published` (the `get-pipeline` output of a documented shape) is created
//! as it is, with only what names the account changed — its role becomes the suite's pipeline
//! role, and the buckets, repository, project, stack, application, cluster and state machine it
//! names become this test's own (made in the emulator first, as a team has them before it
//! creates the pipeline). Then it runs to Succeeded and the services show the work done.

use std::path::Path;

use aws_sdk_codecommit::primitives::Blob;
use aws_sdk_codecommit::types::{FileModeTypeEnum, PutFileEntry};
use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use pipewright_e2e::pipelines::{
    approve_when_asked, clients, create_pipeline, execution_records, latest_action, start,
    start_with, versioned_source, wait_for, zip_of, Clients,
};
use pipewright_e2e::{root, stack, unique, TEST_ROLE_ARN};
use serde_json::{json, Value};

/// The published definition `file`, its names replaced by `renames` (from, to) and its role by
/// the suite's; returns the declaration (`pipeline` of the `get-pipeline` output).
fn published(file: &str, renames: &[(&str, &str)]) -> Value {
    let path = root().join("infra/pipelines/published").join(file);
    let mut text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", Path::new(&path).display()));
    for (from, to) in renames {
        assert!(text.contains(from), "{file} does not name {from}");
        text = text.replace(from, to);
    }
    let mut document: Value = serde_json::from_str(&text).expect("a JSON definition");
    let mut pipeline = document["pipeline"].take();
    pipeline["roleArn"] = json!(TEST_ROLE_ARN);
    pipeline
}

/// Create `pipeline` as published, start it (with `variables`), and wait for the end.
async fn run(c: &Clients, pipeline: &Value, variables: &[(&str, &str)]) -> String {
    let stack = stack();
    create_pipeline(stack, pipeline);
    let name = pipeline["name"].as_str().expect("a name");
    let id = start_with(c, name, variables).await;
    let (status, summary) = wait_for(c, name, &id).await;
    assert_eq!(
        status,
        PipelineExecutionStatus::Succeeded,
        "{name}: {summary:?}"
    );
    id
}

/// S3 → CodeBuild → CloudFormation change set, approval, execution (CHANGE_SET_REPLACE,
/// Manual, CHANGE_SET_EXECUTE in one stage by run order).
#[tokio::test]
async fn s3_codebuild_and_a_cloudformation_change_set_with_an_approval() {
    let stack = stack();
    let c = clients(stack).await;
    let (bucket, stack_name, name) = (
        unique("my-app-source"),
        unique("my-app"),
        unique("my-app-release"),
    );
    let project = crate::codebuild::project(&c).await;
    let template = json!({
        "Resources": {"Queue": {"Type": "AWS::SQS::Queue"}},
        "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}}
    })
    .to_string();
    let buildspec = "version: 0.2\nphases:\n  build:\n    commands:\n      - mkdir -p out\n      - cp template.json out/template.json\nartifacts:\n  base-directory: out\n  files:\n    - template.json\n";
    versioned_source(
        &c,
        &bucket,
        "source.zip",
        zip_of(&[("buildspec.yml", buildspec), ("template.json", &template)]),
    )
    .await;
    let pipeline = published(
        "s3-codebuild-cloudformation-changeset.json",
        &[
            ("\"my-app-release\"", &format!("\"{name}\"")),
            ("my-app-source", &bucket),
            ("my-app-build", &project),
            ("\"my-app\"", &format!("\"{stack_name}\"")),
            (
                "arn:aws:iam::123456789012:role/CloudFormationDeployRole",
                TEST_ROLE_ARN,
            ),
        ],
    );
    create_pipeline(stack, &pipeline);
    let id = start(&c, &name).await;
    approve_when_asked(&c, &name, "Deploy", "ApproveChanges").await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    let stacks = aws_sdk_cloudformation::Client::new(&c.sdk)
        .describe_stacks()
        .stack_name(&stack_name)
        .send()
        .await
        .expect("DescribeStacks");
    let created = &stacks.stacks()[0];
    assert_eq!(
        created.stack_status().map(|s| s.as_str()),
        Some("CREATE_COMPLETE")
    );
    assert!(
        created
            .outputs()
            .iter()
            .any(|o| o.output_key() == Some("QueueUrl")),
        "{created:?}"
    );
    let records = execution_records(&c, stack, &id).await;
    assert_eq!(
        latest_action(&records, "Deploy", "ExecuteChanges")["output"]["outputVariables"]
            ["QueueUrl"],
        json!(created.outputs()[0].output_value().unwrap()),
        "the stack's outputs are the execute action's variables"
    );
}

/// CodeCommit → CodeDeploy (the "simple pipeline" tutorial's shape).
#[tokio::test]
async fn codecommit_and_codedeploy() {
    let c = clients(stack()).await;
    let (repository, application, name) = (
        unique("MyDemoRepo"),
        unique("MyDemoApplication"),
        unique("MyFirstPipeline"),
    );
    let codecommit = aws_sdk_codecommit::Client::new(&c.sdk);
    codecommit
        .create_repository()
        .repository_name(&repository)
        .send()
        .await
        .expect("CreateRepository");
    codecommit
        .create_commit()
        .repository_name(&repository)
        .branch_name("main")
        .author_name("Ada")
        .email("ada@example.com")
        .commit_message("The app and its appspec")
        .put_files(
            PutFileEntry::builder()
                .file_path("appspec.yml")
                .file_mode(FileModeTypeEnum::Normal)
                .file_content(Blob::new(
                    "version: 0.0\nos: linux\nfiles:\n  - source: /index.html\n    destination: /var/www/html/\n"
                        .as_bytes(),
                ))
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("CreateCommit");
    crate::codedeploy::application_with_group(&c, &application, "MyDemoDeploymentGroup").await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&c.sdk);
    let pipeline = published(
        "codecommit-codedeploy.json",
        &[
            ("\"MyFirstPipeline\"", &format!("\"{name}\"")),
            ("\"MyDemoRepo\"", &format!("\"{repository}\"")),
            ("\"MyDemoApplication\"", &format!("\"{application}\"")),
        ],
    );
    let id = run(&c, &pipeline, &[]).await;
    let records = execution_records(&c, stack(), &id).await;
    let deployment = latest_action(&records, "Deploy", "Deploy")["output"]["executionResult"]
        ["externalExecutionId"]
        .as_str()
        .expect("the deployment id")
        .to_string();
    let info = codedeploy
        .get_deployment()
        .deployment_id(&deployment)
        .send()
        .await
        .expect("GetDeployment");
    let info = info.deployment_info().expect("a deployment");
    assert_eq!(info.application_name(), Some(application.as_str()));
    assert_eq!(info.status().map(|s| s.as_str()), Some("Succeeded"));
}

/// S3 (imagedefinitions.json) → ECS standard deployment.
#[tokio::test]
async fn s3_image_definitions_and_an_ecs_service() {
    let c = clients(stack()).await;
    let family = unique("sample-app");
    let cluster = crate::ecs::service(&c, &family).await;
    let (bucket, name) = (unique("sample-app-images"), unique("sample-app-ecs"));
    versioned_source(
        &c,
        &bucket,
        "imagedefinitions.zip",
        zip_of(&[(
            "imagedefinitions.json",
            r#"[{"name": "app", "imageUri": "registry.example/web:3"}]"#,
        )]),
    )
    .await;
    let pipeline = published(
        "s3-ecs.json",
        &[
            ("\"sample-app-ecs\"", &format!("\"{name}\"")),
            ("sample-app-images", &bucket),
            ("\"default\"", &format!("\"{cluster}\"")),
            ("\"sample-app-service\"", "\"web\""),
        ],
    );
    run(&c, &pipeline, &[]).await;
    let ecs = aws_sdk_ecs::Client::new(&c.sdk);
    let services = ecs
        .describe_services()
        .cluster(&cluster)
        .services("web")
        .send()
        .await
        .expect("DescribeServices");
    let revision = services.services()[0]
        .task_definition()
        .unwrap()
        .to_string();
    let described = ecs
        .describe_task_definition()
        .task_definition(&revision)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let app = described
        .task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .find(|c| c.name() == Some("app"))
        .expect("the app container");
    assert_eq!(app.image(), Some("registry.example/web:3"));
}

/// S3 → Step Functions, with a pipeline variable, a beforeEntry VariableCheck and an onFailure
/// retry (V2, QUEUED).
#[tokio::test]
async fn s3_and_step_functions_with_variables_and_conditions() {
    let c = clients(stack()).await;
    let machine = crate::step_functions::state_machine(
        &c,
        json!({"StartAt": "Done", "States": {"Done": {"Type": "Pass", "End": true}}}),
    )
    .await;
    let (bucket, name) = (unique("order-service-source"), unique("order-release"));
    let version = versioned_source(
        &c,
        &bucket,
        "order-service.zip",
        zip_of(&[("README.md", "# orders\n")]),
    )
    .await;
    let pipeline = published(
        "s3-stepfunctions-variables.json",
        &[
            ("\"order-service-release\",", &format!("\"{name}\",")),
            (
                "arn:aws:states:us-east-1:123456789012:stateMachine:order-service-release",
                &machine,
            ),
            ("order-service-source", &bucket),
        ],
    );
    let id = run(&c, &pipeline, &[("Environment", "prod")]).await;
    let records = execution_records(&c, stack(), &id).await;
    let action = latest_action(&records, "Release", "StartRelease");
    let execution = action["output"]["outputVariables"]["ExecutionArn"]
        .as_str()
        .expect("the execution's ARN");
    assert_eq!(
        crate::step_functions::execution_input(&c, execution).await,
        json!({"environment": "prod", "revision": version}),
        "the input with both namespaces resolved"
    );
}
