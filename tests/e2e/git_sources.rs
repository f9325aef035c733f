//! Git source actions on the local stack: `CodeStarSourceConnection` and GitHub (version 1)
//! sources fetch one commit from a git host and hand its files on, with CodePipeline's output
//! variables and revision.
//!
//! The git host is this test process: a small HTTP server on 127.0.0.1 answering the GitHub REST
//! API calls the action makes (`commits/{ref}`, `tarball/{sha}` with a redirect to the archive),
//! over repositories, tokens and commits (real gzipped tar archives) that each test registers.
//! The stack is started with `GitApiBaseUrl` pointing at it, so nothing leaves the machine.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use aws_sdk_codepipeline::types::{
    ActionExecutionFilter, PipelineExecutionStatus, SourceRevisionOverride, SourceRevisionType,
};
use aws_sdk_dynamodb::types::AttributeValue;
use pipewright_core::triggers::webhooks::sign;
use pipewright_e2e::pipelines::{
    action_failure, api_call, clients, commands_action, execution_records, latest_action,
    output_files, start, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::{root, stack, take_git_api_listener, unique, Stack};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// The git host
// ---------------------------------------------------------------------------------------------

/// One commit the host serves.
#[derive(Clone)]
struct HostedCommit {
    json: Value,
    tarball: Vec<u8>,
}

/// One repository: the token that may read it, its branches and commits.
#[derive(Default)]
struct Repo {
    token: String,
    branches: HashMap<String, String>,
    commits: HashMap<String, HostedCommit>,
}

/// A GitHub REST API subset on 127.0.0.1 (paths also under `/api/v3`, as GitHub Enterprise
/// Server serves them).
struct GitHost {
    base: String,
    repos: Mutex<HashMap<String, Repo>>,
    /// Every request: (path, whether it carried the repository's token).
    requests: Mutex<Vec<(String, bool)>>,
}

static HOST: OnceLock<Option<Arc<GitHost>>> = OnceLock::new();

/// The git host, serving on the port the stack's `GitApiBaseUrl` names; `None` when the tests run
/// on a stack of their own choosing (`PIPEWRIGHT_LOCAL_ENV`), whose git API is not this host.
fn host() -> Option<&'static Arc<GitHost>> {
    HOST.get_or_init(|| {
        let listener = take_git_api_listener()?;
        let host = Arc::new(GitHost {
            base: format!("http://{}", listener.local_addr().unwrap()),
            repos: Mutex::default(),
            requests: Mutex::default(),
        });
        let serving = host.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let host = serving.clone();
                std::thread::spawn(move || host.serve(stream));
            }
        });
        Some(host)
    })
    .as_ref()
}

