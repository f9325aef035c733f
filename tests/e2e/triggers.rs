//! Triggers on the local stack: EventBridge source-change events (S3 CloudTrail writes, CodeCommit
//! pushes, ECR pushes) invoked on the trigger function, and GitHub / GitLab / Bitbucket webhook
//! deliveries POSTed to the webhook function's (local) Function URL.
//!
//! The repositories these events name do not exist (nor does the git host), so those executions
//! fail in their source action; the tests look only at what started: which pipeline, with which
//! trigger and which pinned source revision. `repo_sources.rs` runs CodeCommit and ECR sources
//! started by such events to the end.

use std::time::{Duration, Instant};

use pipewright_core::triggers::webhooks::sign;
use pipewright_e2e::pipelines::{
    api_call, clients, source_action, versioned_source, zip_of, Clients, PipelineBuilder,
};
use pipewright_e2e::triggers::{execution_record, executions, invoke_trigger, sample, started};
use pipewright_e2e::{root, stack, unique, Stack};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------

/// A pipeline whose first stage is `source` (output artifact `Src`), then a Commands action.
fn create(stack: &Stack, name: &str, source: Value, triggers: Option<Value>) {
    let mut pipeline = PipelineBuilder::new(stack, "triggers")
        .named(name)
        .source(source)
        .commands("Build", &["ls"]);
    if let Some(triggers) = triggers {
        pipeline = pipeline.triggers(triggers);
    }
    pipeline.create(stack);
}

fn source(provider: &str, configuration: Value) -> Value {
    source_action("App", provider, configuration)
}

fn git_source(repository: &str, branch: &str) -> Value {
    source(
        "CodeStarSourceConnection",
        json!({
            "ConnectionArn": "arn:aws:codeconnections:us-east-1:123456789012:connection/pipewright-test",
            "FullRepositoryId": repository,
            "BranchName": branch
        }),
    )
}

/// The source revision overrides the execution record holds.
async fn overrides(c: &Clients, stack: &Stack, id: &str) -> Value {
    execution_record(c, stack, id).await["sourceRevisionOverrides"].clone()
}

// ---------------------------------------------------------------------------------------------
// EventBridge events
// ---------------------------------------------------------------------------------------------

/// Invoke the trigger function with `event`; the (pipeline, execution id) it started.
async fn trigger(c: &Clients, stack: &Stack, event: &Value) -> Vec<(String, String)> {
    started(&invoke_trigger(c, stack, event).await)
        .into_iter()
        .map(|(pipeline, id, _)| (pipeline, id))
        .collect()
}

#[tokio::test]
async fn a_codecommit_push_starts_the_pipeline_following_that_branch_and_no_other() {
    let stack = stack();
    let c = clients(stack).await;
    let repository = unique("pipewright-repo");
    let (main, dev) = (unique("cc-main"), unique("cc-dev"));
    for (name, branch) in [(&main, "main"), (&dev, "dev")] {
        create(
            stack,
            name,
            source(
                "CodeCommit",
                json!({"RepositoryName": repository, "BranchName": branch, "PollForSourceChanges": "false"}),
            ),
            None,
        );
    }
    let mut event = sample("trigger-codecommit-push.json");
    event["id"] = json!(unique("event"));
    event["detail"]["repositoryName"] = json!(repository);
    let commit = event["detail"]["commitId"].as_str().unwrap().to_string();

    let started = trigger(&c, stack, &event).await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0].0, main);
    let listed = executions(&c, &main).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].0, started[0].1);
    assert_eq!(listed[0].1, "CloudWatchEvent");
    assert!(listed[0].2.contains(&repository), "{}", listed[0].2);
    assert_eq!(
        overrides(&c, stack, &started[0].1).await,
        json!([{"actionName": "App", "revisionType": "COMMIT_ID", "revisionValue": commit}])
    );
    assert!(executions(&c, &dev).await.is_empty());

    // Redelivered: nothing new. A tag, or a deleted branch: nothing at all.
    assert_eq!(trigger(&c, stack, &event).await, started);
    let mut tag = event.clone();
    tag["id"] = json!(unique("event"));
    tag["detail"]["referenceType"] = json!("tag");
    assert!(trigger(&c, stack, &tag).await.is_empty());
    let mut deleted = event.clone();
    deleted["id"] = json!(unique("event"));
    deleted["detail"]["event"] = json!("referenceDeleted");
    assert!(trigger(&c, stack, &deleted).await.is_empty());
    assert_eq!(executions(&c, &main).await.len(), 1);
}

