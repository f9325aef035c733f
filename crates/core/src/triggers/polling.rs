//! Source actions that poll (`PollForSourceChanges: "true"`): which ones poll, what a poll found,
//! and the one execution each change starts.
//!
//! A scheduled EventBridge rule of the stack (`SourcePollingRate`, every minute by default)
//! invokes the trigger function, which polls every pipeline:
//!
//! | provider | watched | revision read | pinned as |
//! |---|---|---|---|
//! | `Source/AWS/S3` | `S3Bucket` + `S3ObjectKey` | HeadObject: the version id (the ETag in an unversioned bucket) | `S3_OBJECT_VERSION_ID` (nothing for an ETag) |
//! | `Source/AWS/CodeCommit` | `RepositoryName` + `BranchName` | GetBranch: the branch's commit id | `COMMIT_ID` |
//!
//! Other providers with `PollForSourceChanges: true` are reported as not polled (CodePipeline
//! polls only S3, CodeCommit and GitHub version 1 sources).
//!
//! What a poll does with a pipeline ([`decide`]), against the last revisions seen ([`PollState`],
//! one item per pipeline):
//! - a source seen for the first time (a new pipeline, a source action that starts polling or
//!   that now watches another object or branch) records its revision and starts nothing: the
//!   revision there when polling began is not a change (CodePipeline runs a new pipeline once on
//!   creation; here, start that first run with StartPipelineExecution);
//! - a source whose revision differs from the one last seen is a change: one execution starts,
//!   trigger type `PollForSourceChanges`, every polled source pinned to the revision just read;
//! - a source that cannot be read (no such object or branch, access denied) keeps its last
//!   revision and starts nothing.
//!
//! Exactly one execution per change, whatever polls run at once
//! ([`poll_pipeline`](crate::engine::polling::poll_pipeline)): the new
//! state, with the start it owes (`pending`), replaces the stored one only at the version it
//! was read at, so of two polls that saw the same change one writes it and the other stops. The
//! winner then starts the execution with an idempotency key derived from the state's version
//! (and the revisions), and clears `pending`. A poll that stopped between the two writes leaves
//! `pending` behind, and the next poll starts it with the same key: never twice, never lost.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;
use sha2::{Digest, Sha256};

use crate::declaration::{ActionCategory, ActionOwner, PipelineDeclaration};
use crate::events::TriggerType;
use crate::execution::{ExecutionTrigger, SourceRevisionOverride};
use crate::store::StoreError;

use super::source_events::polls;

/// Longest `triggerDetail` CodePipeline returns.
pub const MAX_TRIGGER_DETAIL: usize = 1024;

/// What a polling source action watches.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolledSource {
    /// An S3 object.
    S3 {
        /// `S3Bucket`.
        bucket: String,
        /// `S3ObjectKey`.
        key: String,
    },
    /// A CodeCommit branch.
    CodeCommit {
        /// `RepositoryName`.
        repository: String,
        /// `BranchName`.
        branch: String,
    },
}

impl PolledSource {
    /// Where it is: `s3://<bucket>/<key>`, `codecommit://<repository>/<branch>`. A source
    /// whose location changes (UpdatePipeline) starts over from a first sighting.
    pub fn location(&self) -> String {
        match self {
            Self::S3 { bucket, key } => format!("s3://{bucket}/{key}"),
            Self::CodeCommit { repository, branch } => {
                format!("codecommit://{repository}/{branch}")
            }
        }
    }
}

/// A source action that polls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollingSource {
    /// The source action's name.
    pub action_name: String,
    /// What it watches.
    pub source: PolledSource,
}

/// The polling source actions of a pipeline.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollingSources {
    /// Those polled.
    pub polled: Vec<PollingSource>,
    /// Those asking to poll that cannot be polled: (action name, why).
    pub unsupported: Vec<(String, String)>,
}