impl GitHost {
    fn serve(&self, stream: TcpStream) {
        let mut reader = BufReader::new(stream.try_clone().expect("clone the stream"));
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).is_err() {
            return;
        }
        let mut authorization = None;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':') {
                if k.eq_ignore_ascii_case("authorization") {
                    authorization = Some(v.trim().to_string());
                }
            }
        }
        let path = request_line.split(' ').nth(1).unwrap_or("/").to_string();
        let (status, headers, body) = self.answer(&path, authorization.as_deref());
        let mut out = format!(
            "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Length: {}\r\n",
            body.len()
        );
        for (k, v) in headers {
            out.push_str(&format!("{k}: {v}\r\n"));
        }
        out.push_str("\r\n");
        let mut stream = stream;
        let _ = stream.write_all(out.as_bytes());
        let _ = stream.write_all(&body);
        let _ = stream.flush();
    }

    fn answer(
        &self,
        path: &str,
        authorization: Option<&str>,
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let message = |status, m: &str| {
            (
                status,
                vec![],
                json!({ "message": m }).to_string().into_bytes(),
            )
        };
        let path = path.strip_prefix("/api/v3").unwrap_or(path);
        let parts: Vec<&str> = path.trim_start_matches('/').splitn(5, '/').collect();
        let repos = self.repos.lock().unwrap();
        let (repo_name, repo) = match parts.as_slice() {
            ["repos", owner, name, ..] | ["archives", owner, name, ..] => {
                let full = format!("{owner}/{name}");
                match repos.get(&full) {
                    Some(repo) => (full, repo),
                    None => return message(404, "Not Found"),
                }
            }
            _ => return message(404, "Not Found"),
        };
        let authorized = authorization == Some(format!("Bearer {}", repo.token).as_str());
        self.requests
            .lock()
            .unwrap()
            .push((path.to_string(), authorized));
        match parts.as_slice() {
            ["repos", _, _, "commits", reference] => {
                if !authorized {
                    return message(401, "Bad credentials");
                }
                let reference = reference.replace("%2F", "/");
                let sha = repo.branches.get(&reference).cloned().or_else(|| {
                    repo.commits
                        .keys()
                        .find(|sha| sha.starts_with(&reference))
                        .cloned()
                });
                match sha.and_then(|sha| repo.commits.get(&sha)) {
                    Some(c) => (200, vec![], c.json.to_string().into_bytes()),
                    None if repo.branches.is_empty() => message(409, "Git Repository is empty."),
                    None => message(422, &format!("No commit found for SHA: {reference}")),
                }
            }
            ["repos", _, _, "tarball", sha] => {
                if !authorized {
                    return message(401, "Bad credentials");
                }
                // As GitHub does: a redirect to where the archive is served.
                let location = format!("/archives/{repo_name}/{sha}.tar.gz");
                (302, vec![("Location".into(), location)], vec![])
            }
            ["archives", _, _, file] => {
                let sha = file.trim_end_matches(".tar.gz");
                match repo.commits.get(sha) {
                    Some(c) => (200, vec![], c.tarball.clone()),
                    None => message(404, "Not Found"),
                }
            }
            _ => message(404, "Not Found"),
        }
    }

    /// Register repository `full_name` readable with `token`.
    fn add_repo(&self, full_name: &str, token: &str) {
        self.repos.lock().unwrap().insert(
            full_name.to_string(),
            Repo {
                token: token.to_string(),
                ..Repo::default()
            },
        );
    }

    /// Add a commit of `files` (path, contents, mode; plus one symbolic link) to `full_name`,
    /// and make it the head of `branch`; returns its id.
    fn commit(
        &self,
        full_name: &str,
        branch: &str,
        message: &str,
        files: &[(&str, &str, u32)],
    ) -> String {
        let sha = new_sha();
        let (owner, name) = full_name.split_once('/').unwrap();
        let top = format!("{owner}-{name}-{}", &sha[..7]);
        let json = json!({
            "sha": sha,
            "url": format!("{}/repos/{full_name}/commits/{sha}", self.base),
            "html_url": format!("https://git.example/{full_name}/commit/{sha}"),
            "commit": {
                "message": message,
                "author": {"name": "Ada", "email": "ada@example.com", "date": "2026-11-20T10:00:00Z"},
                "committer": {"name": "Grace", "email": "grace@example.com", "date": "2026-11-20T10:05:00Z"}
            }
        });
        let mut repos = self.repos.lock().unwrap();
        let repo = repos.get_mut(full_name).expect("a registered repository");
        repo.commits.insert(
            sha.clone(),
            HostedCommit {
                json,
                tarball: tarball(&sha, &top, files),
            },
        );
        repo.branches.insert(branch.to_string(), sha.clone());
        sha
    }

    /// The archive downloads of `full_name` so far, by commit.
    fn downloads(&self, full_name: &str) -> Vec<String> {
        let prefix = format!("/archives/{full_name}/");
        self.requests
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(p, _)| p.strip_prefix(&prefix)?.strip_suffix(".tar.gz"))
            .map(str::to_string)
            .collect()
    }
}

