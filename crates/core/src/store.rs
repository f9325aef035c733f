//! The storage the domain needs, as traits. `pipewright-aws` implements them over DynamoDB;
//! `engine::memory` (feature `testing`) implements them in memory for unit tests of the domain.

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::declaration::PipelineDeclaration;

/// A tag on a resource, as CodePipeline's API spells it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tag {
    /// 1..128 characters.
    pub key: String,
    /// 0..256 characters.
    pub value: String,
}

/// One stored version of a pipeline.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PipelineRecord {
    /// The declaration, with `version` set.
    pub declaration: PipelineDeclaration,
    /// When the pipeline was created, seconds since the epoch.
    pub created: f64,
    /// When this version was written, seconds since the epoch.
    pub updated: f64,
    /// The pipeline's tags.
    #[serde(default)]
    pub tags: Vec<Tag>,
}

impl PipelineRecord {
    /// The version number (1 for a record that has none).
    pub fn version(&self) -> u32 {
        self.declaration.version.unwrap_or(1)
    }
}

/// Why a store operation failed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum StoreError {
    /// A conditional write lost: the item exists (create) or changed (update).
    #[error("conflict: {0}")]
    Conflict(String),
    /// The item does not exist.
    #[error("not found: {0}")]
    NotFound(String),
    /// A stored item could not be read back.
    #[error("corrupt record: {0}")]
    Corrupt(String),
    /// The backing service failed.
    #[error("store unavailable: {0}")]
    Backend(String),
}

/// A page of results and the token for the next one.
#[derive(Debug, Clone, PartialEq)]
pub struct Page<T> {
    /// The items.
    pub items: Vec<T>,
    /// Where the next page starts, if there is one.
    pub next_token: Option<String>,
}

/// Pipeline declarations and their versions.
#[async_trait]
pub trait PipelineStore: Send + Sync {
    /// Store a new pipeline (version 1). [`StoreError::Conflict`] when the name is taken.
    async fn create(&self, record: &PipelineRecord) -> Result<(), StoreError>;

    /// Store `record` as the next version, only if the current version is still
    /// `record.version() - 1` and its tags are still `record.tags` (a concurrent TagResource is
    /// never overwritten): [`StoreError::Conflict`] otherwise, [`StoreError::NotFound`] when
    /// there is no such pipeline.
    async fn update(&self, record: &PipelineRecord) -> Result<(), StoreError>;

    /// The current version, or the given one.
    async fn get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<PipelineRecord>, StoreError>;

    /// Delete the pipeline and its versions. Returns false when there was none.
    async fn delete(&self, name: &str) -> Result<bool, StoreError>;

    /// Current versions in name order, `limit` at a time, starting after `next_token`.
    async fn list(
        &self,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineRecord>, StoreError>;

    /// Replace the tags of pipeline `current.declaration.name` with `tags`, only if its current
    /// record is still `current` as [`PipelineStore::get`] returned it (same version, `updated`
    /// and tags): [`StoreError::Conflict`] otherwise, [`StoreError::NotFound`] when there is no
    /// such pipeline. Tags belong to the pipeline, not to a version: this writes no new version
    /// and leaves `updated` and the stored versions as they are.
    async fn put_tags(&self, current: &PipelineRecord, tags: &[Tag]) -> Result<(), StoreError>;
}

/// Every pipeline in `store`, page after page.
pub async fn all_pipelines(store: &dyn PipelineStore) -> Result<Vec<PipelineRecord>, StoreError> {
    let mut out = Vec::new();
    let mut token: Option<String> = None;
    loop {
        let page = store.list(token.as_deref(), 100).await?;
        out.extend(page.items);
        match page.next_token {
            Some(t) => token = Some(t),
            None => return Ok(out),
        }
    }
}

/// In-memory stores with the same semantics as the DynamoDB ones, for unit tests of the domain.
/// Only in test builds: core's own unit tests, and crates that enable the `testing` feature.
#[cfg(any(test, feature = "testing"))]
pub mod memory {
    use std::collections::BTreeMap;
    use std::sync::Mutex;

    use super::*;

    /// Pipelines in a map: name → versions (index 0 is version 1).
    #[derive(Debug, Default)]
    pub struct MemoryPipelineStore {
        pipelines: Mutex<BTreeMap<String, Vec<PipelineRecord>>>,
    }

    impl MemoryPipelineStore {
        fn lock(
            &self,
        ) -> Result<std::sync::MutexGuard<'_, BTreeMap<String, Vec<PipelineRecord>>>, StoreError>
        {
            self.pipelines
                .lock()
                .map_err(|_| StoreError::Backend("poisoned".into()))
        }
    }

    #[async_trait]
    impl PipelineStore for MemoryPipelineStore {
        async fn create(&self, record: &PipelineRecord) -> Result<(), StoreError> {
            let mut map = self.lock()?;
            let name = &record.declaration.name;
            if map.contains_key(name) {
                return Err(StoreError::Conflict(format!("pipeline {name} exists")));
            }
            map.insert(name.clone(), vec![record.clone()]);
            Ok(())
        }

        async fn update(&self, record: &PipelineRecord) -> Result<(), StoreError> {
            let mut map = self.lock()?;
            let name = &record.declaration.name;
            let versions = map
                .get_mut(name)
                .ok_or_else(|| StoreError::NotFound(name.clone()))?;
            let current = versions.last().map(PipelineRecord::version).unwrap_or(0);
            if current + 1 != record.version() {
                return Err(StoreError::Conflict(format!(
                    "pipeline {name} is at version {current}"
                )));
            }
            if versions.last().is_some_and(|r| r.tags != record.tags) {
                return Err(StoreError::Conflict(format!(
                    "the tags of pipeline {name} changed since it was read"
                )));
            }
            versions.push(record.clone());
            Ok(())
        }

        async fn get(
            &self,
            name: &str,
            version: Option<u32>,
        ) -> Result<Option<PipelineRecord>, StoreError> {
            let map = self.lock()?;
            let Some(versions) = map.get(name) else {
                return Ok(None);
            };
            Ok(match version {
                None => versions.last().cloned(),
                Some(v) => versions.iter().find(|r| r.version() == v).cloned(),
            })
        }

        async fn delete(&self, name: &str) -> Result<bool, StoreError> {
            Ok(self.lock()?.remove(name).is_some())
        }

        async fn list(
            &self,
            next_token: Option<&str>,
            limit: usize,
        ) -> Result<Page<PipelineRecord>, StoreError> {
            let map = self.lock()?;
            let mut items: Vec<PipelineRecord> = map
                .iter()
                .filter(|(name, _)| next_token.is_none_or(|t| name.as_str() > t))
                .filter_map(|(_, v)| v.last().cloned())
                .take(limit + 1)
                .collect();
            let next_token = if items.len() > limit {
                items.truncate(limit);
                items.last().map(|r| r.declaration.name.clone())
            } else {
                None
            };
            Ok(Page { items, next_token })
        }

        async fn put_tags(&self, current: &PipelineRecord, tags: &[Tag]) -> Result<(), StoreError> {
            let mut map = self.lock()?;
            let name = &current.declaration.name;
            let latest = map
                .get_mut(name)
                .and_then(|versions| versions.last_mut())
                .ok_or_else(|| StoreError::NotFound(name.clone()))?;
            if latest.version() != current.version()
                || latest.updated != current.updated
                || latest.tags != current.tags
            {
                return Err(StoreError::Conflict(format!(
                    "pipeline {name} changed since it was read"
                )));
            }
            latest.tags = tags.to_vec();
            Ok(())
        }
    }
}