#[tokio::test]
async fn an_ecr_push_starts_the_pipeline_following_that_tag_and_no_other() {
    let stack = stack();
    let c = clients(stack).await;
    let repository = unique("pipewright-image");
    let (latest, release) = (unique("ecr-latest"), unique("ecr-release"));
    // No ImageTag: `latest`.
    create(
        stack,
        &latest,
        source("ECR", json!({"RepositoryName": repository})),
        None,
    );
    create(
        stack,
        &release,
        source(
            "ECR",
            json!({"RepositoryName": repository, "ImageTag": "release"}),
        ),
        None,
    );
    let mut event = sample("trigger-ecr-push.json");
    event["id"] = json!(unique("event"));
    event["detail"]["repository-name"] = json!(repository);
    let digest = event["detail"]["image-digest"]
        .as_str()
        .unwrap()
        .to_string();

    let started = trigger(&c, stack, &event).await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0].0, latest);
    let listed = executions(&c, &latest).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0].1, "CloudWatchEvent");
    assert_eq!(
        overrides(&c, stack, &started[0].1).await,
        json!([{"actionName": "App", "revisionType": "IMAGE_DIGEST", "revisionValue": digest}])
    );
    assert!(executions(&c, &release).await.is_empty());

    // A failed push starts nothing.
    let mut failed = event.clone();
    failed["id"] = json!(unique("event"));
    failed["detail"]["result"] = json!("FAILURE");
    assert!(trigger(&c, stack, &failed).await.is_empty());
}

#[tokio::test]
async fn a_cloudtrail_object_write_starts_the_s3_pipeline_once_per_version() {
    let stack = stack();
    let c = clients(stack).await;
    let bucket = unique("pipewright-src");
    let version = versioned_source(&c, &bucket, "app.zip", zip_of(&[("a.txt", "a\n")])).await;
    let (watching, other) = (unique("ct-app"), unique("ct-other"));
    for (name, key) in [(&watching, "app.zip"), (&other, "other.zip")] {
        create(
            stack,
            name,
            source("S3", json!({"S3Bucket": bucket, "S3ObjectKey": key})),
            None,
        );
    }
    let mut event = sample("trigger-s3-cloudtrail-put.json");
    event["id"] = json!(unique("event"));
    event["detail"]["requestParameters"]["bucketName"] = json!(bucket);
    event["detail"]["responseElements"]["x-amz-version-id"] = json!(version);

    let started = trigger(&c, stack, &event).await;
    assert_eq!(started.len(), 1, "{started:?}");
    assert_eq!(started[0].0, watching);
    assert_eq!(executions(&c, &watching).await[0].1, "CloudWatchEvent");
    assert_eq!(
        overrides(&c, stack, &started[0].1).await,
        json!([{"actionName": "App", "revisionType": "S3_OBJECT_VERSION_ID", "revisionValue": version}])
    );
    assert!(executions(&c, &other).await.is_empty());

    // The same write reported again by the bucket's EventBridge notification (another event
    // id): the same execution.
    let mut created = sample("trigger-s3-object-created.json");
    created["id"] = json!(unique("event"));
    created["detail"]["bucket"]["name"] = json!(bucket);
    created["detail"]["object"]["version-id"] = json!(version);
    assert_eq!(trigger(&c, stack, &created).await, started);
    // A read is no change.
    let mut read = event.clone();
    read["id"] = json!(unique("event"));
    read["detail"]["eventName"] = json!("GetObject");
    assert!(trigger(&c, stack, &read).await.is_empty());
    assert_eq!(executions(&c, &watching).await.len(), 1);
}

// ---------------------------------------------------------------------------------------------
// Webhooks
// ---------------------------------------------------------------------------------------------