/// A fresh 40-digit commit id.
fn new_sha() -> String {
    static N: AtomicU64 = AtomicU64::new(1);
    let n = N.fetch_add(1, Ordering::Relaxed);
    format!(
        "{:08x}{:016x}{:016x}",
        std::process::id(),
        n,
        n.wrapping_mul(0x9e37_79b9_7f4a_7c15)
    )
}

/// A gzipped tar as GitHub builds them: a pax global header with the commit id, one top-level
/// folder `<owner>-<repo>-<short sha>/`, the files, and a symbolic link.
fn tarball(sha: &str, top: &str, files: &[(&str, &str, u32)]) -> Vec<u8> {
    let gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    let mut tar = tar::Builder::new(gz);
    let pax = format!("52 comment={sha}\n");
    let mut global = tar::Header::new_ustar();
    global.set_entry_type(tar::EntryType::XGlobalHeader);
    global.set_size(pax.len() as u64);
    tar.append_data(&mut global, "pax_global_header", pax.as_bytes())
        .unwrap();
    let mut dir = tar::Header::new_ustar();
    dir.set_entry_type(tar::EntryType::Directory);
    dir.set_mode(0o775);
    dir.set_size(0);
    tar.append_data(&mut dir, format!("{top}/"), &[][..])
        .unwrap();
    for (path, body, mode) in files {
        let mut h = tar::Header::new_ustar();
        h.set_mode(*mode);
        h.set_size(body.len() as u64);
        tar.append_data(&mut h, format!("{top}/{path}"), body.as_bytes())
            .unwrap();
    }
    let mut link = tar::Header::new_ustar();
    link.set_entry_type(tar::EntryType::Symlink);
    link.set_size(0);
    tar.append_link(&mut link, format!("{top}/latest"), "README.md")
        .unwrap();
    tar.into_inner().unwrap().finish().unwrap()
}

/// The stack, whose `GitApiBaseUrl` is this process's git host; `None` when the tests run on a
/// stack of their own choosing (`PIPEWRIGHT_LOCAL_ENV`), whose git API is not this host: the
/// tests then skip rather than send tokens elsewhere.
fn git_stack() -> Option<(&'static Stack, &'static GitHost)> {
    let Some(host) = host() else {
        eprintln!(
            "skipped: the git source tests need the test stack (GitApiBaseUrl at their git host)"
        );
        return None;
    };
    Some((stack(), host.as_ref()))
}

// ---------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------

const README: &str = "# app\n";
const RUN_SH: &str = "#!/bin/sh\necho running $(cat README.md)\n";

fn connection_arn(id: &str) -> String {
    format!("arn:aws:codeconnections:us-east-1:123456789012:connection/{id}")
}

/// A connection whose token (secret `pipewright/connections/<id>`) is `secret`; returns its ARN.
async fn connection(c: &Clients, secret: Option<&str>) -> String {
    let id = unique("conn");
    if let Some(secret) = secret {
        aws_sdk_secretsmanager::Client::new(&c.sdk)
            .create_secret()
            .name(format!("pipewright/connections/{id}"))
            .secret_string(secret)
            .send()
            .await
            .expect("CreateSecret");
    }
    connection_arn(&id)
}

fn connection_source(arn: &str, repository: &str, branch: &str) -> Value {
    json!({
        "name": "Checkout",
        "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeStarSourceConnection", "version": "1"},
        "configuration": {"ConnectionArn": arn, "FullRepositoryId": repository, "BranchName": branch},
        "outputArtifacts": [{"name": "Src"}],
        "namespace": "SourceVariables"
    })
}

/// `source` → a Commands action that shows the artifact's files and the source's variables.
fn create(stack: &Stack, name: &str, source: Value, echo: &str) {
    PipelineBuilder::new(stack, "git")
        .named(name)
        .source(source)
        .stage(json!({"name": "Build", "actions": [
            commands_action("Show", &["ls -A", "./bin/run.sh", echo])
        ]}))
        .create(stack);
}

