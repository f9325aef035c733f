//! [`ExecutionStore`] over the DynamoDB table `ExecutionsTable` (keys `pk`, `sk`; TTL attribute
//! `expiresAt`).
//!
//! Items:
//! - `pk = "EXEC#<id>"` holds everything about one execution, so a snapshot is one Query:
//!   - `sk = "EXECUTION"`: the execution;
//!   - `sk = "STAGE#<stage>#<attempt, 3 digits>"`: one stage execution per stage and attempt;
//!   - `sk = "ACTION#<stage>#<action>#<attempt, 3 digits>"`: one action execution per action and
//!     attempt (stage and action names cannot contain `#`);
//! - `pk = "PIPELINE#<name>"`, `sk = "EXEC#<start time, 15-digit ms>#<id>"`: the list index, a
//!   copy of the execution record, so ListPipelineExecutions (newest first) is one Query with
//!   `ScanIndexForward=false` (and `begins_with(sk, "EXEC#")`) and its token is the last `sk`
//!   returned. It is written in the same transaction as the `EXECUTION` item, every time (the
//!   start time never changes, so neither does its key);
//! - `pk = "PIPELINE#<name>"`, `sk = "STAGE#<stage>"`: the stage's latest-execution pointer, a
//!   copy of the stage execution record of the latest execution to enter the stage
//!   (`pipelineExecutionId`, `attempt`, `status`, `startTime` on top), so GetPipelineState finds
//!   every stage's latest execution with one Query (`begins_with(sk, "STAGE#")`). `put_stage`
//!   writes it after the stage item, on condition that it does not exist, names the same
//!   execution, or holds a `startTime` no later than this stage execution's: an older execution
//!   finishing a stage late never takes the pointer back from a newer one (a failed condition is
//!   not an error);
//! - `pk = "PIPELINE#<name>"`, `sk = "LOCK#<stage>"`: the stage lock of execution modes
//!   (`pipewright_core::locks::StageLock` in `record`: the execution in the stage and those
//!   waiting in front of it, with their parked `enterStage` task tokens) and its `version`.
//!   Replaced only by a PutItem conditional on the version it was read at
//!   (`attribute_not_exists(pk)` for version 0), so concurrent arrivals and releases serialize;
//! - `pk = "PIPELINE#<name>"`, `sk = "POLL"`: what the polls of the pipeline's sources with
//!   `PollForSourceChanges: true` have seen, written by [`crate::polling::DynamoPollStates`];
//! - `pk = "IDEMPOTENCY#<key>"`, `sk = "IDEMPOTENCY"`: an idempotency key (an event id, a webhook
//!   delivery id, a `clientRequestToken`) and the execution it started (`pipelineExecutionId`),
//!   claimed with `attribute_not_exists` in the transaction that creates the execution;
//! - `pk = sk = "SWEEP"`: when the last periodic sweep was claimed (`at`), so sweeps delivered
//!   close together (a schedule delivered twice) do the work once;
//! - outbox items (`pk = "OUTBOX#<execution id>"`, `sk = "<event id>"`, the event as JSON in
//!   `event`, kept two days) go to the events table ([`DynamoExecutionStore::with_events_table`]),
//!   in the same transaction as the change they report;
//! - `pk = "JOB#<action execution id>"`, `sk = "JOB"`: the job index (a job's id is its action
//!   execution's id), pointing at the action item (`pipelineExecutionId`, `stageName`,
//!   `actionName`, `attempt`) so PutJobSuccessResult / PutJobFailureResult find it with two
//!   GetItems. It is written in the same transaction as the new action item and never changes.
//!
//! Every item has `record` (the record as JSON, the only attribute read back), `expiresAt` (now +
//! 365 days, epoch seconds: CodePipeline keeps 12 months of history) and a few top-level
//! attributes for people reading the table (`status`, `startTime`, `lastUpdateTime`, names).
//! `status` is also what the conditional writes test: an execution is replaced only while its
//! status is one the caller expects, and an action completes only once.
//!
//! An action's task token lives only inside `record`: it is a secret, so records are never logged
//! and errors about them never quote them.

use std::collections::HashMap;
use std::time::Duration;

use std::sync::Arc;

use async_trait::async_trait;
use aws_sdk_dynamodb::config::AsyncSleep;
use aws_sdk_dynamodb::operation::put_item::PutItemError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeValue, Put, ReturnValuesOnConditionCheckFailure, TransactWriteItem,
};
use aws_sdk_dynamodb::Client;
use pipewright_core::engine::ExecutionStore;
use pipewright_core::events::EventEntry;
use pipewright_core::execution::{
    ActionExecution, ActionExecutionStatus, ExecutionSnapshot, PipelineExecution,
    PipelineExecutionStatus, StageExecution,
};
use pipewright_core::locks::StageLock;
use pipewright_core::store::{Page, StoreError};
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;

use crate::task_tokens::TokenSeal;

/// How long records are kept: 365 days, in seconds.
pub const RETENTION_SECONDS: u64 = 365 * 24 * 60 * 60;
/// How long outbox items are kept: 2 days, longer than the stream keeps a record (24 hours), so
/// a record the publisher reads again still names an item that exists.
pub const OUTBOX_RETENTION_SECONDS: u64 = 2 * 24 * 60 * 60;

