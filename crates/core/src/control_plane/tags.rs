//! TagResource, UntagResource, ListTagsForResource on pipelines.
//!
//! The resource is named by its ARN, `arn:<partition>:codepipeline:<region>:<account>:<name>`
//! ([`ServiceContext::pipeline_arn`]); only pipelines of this region and account have tags here.
//! Tags belong to the pipeline, not to a version: writing them creates no pipeline version and
//! leaves `metadata.updated` alone ([`PipelineStore::put_tags`]).
//!
//! Rules (CodePipeline's): keys 1..128 characters, values 0..256, keys starting with `aws:` (any
//! case) are reserved, at most [`MAX_TAGS`] tags on a pipeline. TagResource adds keys and
//! replaces the value of keys it already has, keeping their place; UntagResource removes the
//! keys it names (absent ones are fine). Both are deltas, so when another writer changed the
//! pipeline between the read and the conditional write they are applied again to the new
//! record; `ConcurrentModificationException` only when that keeps losing.

use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_name, ApiError, ServiceContext};
use crate::store::{PipelineRecord, PipelineStore, StoreError, Tag};

/// The most tags a pipeline can carry.
pub const MAX_TAGS: usize = 50;

/// How many times a tag write is applied again after losing to a concurrent writer.
const ATTEMPTS: usize = 3;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct TagInput {
    resource_arn: String,
    tags: Vec<Tag>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct UntagInput {
    resource_arn: String,
    tag_keys: Vec<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListInput {
    resource_arn: String,
    next_token: Option<String>,
    max_results: Option<i64>,
}

/// TagResource.
pub(super) async fn tag(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: TagInput,
) -> Result<Value, ApiError> {
    let name = pipeline_name(ctx, &input.resource_arn)?;
    if input.tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TooManyTagsException",
            format!(
                "tags: a pipeline has at most {MAX_TAGS} tags; {} were given",
                input.tags.len()
            ),
        ));
    }
    for (i, t) in input.tags.iter().enumerate() {
        check_key(&format!("tags[{i}].key"), &t.key)?;
        let len = t.value.chars().count();
        if len > 256 {
            return Err(invalid_tags(format!(
                "tags[{i}].value: length must be 0..256, got {len}"
            )));
        }
        if let Some(j) = input.tags[..i].iter().position(|o| o.key == t.key) {
            return Err(invalid_tags(format!(
                "tags[{i}].key: {:?} is also tags[{j}].key; a key can be given once",
                t.key
            )));
        }
    }
    write(store, name, |current| {
        let mut tags = current.to_vec();
        for t in &input.tags {
            match tags.iter_mut().find(|o| o.key == t.key) {
                Some(existing) => existing.value.clone_from(&t.value),
                None => tags.push(t.clone()),
            }
        }
        if tags.len() > MAX_TAGS {
            return Err(ApiError::new(
                "TooManyTagsException",
                format!(
                    "tags: a pipeline has at most {MAX_TAGS} tags; {name} has {} and this \
                     would make it {}",
                    current.len(),
                    tags.len()
                ),
            ));
        }
        Ok(tags)
    })
    .await?;
    Ok(json!({}))
}

/// UntagResource.
pub(super) async fn untag(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: UntagInput,
) -> Result<Value, ApiError> {
    let name = pipeline_name(ctx, &input.resource_arn)?;
    for (i, key) in input.tag_keys.iter().enumerate() {
        check_key(&format!("tagKeys[{i}]"), key)?;
    }
    write(store, name, |current| {
        Ok(current
            .iter()
            .filter(|t| !input.tag_keys.contains(&t.key))
            .cloned()
            .collect())
    })
    .await?;
    Ok(json!({}))
}

/// ListTagsForResource: the tags in the order they were added, all of them unless `maxResults`
/// asks for pages.
pub(super) async fn list(
    store: &dyn PipelineStore,
    ctx: &ServiceContext,
    input: ListInput,
) -> Result<Value, ApiError> {
    let name = pipeline_name(ctx, &input.resource_arn)?;
    let limit = match input.max_results {
        None => usize::MAX,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "maxResults: must be 1..100, got {n}"
            )))
        }
    };
    let after = input.next_token.as_deref().map(key_of_token).transpose()?;
    let record = read(store, name).await?;
    let start = match &after {
        None => 0,
        Some(key) => {
            record
                .tags
                .iter()
                .position(|t| &t.key == key)
                .ok_or_else(|| {
                    ApiError::new(
                        "InvalidNextTokenException",
                        "nextToken: the tag it continues after has been removed; list again \
                         without a token",
                    )
                })?
                + 1
        }
    };
    let rest = &record.tags[start.min(record.tags.len())..];
    let page = &rest[..limit.min(rest.len())];
    let mut out = json!({ "tags": page });
    if page.len() < rest.len() {
        if let Some(last) = page.last() {
            out["nextToken"] = json!(token_of_key(&last.key));
        }
    }
    Ok(out)
}