/// The stack's webhook secret, as its owner reads it to give it to the git host.
async fn stack_secret(c: &Clients, stack: &Stack) -> Vec<u8> {
    aws_sdk_secretsmanager::Client::new(&c.sdk)
        .get_secret_value()
        .secret_id(stack.output("WebhookSecretArn"))
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .expect("a string secret")
        .as_bytes()
        .to_vec()
}

/// POST `body` with `headers` to the webhook URL at `path`; returns the status and the JSON.
fn post(stack: &Stack, path: &str, headers: &[(String, String)], body: &[u8]) -> (u16, Value) {
    let url = format!("{}{path}", stack.webhook_endpoint);
    let mut request = ureq::post(&url).header("Content-Type", "application/json");
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    let mut response = request
        .config()
        .http_status_as_error(false)
        .build()
        .send(body)
        .expect("webhook request");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    let json = serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"));
    (status, json)
}

/// A delivery: its headers (signed) and body.
struct Delivery {
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// The sample delivery of `provider` (`github`, `gitlab`, `bitbucket`) from `events/`, about
/// `repository`, with delivery id `id` (in its body too: each delivery is another change),
/// signed with `secret`.
fn delivery(provider: &str, repository: &str, id: &str, secret: &[u8]) -> Delivery {
    let event = sample(&format!("webhook-{provider}-push.json"));
    let mut payload: Value =
        serde_json::from_str(event["body"].as_str().expect("a body")).expect("JSON payload");
    match provider {
        "gitlab" => payload["project"]["path_with_namespace"] = json!(repository),
        _ => payload["repository"]["full_name"] = json!(repository),
    }
    // Each delivery of a host is a body of its own (another push); the parsers ignore the member.
    payload["pipewright_test_delivery"] = json!(id);
    signed(provider, payload.to_string().into_bytes(), id, secret)
}

fn signed(provider: &str, body: Vec<u8>, id: &str, secret: &[u8]) -> Delivery {
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    let headers = match provider {
        "github" => vec![
            h("X-GitHub-Event", "push"),
            h("X-GitHub-Delivery", id),
            h("X-Hub-Signature-256", &sign(secret, &body)),
        ],
        "gitlab" => vec![
            h("X-Gitlab-Event", "Push Hook"),
            h("X-Gitlab-Event-UUID", id),
            h("X-Gitlab-Token", std::str::from_utf8(secret).unwrap()),
        ],
        "bitbucket" => vec![
            h("X-Event-Key", "repo:push"),
            h("X-Request-UUID", id),
            h("X-Hub-Signature", &sign(secret, &body)),
        ],
        other => panic!("no provider {other}"),
    };
    Delivery { headers, body }
}

fn send(stack: &Stack, path: &str, d: &Delivery) -> (u16, Value) {
    post(stack, path, &d.headers, &d.body)
}

/// The commit each sample push reports.
fn sample_commit(provider: &str) -> &'static str {
    match provider {
        "github" => "4b2c2f0a8e3d1c5b7a9f6e4d2c0b8a6f4e2d0c9b",
        "gitlab" => "da1560886d4f094c3e6c9ef40349f7d38b5d27d7",
        _ => "709d658dc5b6d6afcd46049c2f332ee3f515a67d",
    }
}

