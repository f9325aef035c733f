//! The events Pipewright publishes read with the `aws_lambda_events` crate's CodePipeline types
//! (what a Rust Lambda consumer uses), field for field, for every state of every event kind.

use std::collections::BTreeMap;

use aws_lambda_events::codepipeline_cloudwatch::CodePipelineCloudWatchEvent;
use pipewright_core::declaration::{ActionCategory, ActionOwner, ActionTypeId};
use pipewright_core::events::{
    action_event, format_time, format_time_millis, pipeline_arn, pipeline_event, stage_event,
    ActionEventInput, ActionState, ArtifactRef, EventEntry, ExecutionRef, ExecutionResult,
    ExecutionTrigger, PipelineEventInput, PipelineState, StageEventInput, StageState, TriggerType,
};
use serde_json::json;

const ACCOUNT: &str = "123456789012";
const REGION: &str = "eu-central-1";
/// 2023-10-26T13:50:53Z.
const EVENT_TIME: f64 = 1_698_328_253.0;

fn execution() -> ExecutionRef {
    ExecutionRef {
        pipeline_arn: pipeline_arn(REGION, ACCOUNT, "BuildFromTag"),
        pipeline: "BuildFromTag".into(),
        pipeline_version: 32,
        execution_id: "e17b5773-cc0d-4db2-9ad7-594c73888de8".into(),
        attempt: 2,
    }
}

/// The entry as a rule's target receives it.
fn envelope(entry: &EventEntry) -> serde_json::Value {
    entry.clone().with_time(format_time(EVENT_TIME)).envelope(
        "b128b002-09fd-4574-4eba-27152726c777",
        ACCOUNT,
        REGION,
        "unused",
    )
}

/// The entry as a rule's target receives it, read by `aws_lambda_events`.
fn receive(entry: &EventEntry) -> CodePipelineCloudWatchEvent {
    read(envelope(entry))
}

fn read(envelope: serde_json::Value) -> CodePipelineCloudWatchEvent {
    serde_json::from_value(envelope.clone())
        .unwrap_or_else(|e| panic!("aws_lambda_events refuses {envelope:#}: {e}"))
}

/// The envelope and the members every kind shares.
fn assert_common(event: &CodePipelineCloudWatchEvent, detail_type: &str, state: &str) {
    let arn = format!("arn:aws:codepipeline:{REGION}:{ACCOUNT}:BuildFromTag");
    assert_eq!(event.version.as_deref(), Some("0"));
    assert_eq!(
        event.id.as_deref(),
        Some("b128b002-09fd-4574-4eba-27152726c777")
    );
    assert_eq!(event.detail_type.as_deref(), Some(detail_type));
    assert_eq!(event.source.as_deref(), Some("pipewright"));
    assert_eq!(event.account_id.as_deref(), Some(ACCOUNT));
    assert_eq!(event.time.timestamp(), EVENT_TIME as i64);
    assert_eq!(event.region.as_deref(), Some(REGION));
    assert_eq!(event.resources, vec![arn]);
    assert_eq!(event.detail.pipeline.as_deref(), Some("BuildFromTag"));
    assert_eq!(event.detail.version, 32);
    assert_eq!(
        event.detail.execution_id.as_deref(),
        Some("e17b5773-cc0d-4db2-9ad7-594c73888de8")
    );
    assert_eq!(event.detail.state, state);
}

#[test]
fn pipeline_events_parse() {
    let mut git = BTreeMap::new();
    git.insert("tag-name".to_string(), "v4.2.1".to_string());
    for &state in PipelineState::ALL {
        let entry = pipeline_event(&PipelineEventInput {
            execution: execution(),
            state,
            start_time: Some(format_time_millis(1_698_328_179.208)),
            trigger: Some(ExecutionTrigger {
                trigger_type: TriggerType::WebhookV2,
                trigger_detail: Some(
                    "arn:aws:codestar-connections:eu-central-1:1:connection/x".into(),
                ),
                git: git.clone(),
            }),
            stop_comments: (state == PipelineState::Stopping).then(|| "for an update".to_string()),
        });
        let event = receive(&entry);
        assert_common(
            &event,
            "CodePipeline Pipeline Execution State Change",
            state.as_str(),
        );
        assert_eq!(event.detail.stage, None);
        assert_eq!(event.detail.action, None);
        assert_eq!(event.detail.type_, None);
    }
}

