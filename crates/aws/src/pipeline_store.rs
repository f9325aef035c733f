//! [`PipelineStore`] over the DynamoDB table `PipelinesTable` (keys `pk`, `sk`).
//!
//! Items:
//! - `pk = "PIPELINES"`, `sk = <name>`: the current version of each pipeline (one partition, so
//!   ListPipelines is a Query in name order with DynamoDB's own pagination);
//! - `pk = "PIPELINE#<name>"`, `sk = "VERSION#<10-digit version>"`: every version ever written,
//!   for GetPipeline with a version and for executions that run an older version.
//!
//! Both are written in one transaction with conditions, so two concurrent writers can never both
//! win and a version is never overwritten.
//!
//! Tags belong to the pipeline, not to a version: TagResource / UntagResource rewrite only the
//! current item's `record` (a PutItem conditioned on the `record` string read just before, so a
//! concurrent update, tag write or delete makes it lose), and the version items keep the tags
//! they were written with. The current item also carries the tags as their own attribute
//! (`tags`, JSON), and an update is conditioned on it as well as on the version: an update that
//! read the tags before a concurrent TagResource loses instead of overwriting them.

use std::collections::HashMap;

use async_trait::async_trait;
use aws_sdk_dynamodb::types::{AttributeValue, Put, ReturnValue, TransactWriteItem};
use aws_sdk_dynamodb::Client;
use pipewright_core::store::{Page, PipelineRecord, PipelineStore, StoreError, Tag};

use crate::pipeline_secrets::PipelineSecrets;

const LIST_PK: &str = "PIPELINES";

/// Pipelines in DynamoDB.
#[derive(Debug, Clone)]
pub struct DynamoPipelineStore {
    client: Client,
    table: String,
    /// Where plain secret configuration values go instead of the items; without it (no
    /// `PIPELINE_SECRET_PREFIX`) they are stored as given.
    secrets: Option<PipelineSecrets>,
}

impl DynamoPipelineStore {
    /// A store over `table`.
    pub fn new(client: Client, table: impl Into<String>) -> Self {
        Self {
            client,
            table: table.into(),
            secrets: None,
        }
    }

    /// The store, putting plain secret configuration values into `secrets` instead of items.
    pub fn with_secrets(mut self, secrets: Option<PipelineSecrets>) -> Self {
        self.secrets = secrets;
        self
    }

    /// `record` as it is stored: its plain secret values moved to the pipeline's secret.
    async fn sealed<'r>(
        &self,
        record: &'r PipelineRecord,
    ) -> Result<std::borrow::Cow<'r, PipelineRecord>, StoreError> {
        match &self.secrets {
            Some(secrets) if record.declaration.has_plain_secrets() => {
                Ok(std::borrow::Cow::Owned(secrets.seal(record).await?))
            }
            _ => Ok(std::borrow::Cow::Borrowed(record)),
        }
    }

    fn current_key(name: &str) -> HashMap<String, AttributeValue> {
        HashMap::from([
            ("pk".to_string(), AttributeValue::S(LIST_PK.into())),
            ("sk".to_string(), AttributeValue::S(name.into())),
        ])
    }

    fn version_key(name: &str, version: u32) -> HashMap<String, AttributeValue> {
        HashMap::from([
            (
                "pk".to_string(),
                AttributeValue::S(format!("PIPELINE#{name}")),
            ),
            (
                "sk".to_string(),
                AttributeValue::S(format!("VERSION#{version:010}")),
            ),
        ])
    }

    fn item(
        key: HashMap<String, AttributeValue>,
        record: &PipelineRecord,
    ) -> Result<HashMap<String, AttributeValue>, StoreError> {
        let json = serde_json::to_string(record).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        let mut item = key;
        item.insert(
            "name".into(),
            AttributeValue::S(record.declaration.name.clone()),
        );
        item.insert(
            "version".into(),
            AttributeValue::N(record.version().to_string()),
        );
        item.insert(
            "updated".into(),
            AttributeValue::N(record.updated.to_string()),
        );
        item.insert("record".into(), AttributeValue::S(json));
        item.insert("tags".into(), AttributeValue::S(tags_json(&record.tags)?));
        Ok(item)
    }

    fn put(
        &self,
        item: HashMap<String, AttributeValue>,
        condition: &str,
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression(condition)
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    /// The current item, replaced only if it is still at version `previous` with the tags the
    /// writer read (items written before tags had their own attribute have none).
    fn put_with_version(
        &self,
        item: HashMap<String, AttributeValue>,
        previous: u32,
        tags: &[Tag],
    ) -> Result<TransactWriteItem, StoreError> {
        let put = Put::builder()
            .table_name(&self.table)
            .set_item(Some(item))
            .condition_expression("#v = :prev AND (#t = :tags OR attribute_not_exists(#t))")
            .expression_attribute_names("#v", "version")
            .expression_attribute_names("#t", "tags")
            .expression_attribute_values(":prev", AttributeValue::N(previous.to_string()))
            .expression_attribute_values(":tags", AttributeValue::S(tags_json(tags)?))
            .build()
            .map_err(|e| StoreError::Backend(e.to_string()))?;
        Ok(TransactWriteItem::builder().put(put).build())
    }

    async fn write(
        &self,
        items: Vec<TransactWriteItem>,
        conflict: String,
    ) -> Result<(), StoreError> {
        match self
            .client
            .transact_write_items()
            .set_transact_items(Some(items))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_transaction_canceled_exception() => {
                    Err(StoreError::Conflict(conflict))
                }
                _ => Err(backend("TransactWriteItems", e)),
            },
        }
    }
}

