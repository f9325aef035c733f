//! The event outbox: every state change is written together with the events that report it
//! ([`crate::engine::ExecutionStore`] takes them with each write, in one transaction), and the
//! `publisher` function, fed by the events table's DynamoDB stream (`EventsTable`), sends them
//! to EventBridge.
//!
//! What a consumer can rely on:
//!
//! - **At least once.** A change that was recorded has its events in the outbox; the publisher
//!   fails its invocation when `PutEvents` refuses any entry, and the stream delivers the batch
//!   again (the template gives the mapping a retry limit and a dead-letter queue).
//! - **Stable ids.** Each event carries `detail.event-id` ([`EventEntry::stable_id`]): a
//!   re-delivered event has the same id, so consumers de-duplicate by it. EventBridge's own `id`
//!   differs on every `PutEvents`.
//! - **Once per id from the outbox.** Only new outbox items (`INSERT`) are published: an event
//!   written again under its id replaces its item (`MODIFY`), and expiry (`REMOVE`) is not news.
//! - **Order per execution.** The outbox items of one execution share a partition key; DynamoDB
//!   Streams keeps their records in the order written and the publisher sends a batch in
//!   stream order, so one execution's events are put in the order its changes were recorded.
//!   EventBridge itself does not promise delivery order to targets: a consumer that needs it
//!   orders by the event's `time` (millisecond `start-time` for ties) as with CodePipeline.

use std::collections::HashSet;

use crate::engine::EventPublisher;
use crate::events::EventEntry;
use crate::port_error::PortError;

/// The partition key prefix of outbox items: `OUTBOX#<execution id>`.
pub const PK_PREFIX: &str = "OUTBOX#";
/// The attribute holding the event (an [`EventEntry`] as JSON).
pub const EVENT_ATTRIBUTE: &str = "event";

/// One record of the table's stream, as far as the publisher reads it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamChange {
    /// `INSERT`, `MODIFY` or `REMOVE`.
    pub event_name: String,
    /// The item's `pk`.
    pub pk: String,
    /// The new image's [`EVENT_ATTRIBUTE`], when it has one.
    pub event: Option<String>,
}

/// What the publisher does with one stream record.
#[derive(Debug, Clone, PartialEq)]
pub enum Selected {
    /// A new outbox item: send its event.
    Publish(EventEntry),
    /// Not an outbox item, or not a new one.
    Skip,
    /// A new outbox item that cannot be read (it can never be sent; reported, not retried).
    Unreadable(String),
}

/// What to do with `change`.
pub fn select(change: &StreamChange) -> Selected {
    if change.event_name != "INSERT" || !change.pk.starts_with(PK_PREFIX) {
        return Selected::Skip;
    }
    let Some(text) = change.event.as_deref() else {
        return Selected::Unreadable(format!(
            "outbox item {} has no `{EVENT_ATTRIBUTE}` attribute",
            change.pk
        ));
    };
    match serde_json::from_str::<EventEntry>(text) {
        Ok(entry) => Selected::Publish(entry),
        // The message names where, never quoting the content.
        Err(e) => Selected::Unreadable(format!(
            "outbox item {}: {:?} error at line {} column {}",
            change.pk,
            e.classify(),
            e.line(),
            e.column()
        )),
    }
}

/// What one batch gave.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Published {
    /// Events sent.
    pub sent: usize,
    /// Records that were not new outbox items.
    pub skipped: usize,
    /// Outbox items that could not be read, why (each left behind: retrying cannot help).
    pub unreadable: Vec<String>,
}

