//! TagResource, UntagResource and ListTagsForResource through the control plane, over the
//! in-memory stores: tags replace values in place, untagging absent keys is fine, listing pages,
//! CodePipeline's limits and errors, concurrent writers, and that no tag write makes a pipeline
//! version.

mod support;

use async_trait::async_trait;
use pipewright_core::control_plane::{handle, ApiError, ServiceContext, Services};
use pipewright_core::declaration::ExecutionMode;
use pipewright_core::store::memory::MemoryPipelineStore;
use pipewright_core::store::{Page, PipelineRecord, PipelineStore, StoreError, Tag};
use serde_json::{json, Value};
use std::sync::atomic::{AtomicUsize, Ordering};
use support::{three_stages, World};

const NAME: &str = "tagged";
const ARN: &str = "arn:aws:codepipeline:us-east-1:123456789012:tagged";

async fn world() -> World {
    World::with_pipeline(three_stages(NAME, ExecutionMode::Queued)).await
}

fn tags(pairs: &[(&str, &str)]) -> Value {
    json!(pairs
        .iter()
        .map(|(k, v)| json!({"key": k, "value": v}))
        .collect::<Vec<_>>())
}

async fn listed(world: &World) -> Value {
    world
        .api("ListTagsForResource", json!({"resourceArn": ARN}))
        .await
        .unwrap()["tags"]
        .clone()
}

async fn tag(world: &World, pairs: &[(&str, &str)]) -> Result<Value, ApiError> {
    world
        .api(
            "TagResource",
            json!({"resourceArn": ARN, "tags": tags(pairs)}),
        )
        .await
}

fn kind(result: Result<Value, ApiError>) -> (&'static str, String) {
    let err = result.expect_err("an error");
    assert!(!err.server_fault, "{err}");
    (err.kind, err.message)
}