#[test]
fn stage_events_parse() {
    for &state in StageState::ALL {
        let entry = stage_event(&StageEventInput {
            execution: execution(),
            stage: "Build".into(),
            state,
            start_time: Some(format_time_millis(1_698_328_179.208)),
            last_retry_time: Some(format_time_millis(1_698_329_696.305)),
        });
        let event = receive(&entry);
        assert_common(
            &event,
            "CodePipeline Stage Execution State Change",
            state.as_str(),
        );
        assert_eq!(event.detail.stage.as_deref(), Some("Build"));
        assert_eq!(event.detail.action, None);
        assert_eq!(event.detail.type_, None);
    }
}

#[test]
fn action_events_parse() {
    let artifact = |name: &str| ArtifactRef {
        name: name.into(),
        bucket: "artifacts".into(),
        key: format!("BuildFromTag/{name}/1.zip"),
    };
    for &state in ActionState::ALL {
        let entry = action_event(&ActionEventInput {
            execution: execution(),
            stage: "Build".into(),
            action: "Compile".into(),
            action_execution_id: "47f821c5-a902-44b2-ae61-b878d31ecd21".into(),
            state,
            region: "us-west-2".into(),
            action_type: ActionTypeId {
                category: ActionCategory::Build,
                owner: ActionOwner::Aws,
                provider: "CodeBuild".into(),
                version: "1".into(),
            },
            start_time: Some(format_time_millis(1_698_328_269.981)),
            input_artifacts: vec![artifact("Source")],
            output_artifacts: vec![artifact("Bin")],
            result: Some(ExecutionResult {
                external_execution_url: Some("https://example.com/build/1".into()),
                external_execution_summary: Some("Build 1".into()),
                external_execution_id: Some("build:1".into()),
                error_code: (state == ActionState::Failed).then(|| "JobFailed".to_string()),
            }),
        });
        // `type.version` is CodePipeline's string; `aws_lambda_events` wants a number there
        // (and only there).
        let mut sent = envelope(&entry);
        assert_eq!(sent["detail"]["type"]["version"], json!("1"));
        sent["detail"]["type"]["version"] = json!(1);
        let event = read(sent);
        assert_common(
            &event,
            "CodePipeline Action Execution State Change",
            state.as_str(),
        );
        let detail = &event.detail;
        assert_eq!(detail.stage.as_deref(), Some("Build"));
        assert_eq!(detail.action.as_deref(), Some("Compile"));
        assert_eq!(detail.region.as_deref(), Some("us-west-2"));
        let action_type = detail.type_.as_ref().expect("type");
        assert_eq!(action_type.owner.as_deref(), Some("AWS"));
        assert_eq!(action_type.category.as_deref(), Some("Build"));
        assert_eq!(action_type.provider.as_deref(), Some("CodeBuild"));
        assert_eq!(action_type.version, 1);
    }
}

/// Why `version` and `pipeline-execution-attempt` are integers (`2`, which EventBridge
/// patterns match as the `2.0` CodePipeline's User Guide shows): `aws_lambda_events` refuses
/// `2.0`. `type.version` is CodePipeline's string, which that crate refuses too. When this test
/// fails after an upgrade of the crate, it reads CodePipeline's own shape.
#[test]
fn codepipelines_documented_action_event_does_not_parse() {
    let mut documented = json!({
        "version": "0",
        "id": "01234567-EXAMPLE",
        "detail-type": "CodePipeline Action Execution State Change",
        "source": "aws.codepipeline",
        "account": "123456789012",
        "time": "2020-01-24T22:03:07Z",
        "region": "us-east-1",
        "resources": ["arn:aws:codepipeline:us-east-1:123456789012:myPipeline"],
        "detail": {
            "pipeline": "myPipeline",
            "execution-id": "12345678-1234-5678-abcd-12345678abcd",
            "start-time": "2023-10-26T13:51:09.981Z",
            "stage": "Prod",
            "action-execution-id": "47f821c5-a902-44b2-ae61-b878d31ecd21",
            "action": "myAction",
            "state": "STARTED",
            "type": {"owner": "AWS", "category": "Deploy", "provider": "CodeDeploy", "version": "1"},
            "version": 2.0,
            "pipeline-execution-attempt": 1.0
        }
    });
    let parse =
        |v: &serde_json::Value| serde_json::from_value::<CodePipelineCloudWatchEvent>(v.clone());
    assert!(parse(&documented).is_err(), "type.version as a string");
    documented["detail"]["type"]["version"] = json!(1);
    assert!(parse(&documented).is_err(), "version as 2.0");
    documented["detail"]["version"] = json!(2);
    assert!(parse(&documented).is_ok());
}
