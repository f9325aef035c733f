//! `Deploy/AWS/CodeDeploy` on the local stack: the action deploys the input artifact (an S3
//! revision at its exact version) to an application's deployment group of the emulator's
//! CodeDeploy with the pipeline role, and completes on the deployment's "CodeDeploy Deployment
//! State-change Notification" event (which the local stack's gateway puts on the bus, as AWS
//! does). The emulator's deployments touch no instance: they go from Created to Succeeded as
//! they are read.

use aws_sdk_codedeploy::types::ComputePlatform;
use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use std::time::Duration;

use pipewright_e2e::pipelines::{
    clients, drain_events, eventually, execution_records, latest_action, s3_source_with, start,
    subscribe_to, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, unique, TEST_ROLE_ARN};
use serde_json::json;

/// A server application `application` with deployment group `group`, as a team has them.
pub(crate) async fn application_with_group(c: &Clients, application: &str, group: &str) {
    let codedeploy = aws_sdk_codedeploy::Client::new(&c.sdk);
    codedeploy
        .create_application()
        .application_name(application)
        .compute_platform(ComputePlatform::Server)
        .send()
        .await
        .expect("CreateApplication");
    codedeploy
        .create_deployment_group()
        .application_name(application)
        .deployment_group_name(group)
        .service_role_arn(TEST_ROLE_ARN)
        .send()
        .await
        .expect("CreateDeploymentGroup");
}

#[tokio::test]
async fn a_deployment_of_the_artifact_completes_the_action() {
    let stack = stack();
    let c = clients(stack).await;
    let codedeploy = aws_sdk_codedeploy::Client::new(&c.sdk);
    let application = unique("web-app");
    application_with_group(&c, &application, "prod").await;
    let src = s3_source_with(
        &c,
        &[(
            "appspec.yml",
            "version: 0.0\nos: linux\nfiles:\n  - source: /\n    destination: /srv/app\n",
        )],
    )
    .await;
    let name = PipelineBuilder::new(stack, "deploy")
        .source(src)
        .stage(json!({"name": "Deploy", "actions": [{
            "name": "Servers",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "CodeDeploy", "version": "1"},
            "configuration": {"ApplicationName": application, "DeploymentGroupName": "prod"},
            "inputArtifacts": [{"name": "Src"}]
        }]}))
        .create(stack);
    let events = subscribe_to(
        &c,
        &unique("deploy-events"),
        &json!({"source": ["aws.codedeploy"], "detail-type": ["CodeDeploy Deployment State-change Notification"]}),
    )
    .await;

    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    let records = execution_records(&c, stack, &id).await;
    let source = latest_action(&records, "Source", "Source");
    let action = latest_action(&records, "Deploy", "Servers");
    let deployment_id = action["output"]["executionResult"]["externalExecutionId"]
        .as_str()
        .expect("the deployment id")
        .to_string();
    let deployment = codedeploy
        .get_deployment()
        .deployment_id(&deployment_id)
        .send()
        .await
        .expect("GetDeployment");
    let info = deployment.deployment_info().unwrap();
    assert_eq!(info.status().unwrap().as_str(), "Succeeded");
    assert!(
        info.description()
            .unwrap_or_default()
            .contains(action["actionExecutionId"].as_str().unwrap()),
        "the deployment names the action execution: {:?}",
        info.description()
    );
    let revision = info
        .revision()
        .and_then(|r| r.s3_location())
        .expect("an S3 revision");
    let artifact = &source["output"]["outputArtifacts"][0]["s3location"];
    assert_eq!(revision.bucket(), artifact["bucket"].as_str());
    assert_eq!(revision.key(), artifact["key"].as_str());
    assert_eq!(revision.version(), artifact["versionId"].as_str());
    assert_eq!(revision.bundle_type().map(|b| b.as_str()), Some("zip"));

    eventually(
        "the deployment's state event",
        Duration::from_millis(200),
        || async {
            drain_events(&c, &events, Duration::from_millis(500))
                .await
                .into_iter()
                .find(|e| e["detail"]["deploymentId"] == json!(deployment_id))
                .filter(|e| e["detail"]["state"] == "SUCCESS")
        },
    )
    .await;
}