/// The source action's and the Commands action's records of execution `id`.
async fn actions(c: &Clients, stack: &Stack, id: &str) -> (Value, Value) {
    let records = execution_records(c, stack, id).await;
    (
        latest_action(&records, "Source", "Checkout").clone(),
        latest_action(&records, "Build", "Show").clone(),
    )
}

/// Every item the pipelines table holds for pipeline `name` (current and versions), as text.
async fn pipeline_items(c: &Clients, stack: &Stack, name: &str) -> Vec<String> {
    let table = stack.output("PipelinesTableName");
    let current = c
        .dynamo
        .get_item()
        .table_name(table)
        .key("pk", AttributeValue::S("PIPELINES".into()))
        .key("sk", AttributeValue::S(name.into()))
        .send()
        .await
        .expect("GetItem");
    let versions = c
        .dynamo
        .query()
        .table_name(table)
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("PIPELINE#{name}")))
        .send()
        .await
        .expect("Query");
    current
        .item()
        .into_iter()
        .chain(versions.items())
        .map(|i| format!("{i:?}"))
        .collect()
}

/// The outbox items (events) of execution `id`, as text.
async fn outbox_events(c: &Clients, stack: &Stack, id: &str) -> String {
    let out = c
        .dynamo
        .query()
        .table_name(stack.output("EventsTableName"))
        .key_condition_expression("pk = :pk")
        .expression_attribute_values(":pk", AttributeValue::S(format!("OUTBOX#{id}")))
        .send()
        .await
        .expect("Query");
    format!("{:?}", out.items())
}

/// The stack's name: the executions table is `<stack>-ExecutionsTable-<suffix>`.
fn stack_name(stack: &Stack) -> String {
    let table = stack.output("ExecutionsTableName");
    table
        .rsplit_once("-ExecutionsTable")
        .map(|(s, _)| s.to_string())
        .unwrap_or_else(|| panic!("cannot tell the stack's name from table {table}"))
}