const EXECUTION_SK: &str = "EXECUTION";
/// `pk` and `sk` of the item recording when the last periodic sweep was claimed (`at`).
const SWEEP_KEY: &str = "SWEEP";
const IDEMPOTENCY_SK: &str = "IDEMPOTENCY";
const JOB_SK: &str = "JOB";
/// Attempts of a transaction that lost to a concurrent one (`TransactionConflict`).
const TRANSACTION_ATTEMPTS: u32 = 3;

type Item = HashMap<String, AttributeValue>;

/// Execution records in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoExecutionStore {
    client: Client,
    table: String,
    /// Where outbox items go (the stack's `EventsTable`; the executions table when not set).
    events_table: String,
    /// Seals the task tokens of records written and opens those of records read; without it
    /// tokens are written as they are and read as they are stored.
    seal: Option<Arc<TokenSeal>>,
}

impl DynamoExecutionStore {
    /// A store over `table` (outbox items in it too, until [`Self::with_events_table`]).
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        let table = table.into();
        Self {
            client,
            events_table: table.clone(),
            table,
            seal: None,
        }
    }

    /// The same store sealing task tokens at rest with `seal` (see [`crate::task_tokens`]).
    pub fn with_token_seal(mut self, seal: Option<TokenSeal>) -> Self {
        self.seal = seal.map(Arc::new);
        self
    }

    /// `record` as the JSON it is stored as: its task tokens sealed.
    async fn sealed<T: Serialize>(&self, record: &T) -> Result<Value, StoreError> {
        let mut value = serde_json::to_value(record).map_err(|e| {
            StoreError::Corrupt(format!("cannot encode record: {}", json_error(&e)))
        })?;
        if let Some(seal) = &self.seal {
            crate::task_tokens::seal_record(seal, &mut value)
                .await
                .map_err(StoreError::Backend)?;
        }
        Ok(value)
    }

    /// The action a pointer item (a job's, a piece of work's) names, as currently recorded.
    async fn follow_pointer(
        &self,
        pointer_key: Item,
    ) -> Result<Option<ActionExecution>, StoreError> {
        let get = |key: Item| {
            self.client
                .get_item()
                .table_name(&self.table)
                .set_key(Some(key))
                .consistent_read(true)
                .send()
        };
        let out = get(pointer_key).await.map_err(|e| backend("GetItem", e))?;
        let Some(index) = out.item().filter(|i| !i.is_empty()) else {
            return Ok(None);
        };
        let pointer: JobPointer = record_of(index)?;
        let out = get(key(
            execution_pk(&pointer.pipeline_execution_id),
            action_sk(&pointer.stage_name, &pointer.action_name, pointer.attempt),
        ))
        .await
        .map_err(|e| backend("GetItem", e))?;
        // An action item gone (expired) takes its job with it.
        match out.item().filter(|i| !i.is_empty()) {
            Some(item) => Ok(Some(self.opened(item).await?)),
            None => Ok(None),
        }
    }

    /// The record of `item` with its task tokens opened (sealed ones stay sealed in a store
    /// without the key). A record without a sealed token is decoded directly.
    async fn opened<T: DeserializeOwned>(&self, item: &Item) -> Result<T, StoreError> {
        let holds_sealed = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .is_some_and(|r| r.contains(crate::task_tokens::SEALED_PREFIX));
        let Some(seal) = self.seal.as_ref().filter(|_| holds_sealed) else {
            return record_of(item);
        };
        let mut value: Value = record_of(item)?;
        crate::task_tokens::open_record(seal, &mut value)
            .await
            .map_err(StoreError::Backend)?;
        serde_json::from_value(value)
            .map_err(|e| StoreError::Corrupt(format!("a record: {}", json_error(&e))))
    }

    /// The same store with its outbox items in `table` (written in the same transactions).
    pub fn with_events_table(mut self, table: impl Into<String>) -> Self {
        self.events_table = table.into();
        self
    }

    /// A transaction Put into the outbox table.
    fn put_event(&self, item: Item) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.events_table)
            .set_item(Some(item))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// A transaction Put; when its condition fails, the item as it was comes back in the
    /// cancellation reason.
    fn put(&self, item: Item, condition: Option<&str>) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .set_condition_expression(condition.map(str::to_string))
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld)
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// Run a transaction. A transaction that lost to a concurrent one (`TransactionConflict`) is
    /// tried again; one whose condition failed ends as [`Outcome::ConditionFailed`].
    async fn transact(&self, items: Vec<TransactWriteItem>) -> Result<Outcome, StoreError> {
        let mut attempt = 1;
        loop {
            let result = self
                .client
                .transact_write_items()
                .set_transact_items(Some(items.clone()))
                .send()
                .await;
            let err = match result {
                Ok(_) => return Ok(Outcome::Written),
                Err(err) => err,
            };
            let reasons: Vec<Reason> = match err.as_service_error() {
                Some(TransactWriteItemsError::TransactionCanceledException(e)) => e
                    .cancellation_reasons()
                    .iter()
                    .map(|r| Reason {
                        code: r.code().unwrap_or("None").to_string(),
                        old: r.item().filter(|i| !i.is_empty()).cloned(),
                    })
                    .collect(),
                _ => return Err(backend("TransactWriteItems", err)),
            };
            if reasons.iter().any(|r| r.failed()) {
                return Ok(Outcome::ConditionFailed(reasons));
            }
            if reasons.iter().any(|r| r.code == "TransactionConflict")
                && attempt < TRANSACTION_ATTEMPTS
            {
                self.pause(Duration::from_millis(50 * u64::from(attempt)))
                    .await;
                attempt += 1;
                continue;
            }
            let codes: Vec<&str> = reasons.iter().map(|r| r.code.as_str()).collect();
            return Err(StoreError::Backend(format!(
                "TransactWriteItems cancelled: [{}]",
                codes.join(", ")
            )));
        }
    }

    /// A short pause between attempts, with the SDK's own sleep (no timer runtime of our own).
    async fn pause(&self, duration: Duration) {
        if let Some(sleep) = self.client.config().sleep_impl() {
            sleep.sleep(duration).await;
        }
    }

    /// PutItem with `condition`, and the `events` of the change into the outbox in the same
    /// transaction; when the condition fails, nothing is written and `conflict` is given the
    /// item as it was.
    async fn put_item(
        &self,
        item: Item,
        condition: &str,
        expected: Option<&str>,
        events: &[EventEntry],
        conflict: impl FnOnce(Option<&Item>) -> String,
    ) -> Result<(), StoreError> {
        if !events.is_empty() {
            let mut put = Put::builder()
                .table_name(&self.table)
                .set_item(Some(item))
                .condition_expression(condition)
                .return_values_on_condition_check_failure(
                    ReturnValuesOnConditionCheckFailure::AllOld,
                );
            if let Some(status) = expected {
                put = put
                    .expression_attribute_names("#status", "status")
                    .expression_attribute_values(
                        ":expected",
                        AttributeValue::S(status.to_string()),
                    );
            }
            let put = put
                .build()
                .map_err(|e| StoreError::Backend(e.to_string()))?;
            let mut items = vec![TransactWriteItem::builder().put(put).build()];
            items.extend(self.outbox(events)?);
            return match self.transact(items).await? {
                Outcome::Written => Ok(()),
                Outcome::ConditionFailed(reasons) => Err(StoreError::Conflict(conflict(
                    reasons.first().and_then(|r| r.old.as_ref()),
                ))),
            };
        }
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if let Some(status) = expected {
            request = request
                .expression_attribute_names("#status", "status")
                .expression_attribute_values(":expected", AttributeValue::S(status.to_string()));
        }
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(PutItemError::ConditionalCheckFailedException(failed)) => Err(
                    StoreError::Conflict(conflict(failed.item().filter(|i| !i.is_empty()))),
                ),
                _ => Err(backend("PutItem", e)),
            },
        }
    }

    /// The outbox items of `events`: one Put each, unconditional (an event written again under
    /// its id replaces itself, and the publisher sends only new items).
    fn outbox(&self, events: &[EventEntry]) -> Result<Vec<TransactWriteItem>, StoreError> {
        events
            .iter()
            .map(|event| self.put_event(outbox_item(event)?))
            .collect()
    }

    async fn execution_of_idempotency_key(&self, key: &str) -> Result<String, StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(idempotency_key(key)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        out.item()
            .and_then(|item| item.get("pipelineExecutionId"))
            .and_then(|v| v.as_s().ok())
            .cloned()
            .ok_or_else(|| {
                StoreError::Backend(format!(
                    "idempotency key {key} was claimed, but its item cannot be read"
                ))
            })
    }
}

