//! Polling over the engine's in-memory ports: a change starts exactly one execution, however
//! many polls see it and wherever a poll stops.

mod support;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Mutex;

use async_trait::async_trait;
use pipewright_core::engine::polling::poll_pipeline;
use pipewright_core::engine::ExecutionStore;
use pipewright_core::events::TriggerType;
use pipewright_core::execution::PipelineExecution;
use pipewright_core::store::PipelineStore;
use pipewright_core::triggers::polling::memory::MemoryPollStates;
use pipewright_core::triggers::polling::{
    decide, polling_sources, PollDecision, PollOutcome, PollState, PollStateStore, PolledSource,
    Revision, RevisionReader,
};
use serde_json::{json, Value};
use support::World;

/// Sources whose revisions the test sets.
#[derive(Default)]
struct Sources {
    revisions: Mutex<BTreeMap<String, Result<Option<Revision>, String>>>,
}

impl Sources {
    fn set(&self, location: &str, revision: Result<Option<Revision>, String>) {
        self.revisions
            .lock()
            .unwrap()
            .insert(location.into(), revision);
    }
}

#[async_trait]
impl RevisionReader for Sources {
    async fn current(&self, source: &PolledSource) -> Result<Option<Revision>, String> {
        // Let other polls run in between, as network calls do.
        tokio::task::yield_now().await;
        self.revisions
            .lock()
            .unwrap()
            .get(&source.location())
            .cloned()
            .unwrap_or(Ok(None))
    }
}

/// A pipeline whose S3 source has `PollForSourceChanges: poll` (no such key when empty).
fn declaration(name: &str, poll: &str) -> Value {
    let mut d = json!({
        "name": name, "roleArn": "arn:aws:iam::123456789012:role/x",
        "artifactStore": {"type": "S3", "location": "artifacts"},
        "pipelineType": "V2", "executionMode": "PARALLEL",
        "stages": [
            {"name": "Source", "actions": [{
                "name": "App",
                "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
                "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip", "PollForSourceChanges": poll},
                "outputArtifacts": [{"name": "Src"}]
            }]},
            {"name": "Build", "actions": [{
                "name": "Run",
                "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
                "commands": ["true"], "inputArtifacts": [{"name": "Src"}]
            }]}
        ]
    });
    if poll.is_empty() {
        d["stages"][0]["actions"][0]["configuration"]
            .as_object_mut()
            .unwrap()
            .remove("PollForSourceChanges");
    }
    d
}

async fn poll(
    world: &World,
    states: &MemoryPollStates,
    sources: &Sources,
    name: &str,
) -> PollOutcome {
    static N: AtomicU32 = AtomicU32::new(0);
    let record = world.pipelines.get(name, None).await.unwrap().unwrap();
    let engine = world.engine();
    let new_id = || {
        format!(
            "00000000-0000-4000-8000-{:012}",
            N.fetch_add(1, Ordering::Relaxed)
        )
    };
    poll_pipeline(
        &engine,
        states,
        sources,
        &record.declaration,
        100.0,
        &new_id,
    )
    .await
    .unwrap()
}

async fn executions(world: &World, name: &str) -> Vec<PipelineExecution> {
    world
        .executions
        .list_executions(name, None, 100)
        .await
        .unwrap()
        .items
}

fn version(v: &str) -> Result<Option<Revision>, String> {
    Ok(Some(Revision::S3Version(v.into())))
}

