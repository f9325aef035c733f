//! Which pipelines a source change starts: pure decisions over declarations.
//!
//! - [`source_events`]: EventBridge source-change events (S3 `Object Created` and CloudTrail
//!   writes, CodeCommit reference changes, ECR pushes) and the source actions they concern;
//! - [`webhooks`]: GitHub, GitLab and Bitbucket deliveries: who sent them, their signatures,
//!   the git changes they report, and what a delivery starts ([`crate::engine::webhooks::dispatch()`]);
//! - [`filters`]: whether a git change starts a pipeline (V2 trigger filters, or the source
//!   action's branch);
//! - [`glob`]: the glob patterns those filters use (and the wildcards of a `VariableCheck`
//!   rule's `MATCHES`, [`crate::conditions`]);
//! - [`polling`]: source actions with `PollForSourceChanges: true`, checked on a schedule;
//! - [`schedules`]: the scheduled invocations of the trigger function (the polling rule, and
//!   schedules that start a pipeline).

pub mod filters;
pub mod glob;
pub mod polling;
pub mod schedules;
pub mod source_events;
pub mod webhooks;

pub use filters::{filter_decision, plan_git_change, Decision, GitChange, GitPlan};
pub use source_events::{source_change, sources_matching, SourceChange, SourceChangeEvent};

use serde::Deserialize;
use serde_json::Value;

use crate::declaration::{ActionCategory, PipelineDeclaration};

/// An object written to S3, from an EventBridge `Object Created` event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct S3ObjectCreated {
    /// The event's id (EventBridge delivers at least once: the idempotency key).
    pub event_id: String,
    /// Bucket.
    pub bucket: String,
    /// Object key.
    pub key: String,
    /// The new object version (versioned source buckets).
    pub version_id: Option<String>,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

/// Read an EventBridge event as an S3 `Object Created` notification; `None` for any other event.
pub fn s3_object_created(event: &Value) -> Option<S3ObjectCreated> {
    let envelope: Envelope = serde_json::from_value(event.clone()).ok()?;
    if envelope.source != "aws.s3" || envelope.detail_type != "Object Created" {
        return None;
    }
    let detail = &envelope.detail;
    Some(S3ObjectCreated {
        event_id: envelope.id,
        bucket: detail.pointer("/bucket/name")?.as_str()?.to_string(),
        key: detail.pointer("/object/key")?.as_str()?.to_string(),
        version_id: detail
            .pointer("/object/version-id")
            .and_then(Value::as_str)
            .map(str::to_string),
    })
}

/// The S3 source actions of `pipeline` that watch `bucket`/`key` (configuration `S3Bucket` and
/// `S3ObjectKey`), unless they poll instead (`PollForSourceChanges: true`).
pub fn s3_sources_watching<'p>(
    pipeline: &'p PipelineDeclaration,
    bucket: &str,
    key: &str,
) -> Vec<&'p str> {
    let Some(first) = pipeline.stages.first() else {
        return Vec::new();
    };
    first
        .actions
        .iter()
        .filter(|a| {
            a.action_type_id.category == ActionCategory::Source && a.action_type_id.provider == "S3"
        })
        .filter(|a| {
            let config = a.configuration();
            config.get("S3Bucket").map(String::as_str) == Some(bucket)
                && config.get("S3ObjectKey").map(String::as_str) == Some(key)
                && config.get("PollForSourceChanges").map(String::as_str) != Some("true")
        })
        .map(|a| a.name.as_str())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn event(source: &str, detail_type: &str) -> Value {
        json!({
            "version": "0", "id": "17793124-05d4-b198-2fde-7ededc63b103", "detail-type": detail_type,
            "source": source, "account": "123456789012", "time": "2026-11-22T01:00:00Z", "region": "us-east-1",
            "resources": ["arn:aws:s3:::pipewright-sample-source"],
            "detail": {
                "version": "0", "bucket": { "name": "pipewright-sample-source" },
                "object": { "key": "app.zip", "size": 5, "etag": "b1946ac92492d2347c6235b4d2611184",
                            "version-id": "IYV3p45BT0ac8hjHg1houSdS1a.Mro8e", "sequencer": "00617F08299329D189" },
                "request-id": "N4N7GDK58NMKJ12R", "requester": "123456789012", "reason": "PutObject"
            }
        })
    }

    #[test]
    fn reads_the_documented_object_created_event() {
        let change = s3_object_created(&event("aws.s3", "Object Created")).unwrap();
        assert_eq!(change.bucket, "pipewright-sample-source");
        assert_eq!(change.key, "app.zip");
        assert_eq!(
            change.version_id.as_deref(),
            Some("IYV3p45BT0ac8hjHg1houSdS1a.Mro8e")
        );
        assert_eq!(change.event_id, "17793124-05d4-b198-2fde-7ededc63b103");
    }

    #[test]
    fn ignores_other_events() {
        assert_eq!(s3_object_created(&event("aws.s3", "Object Deleted")), None);
        assert_eq!(s3_object_created(&event("aws.ec2", "Object Created")), None);
        assert_eq!(s3_object_created(&json!({"nothing": true})), None);
    }

    #[test]
    fn only_sources_watching_that_object_match() {
        let p =
            crate::parse_pipeline(include_str!("../../../infra/pipelines/sample.json")).unwrap();
        assert_eq!(
            s3_sources_watching(&p, "pipewright-sample-source", "app.zip"),
            vec!["Source"]
        );
        assert!(s3_sources_watching(&p, "pipewright-sample-source", "other.zip").is_empty());
        assert!(s3_sources_watching(&p, "other-bucket", "app.zip").is_empty());
        let mut polling = p.clone();
        polling.stages[0].actions[0]
            .configuration
            .get_or_insert_with(Default::default)
            .insert("PollForSourceChanges".into(), "true".into());
        assert!(s3_sources_watching(&polling, "pipewright-sample-source", "app.zip").is_empty());
    }
}