/// How a transaction ended.
enum Outcome {
    /// Every item was written.
    Written,
    /// Nothing was written: a condition failed. The reasons, in item order.
    ConditionFailed(Vec<Reason>),
}

/// Why one item of a cancelled transaction was not written.
struct Reason {
    /// `None`, `ConditionalCheckFailed`, `TransactionConflict`, ...
    code: String,
    /// The item as it was, when its condition failed and it existed.
    old: Option<Item>,
}

impl Reason {
    fn failed(&self) -> bool {
        self.code == "ConditionalCheckFailed"
    }
}

/// The `status` attribute of an item.
fn status_of(item: &Item) -> Option<&str> {
    item.get("status")
        .and_then(|v| v.as_s().ok())
        .map(String::as_str)
}

fn key(pk: String, sk: String) -> Item {
    HashMap::from([
        ("pk".to_string(), AttributeValue::S(pk)),
        ("sk".to_string(), AttributeValue::S(sk)),
    ])
}

fn execution_pk(id: &str) -> String {
    format!("EXEC#{id}")
}

fn stage_sk(stage: &str, attempt: u32) -> String {
    format!("STAGE#{stage}#{attempt:03}")
}

fn action_sk(stage: &str, action: &str, attempt: u32) -> String {
    format!("ACTION#{stage}#{action}#{attempt:03}")
}

