//! AWS repository sources on the local stack: `CodeCommit` sources hand on the files of one
//! commit and `ECR` sources an `imageDetail.json` describing one image, with CodePipeline's
//! output variables and revisions, whether the execution was started through the API (the head
//! of the branch / the tagged image, or a pinned revision) or by a source-change event through
//! the trigger function.
//!
//! The repositories live in the emulator: commits are made with CodeCommit's CreateCommit and
//! PutFile, images pushed with ECR's PutImage (a manifest only: the emulator holds no layers,
//! and the source action needs none).

use aws_sdk_codecommit::primitives::Blob;
use aws_sdk_codecommit::types::{FileModeTypeEnum, PutFileEntry};
use aws_sdk_codepipeline::types::{
    PipelineExecutionStatus, SourceRevisionOverride, SourceRevisionType,
};
use pipewright_e2e::pipelines::{
    self, action_failure, clients, commands_action, execution_records, latest_action, output_files,
    start, wait_for, Clients, PipelineBuilder,
};
use pipewright_e2e::triggers::{invoke_trigger, sample, started};
use pipewright_e2e::{stack, unique, Stack};
use serde_json::{json, Value};

// ---------------------------------------------------------------------------------------------
// Pipelines
// ---------------------------------------------------------------------------------------------

/// `source` (output artifact `Src`, namespace `SourceVariables`) → a Commands action `Show`
/// running `commands` in the artifact.
fn create(stack: &Stack, name: &str, source: Value, commands: &[&str]) {
    PipelineBuilder::new(stack, "repo-sources")
        .named(name)
        .source(source)
        .stage(json!({"name": "Build", "actions": [commands_action("Show", commands)]}))
        .create(stack);
}

fn source_action(provider: &str, configuration: Value) -> Value {
    let mut action = pipelines::source_action("Checkout", provider, configuration);
    action["namespace"] = json!("SourceVariables");
    action
}

fn codecommit_source(repository: &str, branch: &str) -> Value {
    source_action(
        "CodeCommit",
        json!({"RepositoryName": repository, "BranchName": branch, "PollForSourceChanges": "false"}),
    )
}

/// The source action's and the Commands action's records of execution `id`.
async fn actions(c: &Clients, stack: &Stack, id: &str) -> (Value, Value) {
    let records = execution_records(c, stack, id).await;
    (
        latest_action(&records, "Source", "Checkout").clone(),
        latest_action(&records, "Build", "Show").clone(),
    )
}

/// Start `name` pinning `revision` of its source action; returns the execution id.
async fn start_pinned(c: &Clients, name: &str, kind: SourceRevisionType, revision: &str) -> String {
    c.codepipeline
        .start_pipeline_execution()
        .name(name)
        .source_revisions(
            SourceRevisionOverride::builder()
                .action_name("Checkout")
                .revision_type(kind)
                .revision_value(revision)
                .build()
                .unwrap(),
        )
        .send()
        .await
        .expect("StartPipelineExecution")
        .pipeline_execution_id()
        .unwrap()
        .to_string()
}

/// Wait for execution `id` of `name` and check it succeeded.
async fn succeeded(c: &Clients, name: &str, id: &str) {
    let (status, summary) = wait_for(c, name, id).await;
    assert_eq!(status, PipelineExecutionStatus::Succeeded, "{summary:?}");
}

/// An ISO-8601 UTC time to the second (`2026-11-20T10:00:00Z`).
fn is_iso_time(v: &Value) -> bool {
    let s = v.as_str().unwrap_or_default();
    s.len() == 20 && s.as_bytes()[10] == b'T' && s.ends_with('Z') && s[..4].parse::<u32>().is_ok()
}

/// The revisions ListPipelineExecutions shows for execution `id`: (id, summary, url).
async fn listed_revision(c: &Clients, name: &str, id: &str) -> (String, String, String) {
    let listed = c
        .codepipeline
        .list_pipeline_executions()
        .pipeline_name(name)
        .send()
        .await
        .expect("ListPipelineExecutions");
    let summary = listed
        .pipeline_execution_summaries()
        .iter()
        .find(|s| s.pipeline_execution_id() == Some(id))
        .expect("the execution is listed");
    let revisions = summary.source_revisions();
    assert_eq!(revisions.len(), 1, "{revisions:?}");
    assert_eq!(revisions[0].action_name(), "Checkout");
    (
        revisions[0].revision_id().unwrap_or_default().to_string(),
        revisions[0]
            .revision_summary()
            .unwrap_or_default()
            .to_string(),
        revisions[0].revision_url().unwrap_or_default().to_string(),
    )
}