fn record_of(item: &HashMap<String, AttributeValue>) -> Result<PipelineRecord, StoreError> {
    let json = item
        .get("record")
        .and_then(|v| v.as_s().ok())
        .ok_or_else(|| StoreError::Corrupt("item has no `record` attribute".into()))?;
    serde_json::from_str(json).map_err(|e| StoreError::Corrupt(e.to_string()))
}

/// The `tags` attribute: the tags as JSON, so a write can be conditioned on them.
fn tags_json(tags: &[Tag]) -> Result<String, StoreError> {
    serde_json::to_string(tags).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn backend<E: std::error::Error + 'static>(call: &str, err: E) -> StoreError {
    StoreError::Backend(crate::error_chain(call, &err))
}

#[async_trait]
impl PipelineStore for DynamoPipelineStore {
    async fn create(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        let record = &*self.sealed(record).await?;
        let name = &record.declaration.name;
        let items = vec![
            self.put(
                Self::item(Self::current_key(name), record)?,
                "attribute_not_exists(pk)",
            )?,
            self.put(
                Self::item(Self::version_key(name, record.version()), record)?,
                "attribute_not_exists(pk)",
            )?,
        ];
        self.write(items, format!("pipeline {name} exists")).await
    }

    async fn update(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        let record = &*self.sealed(record).await?;
        let name = &record.declaration.name;
        let version = record.version();
        let items = vec![
            self.put_with_version(
                Self::item(Self::current_key(name), record)?,
                version - 1,
                &record.tags,
            )?,
            self.put(
                Self::item(Self::version_key(name, version), record)?,
                "attribute_not_exists(pk)",
            )?,
        ];
        self.write(
            items,
            format!("pipeline {name} changed since version {}", version - 1),
        )
        .await
    }

    async fn get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<PipelineRecord>, StoreError> {
        let key = match version {
            None => Self::current_key(name),
            Some(v) => Self::version_key(name, v),
        };
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(key))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        out.item().map(record_of).transpose()
    }

    async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .set_key(Some(Self::current_key(name)))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| backend("DeleteItem", e))?;
        let existed = out.attributes().is_some_and(|a| !a.is_empty());
        crate::execution_store::delete_partition(
            &self.client,
            &self.table,
            &format!("PIPELINE#{name}"),
        )
        .await?;
        if let Some(secrets) = &self.secrets {
            secrets.delete(name).await?;
        }
        Ok(existed)
    }

    async fn list(
        &self,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineRecord>, StoreError> {
        let start = next_token.map(Self::current_key);
        let wanted = i32::try_from(limit.saturating_add(1)).unwrap_or(i32::MAX);
        let out = self
            .client
            .query()
            .table_name(&self.table)
            .key_condition_expression("pk = :pk")
            .expression_attribute_values(":pk", AttributeValue::S(LIST_PK.into()))
            .set_exclusive_start_key(start)
            .limit(wanted)
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("Query", e))?;
        let mut items = out
            .items()
            .iter()
            .map(record_of)
            .collect::<Result<Vec<_>, _>>()?;
        let next_token = if items.len() > limit {
            items.truncate(limit);
            items.last().map(|r| r.declaration.name.clone())
        } else {
            None
        };
        Ok(Page { items, next_token })
    }

    async fn put_tags(&self, current: &PipelineRecord, tags: &[Tag]) -> Result<(), StoreError> {
        let name = &current.declaration.name;
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .set_key(Some(Self::current_key(name)))
            .consistent_read(true)
            .send()
            .await
            .map_err(|e| backend("GetItem", e))?;
        let Some(item) = out.item() else {
            return Err(StoreError::NotFound(name.clone()));
        };
        let stored = item
            .get("record")
            .and_then(|v| v.as_s().ok())
            .ok_or_else(|| StoreError::Corrupt("item has no `record` attribute".into()))?
            .clone();
        let mut record = record_of(item)?;
        let conflict =
            || StoreError::Conflict(format!("pipeline {name} changed since it was read"));
        if record.version() != current.version()
            || record.updated != current.updated
            || record.tags != current.tags
        {
            return Err(conflict());
        }
        record.tags = tags.to_vec();
        let result = self
            .client
            .put_item()
            .table_name(&self.table)
            .set_item(Some(Self::item(Self::current_key(name), &record)?))
            .condition_expression("#r = :stored")
            .expression_attribute_names("#r", "record")
            .expression_attribute_values(":stored", AttributeValue::S(stored))
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(e) => match e.as_service_error() {
                Some(s) if s.is_conditional_check_failed_exception() => Err(conflict()),
                _ => Err(backend("PutItem", e)),
            },
        }
    }
}