#[tokio::test]
async fn the_first_poll_records_and_a_change_starts_one_pinned_execution() {
    let world = World::with_pipeline(declaration("p", "true")).await;
    let (states, sources) = (MemoryPollStates::default(), Sources::default());
    sources.set("s3://src/app.zip", version("v1"));

    let first = poll(&world, &states, &sources, "p").await;
    assert!(first.started.is_empty(), "{first:?}");
    assert_eq!(
        states.load("p").await.unwrap().unwrap().sources["App"].revision,
        Revision::S3Version("v1".into())
    );
    let again = poll(&world, &states, &sources, "p").await;
    assert!(again.started.is_empty(), "{again:?}");
    assert!(executions(&world, "p").await.is_empty());

    sources.set("s3://src/app.zip", version("v2"));
    let changed = poll(&world, &states, &sources, "p").await;
    assert_eq!(changed.started.len(), 1, "{changed:?}");
    assert!(changed.started[0].1, "new");
    let listed = executions(&world, "p").await;
    assert_eq!(listed.len(), 1);
    let e = &listed[0];
    assert_eq!(e.pipeline_execution_id, changed.started[0].0);
    assert_eq!(e.trigger.trigger_type, TriggerType::PollForSourceChanges);
    assert_eq!(
        e.trigger.trigger_detail,
        "App: s3://src/app.zip version v2 (was v1)"
    );
    let pins: Vec<(&str, &str, &str)> = e
        .source_revision_overrides
        .iter()
        .map(|o| {
            (
                o.action_name.as_str(),
                o.revision_type.as_str(),
                o.revision_value.as_str(),
            )
        })
        .collect();
    assert_eq!(pins, vec![("App", "S3_OBJECT_VERSION_ID", "v2")]);
    // Settled: nothing owed, and polling again starts nothing.
    assert_eq!(states.load("p").await.unwrap().unwrap().pending, None);
    assert!(poll(&world, &states, &sources, "p")
        .await
        .started
        .is_empty());
    assert_eq!(executions(&world, "p").await.len(), 1);

    // An object that disappears changes nothing; it coming back as a new version does.
    sources.set("s3://src/app.zip", Ok(None));
    let gone = poll(&world, &states, &sources, "p").await;
    assert!(gone.started.is_empty());
    assert!(gone.notes[0].contains("does not exist"), "{gone:?}");
    sources.set("s3://src/app.zip", Err("AccessDenied".into()));
    let denied = poll(&world, &states, &sources, "p").await;
    assert!(denied.notes[0].contains("cannot read s3://src/app.zip: AccessDenied"));
    sources.set("s3://src/app.zip", version("v3"));
    assert_eq!(poll(&world, &states, &sources, "p").await.started.len(), 1);
    assert_eq!(executions(&world, "p").await.len(), 2);
}

#[tokio::test]
async fn polls_at_once_start_one_execution_per_change() {
    let world = World::with_pipeline(declaration("p", "true")).await;
    let (states, sources) = (MemoryPollStates::default(), Sources::default());
    sources.set("s3://src/app.zip", version("v1"));
    poll(&world, &states, &sources, "p").await;

    for (round, v) in ["v2", "v3", "v4"].into_iter().enumerate() {
        sources.set("s3://src/app.zip", version(v));
        let outcomes = futures_join(
            poll(&world, &states, &sources, "p"),
            poll(&world, &states, &sources, "p"),
            poll(&world, &states, &sources, "p"),
        )
        .await;
        let new: usize = outcomes
            .iter()
            .flat_map(|o| &o.started)
            .filter(|(_, new)| *new)
            .count();
        assert_eq!(new, 1, "round {round}: {outcomes:?}");
        assert_eq!(executions(&world, "p").await.len(), round + 1);
    }
}

async fn futures_join<F: std::future::Future>(a: F, b: F, c: F) -> Vec<F::Output> {
    let (a, b, c) = tokio::join!(a, b, c);
    vec![a, b, c]
}