fn list_pk(pipeline: &str) -> String {
    format!("PIPELINE#{pipeline}")
}

/// The `sk` prefix of the list index items under [`list_pk`].
const LIST_SK_PREFIX: &str = "EXEC#";
/// The `sk` prefix of the stage pointers under [`list_pk`].
const STAGE_POINTER_SK_PREFIX: &str = "STAGE#";

/// `LOCK#<stage>`: the stage's lock under [`list_pk`].
fn stage_lock_sk(stage: &str) -> String {
    format!("LOCK#{stage}")
}

/// `STAGE#<stage>`: the stage's latest-execution pointer under [`list_pk`].
fn stage_pointer_sk(stage: &str) -> String {
    format!("{STAGE_POINTER_SK_PREFIX}{stage}")
}

/// `EXEC#<start time in ms, 15 digits>#<id>`: sorts by start time (15 digits last until the
/// year 33658).
fn list_sk(execution: &PipelineExecution) -> String {
    let millis = (execution.start_time * 1000.0).round().max(0.0) as u64;
    format!(
        "{LIST_SK_PREFIX}{millis:015}#{}",
        execution.pipeline_execution_id
    )
}

fn job_key(job_id: &str) -> Item {
    key(format!("JOB#{job_id}"), JOB_SK.to_string())
}

/// `WORK#<work>`: the pointer from a service's id of work an action started to the action.
fn work_key(work: &str) -> Item {
    key(format!("WORK#{work}"), JOB_SK.to_string())
}

/// The job index item of a new action execution.
fn job_item(a: &ActionExecution) -> Result<Item, StoreError> {
    job_pointer_item(job_key(&a.action_execution_id), a)
}

/// A pointer item at `key` naming action execution `a`.
fn job_pointer_item(key: Item, a: &ActionExecution) -> Result<Item, StoreError> {
    let pointer = JobPointer {
        job_id: a.action_execution_id.clone(),
        pipeline_execution_id: a.pipeline_execution_id.clone(),
        stage_name: a.stage_name.clone(),
        action_name: a.action_name.clone(),
        attempt: a.attempt,
    };
    item(
        key,
        &pointer,
        vec![
            (
                "pipelineExecutionId",
                AttributeValue::S(a.pipeline_execution_id.clone()),
            ),
            ("stageName", AttributeValue::S(a.stage_name.clone())),
            ("actionName", AttributeValue::S(a.action_name.clone())),
            ("attempt", number(a.attempt)),
        ],
    )
}

/// What a job index item points at.
#[derive(Debug, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct JobPointer {
    job_id: String,
    pipeline_execution_id: String,
    stage_name: String,
    action_name: String,
    attempt: u32,
}

fn idempotency_key(key: &str) -> Item {
    self::key(format!("IDEMPOTENCY#{key}"), IDEMPOTENCY_SK.to_string())
}

/// The outbox item of `event`: `pk = "OUTBOX#<execution id>"`, `sk = "<event id>"`, the entry
/// as JSON in `event`, kept [`OUTBOX_RETENTION_SECONDS`].
fn outbox_item(event: &EventEntry) -> Result<Item, StoreError> {
    let id = event.event_id().ok_or_else(|| {
        StoreError::Corrupt(format!("a {} event has no event id", event.detail_type))
    })?;
    let execution = event
        .detail
        .get("execution-id")
        .and_then(|v| v.as_str())
        .unwrap_or_default();
    let json = serde_json::to_string(event)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode event: {}", json_error(&e))))?;
    let mut item = key(
        format!("{}{execution}", pipewright_core::outbox::PK_PREFIX),
        id.to_string(),
    );
    item.insert(
        pipewright_core::outbox::EVENT_ATTRIBUTE.into(),
        AttributeValue::S(json),
    );
    item.insert(
        "expiresAt".into(),
        number(crate::now() as u64 + OUTBOX_RETENTION_SECONDS),
    );
    Ok(item)
}

fn number(n: impl ToString) -> AttributeValue {
    AttributeValue::N(n.to_string())
}

fn expires_at() -> AttributeValue {
    number(crate::now() as u64 + RETENTION_SECONDS)
}

/// An item: `key`, the record as JSON, `expiresAt`, and `attributes` for people.
fn item<T: Serialize>(
    key: Item,
    record: &T,
    attributes: Vec<(&str, AttributeValue)>,
) -> Result<Item, StoreError> {
    let json = serde_json::to_string(record)
        .map_err(|e| StoreError::Corrupt(format!("cannot encode record: {}", json_error(&e))))?;
    let mut item = key;
    item.insert("record".into(), AttributeValue::S(json));
    item.insert("expiresAt".into(), expires_at());
    for (name, value) in attributes {
        item.insert(name.to_string(), value);
    }
    Ok(item)
}

fn execution_item(key: Item, e: &PipelineExecution) -> Result<Item, StoreError> {
    item(
        key,
        e,
        vec![
            ("status", AttributeValue::S(e.status.as_str().into())),
            ("pipelineName", AttributeValue::S(e.pipeline_name.clone())),
            ("pipelineVersion", number(e.pipeline_version)),
            (
                "pipelineExecutionId",
                AttributeValue::S(e.pipeline_execution_id.clone()),
            ),
            ("startTime", number(e.start_time)),
            ("lastUpdateTime", number(e.last_update_time)),
        ],
    )
}

