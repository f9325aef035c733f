//! [`EventPublisher`] over EventBridge `PutEvents`: CodePipeline-shaped state-change events
//! (built by `pipewright_core::events`) onto the stack's event bus.
//!
//! Entries go in batches of at most 10 (PutEvents' limit). Entries that EventBridge refuses
//! (`FailedEntryCount > 0`) are sent again once when the failure may pass (throttling, internal
//! failure); what still fails is reported as an error naming each error code.

use async_trait::async_trait;

use crate::port_errors::call_failed;
use aws_sdk_eventbridge::primitives::{DateTime, DateTimeFormat};
use aws_sdk_eventbridge::types::PutEventsRequestEntry;
use aws_sdk_eventbridge::Client;
use pipewright_core::engine::{EventPublisher, PortError};
use pipewright_core::events::EventEntry;

/// The bus events go to when `EVENT_BUS_NAME` is not set.
pub const DEFAULT_EVENT_BUS: &str = "default";

/// PutEvents takes at most this many entries per call.
pub const MAX_ENTRIES_PER_CALL: usize = 10;

/// Error codes of entries worth sending again.
const TRANSIENT: &[&str] = &[
    "ThrottlingException",
    "InternalFailure",
    "InternalException",
];

/// Publishes events to one EventBridge bus.
#[derive(Debug, Clone)]
pub struct EventBridgePublisher {
    client: Client,
    bus_name: String,
}

impl EventBridgePublisher {
    /// A publisher to `bus_name` (a name or an ARN; `default` is the account's default bus).
    pub fn new(client: Client, bus_name: impl Into<String>) -> Self {
        Self {
            client,
            bus_name: bus_name.into(),
        }
    }

    /// The bus events go to.
    pub fn bus_name(&self) -> &str {
        &self.bus_name
    }

    fn entry(&self, event: &EventEntry) -> PutEventsRequestEntry {
        PutEventsRequestEntry::builder()
            .source(&event.source)
            .detail_type(&event.detail_type)
            .detail(event.detail.to_string())
            .set_resources(Some(event.resources.clone()))
            // An unreadable time is left out: EventBridge then uses the time it receives the entry.
            .set_time(
                event
                    .time
                    .as_deref()
                    .and_then(|t| DateTime::from_str(t, DateTimeFormat::DateTime).ok()),
            )
            .event_bus_name(&self.bus_name)
            .build()
    }

    /// Put one batch; entries that failed transiently are put again once. What still fails is
    /// [`PortError::Unavailable`] when every failure was transient.
    async fn put_batch(&self, batch: Vec<PutEventsRequestEntry>) -> Result<(), PortError> {
        let mut pending = batch;
        let mut failures: Vec<String> = Vec::new();
        let mut lasting = false;
        for attempt in 1..=2 {
            if pending.is_empty() {
                break;
            }
            let out = self
                .client
                .put_events()
                .set_entries(Some(pending.clone()))
                .send()
                .await
                .map_err(|e| call_failed("PutEvents", &e))?;
            let mut retry = Vec::new();
            let mut coded = 0;
            // Results are in the order of the entries sent.
            for (entry, result) in pending.iter().zip(out.entries()) {
                let Some(code) = result.error_code() else {
                    continue;
                };
                coded += 1;
                if attempt == 1 && TRANSIENT.contains(&code) {
                    retry.push(entry.clone());
                } else {
                    lasting |= !TRANSIENT.contains(&code);
                    failures.push(match result.error_message() {
                        Some(message) => format!("{code} ({message})"),
                        None => code.to_string(),
                    });
                }
            }
            let uncoded = usize::try_from(out.failed_entry_count()).unwrap_or(0);
            if uncoded > coded {
                lasting = true;
                failures.push(format!(
                    "{} entries failed without an error code",
                    uncoded - coded
                ));
            }
            pending = retry;
        }
        if failures.is_empty() {
            return Ok(());
        }
        let message = format!(
            "PutEvents to bus {}: {} failed: {}",
            self.bus_name,
            if failures.len() == 1 {
                "1 entry".to_string()
            } else {
                format!("{} entries", failures.len())
            },
            failures.join(", ")
        );
        Err(if lasting {
            PortError::Other(message)
        } else {
            PortError::Unavailable(message)
        })
    }
}

#[async_trait]
impl EventPublisher for EventBridgePublisher {
    async fn publish(&self, entries: &[EventEntry]) -> Result<(), PortError> {
        let mut errors = Vec::new();
        for chunk in entries.chunks(MAX_ENTRIES_PER_CALL) {
            let batch = chunk.iter().map(|e| self.entry(e)).collect();
            if let Err(e) = self.put_batch(batch).await {
                errors.push(e);
            }
        }
        if errors.is_empty() {
            return Ok(());
        }
        // Retryable only when every batch's failure was.
        let retryable = errors.iter().all(PortError::is_retryable);
        let message = errors
            .iter()
            .map(PortError::message)
            .collect::<Vec<_>>()
            .join("; ");
        Err(if retryable {
            PortError::Unavailable(message)
        } else {
            PortError::Other(message)
        })
    }
}