#[tokio::test]
async fn a_change_recorded_by_a_poll_that_stopped_is_started_once_by_the_next() {
    let world = World::with_pipeline(declaration("p", "true")).await;
    let (states, sources) = (MemoryPollStates::default(), Sources::default());
    sources.set("s3://src/app.zip", version("v1"));
    poll(&world, &states, &sources, "p").await;

    // A poll decides and records the change, then stops before starting it.
    sources.set("s3://src/app.zip", version("v2"));
    let record = world.pipelines.get("p", None).await.unwrap().unwrap();
    let found = polling_sources(&record.declaration);
    let last = states.load("p").await.unwrap().unwrap();
    let current = BTreeMap::from([("App".to_string(), Some(Revision::S3Version("v2".into())))]);
    let PollDecision::Start(next) = decide("p", &found.polled, &last, &current) else {
        panic!("a change");
    };
    assert!(states.replace("p", &next).await.unwrap());
    assert!(executions(&world, "p").await.is_empty());

    // The next poll starts what is owed, once.
    let resumed = poll(&world, &states, &sources, "p").await;
    assert_eq!(resumed.started.len(), 1, "{resumed:?}");
    assert!(resumed.started[0].1);
    assert_eq!(states.load("p").await.unwrap().unwrap().pending, None);
    assert!(poll(&world, &states, &sources, "p")
        .await
        .started
        .is_empty());
    let listed = executions(&world, "p").await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].source_revision_overrides[0].revision_value, "v2");

    // A poll that started it but stopped before clearing: the next one finds it by its key.
    sources.set("s3://src/app.zip", version("v3"));
    let last = states.load("p").await.unwrap().unwrap();
    let current = BTreeMap::from([("App".to_string(), Some(Revision::S3Version("v3".into())))]);
    let PollDecision::Start(next) = decide("p", &found.polled, &last, &current) else {
        panic!("a change");
    };
    assert!(states.replace("p", &next).await.unwrap());
    let engine = world.engine();
    let pending = next.pending.clone().unwrap();
    let started = engine
        .start_execution(pipewright_core::engine::StartRequest {
            pipeline_name: "p".into(),
            pipeline_execution_id: "11111111-1111-4111-8111-111111111111".into(),
            trigger: pending.trigger.clone(),
            variables: vec![],
            source_revisions: pending.source_revisions.clone(),
            idempotency_key: Some(pending.idempotency_key.clone()),
            now: 100.0,
        })
        .await
        .unwrap();
    assert!(started.new);
    let resumed = poll(&world, &states, &sources, "p").await;
    assert_eq!(
        resumed.started,
        vec![("11111111-1111-4111-8111-111111111111".to_string(), false)]
    );
    assert_eq!(executions(&world, "p").await.len(), 2);
}

#[tokio::test]
async fn a_pipeline_that_does_not_poll_is_never_started_or_recorded() {
    let world = World::with_pipeline(declaration("events", "false")).await;
    world.add_pipeline(declaration("default", "")).await;
    let (states, sources) = (MemoryPollStates::default(), Sources::default());
    for v in ["v1", "v2", "v3"] {
        sources.set("s3://src/app.zip", version(v));
        for name in ["events", "default"] {
            let outcome = poll(&world, &states, &sources, name).await;
            assert_eq!(outcome, PollOutcome::default(), "{name}");
        }
    }
    assert!(states.states.lock().unwrap().is_empty());
    assert!(executions(&world, "events").await.is_empty());
    assert!(executions(&world, "default").await.is_empty());
}

#[tokio::test]
async fn a_start_that_can_no_longer_work_is_dropped() {
    let world = World::with_pipeline(declaration("p", "true")).await;
    let (states, sources) = (MemoryPollStates::default(), Sources::default());
    sources.set("s3://src/app.zip", version("v1"));
    poll(&world, &states, &sources, "p").await;
    // Owed: a start pinning an action the pipeline no longer has.
    let mut owed: PollState = states.load("p").await.unwrap().unwrap();
    let mut pending = pipewright_core::triggers::polling::PendingStart {
        idempotency_key: "poll/p/9/x".into(),
        trigger: pipewright_core::execution::ExecutionTrigger {
            trigger_type: TriggerType::PollForSourceChanges,
            trigger_detail: "Gone: ...".into(),
        },
        source_revisions: vec![Revision::S3Version("v1".into()).pin("Gone").unwrap()],
    };
    pending.source_revisions[0].action_name = "Gone".into();
    owed = owed.next(owed.sources.clone(), Some(pending));
    assert!(states.replace("p", &owed).await.unwrap());

    let outcome = poll(&world, &states, &sources, "p").await;
    assert!(outcome.started.is_empty(), "{outcome:?}");
    assert!(
        outcome.notes[0].contains("dropped the start owed"),
        "{outcome:?}"
    );
    assert_eq!(states.load("p").await.unwrap().unwrap().pending, None);
    assert!(executions(&world, "p").await.is_empty());
}