/// The pipeline `arn` names, when it is a pipeline ARN of this region and account.
fn pipeline_name<'a>(ctx: &ServiceContext, arn: &'a str) -> Result<&'a str, ApiError> {
    let parts: Vec<&str> = arn.splitn(6, ':').collect();
    let [prefix, _partition, service, region, account, resource] = parts[..] else {
        return Err(invalid_arn(format!(
            "resourceArn: {arn:?} is not an ARN (arn:aws:codepipeline:<region>:<account>:<name>)"
        )));
    };
    if prefix != "arn" || service != "codepipeline" {
        return Err(invalid_arn(format!(
            "resourceArn: {arn:?} is not a CodePipeline ARN \
             (arn:aws:codepipeline:<region>:<account>:<name>)"
        )));
    }
    if region != ctx.region || account != ctx.account_id {
        return Err(invalid_arn(format!(
            "resourceArn: {arn:?} names region {region:?} and account {account:?}; this service \
             runs in region {} of account {}",
            ctx.region, ctx.account_id
        )));
    }
    if resource.contains(':') || resource.contains('/') {
        // webhook:<name>, actiontype:<...>: resource types that Pipewright does not have.
        return Err(ApiError::new(
            "ResourceNotFoundException",
            format!("resourceArn: {arn:?} is not a pipeline; only pipelines have tags here"),
        ));
    }
    check_name("resourceArn", resource).map_err(|e| invalid_arn(e.message))?;
    if ctx.pipeline_arn(resource) != arn {
        return Err(invalid_arn(format!(
            "resourceArn: {arn:?} is not in this partition; the pipeline's ARN is {}",
            ctx.pipeline_arn(resource)
        )));
    }
    Ok(resource)
}

/// Tags given at once (CreatePipeline, TagResource): at most [`MAX_TAGS`], valid keys and
/// values, no key twice.
pub(super) fn check_new_tags(tags: &[Tag]) -> Result<(), ApiError> {
    if tags.len() > MAX_TAGS {
        return Err(ApiError::new(
            "TooManyTagsException",
            format!(
                "tags: a pipeline has at most {MAX_TAGS} tags; {} were given",
                tags.len()
            ),
        ));
    }
    let mut seen = std::collections::BTreeSet::new();
    for (i, t) in tags.iter().enumerate() {
        check_key(&format!("tags[{i}].key"), &t.key)?;
        let len = t.value.chars().count();
        if len > 256 {
            return Err(invalid_tags(format!(
                "tags[{i}].value: length must be 0..256, got {len}"
            )));
        }
        if !seen.insert(t.key.as_str()) {
            return Err(invalid_tags(format!(
                "tags[{i}].key: {:?} appears twice",
                t.key
            )));
        }
    }
    Ok(())
}

fn check_key(member: &str, key: &str) -> Result<(), ApiError> {
    let len = key.chars().count();
    if len == 0 || len > 128 {
        return Err(invalid_tags(format!(
            "{member}: length must be 1..128, got {len}"
        )));
    }
    if key.get(..4).is_some_and(|p| p.eq_ignore_ascii_case("aws:")) {
        return Err(invalid_tags(format!(
            "{member}: {key:?} starts with aws:, which is reserved for AWS's own tags"
        )));
    }
    Ok(())
}

/// The current record of pipeline `name`, or `ResourceNotFoundException`.
async fn read(store: &dyn PipelineStore, name: &str) -> Result<PipelineRecord, ApiError> {
    store
        .get(name, None)
        .await
        .map_err(ApiError::internal)?
        .ok_or_else(|| not_found(name))
}

/// Replace the tags of `name` with `change(current tags)`, again on the newer record when a
/// concurrent writer got there first.
async fn write(
    store: &dyn PipelineStore,
    name: &str,
    change: impl Fn(&[Tag]) -> Result<Vec<Tag>, ApiError>,
) -> Result<(), ApiError> {
    for _ in 0..ATTEMPTS {
        let current = read(store, name).await?;
        let tags = change(&current.tags)?;
        if tags == current.tags {
            return Ok(());
        }
        match store.put_tags(&current, &tags).await {
            Ok(()) => return Ok(()),
            Err(StoreError::Conflict(_)) => continue,
            Err(StoreError::NotFound(_)) => return Err(not_found(name)),
            Err(e) => return Err(ApiError::internal(e)),
        }
    }
    Err(ApiError::new(
        "ConcurrentModificationException",
        format!("pipeline {name} kept changing while its tags were written; try again"),
    ))
}

fn token_of_key(key: &str) -> String {
    crate::hex::encode(key.as_bytes())
}

fn key_of_token(token: &str) -> Result<String, ApiError> {
    let bad = || {
        ApiError::new(
            "InvalidNextTokenException",
            "nextToken: not a token this service issued",
        )
    };
    if token.is_empty() || token.len() > 2048 {
        return Err(bad());
    }
    let bytes = crate::hex::decode(token).ok_or_else(bad)?;
    String::from_utf8(bytes).map_err(|_| bad())
}

fn not_found(name: &str) -> ApiError {
    ApiError::new(
        "ResourceNotFoundException",
        format!("resourceArn: pipeline {name} does not exist"),
    )
}

fn invalid_arn(message: String) -> ApiError {
    ApiError::new("InvalidArnException", message)
}

fn invalid_tags(message: String) -> ApiError {
    ApiError::new("InvalidTagsException", message)
}