/// Send the events of a batch of stream records, in stream order, each id once. `Err` when
/// any could not be put: the caller fails its invocation so that the stream delivers the batch
/// again (the events already put go again too, with the same ids).
pub async fn publish(
    publisher: &dyn EventPublisher,
    changes: &[StreamChange],
) -> Result<Published, PortError> {
    let mut result = Published::default();
    let mut seen = HashSet::new();
    let mut entries = Vec::new();
    for change in changes {
        match select(change) {
            Selected::Publish(entry) => {
                let first = entry
                    .event_id()
                    .is_none_or(|id| seen.insert(id.to_string()));
                if first {
                    entries.push(entry);
                } else {
                    result.skipped += 1;
                }
            }
            Selected::Skip => result.skipped += 1,
            Selected::Unreadable(why) => result.unreadable.push(why),
        }
    }
    if !entries.is_empty() {
        publisher.publish(&entries).await?;
    }
    result.sent = entries.len();
    Ok(result)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::memory::MemoryEvents;
    use crate::events::{pipeline_arn, stage_event, ExecutionRef, StageEventInput, StageState};

    fn event(stage: &str, at: f64) -> EventEntry {
        stage_event(&StageEventInput {
            execution: ExecutionRef {
                pipeline_arn: pipeline_arn("us-east-1", "123456789012", "app"),
                pipeline: "app".into(),
                pipeline_version: 1,
                execution_id: "e-1".into(),
                attempt: 1,
            },
            stage: stage.into(),
            state: StageState::Started,
            start_time: None,
            last_retry_time: None,
        })
        .at(at)
    }

    fn change(name: &str, pk: &str, entry: Option<&EventEntry>) -> StreamChange {
        StreamChange {
            event_name: name.into(),
            pk: pk.into(),
            event: entry.map(|e| serde_json::to_string(e).unwrap()),
        }
    }

    #[test]
    fn an_event_reads_back_as_written_with_its_id() {
        let entry = event("Build", 10.5);
        let text = serde_json::to_string(&entry).unwrap();
        assert!(text.contains("\"detail-type\""), "{text}");
        let back: EventEntry = serde_json::from_str(&text).unwrap();
        assert_eq!(back, entry);
        assert_eq!(back.event_id(), entry.event_id());
        assert!(entry.event_id().is_some());
    }

    #[test]
    fn ids_are_stable_and_tell_changes_apart() {
        assert_eq!(
            event("Build", 10.5).event_id(),
            event("Build", 10.5).event_id()
        );
        assert_ne!(
            event("Build", 10.5).event_id(),
            event("Deploy", 10.5).event_id()
        );
        assert_ne!(
            event("Build", 10.5).event_id(),
            event("Build", 10.6).event_id()
        );
        let id = event("Build", 10.5).event_id().unwrap().to_string();
        assert_eq!(uuid::Uuid::parse_str(&id).unwrap().to_string(), id);
    }

    #[tokio::test]
    async fn only_new_outbox_items_are_sent_in_order_each_id_once() {
        let (a, b) = (event("Build", 1.0), event("Deploy", 2.0));
        let events = MemoryEvents::default();
        let published = publish(
            &events,
            &[
                change("INSERT", "EXEC#e-1", None),
                change("INSERT", "OUTBOX#e-1", Some(&a)),
                change("MODIFY", "OUTBOX#e-1", Some(&a)),
                change("INSERT", "OUTBOX#e-1", Some(&b)),
                change("INSERT", "OUTBOX#e-1", Some(&a)),
                change("REMOVE", "OUTBOX#e-1", None),
            ],
        )
        .await
        .unwrap();
        assert_eq!(published.sent, 2);
        assert_eq!(published.skipped, 4);
        assert_eq!(*events.published.lock().unwrap(), vec![a, b]);
    }

    #[tokio::test]
    async fn unreadable_items_are_reported_without_their_content() {
        let events = MemoryEvents::default();
        let mut broken = change("INSERT", "OUTBOX#e-1", None);
        broken.event = Some("{\"secret-token\": ".into());
        let published = publish(&events, &[broken, change("INSERT", "OUTBOX#e-2", None)])
            .await
            .unwrap();
        assert_eq!(published.sent, 0);
        assert_eq!(published.unreadable.len(), 2);
        assert!(
            !published.unreadable[0].contains("secret"),
            "{:?}",
            published.unreadable
        );
    }

    #[tokio::test]
    async fn a_refused_put_fails_the_batch() {
        struct Refusing;
        #[async_trait::async_trait]
        impl EventPublisher for Refusing {
            async fn publish(&self, _: &[EventEntry]) -> Result<(), PortError> {
                Err(PortError::Unavailable(
                    "PutEvents: 1 entry failed: ThrottlingException".into(),
                ))
            }
        }
        let a = event("Build", 1.0);
        let err = publish(&Refusing, &[change("INSERT", "OUTBOX#e-1", Some(&a))])
            .await
            .unwrap_err();
        assert!(err.is_retryable(), "{err:?}");
        assert!(err.to_string().contains("ThrottlingException"), "{err}");
    }
}