/// (version, created, updated) as GetPipeline and ListPipelines report them.
async fn versions(world: &World) -> (Value, Value, Value) {
    let got = world
        .api("GetPipeline", json!({"name": NAME}))
        .await
        .unwrap();
    let listed = world.api("ListPipelines", json!({})).await.unwrap();
    let summary = listed["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == NAME)
        .unwrap()
        .clone();
    assert_eq!(summary["version"], got["pipeline"]["version"]);
    assert_eq!(summary["updated"], got["metadata"]["updated"]);
    (
        got["pipeline"]["version"].clone(),
        got["metadata"]["created"].clone(),
        got["metadata"]["updated"].clone(),
    )
}

#[tokio::test]
async fn tagging_adds_replaces_and_removes_without_a_new_version() {
    let world = world().await;
    let before = versions(&world).await;
    assert_eq!(before.0, 1);
    assert_eq!(listed(&world).await, json!([]));

    assert_eq!(
        tag(&world, &[("env", "prod"), ("team", "a")])
            .await
            .unwrap(),
        json!({})
    );
    assert_eq!(
        listed(&world).await,
        tags(&[("env", "prod"), ("team", "a")])
    );

    // An existing key gets the new value in its place; new keys go after.
    tag(&world, &[("owner", "me"), ("env", "dev")])
        .await
        .unwrap();
    assert_eq!(
        listed(&world).await,
        tags(&[("env", "dev"), ("team", "a"), ("owner", "me")])
    );

    // Untagging absent keys is fine.
    let out = world
        .api(
            "UntagResource",
            json!({"resourceArn": ARN, "tagKeys": ["team", "absent"]}),
        )
        .await
        .unwrap();
    assert_eq!(out, json!({}));
    assert_eq!(
        listed(&world).await,
        tags(&[("env", "dev"), ("owner", "me")])
    );
    world
        .api("UntagResource", json!({"resourceArn": ARN, "tagKeys": []}))
        .await
        .unwrap();

    // Same version, same metadata, and version 1 still reads back.
    assert_eq!(versions(&world).await, before);
    let v1 = world
        .api("GetPipeline", json!({"name": NAME, "version": 1}))
        .await
        .unwrap();
    assert_eq!(v1["pipeline"]["version"], 1);
    let v2 = world
        .api("GetPipeline", json!({"name": NAME, "version": 2}))
        .await
        .unwrap_err();
    assert_eq!(v2.kind, "PipelineVersionNotFoundException");

    // A new version keeps the pipeline's tags.
    let got = world
        .api("GetPipeline", json!({"name": NAME}))
        .await
        .unwrap();
    let updated = world
        .api("UpdatePipeline", json!({"pipeline": got["pipeline"]}))
        .await
        .unwrap();
    assert_eq!(updated["pipeline"]["version"], 2);
    assert_eq!(
        listed(&world).await,
        tags(&[("env", "dev"), ("owner", "me")])
    );

    // Empty values and the longest keys and values are tags like any other.
    let long_key = "k".repeat(128);
    let long_value = "é".repeat(256);
    tag(&world, &[("empty", ""), (&long_key, &long_value)])
        .await
        .unwrap();
    let all = listed(&world).await;
    assert_eq!(all[2], json!({"key": "empty", "value": ""}));
    assert_eq!(all[3], json!({"key": long_key, "value": long_value}));
}

#[tokio::test]
async fn create_pipeline_tags_are_the_resources_tags() {
    let world = World::default();
    let created = world
        .api(
            "CreatePipeline",
            json!({
                "pipeline": three_stages(NAME, ExecutionMode::Superseded),
                "tags": tags(&[("cost-center", "42"), ("env", "test")])
            }),
        )
        .await
        .unwrap();
    assert_eq!(
        created["tags"],
        tags(&[("cost-center", "42"), ("env", "test")])
    );
    assert_eq!(
        listed(&world).await,
        tags(&[("cost-center", "42"), ("env", "test")])
    );
    tag(&world, &[("env", "prod")]).await.unwrap();
    assert_eq!(
        listed(&world).await,
        tags(&[("cost-center", "42"), ("env", "prod")])
    );
    assert_eq!(versions(&world).await.0, 1);

    // Deleting the pipeline deletes its tags: a new pipeline of that name starts bare.
    world
        .api("DeletePipeline", json!({"name": NAME}))
        .await
        .unwrap();
    let (k, _) = kind(
        world
            .api("ListTagsForResource", json!({"resourceArn": ARN}))
            .await,
    );
    assert_eq!(k, "ResourceNotFoundException");
    world
        .add_pipeline(three_stages(NAME, ExecutionMode::Queued))
        .await;
    assert_eq!(listed(&world).await, json!([]));
}

/// Each tag operation, with a body naming resource `arn`.
fn calls_on(arn: &str) -> [(&'static str, Value); 3] {
    [
        (
            "TagResource",
            json!({"resourceArn": arn, "tags": tags(&[("a", "b")])}),
        ),
        (
            "UntagResource",
            json!({"resourceArn": arn, "tagKeys": ["a"]}),
        ),
        ("ListTagsForResource", json!({"resourceArn": arn})),
    ]
}

#[tokio::test]
async fn arns_that_are_not_this_services_pipelines_are_refused() {
    let world = world().await;
    let invalid = [
        "tagged",
        "",
        "arn:aws:s3:::bucket",
        "arn:aws:codepipeline:us-east-1:123456789012",
        "arn:aws:codepipeline:eu-west-1:123456789012:tagged",
        "arn:aws:codepipeline:us-east-1:210987654321:tagged",
        "arn:aws-cn:codepipeline:us-east-1:123456789012:tagged",
        "arn:aws:codepipeline:us-east-1:123456789012:",
        "arn:aws:codepipeline:us-east-1:123456789012:bad name!",
        "urn:aws:codepipeline:us-east-1:123456789012:tagged",
    ];
    for arn in invalid {
        for (op, body) in calls_on(arn) {
            let (k, message) = kind(world.api(op, body).await);
            assert_eq!(k, "InvalidArnException", "{op} {arn:?}: {message}");
            assert!(message.starts_with("resourceArn:"), "{message}");
        }
    }

    let missing = "arn:aws:codepipeline:us-east-1:123456789012:missing";
    let webhook = "arn:aws:codepipeline:us-east-1:123456789012:webhook:hook";
    for arn in [missing, webhook] {
        for (op, body) in calls_on(arn) {
            let (k, message) = kind(world.api(op, body).await);
            assert_eq!(k, "ResourceNotFoundException", "{op} {arn:?}: {message}");
        }
    }
    assert_eq!(listed(&world).await, json!([]));
}

#[tokio::test]
async fn invalid_tags_are_refused_and_nothing_is_written() {
    let world = world().await;
    tag(&world, &[("keep", "1")]).await.unwrap();
    let long_key = "k".repeat(129);
    let long_value = "v".repeat(257);
    let cases: &[(&[(&str, &str)], &str)] = &[
        (&[("", "x")], "tags[0].key: length must be 1..128"),
        (&[("ok", "1"), (&long_key, "x")], "tags[1].key: length"),
        (
            &[("ok", &long_value)],
            "tags[0].value: length must be 0..256",
        ),
        (&[("aws:cloudformation:stack-name", "x")], "tags[0].key"),
        (&[("AWS:Thing", "x")], "reserved"),
        (&[("dup", "1"), ("dup", "2")], "tags[1].key"),
    ];
    for (pairs, needle) in cases {
        let (k, message) = kind(tag(&world, pairs).await);
        assert_eq!(k, "InvalidTagsException", "{pairs:?}: {message}");
        assert!(message.contains(needle), "{pairs:?}: {message}");
    }
    for keys in [json!(["aws:createdBy"]), json!([""]), json!([long_key])] {
        let (k, message) = kind(
            world
                .api(
                    "UntagResource",
                    json!({"resourceArn": ARN, "tagKeys": keys}),
                )
                .await,
        );
        assert_eq!(k, "InvalidTagsException", "{keys}: {message}");
        assert!(message.starts_with("tagKeys[0]:"), "{message}");
    }
    // "aws" without the colon is an ordinary key.
    tag(&world, &[("awsome", "yes")]).await.unwrap();
    assert_eq!(
        listed(&world).await,
        tags(&[("keep", "1"), ("awsome", "yes")])
    );
    assert_eq!(versions(&world).await.0, 1);
}

#[tokio::test]
async fn a_pipeline_has_at_most_50_tags() {
    let world = world().await;
    let keys: Vec<String> = (0..51).map(|i| format!("k{i:02}")).collect();
    let pairs: Vec<(&str, &str)> = keys.iter().map(|k| (k.as_str(), "v")).collect();

    let (k, message) = kind(tag(&world, &pairs).await);
    assert_eq!(k, "TooManyTagsException", "{message}");
    assert_eq!(listed(&world).await, json!([]));

    tag(&world, &pairs[..45]).await.unwrap();
    let (k, message) = kind(tag(&world, &pairs[45..]).await);
    assert_eq!(k, "TooManyTagsException", "{message}");
    assert!(message.contains("45"), "{message}");
    assert_eq!(listed(&world).await.as_array().unwrap().len(), 45);

    // Replacing values of keys it has adds nothing; 50 is allowed.
    tag(
        &world,
        &[
            ("k00", "new"),
            ("k45", "v"),
            ("k46", "v"),
            ("k47", "v"),
            ("k48", "v"),
            ("k49", "v"),
        ],
    )
    .await
    .unwrap();
    let all = listed(&world).await;
    assert_eq!(all.as_array().unwrap().len(), 50);
    assert_eq!(all[0], json!({"key": "k00", "value": "new"}));
    let (k, _) = kind(tag(&world, &[("k50", "v")]).await);
    assert_eq!(k, "TooManyTagsException");
    tag(&world, &[("k01", "again")]).await.unwrap();

    // Making room lets the next one in.
    world
        .api(
            "UntagResource",
            json!({"resourceArn": ARN, "tagKeys": ["k02"]}),
        )
        .await
        .unwrap();
    tag(&world, &[("k50", "v")]).await.unwrap();
    let all = listed(&world).await;
    assert_eq!(all.as_array().unwrap().len(), 50);
    assert_eq!(all[49], json!({"key": "k50", "value": "v"}));
}

#[tokio::test]
async fn listing_pages_through_every_tag_once() {
    let world = world().await;
    let pairs = [
        ("a", "1"),
        ("b:c/d", "2"),
        ("é ü", "3"),
        ("d", "4"),
        ("e", "5"),
    ];
    tag(&world, &pairs).await.unwrap();

    let mut seen = Vec::new();
    let mut token: Option<Value> = None;
    let mut pages = 0;
    loop {
        let mut req = json!({"resourceArn": ARN, "maxResults": 2});
        if let Some(t) = &token {
            req["nextToken"] = t.clone();
        }
        let page = world.api("ListTagsForResource", req).await.unwrap();
        pages += 1;
        let got = page["tags"].as_array().unwrap();
        assert!(got.len() <= 2 && !got.is_empty(), "{page}");
        seen.extend(got.iter().cloned());
        match page.get("nextToken") {
            Some(t) => {
                let t = t.as_str().unwrap();
                assert!(!t.is_empty() && t.len() <= 2048);
                token = Some(json!(t));
            }
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(Value::Array(seen), tags(&pairs));

    // A page that ends exactly at the last tag has no token.
    let page = world
        .api(
            "ListTagsForResource",
            json!({"resourceArn": ARN, "maxResults": 5}),
        )
        .await
        .unwrap();
    assert_eq!(page, json!({"tags": tags(&pairs)}));

    // Tokens that this service did not issue, or that continue after a removed tag.
    let first = world
        .api(
            "ListTagsForResource",
            json!({"resourceArn": ARN, "maxResults": 1}),
        )
        .await
        .unwrap();
    let token = first["nextToken"].clone();
    world
        .api(
            "UntagResource",
            json!({"resourceArn": ARN, "tagKeys": ["a"]}),
        )
        .await
        .unwrap();
    for bad in [token, json!("zz"), json!("abc"), json!(""), json!("ff")] {
        let (k, message) = kind(
            world
                .api(
                    "ListTagsForResource",
                    json!({"resourceArn": ARN, "nextToken": bad}),
                )
                .await,
        );
        assert_eq!(k, "InvalidNextTokenException", "{bad}: {message}");
    }
}

#[tokio::test]
async fn malformed_requests_name_the_member() {
    let world = world().await;
    let cases = [
        ("TagResource", json!({"resourceArn": ARN}), "tags"),
        ("TagResource", json!({"tags": []}), "resourceArn"),
        (
            "TagResource",
            json!({"resourceArn": ARN, "tags": [{"key": "a"}]}),
            "value",
        ),
        (
            "TagResource",
            json!({"resourceArn": ARN, "tags": [{"key": "a", "value": 1}]}),
            "tags[0].value",
        ),
        ("UntagResource", json!({"resourceArn": ARN}), "tagKeys"),
        (
            "UntagResource",
            json!({"resourceArn": ARN, "tagKeys": "a"}),
            "tagKeys",
        ),
        (
            "ListTagsForResource",
            json!({"resourceArn": ARN, "maxResults": 0}),
            "maxResults",
        ),
        (
            "ListTagsForResource",
            json!({"resourceArn": ARN, "maxResults": 101}),
            "maxResults",
        ),
        (
            "ListTagsForResource",
            json!({"resourceArn": ARN, "resourceType": "pipeline"}),
            "resourceType",
        ),
    ];
    for (op, body, member) in cases {
        let (k, message) = kind(world.api(op, body.clone()).await);
        assert_eq!(k, "ValidationException", "{op} {body}: {message}");
        assert!(message.contains(member), "{op} {body}: {message}");
    }
    assert_eq!(listed(&world).await, json!([]));
}

#[tokio::test]
async fn the_store_writes_tags_only_over_the_record_it_was_given() {
    let world = world().await;
    let store = &world.pipelines;
    let read = store.get(NAME, None).await.unwrap().unwrap();
    let one = vec![Tag {
        key: "a".into(),
        value: "1".into(),
    }];
    store.put_tags(&read, &one).await.unwrap();
    let now = store.get(NAME, None).await.unwrap().unwrap();
    assert_eq!(now.tags, one);
    assert_eq!(now.version(), 1);
    assert_eq!(now.updated, read.updated);
    // The record read before that write is stale now.
    assert!(matches!(
        store.put_tags(&read, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // So is one read before a new version.
    let mut next = now.clone();
    next.declaration.version = Some(2);
    next.updated = 60.0;
    store.update(&next).await.unwrap();
    assert!(matches!(
        store.put_tags(&now, &[]).await,
        Err(StoreError::Conflict(_))
    ));
    // An update carrying the tags it read before a tag write loses too.
    let read = store.get(NAME, None).await.unwrap().unwrap();
    store.put_tags(&read, &[]).await.unwrap();
    let mut stale = read.clone();
    stale.declaration.version = Some(3);
    assert!(matches!(
        store.update(&stale).await,
        Err(StoreError::Conflict(_))
    ));
    assert_eq!(store.get(NAME, None).await.unwrap().unwrap().version(), 2);
    store.delete(NAME).await.unwrap();
    assert!(matches!(
        store.put_tags(&next, &[]).await,
        Err(StoreError::NotFound(_))
    ));
}

#[tokio::test]
async fn update_pipeline_keeps_tags_written_while_it_ran() {
    let store = racing(1).await;
    let mut declaration = call(&store, "GetPipeline", json!({"name": NAME}))
        .await
        .unwrap()["pipeline"]
        .clone();
    declaration["stages"][2]["name"] = json!("Release");
    let updated = call(&store, "UpdatePipeline", json!({ "pipeline": declaration }))
        .await
        .unwrap();
    assert_eq!(updated["pipeline"]["version"], 2);
    let all = call(&store, "ListTagsForResource", json!({"resourceArn": ARN}))
        .await
        .unwrap();
    assert_eq!(all["tags"], tags(&[("other0", "0")]));
    assert_eq!(
        store
            .get(NAME, None)
            .await
            .unwrap()
            .unwrap()
            .declaration
            .stages[2]
            .name,
        "Release"
    );
}

/// A store where another writer tags the pipeline (`other=<n>`) just before each of the first
/// `races` tag writes.
struct Racing {
    inner: MemoryPipelineStore,
    races: usize,
    seen: AtomicUsize,
}

#[async_trait]
impl PipelineStore for Racing {
    async fn create(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        self.inner.create(record).await
    }
    async fn update(&self, record: &PipelineRecord) -> Result<(), StoreError> {
        self.race(&record.declaration.name).await?;
        self.inner.update(record).await
    }
    async fn get(
        &self,
        name: &str,
        version: Option<u32>,
    ) -> Result<Option<PipelineRecord>, StoreError> {
        self.inner.get(name, version).await
    }
    async fn delete(&self, name: &str) -> Result<bool, StoreError> {
        self.inner.delete(name).await
    }
    async fn list(
        &self,
        next_token: Option<&str>,
        limit: usize,
    ) -> Result<Page<PipelineRecord>, StoreError> {
        self.inner.list(next_token, limit).await
    }
    async fn put_tags(&self, current: &PipelineRecord, tags: &[Tag]) -> Result<(), StoreError> {
        self.race(&current.declaration.name).await?;
        self.inner.put_tags(current, tags).await
    }
}

impl Racing {
    /// The other writer's turn: it tags `other<n>` while races remain.
    async fn race(&self, name: &str) -> Result<(), StoreError> {
        let n = self.seen.fetch_add(1, Ordering::SeqCst);
        if n < self.races {
            let theirs = self.inner.get(name, None).await?.unwrap();
            let mut their_tags = theirs.tags.clone();
            their_tags.push(Tag {
                key: format!("other{n}"),
                value: n.to_string(),
            });
            self.inner.put_tags(&theirs, &their_tags).await?;
        }
        Ok(())
    }
}

async fn racing(races: usize) -> Racing {
    let world = world().await;
    let record = world.pipelines.get(NAME, None).await.unwrap().unwrap();
    let store = Racing {
        inner: MemoryPipelineStore::default(),
        races,
        seen: AtomicUsize::new(0),
    };
    store.inner.create(&record).await.unwrap();
    store
}

async fn call(store: &Racing, op: &str, body: Value) -> Result<Value, ApiError> {
    let ctx = ServiceContext {
        region: "us-east-1".into(),
        account_id: "123456789012".into(),
        now: 50.0,
        new_id: "99999999-9999-4999-8999-999999999999".into(),
        caller: None,
    };
    handle(
        &Services {
            pipelines: store,
            engine: None,
            start_on_create: false,
        },
        &ctx,
        &format!("CodePipeline_20150709.{op}"),
        body.to_string().as_bytes(),
    )
    .await
}

#[tokio::test]
async fn a_concurrent_writer_loses_nothing_and_too_many_give_concurrent_modification() {
    // Lost once: applied again over the other writer's tags, both survive.
    let store = racing(1).await;
    call(
        &store,
        "TagResource",
        json!({"resourceArn": ARN, "tags": tags(&[("mine", "1")])}),
    )
    .await
    .unwrap();
    let all = call(&store, "ListTagsForResource", json!({"resourceArn": ARN}))
        .await
        .unwrap();
    assert_eq!(all["tags"], tags(&[("other0", "0"), ("mine", "1")]));

    // Lost every time: ConcurrentModificationException, and the call wrote nothing of its own.
    let store = racing(usize::MAX).await;
    let (k, message) = kind(
        call(
            &store,
            "TagResource",
            json!({"resourceArn": ARN, "tags": tags(&[("mine", "1")])}),
        )
        .await,
    );
    assert_eq!(k, "ConcurrentModificationException", "{message}");
    let all = call(&store, "ListTagsForResource", json!({"resourceArn": ARN}))
        .await
        .unwrap();
    assert!(
        all["tags"]
            .as_array()
            .unwrap()
            .iter()
            .all(|t| t["key"] != "mine"),
        "{all}"
    );
}