fn region(c: &Clients) -> String {
    c.sdk
        .region()
        .map(|r| r.to_string())
        .unwrap_or_else(|| "us-east-1".into())
}

// ---------------------------------------------------------------------------------------------
// CodeCommit
// ---------------------------------------------------------------------------------------------

const RUN_SH: &str = "#!/bin/sh\necho running $(cat README.md)\n";

fn put(path: &str, contents: &str, mode: FileModeTypeEnum) -> PutFileEntry {
    PutFileEntry::builder()
        .file_path(path)
        .file_mode(mode)
        .file_content(Blob::new(contents.as_bytes()))
        .build()
        .unwrap()
}

/// A repository whose `main` has two commits: the first (CreateCommit) with `README.md`
/// (`# app`), an executable `bin/run.sh`, `docs/guide/intro.md` and a symbolic link `latest`;
/// the second (PutFile) changes `README.md` to `# app v2`. Returns (first, second).
async fn repository_with_commits(c: &Clients, repository: &str) -> (String, String) {
    let codecommit = aws_sdk_codecommit::Client::new(&c.sdk);
    codecommit
        .create_repository()
        .repository_name(repository)
        .send()
        .await
        .expect("CreateRepository");
    let first = codecommit
        .create_commit()
        .repository_name(repository)
        .branch_name("main")
        .author_name("Ada")
        .email("ada@example.com")
        .commit_message("First version")
        .put_files(put("README.md", "# app\n", FileModeTypeEnum::Normal))
        .put_files(put("bin/run.sh", RUN_SH, FileModeTypeEnum::Executable))
        .put_files(put(
            "docs/guide/intro.md",
            "Hello\n",
            FileModeTypeEnum::Normal,
        ))
        .put_files(put("latest", "README.md", FileModeTypeEnum::Symlink))
        .send()
        .await
        .expect("CreateCommit")
        .commit_id
        .expect("a commit id");
    let second = codecommit
        .put_file()
        .repository_name(repository)
        .branch_name("main")
        .parent_commit_id(&first)
        .file_path("README.md")
        .file_content(Blob::new("# app v2\n".as_bytes()))
        .commit_message("Second version")
        .send()
        .await
        .expect("PutFile")
        .commit_id;
    (first, second)
}