/// The source actions of `pipeline` (its first stage) with `PollForSourceChanges: true`.
pub fn polling_sources(pipeline: &PipelineDeclaration) -> PollingSources {
    let mut found = PollingSources::default();
    let Some(first) = pipeline.stages.first() else {
        return found;
    };
    for action in first.actions.iter().filter(|a| polls(a)) {
        let id = &action.action_type_id;
        let config = action.configuration();
        let get = |k: &str| config.get(k).filter(|v| !v.is_empty()).cloned();
        let source = match (id.category, id.owner, id.provider.as_str()) {
            (ActionCategory::Source, ActionOwner::Aws, "S3") => get("S3Bucket")
                .zip(get("S3ObjectKey"))
                .map(|(bucket, key)| PolledSource::S3 { bucket, key }),
            (ActionCategory::Source, ActionOwner::Aws, "CodeCommit") => get("RepositoryName")
                .zip(get("BranchName"))
                .map(|(repository, branch)| PolledSource::CodeCommit { repository, branch }),
            _ => {
                found.unsupported.push((
                    action.name.clone(),
                    format!(
                        "{} sources are not polled (S3 and CodeCommit are)",
                        id.provider
                    ),
                ));
                continue;
            }
        };
        match source {
            Some(source) => found.polled.push(PollingSource {
                action_name: action.name.clone(),
                source,
            }),
            None => found.unsupported.push((
                action.name.clone(),
                "its configuration does not name what to poll".into(),
            )),
        }
    }
    found
}

/// A source's revision, as a poll reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value")]
pub enum Revision {
    /// An S3 object version id.
    #[serde(rename = "S3_OBJECT_VERSION_ID")]
    S3Version(String),
    /// The ETag of an object in an unversioned bucket: tells a change, cannot be pinned.
    #[serde(rename = "S3_OBJECT_ETAG")]
    S3ETag(String),
    /// A commit id.
    #[serde(rename = "COMMIT_ID")]
    Commit(String),
}

impl Revision {
    /// The revision's id.
    pub fn id(&self) -> &str {
        match self {
            Self::S3Version(v) | Self::S3ETag(v) | Self::Commit(v) => v,
        }
    }

    /// The source revision override that pins `action` to it (none for an ETag).
    pub fn pin(&self, action: &str) -> Option<SourceRevisionOverride> {
        let revision_type = match self {
            Self::S3Version(_) => "S3_OBJECT_VERSION_ID",
            Self::Commit(_) => "COMMIT_ID",
            Self::S3ETag(_) => return None,
        };
        Some(SourceRevisionOverride {
            action_name: action.to_string(),
            revision_type: revision_type.into(),
            revision_value: self.id().to_string(),
        })
    }

    fn describe(&self) -> String {
        match self {
            Self::S3Version(v) => format!("version {v}"),
            Self::S3ETag(v) => format!("ETag {v}"),
            Self::Commit(v) => format!("commit {v}"),
        }
    }
}

/// The revision a source action was last seen at.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Seen {
    /// [`PolledSource::location`] when it was seen.
    pub location: String,
    /// The revision.
    pub revision: Revision,
}

/// An execution a poll owes: written with the state that recorded the change, cleared once
/// started.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PendingStart {
    /// The start's idempotency key.
    pub idempotency_key: String,
    /// `PollForSourceChanges` and what changed.
    pub trigger: ExecutionTrigger,
    /// Every polled source, pinned to the revision read.
    pub source_revisions: Vec<SourceRevisionOverride>,
}

/// What the polls of one pipeline have seen.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PollState {
    /// Bumped by every write (0: never written); a state replaces the stored one only when
    /// that one is at `version - 1`.
    pub version: u64,
    /// The last revision seen, per source action.
    #[serde(default)]
    pub sources: BTreeMap<String, Seen>,
    /// The execution the last change owes, until it is started.
    #[serde(default)]
    pub pending: Option<PendingStart>,
}

impl PollState {
    /// The next version of this state: `sources` and `pending` as given.
    pub fn next(&self, sources: BTreeMap<String, Seen>, pending: Option<PendingStart>) -> Self {
        Self {
            version: self.version + 1,
            sources,
            pending,
        }
    }
}

/// What one poll of a pipeline decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PollDecision {
    /// Nothing changed (or nothing could be read): no write, no start.
    Unchanged,
    /// Record the state (first sightings): no start.
    Record(PollState),
    /// Record the state, whose `pending` is the execution to start.
    Start(PollState),
}