#[tokio::test]
async fn github_gitlab_and_bitbucket_pushes_with_good_signatures_start_their_pipeline() {
    let stack = stack();
    let c = clients(stack).await;
    let secret = stack_secret(&c, stack).await;
    for provider in ["github", "gitlab", "bitbucket"] {
        let repository = format!("pipewright/{}", unique(provider));
        let name = unique(&format!("wh-{provider}"));
        let bystander = unique("wh-other-branch");
        create(stack, &name, git_source(&repository, "main"), None);
        create(stack, &bystander, git_source(&repository, "dev"), None);

        // At the pipeline's own URL.
        let d = delivery(provider, &repository, &unique("delivery"), &secret);
        let (status, answer) = send(stack, &format!("/{name}"), &d);
        assert_eq!(status, 200, "{provider}: {answer}");
        let started = answer["started"].as_array().unwrap();
        assert_eq!(started.len(), 1, "{provider}: {answer}");
        assert_eq!(started[0]["pipelineName"], json!(name));
        let id = started[0]["pipelineExecutionId"].as_str().unwrap();
        let listed = executions(&c, &name).await;
        assert_eq!(listed.len(), 1, "{provider}");
        assert_eq!(
            (listed[0].0.as_str(), listed[0].1.as_str()),
            (id, "WebhookV2")
        );
        assert!(listed[0].2.contains("(delivery "), "{}", listed[0].2);
        assert_eq!(
            overrides(&c, stack, id).await,
            json!([{"actionName": "App", "revisionType": "COMMIT_ID", "revisionValue": sample_commit(provider)}]),
            "{provider}"
        );

        // At the stack-wide URL: every pipeline following the repository decides for itself.
        let d = delivery(provider, &repository, &unique("delivery"), &secret);
        let (status, answer) = send(stack, "/", &d);
        assert_eq!(status, 200, "{provider}: {answer}");
        assert_eq!(
            answer["started"][0]["pipelineName"],
            json!(name),
            "{answer}"
        );
        assert_eq!(answer["started"].as_array().unwrap().len(), 1, "{answer}");
        let skipped = &answer["notStarted"][0];
        assert_eq!(skipped["pipelineName"], json!(bystander), "{answer}");
        assert!(
            skipped["reason"]
                .as_str()
                .unwrap()
                .contains("follows branch `dev`"),
            "{answer}"
        );
        assert_eq!(executions(&c, &name).await.len(), 2);
        assert!(executions(&c, &bystander).await.is_empty());
    }
}

#[tokio::test]
async fn bad_missing_and_truncated_signatures_and_altered_bodies_are_refused() {
    let stack = stack();
    let c = clients(stack).await;
    let secret = stack_secret(&c, stack).await;
    let repository = format!("pipewright/{}", unique("refused"));
    let name = unique("wh-refused");
    create(stack, &name, git_source(&repository, "main"), None);
    let path = format!("/{name}");

    let without = |d: &Delivery, header: &str| -> Vec<(String, String)> {
        d.headers
            .iter()
            .filter(|(k, _)| !k.eq_ignore_ascii_case(header))
            .cloned()
            .collect()
    };
    let replaced = |d: &Delivery, header: &str, value: &str| -> Vec<(String, String)> {
        let mut h = without(d, header);
        h.push((header.to_string(), value.to_string()));
        h
    };
    for provider in ["github", "gitlab", "bitbucket"] {
        let d = delivery(provider, &repository, &unique("delivery"), &secret);
        let header = match provider {
            "github" => "X-Hub-Signature-256",
            "gitlab" => "X-Gitlab-Token",
            _ => "X-Hub-Signature",
        };
        let good = d
            .headers
            .iter()
            .find(|(k, _)| k == header)
            .unwrap()
            .1
            .clone();
        let mut altered = d.body.clone();
        let at = altered.len() - 2;
        altered[at] ^= 0x01;
        let wrong = match provider {
            "gitlab" => "not-the-token".to_string(),
            _ => sign(b"not the secret", &d.body),
        };
        type Case<'a> = (&'a str, Vec<(String, String)>, Vec<u8>);
        let cases: Vec<Case> = vec![
            ("missing", without(&d, header), d.body.clone()),
            ("wrong", replaced(&d, header, &wrong), d.body.clone()),
            (
                "truncated",
                replaced(&d, header, &good[..good.len() - 4]),
                d.body.clone(),
            ),
            ("empty", replaced(&d, header, ""), d.body.clone()),
            ("altered body", d.headers.clone(), altered),
        ];
        // GitLab's token is not a signature: it does not cover the body (TLS does).
        let cases = cases
            .into_iter()
            .filter(|(case, _, _)| provider != "gitlab" || *case != "altered body");
        for (case, headers, body) in cases {
            let (status, answer) = post(stack, &path, &headers, &body);
            assert_eq!(status, 401, "{provider} {case}: {answer}");
            assert_eq!(
                answer["error"], "InvalidSignature",
                "{provider} {case}: {answer}"
            );
            // Never the signature in the answer.
            assert!(!answer.to_string().contains(&good), "{provider} {case}");
        }
        // Also at the stack-wide URL, and for a pipeline that does not exist (no hint).
        let (status, _) = post(stack, "/", &without(&d, header), &d.body);
        assert_eq!(status, 401, "{provider}");
        let (status, _) = post(
            stack,
            "/no-such-pipeline",
            &replaced(&d, header, &wrong),
            &d.body,
        );
        assert_eq!(status, 401, "{provider}");
    }
    assert!(executions(&c, &name).await.is_empty());
    // Signed right, the same delivery still works.
    let d = delivery("github", &repository, &unique("delivery"), &secret);
    assert_eq!(send(stack, &path, &d).0, 200);
    assert_eq!(executions(&c, &name).await.len(), 1);
}

