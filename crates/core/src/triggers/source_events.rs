//! Source-change events from EventBridge (S3, CodeCommit, ECR) and the source actions they
//! concern.
//!
//! | event | fields read | source actions | revision pinned |
//! |---|---|---|---|
//! | `aws.s3` `Object Created` | `bucket.name`, `object.key`, `object.version-id` | `Source/AWS/S3` on `S3Bucket` + `S3ObjectKey` | `S3_OBJECT_VERSION_ID` |
//! | `aws.s3` `AWS API Call via CloudTrail`, `eventName` PutObject / CopyObject / CompleteMultipartUpload, no `errorCode` | `requestParameters.bucketName`, `.key`, `responseElements.x-amz-version-id` | the same | the same |
//! | `aws.codecommit` `CodeCommit Repository State Change`, `event` referenceCreated / referenceUpdated | `repositoryName`, `referenceType`, `referenceName`, `commitId` | `Source/AWS/CodeCommit` on `RepositoryName` + `BranchName` (branches only) | `COMMIT_ID` |
//! | `aws.ecr` `ECR Image Action`, `action-type` PUSH, `result` SUCCESS | `repository-name`, `image-tag`, `image-digest` | `Source/AWS/ECR` on `RepositoryName` + `ImageTag` (default `latest`) | `IMAGE_DIGEST` |
//!
//! A source action that polls instead (`PollForSourceChanges: true`) is never started by
//! events. Executions these events start record the trigger type `CloudWatchEvent`.

use serde::Deserialize;
use serde_json::Value;

use crate::declaration::{ActionCategory, ActionDeclaration, ActionOwner, PipelineDeclaration};
use crate::events::TriggerType;
use crate::execution::{ExecutionTrigger, SourceRevisionOverride};

use super::filters::GitRef;

/// The CloudTrail calls that write an S3 object.
pub const S3_WRITE_CALLS: &[&str] = &["PutObject", "CopyObject", "CompleteMultipartUpload"];

/// What changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SourceChange {
    /// An S3 object was written.
    S3 {
        /// Bucket.
        bucket: String,
        /// Object key.
        key: String,
        /// The new version (versioned buckets).
        version_id: Option<String>,
    },
    /// A CodeCommit branch or tag was created or moved.
    CodeCommit {
        /// Repository name.
        repository: String,
        /// The branch or tag.
        reference: GitRef,
        /// The commit it points at now.
        commit_id: String,
    },
    /// An image was pushed to ECR.
    Ecr {
        /// Repository name.
        repository: String,
        /// The tag pushed.
        tag: String,
        /// The image's digest (`sha256:...`).
        digest: String,
    },
}

/// One source-change event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceChangeEvent {
    /// The EventBridge event id (delivered at least once: part of the idempotency key).
    pub event_id: String,
    /// `detail-type` (and the CloudTrail call): what reported it.
    pub reported_by: String,
    /// The change.
    pub change: SourceChange,
}

/// A source action a change concerns.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceMatch {
    /// The source action.
    pub action_name: String,
    /// The revision to pin it to, when the event names one.
    pub revision: Option<SourceRevisionOverride>,
}

#[derive(Deserialize)]
struct Envelope {
    id: String,
    source: String,
    #[serde(rename = "detail-type")]
    detail_type: String,
    detail: Value,
}