/// Decide what a poll of `pipeline` found: `sources` are its polling sources, `last` what was
/// seen before (its `pending` already dealt with), `current` the revision each source action
/// has now (`None`: could not be read).
pub fn decide(
    pipeline: &str,
    sources: &[PollingSource],
    last: &PollState,
    current: &BTreeMap<String, Option<Revision>>,
) -> PollDecision {
    let mut next: BTreeMap<String, Seen> = BTreeMap::new();
    let mut changed: Vec<(&PollingSource, &Seen, &Revision)> = Vec::new();
    let mut first_seen = false;
    let mut pins = Vec::new();
    for source in sources {
        let location = source.source.location();
        let before = last
            .sources
            .get(&source.action_name)
            .filter(|seen| seen.location == location);
        match (
            current.get(&source.action_name).and_then(Option::as_ref),
            before,
        ) {
            (Some(now), Some(seen)) => {
                if seen.revision != *now {
                    changed.push((source, seen, now));
                }
                pins.extend(now.pin(&source.action_name));
                next.insert(
                    source.action_name.clone(),
                    Seen {
                        location,
                        revision: now.clone(),
                    },
                );
            }
            (Some(now), None) => {
                first_seen = true;
                pins.extend(now.pin(&source.action_name));
                next.insert(
                    source.action_name.clone(),
                    Seen {
                        location,
                        revision: now.clone(),
                    },
                );
            }
            // Unreadable: keep what was seen, if anything.
            (None, Some(seen)) => {
                next.insert(source.action_name.clone(), seen.clone());
            }
            (None, None) => {}
        }
    }
    if changed.is_empty() {
        return if first_seen {
            PollDecision::Record(last.next(next, None))
        } else {
            PollDecision::Unchanged
        };
    }
    let version = last.version + 1;
    let mut what = String::new();
    let mut digest = Sha256::new();
    for (source, seen, now) in &changed {
        if !what.is_empty() {
            what.push_str("; ");
        }
        let _ = write!(
            what,
            "{}: {} {} (was {})",
            source.action_name,
            source.source.location(),
            now.describe(),
            seen.revision.id()
        );
        digest.update(source.action_name.as_bytes());
        digest.update([0]);
        digest.update(now.id().as_bytes());
        digest.update([0]);
    }
    let digest = digest.finalize();
    let short = crate::hex::encode(&digest[..8]);
    let pending = PendingStart {
        idempotency_key: format!("poll/{pipeline}/{version}/{short}"),
        trigger: ExecutionTrigger {
            trigger_type: TriggerType::PollForSourceChanges,
            trigger_detail: truncate(&what, MAX_TRIGGER_DETAIL),
        },
        source_revisions: pins,
    };
    PollDecision::Start(last.next(next, Some(pending)))
}

fn truncate(text: &str, max: usize) -> String {
    if text.len() <= max {
        return text.to_string();
    }
    let mut end = max - 3;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}...", &text[..end])
}

/// Where the poll states live.
#[async_trait]
pub trait PollStateStore: Send + Sync {
    /// The state of `pipeline` (`None`: never polled).
    async fn load(&self, pipeline: &str) -> Result<Option<PollState>, StoreError>;

    /// Store `state` if the stored state is still at `state.version - 1` (absent for version
    /// 1); `Ok(false)` when another poll wrote first.
    async fn replace(&self, pipeline: &str, state: &PollState) -> Result<bool, StoreError>;
}

/// Reads what a source is at now.
#[async_trait]
pub trait RevisionReader: Send + Sync {
    /// The source's current revision; `Ok(None)` when there is none (no such object or
    /// branch); `Err(why)` when it cannot be read.
    async fn current(&self, source: &PolledSource) -> Result<Option<Revision>, String>;
}

/// What polling one pipeline did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PollOutcome {
    /// Executions started (or found started) for changes: (execution id, new).
    pub started: Vec<(String, bool)>,
    /// Why sources were not polled or read, and anything else worth a log line.
    pub notes: Vec<String>,
}