#[tokio::test]
async fn a_pipeline_with_its_own_secret_takes_deliveries_signed_with_it_only() {
    let stack = stack();
    let c = clients(stack).await;
    let stack_secret = stack_secret(&c, stack).await;
    let repository = format!("pipewright/{}", unique("own-secret"));
    let name = unique("wh-own");
    create(stack, &name, git_source(&repository, "main"), None);
    let own = format!("own-secret-{}", unique("s"));
    aws_sdk_secretsmanager::Client::new(&c.sdk)
        .create_secret()
        .name(format!("pipewright/webhooks/{name}"))
        .secret_string(&own)
        .send()
        .await
        .expect("CreateSecret");
    let path = format!("/{name}");

    let d = delivery("github", &repository, &unique("delivery"), &stack_secret);
    assert_eq!(send(stack, &path, &d).0, 401);
    let (status, answer) = send(stack, "/", &d);
    assert_eq!(status, 200, "{answer}");
    assert!(answer["started"].as_array().unwrap().is_empty(), "{answer}");
    assert!(
        answer["notStarted"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("has a webhook secret of its own"),
        "{answer}"
    );
    assert!(executions(&c, &name).await.is_empty());

    let d = delivery("github", &repository, &unique("delivery"), own.as_bytes());
    let (status, answer) = send(stack, &path, &d);
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["started"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(executions(&c, &name).await.len(), 1);
}

#[tokio::test]
async fn the_same_delivery_three_times_also_concurrently_starts_one_execution() {
    let stack = stack();
    let c = clients(stack).await;
    let secret = stack_secret(&c, stack).await;
    let repository = format!("pipewright/{}", unique("once"));
    let name = unique("wh-once");
    create(stack, &name, git_source(&repository, "main"), None);
    let path = format!("/{name}");

    // One after another.
    let d = delivery("github", &repository, &unique("delivery"), &secret);
    let answers: Vec<Value> = (0..3).map(|_| send(stack, &path, &d).1).collect();
    let ids: Vec<&str> = answers
        .iter()
        .map(|a| a["started"][0]["pipelineExecutionId"].as_str().unwrap())
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{answers:?}");
    let new: Vec<bool> = answers
        .iter()
        .map(|a| a["started"][0]["new"].as_bool().unwrap())
        .collect();
    assert_eq!(new, vec![true, false, false]);

    // At once, from three threads.
    let d = delivery("gitlab", &repository, &unique("delivery"), &secret);
    let answers: Vec<(u16, Value)> = std::thread::scope(|s| {
        let threads: Vec<_> = (0..3).map(|_| s.spawn(|| send(stack, &path, &d))).collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    let ids: Vec<&str> = answers
        .iter()
        .map(|(status, a)| {
            assert_eq!(*status, 200, "{a}");
            a["started"][0]["pipelineExecutionId"].as_str().unwrap()
        })
        .collect();
    assert!(ids.iter().all(|id| *id == ids[0]), "{answers:?}");
    let fresh = answers
        .iter()
        .filter(|(_, a)| a["started"][0]["new"] == json!(true))
        .count();
    assert_eq!(fresh, 1, "{answers:?}");

    assert_eq!(executions(&c, &name).await.len(), 2);
}

/// Wait until the webhook function's log (under the local stack's state folder) holds `text`.
fn function_log_mentions(text: &str) -> bool {
    let deadline = Instant::now() + Duration::from_secs(10);
    let dirs: Vec<std::path::PathBuf> = match std::env::var_os("PIPEWRIGHT_LOCAL_ENV") {
        Some(file) => vec![std::path::Path::new(&file).parent().unwrap().join("lambda")],
        None => vec![root()
            .join("target")
            .join(format!("pipewright-test-{}", std::process::id()))
            .join("lambda")],
    };
    fn search(dir: &std::path::Path, text: &str) -> bool {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return false;
        };
        entries.flatten().any(|e| {
            let path = e.path();
            if path.is_dir() {
                search(&path, text)
            } else {
                std::fs::read_to_string(&path).is_ok_and(|s| s.contains(text))
            }
        })
    }
    loop {
        if dirs.iter().any(|d| search(d, text)) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[tokio::test]
async fn a_push_filtered_out_by_the_triggers_starts_nothing_and_says_why() {
    let stack = stack();
    let c = clients(stack).await;
    let secret = stack_secret(&c, stack).await;
    let repository = format!("pipewright/{}", unique("filtered"));
    let name = unique("wh-filtered");
    create(
        stack,
        &name,
        git_source(&repository, "main"),
        Some(json!([{
            "providerType": "CodeStarSourceConnection",
            "gitConfiguration": {
                "sourceActionName": "App",
                "push": [{
                    "branches": {"includes": ["release/**"]},
                    "filePaths": {"includes": ["src/**"], "excludes": ["**/*.md"]}
                }],
                "pullRequest": [{"events": ["OPEN"], "branches": {"includes": ["main"]}}]
            }
        }])),
    );
    let path = format!("/{name}");
    let github = |edit: &dyn Fn(&mut Value), event: &str| {
        let body = sample("webhook-github-push.json")["body"]
            .as_str()
            .unwrap()
            .to_string();
        let mut payload: Value = serde_json::from_str(&body).unwrap();
        payload["repository"]["full_name"] = json!(repository);
        edit(&mut payload);
        let mut d = signed(
            "github",
            payload.to_string().into_bytes(),
            &unique("delivery"),
            &secret,
        );
        d.headers[0].1 = event.to_string();
        send(stack, &path, &d)
    };

    // The sample pushes to main: the trigger wants release/**.
    let (status, answer) = github(&|_| {}, "push");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["started"].as_array().unwrap().is_empty(), "{answer}");
    let reason = answer["notStarted"][0]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("branch `main` not included by [`release/**`]"),
        "{reason}"
    );
    assert!(
        function_log_mentions("branch `main` not included by [`release/**`]"),
        "the webhook function's log does not give the reason"
    );

    // To release/1, but touching only Markdown: every path is filtered out.
    let docs_only = |p: &mut Value| {
        p["ref"] = json!("refs/heads/release/1");
        p["commits"] = json!([{"id": p["after"], "added": ["src/NOTES.md"], "modified": ["README.md"], "removed": []}]);
    };
    let (status, answer) = github(&docs_only, "push");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["started"].as_array().unwrap().is_empty(), "{answer}");
    assert!(
        answer["notStarted"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("file `src/NOTES.md` excluded by `**/*.md`"),
        "{answer}"
    );
    assert!(executions(&c, &name).await.is_empty());

    // A ping, and an event that starts nothing.
    let (status, answer) = github(&|_| {}, "ping");
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = github(&|_| {}, "issues");
    assert_eq!(status, 202, "{answer}");
    assert!(executions(&c, &name).await.is_empty());

    // To release/1 with a source change: started, pinned.
    let (status, answer) = github(
        &|p| {
            docs_only(p);
            p["commits"][0]["modified"] = json!(["src/lib.rs"]);
        },
        "push",
    );
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["started"].as_array().unwrap().len(), 1, "{answer}");
    assert!(
        answer["started"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("file `src/lib.rs` included by `src/**`"),
        "{answer}"
    );
    // A pull request opened into main passes the pull request filter.
    let (status, answer) = github(
        &|p| {
            *p = json!({
                "action": "opened", "number": 12,
                "repository": p["repository"].clone(),
                "pull_request": {"number": 12, "title": "Add things",
                    "head": {"ref": "feature/things", "sha": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"},
                    "base": {"ref": "main"}}
            });
        },
        "pull_request",
    );
    assert_eq!(status, 200, "{answer}");
    let id = answer["started"][0]["pipelineExecutionId"]
        .as_str()
        .unwrap_or_else(|| panic!("{answer}"))
        .to_string();
    assert_eq!(
        overrides(&c, stack, &id).await,
        json!([{"actionName": "App", "revisionType": "COMMIT_ID", "revisionValue": "a1b2c3d4e5f60718293a4b5c6d7e8f9012345678"}])
    );
    let listed = executions(&c, &name).await;
    assert_eq!(listed.len(), 2);
    assert!(listed.iter().all(|e| e.1 == "WebhookV2"), "{listed:?}");

    // The same pull request from a fork starts nothing: its code would run with the
    // pipeline's roles. Tagged pipewright:fork-pull-requests=allow, the pipeline runs it.
    let from_fork = |number: u64| {
        move |p: &mut Value| {
            *p = json!({
                "action": "opened", "number": number,
                "repository": p["repository"].clone(),
                "pull_request": {"number": number, "title": "Add things",
                    "head": {"ref": "feature/things", "sha": "b1b2c3d4e5f60718293a4b5c6d7e8f9012345678",
                             "repo": {"full_name": "mallory/app"}},
                    "base": {"ref": "main", "repo": p["repository"].clone()}}
            });
        }
    };
    let (status, answer) = github(&from_fork(13), "pull_request");
    assert_eq!(status, 200, "{answer}");
    assert!(answer["started"].as_array().unwrap().is_empty(), "{answer}");
    let reason = answer["notStarted"][0]["reason"]
        .as_str()
        .unwrap_or_default();
    assert!(
        reason.contains("comes from a fork (mallory/app)")
            && reason.contains("pipewright:fork-pull-requests=allow"),
        "{answer}"
    );
    assert_eq!(executions(&c, &name).await.len(), 2);
    api_call(
        stack,
        "TagResource",
        &json!({"resourceArn": format!("arn:aws:codepipeline:us-east-1:123456789012:{name}"),
                "tags": [{"key": "pipewright:fork-pull-requests", "value": "allow"}]}),
    );
    let (status, answer) = github(&from_fork(14), "pull_request");
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["started"].as_array().unwrap().len(), 1, "{answer}");
    assert_eq!(executions(&c, &name).await.len(), 3);

    // A repository no pipeline follows.
    let (status, answer) = github(
        &|p| p["repository"]["full_name"] = json!("someone/else"),
        "push",
    );
    assert_eq!(status, 200, "{answer}");
    assert!(
        answer["notStarted"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("has no git source action for someone/else"),
        "{answer}"
    );
}

/// A captured delivery replayed under a new delivery id (the id is not covered by the
/// signature) is the change it was: it starts nothing new, at either URL.
#[tokio::test]
async fn a_delivery_replayed_with_a_new_delivery_id_starts_nothing() {
    let stack = stack();
    let c = clients(stack).await;
    let secret = stack_secret(&c, stack).await;
    let repository = format!("pipewright/{}", unique("replay"));
    let name = unique("wh-replay");
    create(stack, &name, git_source(&repository, "main"), None);
    let path = format!("/{name}");

    let original = delivery("github", &repository, &unique("delivery"), &secret);
    let (status, first) = send(stack, &path, &original);
    assert_eq!(status, 200, "{first}");
    assert_eq!(first["started"][0]["new"], json!(true), "{first}");

    let mut replayed = original.headers.clone();
    for (k, v) in replayed.iter_mut() {
        if k.eq_ignore_ascii_case("X-GitHub-Delivery") {
            *v = unique("replayed");
        }
    }
    for at in [path.as_str(), "/"] {
        let (status, answer) = post(stack, at, &replayed, &original.body);
        assert_eq!(status, 200, "{answer}");
        assert_eq!(
            answer["started"][0]["pipelineExecutionId"], first["started"][0]["pipelineExecutionId"],
            "{answer}"
        );
        assert_eq!(answer["started"][0]["new"], json!(false), "{answer}");
    }
    assert_eq!(executions(&c, &name).await.len(), 1);
}
