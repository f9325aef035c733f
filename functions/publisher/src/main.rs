//! `publisher`: the event outbox's sender. The executions table's DynamoDB stream delivers every
//! change; the new outbox items among them (`OUTBOX#<execution id>`, written in the same
//! transaction as the state change they report) go to EventBridge in stream order, each with its
//! stable `detail.event-id` (`pipewright_core::outbox`).
//!
//! When any entry cannot be put, the invocation fails and the stream delivers the batch again
//! (the events already put go again with the same ids; consumers de-duplicate by them).
//!
//! Environment: `EVENT_BUS_NAME` (default `default`), `AWS_ENDPOINT_URL` and `AWS_REGION`.

use aws_lambda_events::event::dynamodb::{Event, EventRecord};
use lambda_runtime::{run, service_fn, Error, LambdaEvent};
use pipewright_aws::config::{self, Target};
use pipewright_aws::events::{EventBridgePublisher, DEFAULT_EVENT_BUS};
use pipewright_core::outbox::{self, StreamChange, EVENT_ATTRIBUTE};
use serde_json::{json, Value};

#[tokio::main]
async fn main() -> Result<(), Error> {
    pipewright_aws::logging::init();
    let target = Target::from_env();
    let sdk = config::load(&target).await;
    let bus = std::env::var("EVENT_BUS_NAME")
        .ok()
        .filter(|b| !b.is_empty())
        .unwrap_or_else(|| DEFAULT_EVENT_BUS.to_string());
    let publisher = EventBridgePublisher::new(aws_sdk_eventbridge::Client::new(&sdk), bus);
    run(service_fn(|event: LambdaEvent<Event>| {
        handle(&publisher, event)
    }))
    .await
}

/// Send the batch's new outbox items; fail (so the stream retries) when any was refused.
async fn handle(
    publisher: &EventBridgePublisher,
    event: LambdaEvent<Event>,
) -> Result<Value, Error> {
    let changes: Vec<StreamChange> = event.payload.records.iter().map(change_of).collect();
    let published = outbox::publish(publisher, &changes).await?;
    for why in &published.unreadable {
        // Retrying cannot make it readable: reported and left behind.
        tracing::error!(reason = %why, "an outbox item cannot be published");
    }
    tracing::info!(
        sent = published.sent,
        skipped = published.skipped,
        unreadable = published.unreadable.len(),
        "outbox batch"
    );
    Ok(json!({ "sent": published.sent }))
}

/// What the publisher reads of a stream record: its kind, `pk`, and the new image's event.
fn change_of(record: &EventRecord) -> StreamChange {
    let string = |item: &serde_dynamo::Item, name: &str| match item.get(name) {
        Some(serde_dynamo::AttributeValue::S(s)) => Some(s.clone()),
        _ => None,
    };
    StreamChange {
        event_name: record.event_name.clone(),
        pk: string(&record.change.keys, "pk").unwrap_or_default(),
        event: string(&record.change.new_image, EVENT_ATTRIBUTE),
    }
}