/// Whether execution `id` has a record of its Commands action (it ran).
async fn build_ran(c: &Clients, stack: &Stack, id: &str) -> bool {
    execution_records(c, stack, id)
        .await
        .iter()
        .any(|(sk, _)| sk.starts_with("ACTION#Build#Show#"))
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn a_connection_source_hands_on_the_branch_head_or_the_pinned_commit() {
    let Some((stack, host)) = git_stack() else {
        return;
    };
    let c = clients(stack).await;
    let repository = format!("acme/{}", unique("app"));
    host.add_repo(&repository, "ghs-good-token");
    let files = [("README.md", README, 0o644), ("bin/run.sh", RUN_SH, 0o755)];
    let old = host.commit(&repository, "main", "First version", &files);
    let head = host.commit(
        &repository,
        "main",
        "Second version",
        &[
            ("README.md", "# app v2\n", 0o664),
            ("bin/run.sh", RUN_SH, 0o775),
        ],
    );
    host.commit(&repository, "dev", "Work in progress", &files);
    let arn = connection(&c, Some("ghs-good-token")).await;
    let name = unique("git");
    create(
        stack,
        &name,
        connection_source(&arn, &repository, "main"),
        "echo commit=#{SourceVariables.CommitId} branch=#{SourceVariables.BranchName} repo=#{SourceVariables.FullRepositoryName}",
    );

    // The head of the branch.
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let (source, show) = actions(&c, stack, &id).await;
    assert_eq!(
        source["output"]["outputVariables"],
        json!({
            "CommitId": head,
            "BranchName": "main",
            "AuthorDate": "2026-11-20T10:00:00Z",
            "CommitMessage": "Second version",
            "FullRepositoryName": repository,
            "ConnectionArn": arn,
        })
    );
    // The repository's files without GitHub's top-level folder, the executable bit kept, the
    // symbolic link left out (as CodePipeline's CODE_ZIP does).
    assert_eq!(
        output_files(&c, &source)
            .await
            .into_iter()
            .map(|(name, mode, _)| (name, mode))
            .collect::<Vec<_>>(),
        vec![
            ("README.md".to_string(), 0o644),
            ("bin/run.sh".to_string(), 0o755)
        ]
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(log.contains("running # app v2"), "{log}");
    assert!(
        log.contains(&format!("commit={head} branch=main repo={repository}")),
        "{log}"
    );
    assert_eq!(host.downloads(&repository), vec![head.clone()]);

    // The revision, as CodePipeline records a connection's.
    let listed = c
        .codepipeline
        .list_pipeline_executions()
        .pipeline_name(&name)
        .send()
        .await
        .expect("ListPipelineExecutions");
    let summary = &listed.pipeline_execution_summaries()[0];
    assert_eq!(summary.pipeline_execution_id(), Some(id.as_str()));
    let revisions = summary.source_revisions();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(revisions[0].action_name(), "Checkout");
    assert_eq!(revisions[0].revision_id(), Some(head.as_str()));
    assert_eq!(
        serde_json::from_str::<Value>(revisions[0].revision_summary().unwrap()).unwrap(),
        json!({"ProviderType": "GitHubEnterpriseServer", "CommitMessage": "Second version"})
    );
    assert_eq!(
        revisions[0].revision_url(),
        Some(format!("https://git.example/{repository}/commit/{head}").as_str())
    );
    // ListActionExecutions shows the output variables too.
    let listed = c
        .codepipeline
        .list_action_executions()
        .pipeline_name(&name)
        .filter(
            ActionExecutionFilter::builder()
                .pipeline_execution_id(&id)
                .build(),
        )
        .send()
        .await
        .expect("ListActionExecutions");
    let checkout = listed
        .action_execution_details()
        .iter()
        .find(|d| d.action_name() == Some("Checkout"))
        .expect("the source action's execution");
    let output = checkout.output().expect("an output");
    assert_eq!(
        output.output_variables().and_then(|v| v.get("CommitId")),
        Some(&head)
    );
    assert_eq!(
        output
            .execution_result()
            .and_then(|r| r.external_execution_id()),
        Some(head.as_str())
    );

    // A StartPipelineExecution sourceRevisions override pins an older commit.
    let pinned = c
        .codepipeline
        .start_pipeline_execution()
        .name(&name)
        .source_revisions(
            SourceRevisionOverride::builder()
                .action_name("Checkout")
                .revision_type(SourceRevisionType::CommitId)
                .revision_value(&old)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .unwrap()
        .to_string();
    let (status, summary) = wait_for(&c, &name, &pinned).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let (source, show) = actions(&c, stack, &pinned).await;
    assert_eq!(source["output"]["outputVariables"]["CommitId"], json!(old));
    assert_eq!(
        source["output"]["outputVariables"]["CommitMessage"],
        "First version"
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(log.contains("running # app\n"), "{log}");
    assert_eq!(host.downloads(&repository), vec![head, old]);
}

#[tokio::test]
async fn a_github_push_webhook_downloads_exactly_the_pushed_commit() {
    let Some((stack, host)) = git_stack() else {
        return;
    };
    let c = clients(stack).await;
    let repository = format!("acme/{}", unique("hooked"));
    host.add_repo(&repository, "ghs-hook-token");
    let pushed = host.commit(
        &repository,
        "main",
        "The pushed commit",
        &[
            ("README.md", "# pushed\n", 0o644),
            ("bin/run.sh", RUN_SH, 0o755),
        ],
    );
    // The branch moved on after the push; the execution still gets the pushed commit.
    let later = host.commit(
        &repository,
        "main",
        "A later commit",
        &[
            ("README.md", "# later\n", 0o644),
            ("bin/run.sh", RUN_SH, 0o755),
        ],
    );
    let arn = connection(&c, Some("ghs-hook-token")).await;
    let name = unique("git-hook");
    create(
        stack,
        &name,
        connection_source(&arn, &repository, "main"),
        "echo commit=#{SourceVariables.CommitId}",
    );

    let sample: Value = serde_json::from_str(
        &std::fs::read_to_string(root().join("events/webhook-github-push.json")).unwrap(),
    )
    .unwrap();
    let mut payload: Value = serde_json::from_str(sample["body"].as_str().unwrap()).unwrap();
    payload["ref"] = json!("refs/heads/main");
    payload["after"] = json!(pushed);
    payload["repository"]["full_name"] = json!(repository);
    payload["head_commit"]["id"] = json!(pushed);
    if let Some(commits) = payload["commits"].as_array_mut() {
        for commit in commits.iter_mut() {
            commit["id"] = json!(pushed);
        }
    }
    let body = payload.to_string().into_bytes();
    let secret = aws_sdk_secretsmanager::Client::new(&c.sdk)
        .get_secret_value()
        .secret_id(stack.output("WebhookSecretArn"))
        .send()
        .await
        .expect("GetSecretValue")
        .secret_string()
        .unwrap()
        .to_string();
    let mut response = ureq::post(&format!("{}/{name}", stack.webhook_endpoint))
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", "push")
        .header("X-GitHub-Delivery", &unique("delivery"))
        .header("X-Hub-Signature-256", &sign(secret.as_bytes(), &body))
        .config()
        .http_status_as_error(false)
        .build()
        .send(&body[..])
        .expect("webhook delivery");
    let text = response.body_mut().read_to_string().unwrap_or_default();
    assert_eq!(response.status().as_u16(), 200, "{text}");
    let answer: Value = serde_json::from_str(&text).unwrap();
    let id = answer["started"][0]["pipelineExecutionId"]
        .as_str()
        .unwrap_or_else(|| panic!("nothing started: {answer}"))
        .to_string();

    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let (source, show) = actions(&c, stack, &id).await;
    assert_eq!(
        source["output"]["outputVariables"]["CommitId"],
        json!(pushed)
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(log.contains("running # pushed"), "{log}");
    assert!(log.contains(&format!("commit={pushed}")), "{log}");
    assert_eq!(host.downloads(&repository), vec![pushed]);
    let _ = later;
}

#[tokio::test]
async fn a_github_v1_source_and_a_connection_to_its_own_host_fetch_with_their_tokens() {
    let Some((stack, host)) = git_stack() else {
        return;
    };
    let c = clients(stack).await;
    let files = [("README.md", README, 0o644), ("bin/run.sh", RUN_SH, 0o755)];

    // GitHub version 1: the OAuthToken configuration, the stack's API.
    let owner = "octo";
    let repo = unique("legacy");
    let repository = format!("{owner}/{repo}");
    host.add_repo(&repository, "ghp-oauth-token");
    let sha = host.commit(&repository, "release", "Legacy source", &files);
    let name = unique("git-v1");
    create(
        stack,
        &name,
        json!({
            "name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
            "configuration": {"Owner": owner, "Repo": repo, "Branch": "release", "OAuthToken": "ghp-oauth-token", "PollForSourceChanges": "false"},
            "outputArtifacts": [{"name": "Src"}],
            "namespace": "SourceVariables"
        }),
        "echo url=#{SourceVariables.CommitUrl}",
    );
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let (source, show) = actions(&c, stack, &id).await;
    let commit_url = format!("{}/repos/{repository}/commits/{sha}", host.base);
    assert_eq!(
        source["output"]["outputVariables"],
        json!({
            "CommitId": sha,
            "BranchName": "release",
            "AuthorDate": "2026-11-20T10:00:00Z",
            "CommitterDate": "2026-11-20T10:05:00Z",
            "CommitMessage": "Legacy source",
            "CommitUrl": commit_url,
            "RepositoryName": repo,
        })
    );
    assert_eq!(source["sourceRevision"]["revisionSummary"], "Legacy source");
    assert!(show["logTail"]
        .as_str()
        .unwrap()
        .contains(&format!("url={commit_url}")));

    // The token is in no pipeline item, action record or event: the stored declaration names
    // the pipeline's own secret, which holds it.
    let stored = pipeline_items(&c, stack, &name).await;
    assert!(stored.len() >= 2, "{stored:?}");
    for item in &stored {
        assert!(
            !item.contains("ghp-oauth-token"),
            "a pipeline item holds the token: {item}"
        );
    }
    let records = execution_records(&c, stack, &id).await;
    assert!(!format!("{records:?}").contains("ghp-oauth-token"));
    assert!(!outbox_events(&c, stack, &id)
        .await
        .contains("ghp-oauth-token"));
    let reference = format!(
        "{{{{resolve:secretsmanager:pipewright-pipelines/{}/{name}:SecretString:Source/Checkout/OAuthToken}}}}",
        stack_name(stack)
    );
    assert!(
        stored[0].contains(&reference),
        "{reference} not in {}",
        stored[0]
    );
    let secrets = aws_sdk_secretsmanager::Client::new(&c.sdk);
    let secret_name = format!("pipewright-pipelines/{}/{name}", stack_name(stack));
    let value = secrets
        .get_secret_value()
        .secret_id(&secret_name)
        .send()
        .await
        .expect("the pipeline's secret")
        .secret_string()
        .unwrap()
        .to_string();
    assert_eq!(
        serde_json::from_str::<Value>(&value).unwrap(),
        json!({"Source/Checkout/OAuthToken": "ghp-oauth-token"})
    );
    // DeletePipeline deletes it.
    api_call(stack, "DeletePipeline", &json!({ "name": name }));
    let gone = secrets
        .get_secret_value()
        .secret_id(&secret_name)
        .send()
        .await;
    assert!(gone.is_err(), "the secret outlived its pipeline");

    // A token in a secret of the team's own, named by a reference, read with the pipeline role.
    let team_secret = unique("team/github");
    secrets
        .create_secret()
        .name(&team_secret)
        .secret_string(json!({"token": "ghp-oauth-token"}).to_string())
        .send()
        .await
        .expect("CreateSecret");
    let name = unique("git-v1-ref");
    create(
        stack,
        &name,
        json!({
            "name": "Checkout",
            "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
            "configuration": {"Owner": owner, "Repo": repo, "Branch": "release", "PollForSourceChanges": "false",
                "OAuthToken": format!("{{{{resolve:secretsmanager:{team_secret}:SecretString:token}}}}")},
            "outputArtifacts": [{"name": "Src"}],
            "namespace": "SourceVariables"
        }),
        "true",
    );
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let (source, _) = actions(&c, stack, &id).await;
    assert_eq!(source["output"]["outputVariables"]["CommitId"], json!(sha));

    // A connection whose secret names its host's API (a GitHub Enterprise Server's /api/v3).
    let repository = format!("acme/{}", unique("ghe"));
    host.add_repo(&repository, "ghe-token");
    let sha = host.commit(&repository, "main", "On the enterprise host", &files);
    let secret = json!({"token": "ghe-token", "apiBaseUrl": format!("{}/api/v3", host.base)});
    let arn = connection(&c, Some(&secret.to_string())).await;
    let name = unique("git-ghe");
    create(
        stack,
        &name,
        connection_source(&arn, &repository, "main"),
        "true",
    );
    let id = start(&c, &name).await;
    let (status, summary) = wait_for(&c, &name, &id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
    let (source, _) = actions(&c, stack, &id).await;
    assert_eq!(source["output"]["outputVariables"]["CommitId"], json!(sha));
    let requests = host.requests.lock().unwrap().clone();
    assert!(
        requests.iter().any(
            |(p, authorized)| *p == format!("/repos/{repository}/commits/main") && *authorized
        ),
        "{requests:?}"
    );
}

#[tokio::test]
async fn unknown_repositories_bad_tokens_and_bad_configurations_fail_with_clear_messages() {
    let Some((stack, host)) = git_stack() else {
        return;
    };
    let c = clients(stack).await;
    let repository = format!("acme/{}", unique("private"));
    host.add_repo(&repository, "ghs-right-token");
    host.commit(
        &repository,
        "main",
        "Secret stuff",
        &[("README.md", README, 0o644)],
    );
    let good = connection(&c, Some("ghs-right-token")).await;
    let wrong = connection(&c, Some("ghs-wrong-token")).await;
    let missing = connection(&c, None).await;
    let others_only = connection(
        &c,
        Some(&json!({"token": "ghs-right-token", "pipelines": ["someone-else"]}).to_string()),
    )
    .await;
    let missing_repo = format!("acme/{}", unique("missing"));
    let mut clone_ref = connection_source(&good, &repository, "main");
    clone_ref["configuration"]["OutputArtifactFormat"] = json!("CODEBUILD_CLONE_REF");

    let cases = [
        (
            connection_source(&good, &missing_repo, "main"),
            "ConfigurationError",
            vec![
                format!("repository {missing_repo} at {}", host.base),
                "HTTP 404: Not Found".into(),
            ],
        ),
        (
            connection_source(&good, &repository, "no-such-branch"),
            "ConfigurationError",
            vec![
                format!("repository {repository}"),
                "branch `no-such-branch`".into(),
            ],
        ),
        (
            connection_source(&wrong, &repository, "main"),
            "PermissionError",
            vec![
                "HTTP 401: Bad credentials".into(),
                format!(
                    "pipewright/connections/{}",
                    wrong.rsplit('/').next().unwrap()
                ),
            ],
        ),
        (
            connection_source(&missing, &repository, "main"),
            "ConfigurationError",
            vec![format!(
                "create the Secrets Manager secret pipewright/connections/{}",
                missing.rsplit('/').next().unwrap()
            )],
        ),
        (
            clone_ref,
            "ConfigurationError",
            vec!["OutputArtifactFormat: CODEBUILD_CLONE_REF".into()],
        ),
        (
            connection_source(&others_only, &repository, "main"),
            "ConfigurationError",
            vec![
                "may not use this connection".into(),
                "(someone-else)".into(),
            ],
        ),
        (
            json!({
                "name": "Checkout",
                "actionTypeId": {"category": "Source", "owner": "ThirdParty", "provider": "GitHub", "version": "1"},
                "configuration": {"Owner": "acme", "Repo": repository.rsplit('/').next().unwrap(), "Branch": "main",
                    "OAuthToken": "{{resolve:secretsmanager:no/such/secret:SecretString:token}}"},
                "outputArtifacts": [{"name": "Src"}]
            }),
            "ConfigurationError",
            vec!["configuration OAuthToken: there is no secret no/such/secret".into()],
        ),
    ];
    let mut runs = Vec::new();
    for (source, code, wants) in cases {
        let name = unique("git-bad");
        create(stack, &name, source, "true");
        let id = start(&c, &name).await;
        runs.push((name, id, code, wants));
    }
    for (name, id, code, wants) in runs {
        let (status, summary) = wait_for(&c, &name, &id).await;
        assert_eq!(
            status,
            PipelineExecutionStatus::Failed,
            "{name}: {summary:?}"
        );
        let records = execution_records(&c, stack, &id).await;
        let source = latest_action(&records, "Source", "Checkout");
        let (got_code, message) = action_failure(source);
        assert_eq!(got_code, code, "{message}");
        for want in &wants {
            assert!(
                message.contains(want.as_str()),
                "{message:?} lacks {want:?}"
            );
        }
        assert!(!message.contains("ghs-wrong-token") && !message.contains("ghs-right-token"));
        assert!(
            !build_ran(&c, stack, &id).await,
            "Build ran after a failed source"
        );
    }
}