fn stage_item(s: &StageExecution) -> Result<Item, StoreError> {
    item(
        key(
            execution_pk(&s.pipeline_execution_id),
            stage_sk(&s.stage_name, s.attempt),
        ),
        s,
        vec![
            ("status", AttributeValue::S(s.status.as_str().into())),
            ("stageName", AttributeValue::S(s.stage_name.clone())),
            ("attempt", number(s.attempt)),
            ("startTime", number(s.start_time)),
            ("lastUpdateTime", number(s.last_update_time)),
        ],
    )
}

/// The latest-execution pointer of stage `s.stage_name` of pipeline `pipeline`.
fn stage_pointer_item(pipeline: &str, s: &StageExecution) -> Result<Item, StoreError> {
    item(
        key(list_pk(pipeline), stage_pointer_sk(&s.stage_name)),
        s,
        vec![
            ("status", AttributeValue::S(s.status.as_str().into())),
            ("pipelineName", AttributeValue::S(pipeline.to_string())),
            ("stageName", AttributeValue::S(s.stage_name.clone())),
            (
                "pipelineExecutionId",
                AttributeValue::S(s.pipeline_execution_id.clone()),
            ),
            ("attempt", number(s.attempt)),
            ("startTime", number(s.start_time)),
            ("lastUpdateTime", number(s.last_update_time)),
        ],
    )
}

/// The item of action execution `a`, whose record is stored as `record` (tokens sealed).
fn action_item(a: &ActionExecution, record: &Value) -> Result<Item, StoreError> {
    item(
        key(
            execution_pk(&a.pipeline_execution_id),
            action_sk(&a.stage_name, &a.action_name, a.attempt),
        ),
        record,
        vec![
            ("status", AttributeValue::S(a.status.as_str().into())),
            ("stageName", AttributeValue::S(a.stage_name.clone())),
            ("actionName", AttributeValue::S(a.action_name.clone())),
            (
                "actionExecutionId",
                AttributeValue::S(a.action_execution_id.clone()),
            ),
            ("attempt", number(a.attempt)),
            ("startTime", number(a.start_time)),
            ("lastUpdateTime", number(a.last_update_time)),
        ],
    )
}

/// The record of `item`, decoded. Errors name the item's `sk` and where the JSON broke, never
/// the JSON itself (it may hold a task token).
fn record_of<T: DeserializeOwned>(item: &Item) -> Result<T, StoreError> {
    let sk = item
        .get("sk")
        .and_then(|v| v.as_s().ok())
        .map_or("?", |s| s);
    let json = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt(format!("item {sk} has no `record` attribute")))?;
    serde_json::from_str(json)
        .map_err(|e| StoreError::Corrupt(format!("item {sk}: {}", json_error(&e))))
}

/// A serde_json error described without quoting the data it failed on.
fn json_error(e: &serde_json::Error) -> String {
    format!(
        "{:?} error in the record JSON at line {} column {}",
        e.classify(),
        e.line(),
        e.column()
    )
}

/// Delete every item of partition `pk` of `table` (a Query for the keys, a DeleteItem each).
pub(crate) async fn delete_partition(
    client: &Client,
    table: &str,
    pk: &str,
) -> Result<(), StoreError> {
    let mut start: Option<Item> = None;
    loop {
        let page = client
            .query()
            .table_name(table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(pk.to_string()))
            .projection_expression("pk, sk")
            .set_exclusive_start_key(start.take())
            .send()
            .await
            .map_err(|e| backend("Query", e))?;
        for key in page.items() {
            client
                .delete_item()
                .table_name(table)
                .set_key(Some(key.clone()))
                .send()
                .await
                .map_err(|e| backend("DeleteItem", e))?;
        }
        match page.last_evaluated_key() {
            Some(k) if !k.is_empty() => start = Some(k.clone()),
            _ => return Ok(()),
        }
    }
}

fn backend<E: std::error::Error + 'static>(call: &str, err: E) -> StoreError {
    StoreError::Backend(crate::error_chain(call, &err))
}

/// Whether a PutItem failed only because its condition did not hold.
pub(crate) fn refused_by_condition<R>(
    err: &aws_sdk_dynamodb::error::SdkError<PutItemError, R>,
) -> bool {
    matches!(
        err.as_service_error(),
        Some(PutItemError::ConditionalCheckFailedException(_))
    )
}

