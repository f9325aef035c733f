//! Polling a pipeline's sources and starting the execution a change owes
//! ([`poll_pipeline`]): the engine's side of [`crate::triggers::polling`], which decides what a
//! poll found ([`decide`]) without the engine.

use std::collections::BTreeMap;

use crate::declaration::PipelineDeclaration;
use crate::store::StoreError;
use crate::triggers::polling::{
    decide, polling_sources, PendingStart, PollDecision, PollOutcome, PollStateStore,
    RevisionReader,
};

use super::{Engine, EngineError, StartRequest};

/// Why polling a pipeline failed (the next poll tries again).
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// The poll state could not be read or written.
    #[error("poll state: {0}")]
    Store(#[from] StoreError),
    /// The execution could not be started (it stays owed).
    #[error("starting the execution: {0}")]
    Start(EngineError),
}

/// Poll the sources of `pipeline` and start the execution a change owes (see the module docs).
/// `new_id` makes execution ids; `now` is the clock (seconds since the epoch).
pub async fn poll_pipeline(
    engine: &Engine<'_>,
    store: &dyn PollStateStore,
    reader: &dyn RevisionReader,
    pipeline: &PipelineDeclaration,
    now: f64,
    new_id: &(dyn Fn() -> String + Sync),
) -> Result<PollOutcome, PollError> {
    let mut outcome = PollOutcome::default();
    let sources = polling_sources(pipeline);
    for (action, why) in &sources.unsupported {
        outcome
            .notes
            .push(format!("source action {action} not polled: {why}"));
    }
    if sources.polled.is_empty() {
        return Ok(outcome);
    }
    let name = &pipeline.name;
    let mut state = store.load(name).await?.unwrap_or_default();

    // A change recorded by an earlier poll that did not get to start it.
    if let Some(pending) = state.pending.clone() {
        let cleared = state.next(state.sources.clone(), None);
        match start(engine, name, &pending, now, new_id).await {
            Ok(started) => outcome.started.push(started),
            // The owed start can never work (the pipeline changed under it): drop it.
            Err(EngineError::Invalid(why)) => outcome.notes.push(format!(
                "dropped the start owed since an earlier poll: {why}"
            )),
            Err(e) => return Err(PollError::Start(e)),
        }
        if !store.replace(name, &cleared).await? {
            outcome
                .notes
                .push("another poll is handling this pipeline".into());
            return Ok(outcome);
        }
        state = cleared;
    }

    let mut current = BTreeMap::new();
    for source in &sources.polled {
        let revision = match reader.current(&source.source).await {
            Ok(Some(revision)) => Some(revision),
            Ok(None) => {
                outcome.notes.push(format!(
                    "source action {}: {} does not exist",
                    source.action_name,
                    source.source.location()
                ));
                None
            }
            Err(why) => {
                outcome.notes.push(format!(
                    "source action {}: cannot read {}: {why}",
                    source.action_name,
                    source.source.location()
                ));
                None
            }
        };
        current.insert(source.action_name.clone(), revision);
    }

    match decide(name, &sources.polled, &state, &current) {
        PollDecision::Unchanged => {}
        PollDecision::Record(next) => {
            if store.replace(name, &next).await? {
                outcome
                    .notes
                    .push("recorded the revisions polling starts from".into());
            }
        }
        PollDecision::Start(next) => {
            if !store.replace(name, &next).await? {
                outcome
                    .notes
                    .push("another poll recorded this change and starts it".into());
                return Ok(outcome);
            }
            let pending = next.pending.clone().expect("a start decision owes a start");
            let started = start(engine, name, &pending, now, new_id)
                .await
                .map_err(PollError::Start)?;
            outcome.started.push(started);
            // Settled: the next poll need not start it again (if this write loses, the next
            // poll's start finds the execution by its key).
            store
                .replace(name, &next.next(next.sources.clone(), None))
                .await?;
        }
    }
    Ok(outcome)
}

async fn start(
    engine: &Engine<'_>,
    pipeline: &str,
    pending: &PendingStart,
    now: f64,
    new_id: &(dyn Fn() -> String + Sync),
) -> Result<(String, bool), EngineError> {
    let started = engine
        .start_execution(StartRequest {
            pipeline_name: pipeline.to_string(),
            pipeline_execution_id: new_id(),
            trigger: pending.trigger.clone(),
            variables: Vec::new(),
            source_revisions: pending.source_revisions.clone(),
            idempotency_key: Some(pending.idempotency_key.clone()),
            now,
        })
        .await?;
    Ok((started.pipeline_execution_id, started.new))
}