#[tokio::test]
async fn a_codecommit_source_hands_on_the_branch_head_or_the_pinned_commit() {
    let stack = stack();
    let c = clients(stack).await;
    let repository = unique("pipewright-cc-src");
    let (first, second) = repository_with_commits(&c, &repository).await;
    let name = unique("cc-src");
    create(
        stack,
        &name,
        codecommit_source(&repository, "main"),
        &[
            "ls -A",
            "test -x bin/run.sh",
            "./bin/run.sh",
            "cat docs/guide/intro.md",
            "echo commit=#{SourceVariables.CommitId} branch=#{SourceVariables.BranchName} repo=#{SourceVariables.RepositoryName}",
        ],
    );

    // The head of the branch.
    let id = start(&c, &name).await;
    succeeded(&c, &name, &id).await;
    let (source, show) = actions(&c, stack, &id).await;
    let vars = &source["output"]["outputVariables"];
    assert_eq!(vars["CommitId"], json!(second));
    assert_eq!(vars["CommitMessage"], "Second version");
    assert_eq!(vars["RepositoryName"], json!(repository));
    assert_eq!(vars["BranchName"], "main");
    assert!(is_iso_time(&vars["AuthorDate"]), "{vars}");
    assert!(is_iso_time(&vars["CommitterDate"]), "{vars}");
    assert_eq!(vars.as_object().unwrap().len(), 6, "{vars}");
    // The commit's files, the executable bit kept, the symbolic link left out (as CODE_ZIP).
    assert_eq!(
        output_files(&c, &source).await,
        vec![
            ("README.md".to_string(), 0o644, "# app v2\n".to_string()),
            ("bin/run.sh".to_string(), 0o755, RUN_SH.to_string()),
            (
                "docs/guide/intro.md".to_string(),
                0o644,
                "Hello\n".to_string()
            ),
        ]
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(log.contains("running # app v2"), "{log}");
    assert!(log.contains("Hello"), "{log}");
    assert!(
        log.contains(&format!("commit={second} branch=main repo={repository}")),
        "{log}"
    );
    assert!(!log.contains("latest"), "{log}");
    // The revision: the commit, its message, its console page.
    let region = region(&c);
    assert_eq!(
        listed_revision(&c, &name, &id).await,
        (
            second.clone(),
            "Second version".to_string(),
            format!("https://{region}.console.aws.amazon.com/codesuite/codecommit/repositories/{repository}/commit/{second}?region={region}")
        )
    );

    // A StartPipelineExecution sourceRevisions override pins the first commit.
    let pinned = start_pinned(&c, &name, SourceRevisionType::CommitId, &first).await;
    succeeded(&c, &name, &pinned).await;
    let (source, show) = actions(&c, stack, &pinned).await;
    assert_eq!(
        source["output"]["outputVariables"]["CommitId"],
        json!(first)
    );
    assert_eq!(
        source["output"]["outputVariables"]["CommitMessage"],
        "First version"
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(log.contains("running # app\n"), "{log}");
}

#[tokio::test]
async fn a_codecommit_push_event_runs_the_pushed_commit() {
    let stack = stack();
    let c = clients(stack).await;
    let repository = unique("pipewright-cc-push");
    let (first, _second) = repository_with_commits(&c, &repository).await;
    let name = unique("cc-push");
    create(
        stack,
        &name,
        codecommit_source(&repository, "main"),
        &["cat README.md", "echo commit=#{SourceVariables.CommitId}"],
    );
    // The push of the first commit, delivered after the branch moved on: the execution gets the
    // pushed commit, not the head.
    let mut event = sample("trigger-codecommit-push.json");
    event["id"] = json!(unique("event"));
    event["detail"]["repositoryName"] = json!(repository);
    event["detail"]["referenceName"] = json!("main");
    event["detail"]["referenceFullName"] = json!("refs/heads/main");
    event["detail"]["commitId"] = json!(first);
    let answer = invoke_trigger(&c, stack, &event).await;
    let started = started(&answer);
    assert_eq!(started.len(), 1, "{answer}");
    assert_eq!(started[0].0, name);
    let id = &started[0].1;
    succeeded(&c, &name, id).await;
    let (source, show) = actions(&c, stack, id).await;
    assert_eq!(
        source["output"]["outputVariables"]["CommitId"],
        json!(first)
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(log.contains("# app\n"), "{log}");
    assert!(log.contains(&format!("commit={first}")), "{log}");
}

// ---------------------------------------------------------------------------------------------
// ECR
// ---------------------------------------------------------------------------------------------

/// A Docker image manifest (schema 2) whose config digest is made from `seed`, so each seed
/// gives another image digest.
fn manifest(seed: &str) -> String {
    let hex: String = seed
        .bytes()
        .cycle()
        .take(32)
        .map(|b| format!("{:02x}", b))
        .collect();
    json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {
            "mediaType": "application/vnd.docker.container.image.v1+json",
            "size": 1469,
            "digest": format!("sha256:{hex}")
        },
        "layers": [{
            "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
            "size": 3370706,
            "digest": format!("sha256:{}", hex.chars().rev().collect::<String>())
        }]
    })
    .to_string()
}

/// Push `manifest` tagged `tag` to `repository`; returns its digest.
async fn push(ecr: &aws_sdk_ecr::Client, repository: &str, manifest: &str, tag: &str) -> String {
    ecr.put_image()
        .repository_name(repository)
        .image_manifest(manifest)
        .image_tag(tag)
        .send()
        .await
        .expect("PutImage")
        .image()
        .and_then(|i| i.image_id())
        .and_then(|i| i.image_digest())
        .expect("a digest")
        .to_string()
}

#[tokio::test]
async fn an_ecr_source_hands_on_image_detail_json_for_the_tag_or_the_pushed_digest() {
    let stack = stack();
    let c = clients(stack).await;
    let ecr = aws_sdk_ecr::Client::new(&c.sdk);
    let repository = unique("pipewright-ecr-src");
    ecr.create_repository()
        .repository_name(&repository)
        .send()
        .await
        .expect("CreateRepository");
    let old_manifest = manifest("old");
    let old = push(&ecr, &repository, &old_manifest, "latest").await;
    let new_manifest = manifest("new");
    let new = push(&ecr, &repository, &new_manifest, "latest").await;
    assert_ne!(old, new);
    let described = ecr
        .describe_images()
        .repository_name(&repository)
        .image_ids(
            aws_sdk_ecr::types::ImageIdentifier::builder()
                .image_digest(&new)
                .build(),
        )
        .send()
        .await
        .expect("DescribeImages");
    let detail = &described.image_details()[0];
    let registry = detail.registry_id().expect("a registry id").to_string();
    let region = region(&c);
    let uri =
        |digest: &str| format!("{registry}.dkr.ecr.{region}.amazonaws.com/{repository}@{digest}");

    let name = unique("ecr-src");
    create(
        stack,
        &name,
        source_action("ECR", json!({"RepositoryName": repository})),
        &[
            "cat imageDetail.json",
            "echo uri=#{SourceVariables.ImageURI} tag=#{SourceVariables.ImageTag}",
        ],
    );

    // The image tagged `latest` (the default ImageTag).
    let id = start(&c, &name).await;
    succeeded(&c, &name, &id).await;
    let (source, show) = actions(&c, stack, &id).await;
    assert_eq!(
        source["output"]["outputVariables"],
        json!({
            "RegistryId": registry,
            "RepositoryName": repository,
            "ImageTag": "latest",
            "ImageDigest": new,
            "ImageURI": uri(&new),
        })
    );
    let files = output_files(&c, &source).await;
    assert_eq!(files.len(), 1, "{files:?}");
    assert_eq!(files[0].0, "imageDetail.json");
    let image_detail: Value = serde_json::from_str(&files[0].2).expect("imageDetail.json is JSON");
    let pushed_at = image_detail["ImagePushedAt"].as_str().unwrap_or_default();
    assert!(pushed_at.contains(" UTC "), "{image_detail}");
    assert_eq!(
        image_detail,
        json!({
            "ImageSizeInBytes": detail.image_size_in_bytes().expect("a size").to_string(),
            "ImageDigest": new,
            "Version": "1.0",
            "ImagePushedAt": pushed_at,
            "RegistryId": registry,
            "RepositoryName": repository,
            "ImageURI": uri(&new),
            "ImageTags": ["latest"],
        })
    );
    // In CodePipeline's key order.
    let keys: Vec<&str> = files[0]
        .2
        .lines()
        .filter_map(|l| l.trim().strip_prefix('"')?.split('"').next())
        .filter(|k| k.chars().next().is_some_and(|c| c.is_ascii_uppercase()))
        .collect();
    assert_eq!(
        keys,
        [
            "ImageSizeInBytes",
            "ImageDigest",
            "Version",
            "ImagePushedAt",
            "RegistryId",
            "RepositoryName",
            "ImageURI",
            "ImageTags"
        ]
    );
    let log = show["logTail"].as_str().unwrap();
    assert!(
        log.contains(&format!("uri={} tag=latest", uri(&new))),
        "{log}"
    );
    assert_eq!(
        listed_revision(&c, &name, &id).await,
        (
            new.clone(),
            "latest".to_string(),
            format!("https://{region}.console.aws.amazon.com/ecr/repositories/private/{registry}/{repository}/_/image/{new}/details?region={region}")
        )
    );

    // The push event of the older image (delivered after `latest` moved on): that digest.
    let mut event = sample("trigger-ecr-push.json");
    event["id"] = json!(unique("event"));
    event["detail"]["repository-name"] = json!(repository);
    event["detail"]["image-digest"] = json!(old);
    event["detail"]["image-tag"] = json!("latest");
    let answer = invoke_trigger(&c, stack, &event).await;
    let started = started(&answer);
    assert_eq!(started.len(), 1, "{answer}");
    assert_eq!(started[0].0, name);
    let pushed = &started[0].1;
    succeeded(&c, &name, pushed).await;
    let (source, _) = actions(&c, stack, pushed).await;
    assert_eq!(
        source["output"]["outputVariables"]["ImageDigest"],
        json!(old)
    );
    assert_eq!(
        source["output"]["outputVariables"]["ImageURI"],
        json!(uri(&old))
    );
    let files = output_files(&c, &source).await;
    let image_detail: Value = serde_json::from_str(&files[0].2).unwrap();
    assert_eq!(image_detail["ImageDigest"], json!(old));
    // The older image lost its tag to the newer one.
    assert_eq!(image_detail["ImageTags"], json!([]));

    // A StartPipelineExecution override pins a digest the same way.
    let pinned = start_pinned(&c, &name, SourceRevisionType::ImageDigest, &old).await;
    succeeded(&c, &name, &pinned).await;
    let (source, _) = actions(&c, stack, &pinned).await;
    assert_eq!(
        source["output"]["outputVariables"]["ImageDigest"],
        json!(old)
    );
}

// ---------------------------------------------------------------------------------------------
// Failures
// ---------------------------------------------------------------------------------------------

#[tokio::test]
async fn missing_repositories_branches_tags_and_revisions_fail_with_clear_messages() {
    let stack = stack();
    let c = clients(stack).await;
    let repository = unique("pipewright-cc-bad");
    repository_with_commits(&c, &repository).await;
    let images = unique("pipewright-ecr-bad");
    let ecr = aws_sdk_ecr::Client::new(&c.sdk);
    ecr.create_repository()
        .repository_name(&images)
        .send()
        .await
        .expect("CreateRepository");
    push(&ecr, &images, &manifest("only"), "v1").await;
    let missing_repo = unique("pipewright-cc-missing");
    let missing_images = unique("pipewright-ecr-missing");
    let mut clone_ref = codecommit_source(&repository, "main");
    clone_ref["configuration"]["OutputArtifactFormat"] = json!("CODEBUILD_CLONE_REF");
    let unknown_commit = "0123456789abcdef0123456789abcdef01234567";
    let unknown_digest = format!("sha256:{}", "0".repeat(64));

    // (source, pinned revision, code, what the message says)
    let cases = [
        (
            codecommit_source(&missing_repo, "main"),
            None,
            "ConfigurationError",
            vec![
                format!("CodeCommit repository {missing_repo}"),
                "check RepositoryName".into(),
            ],
        ),
        (
            codecommit_source(&repository, "release"),
            None,
            "ConfigurationError",
            vec![format!("repository {repository} has no branch `release`")],
        ),
        (
            clone_ref,
            None,
            "ConfigurationError",
            vec!["OutputArtifactFormat: CODEBUILD_CLONE_REF".into()],
        ),
        (
            codecommit_source(&repository, "main"),
            Some((SourceRevisionType::CommitId, unknown_commit.to_string())),
            "RevisionUnavailable",
            vec![format!(
                "commit {unknown_commit} is not in repository {repository}"
            )],
        ),
        (
            source_action("ECR", json!({"RepositoryName": missing_images})),
            None,
            "ConfigurationError",
            vec![
                format!("ECR repository {missing_images}"),
                "check RepositoryName".into(),
            ],
        ),
        (
            // No image is tagged `latest`.
            source_action("ECR", json!({"RepositoryName": images})),
            None,
            "ConfigurationError",
            vec![format!(
                "ECR repository {images} has no image tagged `latest`"
            )],
        ),
        (
            source_action("ECR", json!({"RepositoryName": images, "ImageTag": "v1"})),
            Some((SourceRevisionType::ImageDigest, unknown_digest.clone())),
            "RevisionUnavailable",
            vec![format!(
                "image {unknown_digest} is not in ECR repository {images}"
            )],
        ),
    ];
    let mut runs = Vec::new();
    for (source, pinned, code, wants) in cases {
        let name = unique("repo-bad");
        create(stack, &name, source, &["true"]);
        let id = match pinned {
            Some((kind, revision)) => start_pinned(&c, &name, kind, &revision).await,
            None => start(&c, &name).await,
        };
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
        let (got_code, message) = action_failure(latest_action(&records, "Source", "Checkout"));
        assert_eq!(got_code, code, "{message}");
        for want in &wants {
            assert!(
                message.contains(want.as_str()),
                "{message:?} lacks {want:?}"
            );
        }
        assert!(
            !records
                .iter()
                .any(|(sk, _)| sk.starts_with("ACTION#Build#Show#")),
            "Build ran after a failed source"
        );
    }
}