fn text(v: &Value, pointer: &str) -> Option<String> {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

fn missing(what: &str, field: &str) -> String {
    format!("{what} without `{field}`")
}

/// Read an EventBridge event as a source change; `Err(why)` for anything else (another kind of
/// event, a deletion, a failed call, a push that did not succeed).
pub fn source_change(event: &Value) -> Result<SourceChangeEvent, String> {
    let envelope: Envelope = serde_json::from_value(event.clone())
        .map_err(|_| "not an EventBridge event (id, source, detail-type, detail)".to_string())?;
    let d = &envelope.detail;
    let kind = format!("{} `{}`", envelope.source, envelope.detail_type);
    let change = match (envelope.source.as_str(), envelope.detail_type.as_str()) {
        ("aws.s3", "Object Created") => SourceChange::S3 {
            bucket: text(d, "/bucket/name").ok_or_else(|| missing(&kind, "bucket.name"))?,
            key: text(d, "/object/key").ok_or_else(|| missing(&kind, "object.key"))?,
            version_id: text(d, "/object/version-id"),
        },
        ("aws.s3", "AWS API Call via CloudTrail") => {
            let call = text(d, "/eventName").unwrap_or_default();
            if !S3_WRITE_CALLS.contains(&call.as_str()) {
                return Err(format!("{kind}: {call} does not write an object"));
            }
            if let Some(code) = text(d, "/errorCode") {
                return Err(format!("{kind}: {call} failed ({code})"));
            }
            SourceChange::S3 {
                bucket: text(d, "/requestParameters/bucketName")
                    .ok_or_else(|| missing(&kind, "requestParameters.bucketName"))?,
                key: text(d, "/requestParameters/key")
                    .ok_or_else(|| missing(&kind, "requestParameters.key"))?,
                version_id: text(d, "/responseElements/x-amz-version-id"),
            }
        }
        ("aws.codecommit", "CodeCommit Repository State Change") => {
            let what = text(d, "/event").unwrap_or_default();
            if what != "referenceCreated" && what != "referenceUpdated" {
                return Err(format!("{kind}: {what} is not a new revision"));
            }
            let name = text(d, "/referenceName").ok_or_else(|| missing(&kind, "referenceName"))?;
            let reference = match text(d, "/referenceType").as_deref() {
                Some("branch") => GitRef::Branch(name),
                Some("tag") => GitRef::Tag(name),
                other => {
                    return Err(format!(
                        "{kind}: reference type {} is neither branch nor tag",
                        other.unwrap_or("(none)")
                    ))
                }
            };
            SourceChange::CodeCommit {
                repository: text(d, "/repositoryName")
                    .ok_or_else(|| missing(&kind, "repositoryName"))?,
                reference,
                commit_id: text(d, "/commitId").ok_or_else(|| missing(&kind, "commitId"))?,
            }
        }
        ("aws.ecr", "ECR Image Action") => {
            let action = text(d, "/action-type").unwrap_or_default();
            let result = text(d, "/result").unwrap_or_default();
            if action != "PUSH" || result != "SUCCESS" {
                return Err(format!(
                    "{kind}: {action} {result} is not a successful push"
                ));
            }
            SourceChange::Ecr {
                repository: text(d, "/repository-name")
                    .ok_or_else(|| missing(&kind, "repository-name"))?,
                tag: text(d, "/image-tag")
                    .ok_or_else(|| format!("{kind}: an untagged push starts nothing"))?,
                digest: text(d, "/image-digest").ok_or_else(|| missing(&kind, "image-digest"))?,
            }
        }
        _ => return Err(format!("{kind} is not a source-change event")),
    };
    let reported_by = match &change {
        SourceChange::S3 { .. } if envelope.detail_type.starts_with("AWS API Call") => {
            format!("CloudTrail {}", text(d, "/eventName").unwrap_or_default())
        }
        _ => envelope.detail_type.clone(),
    };
    Ok(SourceChangeEvent {
        event_id: envelope.id,
        reported_by,
        change,
    })
}

fn is_source(action: &ActionDeclaration, owner: ActionOwner, provider: &str) -> bool {
    let id = &action.action_type_id;
    id.category == ActionCategory::Source && id.owner == owner && id.provider == provider
}

/// Whether a source action polls (`PollForSourceChanges: true`) instead of following events.
pub(crate) fn polls(action: &ActionDeclaration) -> bool {
    action
        .configuration()
        .get("PollForSourceChanges")
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The source actions of `pipeline` that `change` concerns, each with the revision to pin.
pub fn sources_matching(pipeline: &PipelineDeclaration, change: &SourceChange) -> Vec<SourceMatch> {
    let Some(first) = pipeline.stages.first() else {
        return Vec::new();
    };
    let pin = |action: &ActionDeclaration, kind: &str, value: Option<&String>| SourceMatch {
        action_name: action.name.clone(),
        revision: value.map(|v| SourceRevisionOverride {
            action_name: action.name.clone(),
            revision_type: kind.to_string(),
            revision_value: v.clone(),
        }),
    };
    first
        .actions
        .iter()
        .filter(|a| !polls(a))
        .filter_map(|a| {
            let config = a.configuration();
            let get = |k: &str| config.get(k).map(String::as_str);
            match change {
                SourceChange::S3 {
                    bucket,
                    key,
                    version_id,
                } => (is_source(a, ActionOwner::Aws, "S3")
                    && get("S3Bucket") == Some(bucket)
                    && get("S3ObjectKey") == Some(key))
                .then(|| pin(a, "S3_OBJECT_VERSION_ID", version_id.as_ref())),
                SourceChange::CodeCommit {
                    repository,
                    reference: GitRef::Branch(branch),
                    commit_id,
                } => (is_source(a, ActionOwner::Aws, "CodeCommit")
                    && get("RepositoryName") == Some(repository)
                    && get("BranchName") == Some(branch))
                .then(|| pin(a, "COMMIT_ID", Some(commit_id))),
                // A CodeCommit source action follows a branch; tags do not start it.
                SourceChange::CodeCommit { .. } => None,
                SourceChange::Ecr {
                    repository,
                    tag,
                    digest,
                } => (is_source(a, ActionOwner::Aws, "ECR")
                    && get("RepositoryName") == Some(repository)
                    && get("ImageTag").unwrap_or("latest") == tag)
                    .then(|| pin(a, "IMAGE_DIGEST", Some(digest))),
            }
        })
        .collect()
}

impl SourceChangeEvent {
    /// `CloudWatchEvent` with a readable detail: what changed and which event said so.
    pub fn trigger(&self) -> ExecutionTrigger {
        let what = match &self.change {
            SourceChange::S3 {
                bucket,
                key,
                version_id,
            } => match version_id {
                Some(v) => format!("s3://{bucket}/{key} version {v}"),
                None => format!("s3://{bucket}/{key}"),
            },
            SourceChange::CodeCommit {
                repository,
                reference,
                commit_id,
            } => format!("codecommit {repository} {reference} at {commit_id}"),
            SourceChange::Ecr {
                repository,
                tag,
                digest,
            } => format!("ecr {repository}:{tag} {digest}"),
        };
        ExecutionTrigger {
            trigger_type: TriggerType::CloudWatchEvent,
            trigger_detail: format!("{what} ({}, event {})", self.reported_by, self.event_id),
        }
    }

    /// The idempotency key of starting `pipeline` for this change: the S3 object version when
    /// there is one (an `Object Created` notification and a CloudTrail record of the same
    /// write start one execution), else the event id (EventBridge's redeliveries keep it).
    pub fn idempotency_key(&self, pipeline: &str) -> String {
        match &self.change {
            SourceChange::S3 {
                bucket,
                key,
                version_id: Some(version),
            } => format!("s3/{pipeline}/{bucket}/{version}/{key}"),
            _ => format!("event/{}/{pipeline}", self.event_id),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> Value {
        let text = match name {
            "s3" => include_str!("../../../../events/trigger-s3-object-created.json"),
            "cloudtrail" => include_str!("../../../../events/trigger-s3-cloudtrail-put.json"),
            "codecommit" => include_str!("../../../../events/trigger-codecommit-push.json"),
            "ecr" => include_str!("../../../../events/trigger-ecr-push.json"),
            _ => unreachable!(),
        };
        serde_json::from_str(text).unwrap()
    }

    fn edit(mut v: Value, pointer: &str, value: Value) -> Value {
        *v.pointer_mut(pointer).unwrap() = value;
        v
    }

    #[test]
    fn reads_every_sample_event() {
        let table: Vec<(&str, SourceChange, &str)> = vec![
            (
                "s3",
                SourceChange::S3 {
                    bucket: "pipewright-sample-source".into(),
                    key: "app.zip".into(),
                    version_id: None,
                },
                "Object Created",
            ),
            (
                "cloudtrail",
                SourceChange::S3 {
                    bucket: "pipewright-sample-source".into(),
                    key: "app.zip".into(),
                    version_id: Some("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into()),
                },
                "CloudTrail PutObject",
            ),
            (
                "codecommit",
                SourceChange::CodeCommit {
                    repository: "pipewright-app".into(),
                    reference: GitRef::Branch("main".into()),
                    commit_id: "3e0f3b5a1c9e1a7c5d6b2f4e8a9c0d1e2f3a4b5c".into(),
                },
                "CodeCommit Repository State Change",
            ),
            (
                "ecr",
                SourceChange::Ecr {
                    repository: "pipewright-app".into(),
                    tag: "latest".into(),
                    digest:
                        "sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd"
                            .into(),
                },
                "ECR Image Action",
            ),
        ];
        for (name, expected, reported_by) in table {
            let event = source_change(&sample(name)).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert_eq!(event.change, expected, "{name}");
            assert_eq!(event.reported_by, reported_by, "{name}");
            assert!(!event.event_id.is_empty());
        }
    }

    #[test]
    fn other_events_are_refused_with_a_reason() {
        let table: Vec<(Value, &str)> = vec![
            (json!({"nothing": true}), "not an EventBridge event"),
            (
                edit(sample("s3"), "/detail-type", json!("Object Deleted")),
                "is not a source-change event",
            ),
            (
                edit(
                    sample("cloudtrail"),
                    "/detail/eventName",
                    json!("DeleteObject"),
                ),
                "DeleteObject does not write an object",
            ),
            (
                edit(
                    sample("cloudtrail"),
                    "/detail/eventName",
                    json!("GetObject"),
                ),
                "does not write an object",
            ),
            (
                {
                    let mut e = sample("cloudtrail");
                    e["detail"]["errorCode"] = json!("AccessDenied");
                    e
                },
                "PutObject failed (AccessDenied)",
            ),
            (
                edit(
                    sample("codecommit"),
                    "/detail/event",
                    json!("referenceDeleted"),
                ),
                "referenceDeleted is not a new revision",
            ),
            (
                edit(sample("ecr"), "/detail/action-type", json!("DELETE")),
                "DELETE SUCCESS is not a successful push",
            ),
            (
                edit(sample("ecr"), "/detail/result", json!("FAILURE")),
                "PUSH FAILURE is not a successful push",
            ),
            (
                {
                    let mut e = sample("ecr");
                    e["detail"].as_object_mut().unwrap().remove("image-tag");
                    e
                },
                "untagged push",
            ),
            (
                edit(sample("ecr"), "/source", json!("aws.ec2")),
                "is not a source-change event",
            ),
        ];
        for (event, reason) in table {
            let err = source_change(&event).unwrap_err();
            assert!(err.contains(reason), "{err} (wanted {reason})");
        }
    }

    #[test]
    fn cloudtrail_copy_and_multipart_writes_count() {
        for call in ["CopyObject", "CompleteMultipartUpload"] {
            let mut e = edit(sample("cloudtrail"), "/detail/eventName", json!(call));
            e["detail"]["responseElements"] = Value::Null;
            let event = source_change(&e).unwrap();
            assert_eq!(event.reported_by, format!("CloudTrail {call}"));
            assert!(matches!(
                event.change,
                SourceChange::S3 {
                    version_id: None,
                    ..
                }
            ));
        }
    }

    fn pipeline(sources: &str) -> PipelineDeclaration {
        crate::parse_pipeline(&format!(
            r#"{{"name": "p", "roleArn": "arn:aws:iam::123456789012:role/x",
                "artifactStore": {{"type": "S3", "location": "b"}},
                "stages": [{{"name": "Source", "actions": {sources}}},
                           {{"name": "Build", "actions": [{{"name": "Run",
                              "actionTypeId": {{"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"}},
                              "commands": ["true"]}}]}}]}}"#
        ))
        .unwrap()
    }

    fn action(name: &str, provider: &str, config: Value) -> Value {
        json!({"name": name, "actionTypeId": {"category": "Source", "owner": "AWS", "provider": provider, "version": "1"},
               "configuration": config, "outputArtifacts": [{"name": format!("{name}Out")}]})
    }

    #[test]
    fn each_change_finds_its_source_actions_and_pins_the_revision() {
        let p = pipeline(
            &json!([
                action("Bucket", "S3", json!({"S3Bucket": "pipewright-sample-source", "S3ObjectKey": "app.zip"})),
                action("Repo", "CodeCommit", json!({"RepositoryName": "pipewright-app", "BranchName": "main"})),
                action("Image", "ECR", json!({"RepositoryName": "pipewright-app"})),
                action("Tagged", "ECR", json!({"RepositoryName": "pipewright-app", "ImageTag": "release"})),
                action("Polling", "CodeCommit", json!({"RepositoryName": "pipewright-app", "BranchName": "main", "PollForSourceChanges": "true"})),
            ])
            .to_string(),
        );
        let matched = |name: &str, pointer: Option<(&str, Value)>| {
            let mut e = sample(name);
            if let Some((ptr, v)) = pointer {
                *e.pointer_mut(ptr).unwrap() = v;
            }
            sources_matching(&p, &source_change(&e).unwrap().change)
                .into_iter()
                .map(|m| {
                    (
                        m.action_name,
                        m.revision
                            .map(|r| format!("{} {}", r.revision_type, r.revision_value)),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(matched("s3", None), vec![("Bucket".into(), None)]);
        assert_eq!(
            matched("cloudtrail", None),
            vec![(
                "Bucket".into(),
                Some("S3_OBJECT_VERSION_ID 3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY".into())
            )]
        );
        assert!(matched("s3", Some(("/detail/object/key", json!("other.zip")))).is_empty());
        assert_eq!(
            matched("codecommit", None),
            vec![(
                "Repo".into(),
                Some("COMMIT_ID 3e0f3b5a1c9e1a7c5d6b2f4e8a9c0d1e2f3a4b5c".into())
            )]
        );
        assert!(matched("codecommit", Some(("/detail/referenceName", json!("dev")))).is_empty());
        assert!(matched("codecommit", Some(("/detail/referenceType", json!("tag")))).is_empty());
        assert!(matched(
            "codecommit",
            Some(("/detail/repositoryName", json!("other")))
        )
        .is_empty());
        assert_eq!(
            matched("ecr", None),
            vec![(
                "Image".into(),
                Some(
                    "IMAGE_DIGEST sha256:7f5b2640fe6fb4f46592dfd3410c4a79dac4f89e4782432e0378abcd1234abcd"
                        .into()
                )
            )]
        );
        assert_eq!(
            matched("ecr", Some(("/detail/image-tag", json!("release"))))[0].0,
            "Tagged"
        );
        assert!(matched("ecr", Some(("/detail/image-tag", json!("v9")))).is_empty());
    }

    #[test]
    fn trigger_and_idempotency_key() {
        let e = source_change(&sample("codecommit")).unwrap();
        let t = e.trigger();
        assert_eq!(t.trigger_type, TriggerType::CloudWatchEvent);
        assert!(t
            .trigger_detail
            .starts_with("codecommit pipewright-app branch `main` at 3e0f3b5"));
        assert_eq!(e.idempotency_key("p"), format!("event/{}/p", e.event_id));
        // The same S3 write reported twice (notification and CloudTrail) has one key.
        let put = source_change(&sample("cloudtrail")).unwrap();
        let mut created = sample("s3");
        created["detail"]["object"]["version-id"] = json!("3HL4kqtJlcpXroDTDmJ.rmSpXd3dIbrHY");
        let created = source_change(&created).unwrap();
        assert_ne!(put.event_id, created.event_id);
        assert_eq!(put.idempotency_key("p"), created.idempotency_key("p"));
    }
}
