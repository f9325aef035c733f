//! `Deploy/AWS/ECS` (standard) on the local stack: the action registers the service's task
//! definition again with the images of the input artifact's `imagedefinitions.json`, updates
//! the service with the pipeline role, and completes on the service deployment's "ECS
//! Deployment State Change" event (which the local stack's gateway puts on the bus, as AWS
//! does). The local container CLI runs build containers only, so the services here run no task
//! (`desiredCount` 0): their deployments are steady at once.

use aws_sdk_codepipeline::types::PipelineExecutionStatus;
use aws_sdk_ecs::types::ContainerDefinition;

use pipewright_e2e::pipelines::{
    action_failure, clients, execution_records, latest_action, s3_source_with, start, wait_for,
    Clients, PipelineBuilder,
};
use pipewright_e2e::{stack, unique};
use serde_json::{json, Value};

/// A cluster with service `web` of task definition family `<family>` (containers `app` and
/// `log-router`); returns the cluster's name.
pub(crate) async fn service(c: &Clients, family: &str) -> String {
    let ecs = aws_sdk_ecs::Client::new(&c.sdk);
    let cluster = unique("apps");
    ecs.create_cluster()
        .cluster_name(&cluster)
        .send()
        .await
        .expect("CreateCluster");
    let container = |name: &str, image: &str| {
        ContainerDefinition::builder()
            .name(name)
            .image(image)
            .memory(128)
            .essential(name == "app")
            .build()
    };
    ecs.register_task_definition()
        .family(family)
        .container_definitions(container("app", "registry.example/web:1"))
        .container_definitions(container("log-router", "fluent-bit:2"))
        .send()
        .await
        .expect("RegisterTaskDefinition");
    ecs.create_service()
        .cluster(&cluster)
        .service_name("web")
        .task_definition(family)
        .desired_count(0)
        .send()
        .await
        .expect("CreateService");
    cluster
}

fn deploy(cluster: &str) -> Value {
    json!({"name": "Deploy", "actions": [{
        "name": "Service",
        "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"},
        "configuration": {"ClusterName": cluster, "ServiceName": "web"},
        "inputArtifacts": [{"name": "Src"}]
    }]})
}

#[tokio::test]
async fn new_images_are_deployed_as_a_task_definition_revision() {
    let stack = stack();
    let c = clients(stack).await;
    let family = unique("web-task");
    let cluster = service(&c, &family).await;
    let src = s3_source_with(
        &c,
        &[(
            "imagedefinitions.json",
            r#"[{"name": "app", "imageUri": "registry.example/web:2"}]"#,
        )],
    )
    .await;
    let name = PipelineBuilder::new(stack, "ecs")
        .source(src)
        .stage(deploy(&cluster))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");

    let ecs = aws_sdk_ecs::Client::new(&c.sdk);
    let services = ecs
        .describe_services()
        .cluster(&cluster)
        .services("web")
        .send()
        .await
        .expect("DescribeServices");
    let service = &services.services()[0];
    let revision = service.task_definition().unwrap().to_string();
    assert!(
        revision.ends_with(&format!("{family}:2")),
        "a new revision: {revision}"
    );
    let described = ecs
        .describe_task_definition()
        .task_definition(&revision)
        .send()
        .await
        .expect("DescribeTaskDefinition");
    let images: Vec<(String, String)> = described
        .task_definition()
        .unwrap()
        .container_definitions()
        .iter()
        .map(|c| {
            (
                c.name().unwrap().to_string(),
                c.image().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        images,
        vec![
            ("app".to_string(), "registry.example/web:2".to_string()),
            ("log-router".to_string(), "fluent-bit:2".to_string())
        ],
        "the named container's image changed, the other kept"
    );
    let records = execution_records(&c, stack, &id).await;
    let action = latest_action(&records, "Deploy", "Service");
    let primary = service
        .deployments()
        .iter()
        .find(|d| d.status() == Some("PRIMARY"))
        .and_then(|d| d.id())
        .unwrap();
    assert_eq!(
        action["output"]["executionResult"]["externalExecutionId"],
        json!(primary)
    );
}

#[tokio::test]
async fn a_container_the_task_definition_lacks_is_named() {
    let stack = stack();
    let c = clients(stack).await;
    let cluster = service(&c, &unique("web-task")).await;
    let src = s3_source_with(
        &c,
        &[(
            "imagedefinitions.json",
            r#"[{"name": "frontend", "imageUri": "x:1"}]"#,
        )],
    )
    .await;
    let name = PipelineBuilder::new(stack, "ecs-bad")
        .source(src)
        .stage(deploy(&cluster))
        .create(stack);
    let id = start(&c, &name).await;
    let (status, _) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Failed);
    let records = execution_records(&c, stack, &id).await;
    let (code, message) = action_failure(latest_action(&records, "Deploy", "Service"));
    assert_eq!(code, "ConfigurationError");
    assert!(message.contains("container frontend"), "{message}");
    assert!(message.contains("it has: app, log-router"), "{message}");
}