#[async_trait]
impl ExecutionStore for DynamoExecutionStore {
    async fn create_execution(
        &self,
        execution: &PipelineExecution,
        idempotency_key: Option<&str>,
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        let id = &execution.pipeline_execution_id;
        let mut items = vec![
            self.put(
                execution_item(key(execution_pk(id), EXECUTION_SK.into()), execution)?,
                Some("attribute_not_exists(pk)"),
            )?,
            self.put(
                execution_item(
                    key(list_pk(&execution.pipeline_name), list_sk(execution)),
                    execution,
                )?,
                Some("attribute_not_exists(pk)"),
            )?,
        ];
        if let Some(claim) = idempotency_key {
            let record = serde_json::json!({
                "idempotencyKey": claim,
                "pipelineName": execution.pipeline_name,
                "pipelineExecutionId": id,
            });
            let claim_item = item(
                self::idempotency_key(claim),
                &record,
                vec![
                    ("pipelineExecutionId", AttributeValue::S(id.clone())),
                    (
                        "pipelineName",
                        AttributeValue::S(execution.pipeline_name.clone()),
                    ),
                    ("startTime", number(execution.start_time)),
                ],
            )?;
            items.push(self.put(claim_item, Some("attribute_not_exists(pk)"))?);
        }
        // After the claim: its reason is the third.
        items.extend(self.outbox(events)?);
        let reasons = match self.transact(items).await? {
            Outcome::Written => return Ok(()),
            Outcome::ConditionFailed(reasons) => reasons,
        };
        let claim = reasons.get(2).filter(|r| r.failed());
        match (idempotency_key, claim) {
            (Some(key), Some(reason)) => {
                let earlier = reason
                    .old
                    .as_ref()
                    .and_then(|item| item.get("pipelineExecutionId"))
                    .and_then(|v| v.as_s().ok())
                    .cloned();
                match earlier {
                    Some(earlier) => Err(StoreError::Conflict(earlier)),
                    None => Err(StoreError::Conflict(
                        self.execution_of_idempotency_key(key).await?,
                    )),
                }
            }
            _ => Err(StoreError::Conflict(format!(
                "pipeline execution {id} exists"
            ))),
        }
    }

    async fn snapshot(
        &self,
        pipeline_execution_id: &str,
    ) -> Result<Option<ExecutionSnapshot>, StoreError> {
        let mut execution = None;
        let mut stages: Vec<StageExecution> = Vec::new();
        let mut actions: Vec<ActionExecution> = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk")
                .expression_attribute_values(
                    ":pk",
                    AttributeValue::S(execution_pk(pipeline_execution_id)),
                )
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            for item in page.items() {
                let sk = item.get("sk").and_then(|v| v.as_s().ok()).map_or("", |s| s);
                if sk == EXECUTION_SK {
                    execution = Some(record_of::<PipelineExecution>(item)?);
                } else if sk.starts_with("STAGE#") {
                    stages.push(record_of(item)?);
                } else if sk.starts_with("ACTION#") {
                    actions.push(self.opened(item).await?);
                }
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        let Some(execution) = execution else {
            return Ok(None);
        };
        // Chronological, then by name and attempt (the key order).
        stages.sort_by(|a, b| {
            a.start_time
                .total_cmp(&b.start_time)
                .then_with(|| a.stage_name.cmp(&b.stage_name))
                .then_with(|| a.attempt.cmp(&b.attempt))
        });
        actions.sort_by(|a, b| {
            a.start_time
                .total_cmp(&b.start_time)
                .then_with(|| a.stage_name.cmp(&b.stage_name))
                .then_with(|| a.action_name.cmp(&b.action_name))
                .then_with(|| a.attempt.cmp(&b.attempt))
        });
        Ok(Some(ExecutionSnapshot {
            execution,
            stages,
            actions,
        }))
    }

    async fn put_execution(
        &self,
        execution: &PipelineExecution,
        expected: &[PipelineExecutionStatus],
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        let id = &execution.pipeline_execution_id;
        let (condition, values) = if expected.is_empty() {
            ("attribute_exists(pk)".to_string(), Vec::new())
        } else {
            let names: Vec<String> = (0..expected.len()).map(|i| format!(":s{i}")).collect();
            let values = names
                .iter()
                .zip(expected)
                .map(|(n, s)| (n.clone(), AttributeValue::S(s.as_str().to_string())))
                .collect();
            (format!("#status IN ({})", names.join(", ")), values)
        };
        let mut put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(execution_item(
                key(execution_pk(id), EXECUTION_SK.into()),
                execution,
            )?))
            .condition_expression(&condition)
            .return_values_on_condition_check_failure(ReturnValuesOnConditionCheckFailure::AllOld);
        if !values.is_empty() {
            put = put.expression_attribute_names("#status", "status");
        }
        for (name, value) in values {
            put = put.expression_attribute_values(name, value);
        }
        let put = put
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        let mut items = vec![
            TransactWriteItem::builder().put(put).build(),
            self.put(
                execution_item(
                    key(list_pk(&execution.pipeline_name), list_sk(execution)),
                    execution,
                )?,
                None,
            )?,
        ];
        items.extend(self.outbox(events)?);
        let reasons = match self.transact(items).await? {
            Outcome::Written => return Ok(()),
            Outcome::ConditionFailed(reasons) => reasons,
        };
        match reasons.first().and_then(|r| r.old.as_ref()) {
            None => Err(StoreError::NotFound(format!("pipeline execution {id}"))),
            Some(old) => {
                let expected: Vec<&str> = expected.iter().map(|s| s.as_str()).collect();
                Err(StoreError::Conflict(format!(
                    "pipeline execution {id} is {}, not {}",
                    status_of(old).unwrap_or("without a status"),
                    expected.join(" or ")
                )))
            }
        }
    }