/// In-memory poll states, for tests. Only in test builds: core's own unit tests, and crates that
/// enable the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Poll states in a map.
    #[derive(Debug, Default)]
    pub struct MemoryPollStates {
        /// The states by pipeline name.
        pub states: Mutex<BTreeMap<String, PollState>>,
    }

    #[async_trait]
    impl PollStateStore for MemoryPollStates {
        async fn load(&self, pipeline: &str) -> Result<Option<PollState>, StoreError> {
            let states = self
                .states
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?;
            Ok(states.get(pipeline).cloned())
        }

        async fn replace(&self, pipeline: &str, state: &PollState) -> Result<bool, StoreError> {
            let mut states = self
                .states
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))?;
            let stored = states.get(pipeline).map_or(0, |s| s.version);
            if stored + 1 != state.version {
                return Ok(false);
            }
            states.insert(pipeline.to_string(), state.clone());
            Ok(true)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    fn pipeline(sources: Value) -> PipelineDeclaration {
        crate::parse_pipeline(
            &json!({
                "name": "p", "roleArn": "arn:aws:iam::123456789012:role/x",
                "artifactStore": {"type": "S3", "location": "b"},
                "stages": [
                    {"name": "Source", "actions": sources},
                    {"name": "Build", "actions": [{"name": "Run",
                        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                        "commands": ["true"]}]}
                ]
            })
            .to_string(),
        )
        .unwrap()
    }

    fn action(name: &str, owner: &str, provider: &str, config: Value) -> Value {
        json!({"name": name, "actionTypeId": {"category": "Source", "owner": owner, "provider": provider, "version": "1"},
               "configuration": config, "outputArtifacts": [{"name": format!("{name}Out")}]})
    }

    fn s3(bucket: &str, key: &str) -> PolledSource {
        PolledSource::S3 {
            bucket: bucket.into(),
            key: key.into(),
        }
    }

    #[test]
    fn only_s3_and_codecommit_sources_that_ask_for_it_poll() {
        let p = pipeline(json!([
            action(
                "Obj",
                "AWS",
                "S3",
                json!({"S3Bucket": "src", "S3ObjectKey": "app.zip", "PollForSourceChanges": "true"})
            ),
            action(
                "Events",
                "AWS",
                "S3",
                json!({"S3Bucket": "src", "S3ObjectKey": "app.zip", "PollForSourceChanges": "false"})
            ),
            action(
                "Default",
                "AWS",
                "S3",
                json!({"S3Bucket": "src", "S3ObjectKey": "app.zip"})
            ),
            action(
                "Repo",
                "AWS",
                "CodeCommit",
                json!({"RepositoryName": "r", "BranchName": "main", "PollForSourceChanges": "TRUE"})
            ),
            action(
                "Image",
                "AWS",
                "ECR",
                json!({"RepositoryName": "r", "PollForSourceChanges": "true"})
            ),
            action(
                "Hub",
                "ThirdParty",
                "GitHub",
                json!({"Owner": "o", "Repo": "r", "Branch": "main", "OAuthToken": "t", "PollForSourceChanges": "true"})
            ),
        ]));
        let found = polling_sources(&p);
        assert_eq!(
            found.polled,
            vec![
                PollingSource {
                    action_name: "Obj".into(),
                    source: s3("src", "app.zip"),
                },
                PollingSource {
                    action_name: "Repo".into(),
                    source: PolledSource::CodeCommit {
                        repository: "r".into(),
                        branch: "main".into(),
                    },
                },
            ]
        );
        let unsupported: Vec<&str> = found.unsupported.iter().map(|(a, _)| a.as_str()).collect();
        assert_eq!(unsupported, vec!["Image", "Hub"]);
        assert!(found.unsupported[0]
            .1
            .contains("ECR sources are not polled"));
        assert_eq!(s3("b", "k/x.zip").location(), "s3://b/k/x.zip");
        assert_eq!(found.polled[1].source.location(), "codecommit://r/main");
    }

    fn sources() -> Vec<PollingSource> {
        vec![
            PollingSource {
                action_name: "Obj".into(),
                source: s3("src", "app.zip"),
            },
            PollingSource {
                action_name: "Repo".into(),
                source: PolledSource::CodeCommit {
                    repository: "r".into(),
                    branch: "main".into(),
                },
            },
        ]
    }

    fn state(version: u64, seen: &[(&str, &str, Revision)]) -> PollState {
        PollState {
            version,
            sources: seen
                .iter()
                .map(|(a, loc, r)| {
                    (
                        a.to_string(),
                        Seen {
                            location: loc.to_string(),
                            revision: r.clone(),
                        },
                    )
                })
                .collect(),
            pending: None,
        }
    }

    fn now(obj: Option<Revision>, repo: Option<Revision>) -> BTreeMap<String, Option<Revision>> {
        BTreeMap::from([("Obj".to_string(), obj), ("Repo".to_string(), repo)])
    }

    use Revision::{Commit, S3ETag, S3Version};

    fn v(s: &str) -> Revision {
        S3Version(s.into())
    }
    fn c(s: &str) -> Revision {
        Commit(s.into())
    }

    /// (what the decision is: "unchanged" / "record" / "start", the trigger detail of a start)
    fn kind(d: &PollDecision) -> (&'static str, String) {
        match d {
            PollDecision::Unchanged => ("unchanged", String::new()),
            PollDecision::Record(_) => ("record", String::new()),
            PollDecision::Start(s) => (
                "start",
                s.pending.as_ref().unwrap().trigger.trigger_detail.clone(),
            ),
        }
    }

    #[test]
    fn a_poll_starts_only_on_a_change_from_what_was_seen() {
        let both = state(
            4,
            &[
                ("Obj", "s3://src/app.zip", v("v1")),
                ("Repo", "codecommit://r/main", c("c1")),
            ],
        );
        type Case = (
            &'static str,
            PollState,
            BTreeMap<String, Option<Revision>>,
            &'static str,
            &'static str,
        );
        let table: Vec<Case> = vec![
            ("never polled: record, no start", PollState::default(), now(Some(v("v1")), Some(c("c1"))), "record", ""),
            ("nothing readable yet", PollState::default(), now(None, None), "unchanged", ""),
            ("as seen", both.clone(), now(Some(v("v1")), Some(c("c1"))), "unchanged", ""),
            ("new object version", both.clone(), now(Some(v("v2")), Some(c("c1"))), "start", "Obj: s3://src/app.zip version v2 (was v1)"),
            ("new commit", both.clone(), now(Some(v("v1")), Some(c("c2"))), "start", "Repo: codecommit://r/main commit c2 (was c1)"),
            ("both changed", both.clone(), now(Some(v("v2")), Some(c("c2"))), "start", "Obj: s3://src/app.zip version v2 (was v1); Repo: codecommit://r/main commit c2 (was c1)"),
            ("object deleted: keep, no start", both.clone(), now(None, Some(c("c1"))), "unchanged", ""),
            ("deleted, then a new commit", both.clone(), now(None, Some(c("c2"))), "start", "Repo: codecommit://r/main commit c2 (was c1)"),
            (
                "the action now watches another object: a first sighting",
                state(4, &[("Obj", "s3://src/old.zip", v("v1")), ("Repo", "codecommit://r/main", c("c1"))]),
                now(Some(v("v9")), Some(c("c1"))),
                "record",
                "",
            ),
            (
                "a second source starts polling",
                state(4, &[("Obj", "s3://src/app.zip", v("v1"))]),
                now(Some(v("v1")), Some(c("c1"))),
                "record",
                "",
            ),
            (
                "unversioned bucket: the ETag tells",
                state(4, &[("Obj", "s3://src/app.zip", S3ETag("e1".into())), ("Repo", "codecommit://r/main", c("c1"))]),
                now(Some(S3ETag("e2".into())), Some(c("c1"))),
                "start",
                "Obj: s3://src/app.zip ETag e2 (was e1)",
            ),
            (
                "versioning turned on: a change",
                state(4, &[("Obj", "s3://src/app.zip", S3ETag("e1".into())), ("Repo", "codecommit://r/main", c("c1"))]),
                now(Some(v("v1")), Some(c("c1"))),
                "start",
                "Obj: s3://src/app.zip version v1 (was e1)",
            ),
        ];
        for (case, last, current, expected, detail) in table {
            let decision = decide("p", &sources(), &last, &current);
            assert_eq!(kind(&decision), (expected, detail.to_string()), "{case}");
            if let PollDecision::Record(next) | PollDecision::Start(next) = &decision {
                assert_eq!(next.version, last.version + 1, "{case}");
                // What was read is what is recorded; what could not be read keeps its revision.
                for (action, revision) in &current {
                    let recorded = next.sources.get(action).map(|s| &s.revision);
                    match revision {
                        Some(r) => assert_eq!(recorded, Some(r), "{case}: {action}"),
                        None => assert_eq!(
                            recorded,
                            last.sources.get(action).map(|s| &s.revision),
                            "{case}: {action}"
                        ),
                    }
                }
            }
        }
    }

    #[test]
    fn a_start_pins_every_polled_source_and_has_a_key_per_change() {
        let last = state(
            7,
            &[
                ("Obj", "s3://src/app.zip", v("v1")),
                ("Repo", "codecommit://r/main", c("c1")),
            ],
        );
        let PollDecision::Start(next) =
            decide("p", &sources(), &last, &now(Some(v("v2")), Some(c("c1"))))
        else {
            panic!("a start");
        };
        let pending = next.pending.unwrap();
        assert_eq!(
            pending.trigger.trigger_type,
            TriggerType::PollForSourceChanges
        );
        let pins: Vec<(&str, &str, &str)> = pending
            .source_revisions
            .iter()
            .map(|o| {
                (
                    o.action_name.as_str(),
                    o.revision_type.as_str(),
                    o.revision_value.as_str(),
                )
            })
            .collect();
        assert_eq!(
            pins,
            vec![
                ("Obj", "S3_OBJECT_VERSION_ID", "v2"),
                ("Repo", "COMMIT_ID", "c1")
            ]
        );
        assert!(
            pending.idempotency_key.starts_with("poll/p/8/"),
            "{}",
            pending.idempotency_key
        );
        // The same change seen by another poll: the same key. Another change: another key.
        let again = decide("p", &sources(), &last, &now(Some(v("v2")), Some(c("c1"))));
        let PollDecision::Start(again) = again else {
            panic!()
        };
        assert_eq!(
            again.pending.unwrap().idempotency_key,
            pending.idempotency_key
        );
        let PollDecision::Start(other) =
            decide("p", &sources(), &last, &now(Some(v("v3")), Some(c("c1"))))
        else {
            panic!()
        };
        assert_ne!(
            other.pending.unwrap().idempotency_key,
            pending.idempotency_key
        );
        // An ETag is not pinned.
        let etag = state(1, &[("Obj", "s3://src/app.zip", S3ETag("e1".into()))]);
        let PollDecision::Start(next) = decide(
            "p",
            &sources()[..1],
            &etag,
            &now(Some(S3ETag("e2".into())), None),
        ) else {
            panic!()
        };
        assert!(next.pending.unwrap().source_revisions.is_empty());
    }

    #[test]
    fn a_long_trigger_detail_is_cut_at_codepipelines_limit() {
        let key = "k".repeat(2000);
        let sources = vec![PollingSource {
            action_name: "Obj".into(),
            source: s3("src", &key),
        }];
        let loc = format!("s3://src/{key}");
        let last = state(1, &[("Obj", loc.as_str(), v("v1"))]);
        let PollDecision::Start(next) = decide("p", &sources, &last, &now(Some(v("v2")), None))
        else {
            panic!()
        };
        let detail = next.pending.unwrap().trigger.trigger_detail;
        assert_eq!(detail.len(), MAX_TRIGGER_DETAIL);
        assert!(detail.ends_with("..."));
    }

    #[test]
    fn the_state_round_trips_through_json() {
        let mut s = state(
            3,
            &[
                ("Obj", "s3://src/app.zip", v("v1")),
                ("Repo", "codecommit://r/main", c("c1")),
            ],
        );
        s.pending = Some(PendingStart {
            idempotency_key: "poll/p/3/ab".into(),
            trigger: ExecutionTrigger {
                trigger_type: TriggerType::PollForSourceChanges,
                trigger_detail: "Obj: ...".into(),
            },
            source_revisions: vec![v("v1").pin("Obj").unwrap()],
        });
        let text = serde_json::to_string(&s).unwrap();
        assert!(
            text.contains(r#""revision":{"type":"S3_OBJECT_VERSION_ID","value":"v1"}"#),
            "{text}"
        );
        assert_eq!(serde_json::from_str::<PollState>(&text).unwrap(), s);
        assert_eq!(
            serde_json::from_str::<PollState>(r#"{"version": 1}"#)
                .unwrap()
                .sources
                .len(),
            0
        );
    }
}