    async fn put_stage(
        &self,
        pipeline_name: &str,
        stage: &StageExecution,
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        if events.is_empty() {
            self.client
                .put_item()
                .table_name(&self.table)
                .set_item(Some(stage_item(stage)?))
                .send()
                .await
                .map_err(|e| backend("PutItem", e))?;
        } else {
            let mut items = vec![self.put(stage_item(stage)?, None)?];
            items.extend(self.outbox(events)?);
            if let Outcome::ConditionFailed(_) = self.transact(items).await? {
                return Err(StoreError::Backend(
                    "TransactWriteItems: a stage write without conditions was refused".into(),
                ));
            }
        }
        // The pointer after the record: a reader following it always finds the record.
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(stage_pointer_item(pipeline_name, stage)?))
            .condition_expression(
                "attribute_not_exists(pk) OR pipelineExecutionId = :id OR startTime <= :start",
            )
            .expression_attribute_values(
                ":id",
                AttributeValue::S(stage.pipeline_execution_id.clone()),
            )
            .expression_attribute_values(":start", number(stage.start_time))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            // A newer execution holds the pointer.
            Err(e) if refused_by_condition(&e) => Ok(()),
            Err(e) => Err(backend("PutItem", e)),
        }
    }

    async fn forget_pipeline(&self, pipeline_name: &str) -> Result<(), StoreError> {
        delete_partition(&self.client, &self.table, &list_pk(pipeline_name)).await
    }

    async fn claim_sweep(&self, now: f64, interval: f64) -> Result<bool, StoreError> {
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(HashMap::from([
                ("pk".to_string(), AttributeValue::S(SWEEP_KEY.into())),
                ("sk".to_string(), AttributeValue::S(SWEEP_KEY.into())),
                ("at".to_string(), number(now)),
            ])))
            .condition_expression("attribute_not_exists(pk) OR #at < :cutoff")
            .expression_attribute_names("#at", "at")
            .expression_attribute_values(":cutoff", number(now - interval))
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(e) if refused_by_condition(&e) => Ok(false),
            Err(e) => Err(backend("PutItem", e)),
        }
    }

    async fn latest_stage_executions(
        &self,
        pipeline_name: &str,
    ) -> Result<Vec<StageExecution>, StoreError> {
        let mut stages = Vec::new();
        let mut start: Option<Item> = None;
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(list_pk(pipeline_name)))
                .expression_attribute_values(
                    ":prefix",
                    AttributeValue::S(STAGE_POINTER_SK_PREFIX.into()),
                )
                .consistent_read(true)
                .set_exclusive_start_key(start.take())
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            for item in page.items() {
                stages.push(record_of(item)?);
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() => start = Some(k.clone()),
                _ => break,
            }
        }
        Ok(stages)
    }

    async fn stage_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
    ) -> Result<(StageLock, u64), StoreError> {
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key(list_pk(pipeline_name), stage_lock_sk(stage))))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        let Some(item) = out.item().filter(|i| !i.is_empty()) else {
            return Ok((StageLock::default(), 0));
        };
        let version = item
            .get("version")
            .and_then(|v| v.as_n().ok())
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| {
                StoreError::Corrupt(format!("the lock of stage {stage} has no version"))
            })?;
        Ok((self.opened(item).await?, version))
    }

    async fn put_stage_lock(
        &self,
        pipeline_name: &str,
        stage: &str,
        lock: &StageLock,
        version: u64,
    ) -> Result<(), StoreError> {
        let item = item(
            key(list_pk(pipeline_name), stage_lock_sk(stage)),
            &self.sealed(lock).await?,
            vec![
                ("version", number(version + 1)),
                ("pipelineName", AttributeValue::S(pipeline_name.to_string())),
                ("stageName", AttributeValue::S(stage.to_string())),
                (
                    "holder",
                    AttributeValue::S(lock.holder.clone().unwrap_or_default()),
                ),
                ("waiting", number(lock.waiting.len())),
            ],
        )?;
        let mut request = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item));
        request = if version == 0 {
            request.condition_expression("attribute_not_exists(pk)")
        } else {
            request
                .condition_expression("version = :version")
                .expression_attribute_values(":version", number(version))
        };
        match request.send().await {
            Ok(_) => Ok(()),
            Err(e) if refused_by_condition(&e) =>
            {
                Err(StoreError::Conflict(format!(
                    "the lock of stage {stage} of pipeline {pipeline_name} changed since version {version}"
                )))
            }
            Err(e) => Err(backend("PutItem", e)),
        }
    }

    async fn put_action(
        &self,
        action: &ActionExecution,
        expected: Option<ActionExecutionStatus>,
        events: &[EventEntry],
    ) -> Result<(), StoreError> {
        let what = format!(
            "action {}/{} attempt {} of pipeline execution {}",
            action.stage_name, action.action_name, action.attempt, action.pipeline_execution_id
        );
        let item = action_item(action, &self.sealed(action).await?)?;
        match expected {
            None => {
                // A new action claims its job id in the same transaction.
                let mut items = vec![
                    self.put(item, Some("attribute_not_exists(pk)"))?,
                    self.put(job_item(action)?, Some("attribute_not_exists(pk)"))?,
                ];
                items.extend(self.outbox(events)?);
                match self.transact(items).await? {
                    Outcome::Written => Ok(()),
                    Outcome::ConditionFailed(reasons) => {
                        match reasons.first().filter(|r| r.failed()) {
                            Some(r) => {
                                let status =
                                    r.old.as_ref().and_then(status_of).unwrap_or("recorded");
                                Err(StoreError::Conflict(format!(
                                    "{what} exists (it is {status})"
                                )))
                            }
                            None => Err(StoreError::Conflict(format!(
                                "job {} exists",
                                action.action_execution_id
                            ))),
                        }
                    }
                }
            }
            Some(status) => {
                let expected = status.as_str();
                self.put_item(
                    item,
                    "#status = :expected",
                    Some(expected),
                    events,
                    |old| match old {
                        Some(old) => format!(
                            "{what} is {}, not {expected}",
                            status_of(old).unwrap_or("without a status")
                        ),
                        None => format!("{what} does not exist"),
                    },
                )
                .await
            }
        }
    }

    async fn point_work(&self, work: &str, action: &ActionExecution) -> Result<(), StoreError> {
        let item = job_pointer_item(work_key(work), action)?;
        self.client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(item))
            .send()
            .await
            .map_err(|e| backend("PutItem", e))?;
        Ok(())
    }

    async fn find_work(&self, work: &str) -> Result<Option<ActionExecution>, StoreError> {
        self.follow_pointer(work_key(work)).await
    }

    async fn find_job(&self, job_id: &str) -> Result<Option<ActionExecution>, StoreError> {
        self.follow_pointer(job_key(job_id)).await
    }

    async fn list_executions(
        &self,
        pipeline_name: &str,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineExecution>, StoreError> {
        let wanted = limit.saturating_add(1);
        if next_token.is_some_and(|t| !t.is_empty() && !t.starts_with(LIST_SK_PREFIX)) {
            // Not a token this store issued (the Query would refuse a start key outside its
            // `begins_with`): nothing follows it.
            return Ok(Page {
                items: Vec::new(),
                next_token: None,
            });
        }
        let mut start = next_token
            .filter(|t| !t.is_empty())
            .map(|t| key(list_pk(pipeline_name), t.to_string()));
        let mut items: Vec<(String, PipelineExecution)> = Vec::new();
        loop {
            let page = self
                .client
                .query()
                .table_name(&self.table)
                .key_condition_expression("pk = :pk AND begins_with(sk, :prefix)")
                .expression_attribute_values(":pk", AttributeValue::S(list_pk(pipeline_name)))
                .expression_attribute_values(":prefix", AttributeValue::S(LIST_SK_PREFIX.into()))
                .scan_index_forward(false)
                .set_exclusive_start_key(start.take())
                .limit(i32::try_from(wanted - items.len()).unwrap_or(i32::MAX))
                .send()
                .await
                .map_err(|e| backend("Query", e))?;
            for item in page.items() {
                let sk = item
                    .get("sk")
                    .and_then(|v| v.as_s().ok())
                    .cloned()
                    .unwrap_or_default();
                items.push((sk, record_of(item)?));
            }
            match page.last_evaluated_key() {
                Some(k) if !k.is_empty() && items.len() < wanted => start = Some(k.clone()),
                _ => break,
            }
        }
        let next_token = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|(sk, _)| sk.clone())
        } else {
            None
        };
        Ok(Page {
            items: items.into_iter().map(|(_, e)| e).collect(),
            next_token,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_sort_as_documented() {
        assert_eq!(stage_sk("Build", 2), "STAGE#Build#002");
        assert_eq!(
            action_sk("Build", "Compile", 12),
            "ACTION#Build#Compile#012"
        );
        assert_eq!(execution_pk("e1"), "EXEC#e1");
        assert_eq!(list_pk("app"), "PIPELINE#app");
        assert_eq!(stage_pointer_sk("Build"), "STAGE#Build");
        // The list index and the stage pointers share a partition; their prefixes keep the
        // list Query (`begins_with(sk, "EXEC#")`) off the pointers.
        let e = "EXEC#000000000001000#e1";
        assert!(e.starts_with(LIST_SK_PREFIX) && !e.starts_with(STAGE_POINTER_SK_PREFIX));
        assert!(!stage_pointer_sk("EXEC").starts_with(LIST_SK_PREFIX));
    }

    #[test]
    fn corrupt_records_are_reported_without_their_content() {
        let item = HashMap::from([
            ("sk".to_string(), AttributeValue::S("ACTION#B#A#001".into())),
            (
                "record".to_string(),
                AttributeValue::S(r#"{"taskToken": 42, "secret": "s3cr3t"#.into()),
            ),
        ]);
        let err = record_of::<ActionExecution>(&item).unwrap_err().to_string();
        assert!(err.contains("ACTION#B#A#001"), "{err}");
        assert!(!err.contains("s3cr3t") && !err.contains("42"), "{err}");
    }
}
