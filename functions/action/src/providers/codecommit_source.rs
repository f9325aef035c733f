//! `Source/AWS/CodeCommit`: the files of one commit become the output artifact (a zip,
//! CodePipeline's `CODE_ZIP`).
//!
//! What to read and what it means is decided in `pipewright_core::sources`; here are the calls:
//! `GetBranch` (unless the execution pins a commit), `GetCommit`, `GetFolder` for every folder
//! of the commit, and `GetBlob` for every file (a few at once, each written to the work
//! directory as it arrives, at most [`MAX_CONTENT_BYTES`] in all). The files go to the artifact
//! store through the same zipper and upload as every other artifact.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aws_sdk_codecommit::Client;
use pipewright_aws::artifacts::{safe_relative, S3Artifacts};
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::{
    ActionExecutionResult, ActionExecutionStatus, ArtifactDetail, ArtifactLocation, SourceRevision,
};
use pipewright_core::git_source::Commit;
use pipewright_core::sources::{
    codecommit_commit, codecommit_error, codecommit_output_variables, pinned_commit,
    CodeCommitCall, CodeCommitSource, ContentBudget, FolderListing, ListedFile, PlannedFile,
    TreeWalk, MAX_CONTENT_BYTES,
};
use tokio::task::JoinSet;

use super::{aws_failure, remove_work_dir, Context, ProviderError};

/// Blobs read at once.
const BLOBS_AT_ONCE: usize = 8;

/// Work stops this long before the Lambda deadline, so the failure is recorded.
const DEADLINE_MARGIN: Duration = Duration::from_secs(10);

/// Read the commit and write its files as the output artifact. `region` is where the
/// repository is (for the console link).
pub async fn run(
    client: &Client,
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    work_root: &Path,
    deadline: Option<Instant>,
    region: &str,
) -> Result<ActionOutcome, ProviderError> {
    let source = CodeCommitSource::from_configuration(&prepared.configuration)?;
    let output = prepared.outputs.first().ok_or_else(|| {
        ProviderError::Configuration("a CodeCommit source action needs one output artifact".into())
    })?;
    let pinned = pinned_commit(&prepared.source_revision_overrides)?;
    let reader = Reader {
        client,
        source: &source,
    };
    let work = work_root.join(format!(
        "pipewright-{}",
        prepared.record.action_execution_id
    ));
    let fetch = async {
        let commit = reader.commit(pinned.as_deref(), region).await?;
        tracing::info!(repository = %source.repository, commit = %commit.sha, pinned = pinned.is_some(), "reading commit");
        let location = reader
            .write_artifact(&commit, artifacts, &work, output, MAX_CONTENT_BYTES)
            .await?;
        Ok::<_, ProviderError>((commit, location))
    };
    let result = match deadline.map(|d| d - DEADLINE_MARGIN) {
        None => fetch.await,
        Some(at) => tokio::time::timeout_at(at.into(), fetch)
            .await
            .unwrap_or_else(|_| {
                Err(ProviderError::Job(format!(
                    "CodeCommit repository {}: timed out reading the commit (the action's run time is over)",
                    source.repository
                )))
            }),
    };
    remove_work_dir(work).await;
    let (commit, location) = result?;

    Ok(ActionOutcome {
        status: ActionExecutionStatus::Succeeded,
        output_artifacts: vec![ArtifactDetail {
            name: output.name.clone(),
            s3_location: location,
        }],
        output_variables: codecommit_output_variables(&source, &commit),
        result: ActionExecutionResult {
            external_execution_id: Some(commit.sha.clone()),
            external_execution_summary: Some(commit.message.clone()),
            external_execution_url: commit.html_url.clone(),
            ..Default::default()
        },
        source_revision: Some(SourceRevision {
            action_name: prepared.record.action_name.clone(),
            revision_id: Some(commit.sha.clone()),
            revision_summary: Some(commit.message.clone()),
            revision_url: commit.html_url.clone(),
            revision_change_id: None,
        }),
        log_tail: None,
        log_location: None,
    })
}

/// One action's calls.
struct Reader<'a> {
    client: &'a Client,
    source: &'a CodeCommitSource,
}

impl Reader<'_> {
    fn error<E>(
        &self,
        call: CodeCommitCall<'_>,
        e: &aws_sdk_codecommit::error::SdkError<E>,
    ) -> ProviderError
    where
        E: aws_sdk_codecommit::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        let (code, status, message) = aws_failure(e);
        codecommit_error(self.source, call, code.as_deref(), status, &message).into()
    }

    /// The pinned commit, else the head of the branch, with its message and dates.
    async fn commit(&self, pinned: Option<&str>, region: &str) -> Result<Commit, ProviderError> {
        let repository = &self.source.repository;
        let id = match pinned {
            Some(id) => id.to_string(),
            None => {
                let call = CodeCommitCall::BranchHead(&self.source.branch);
                let out = self
                    .client
                    .get_branch()
                    .repository_name(repository)
                    .branch_name(&self.source.branch)
                    .send()
                    .await
                    .map_err(|e| self.error(call, &e))?;
                out.branch()
                    .and_then(|b| b.commit_id())
                    .filter(|c| !c.is_empty())
                    .ok_or_else(|| {
                        ProviderError::Configuration(format!(
                            "CodeCommit repository {repository}: branch `{}` has no commit",
                            self.source.branch
                        ))
                    })?
                    .to_string()
            }
        };
        let out = self
            .client
            .get_commit()
            .repository_name(repository)
            .commit_id(&id)
            .send()
            .await
            .map_err(|e| self.error(CodeCommitCall::Commit(&id), &e))?;
        let commit = out.commit();
        Ok(codecommit_commit(
            region,
            repository,
            commit.and_then(|c| c.commit_id()).unwrap_or(&id),
            commit.and_then(|c| c.message()),
            commit.and_then(|c| c.author()).and_then(|u| u.date()),
            commit.and_then(|c| c.committer()).and_then(|u| u.date()),
        ))
    }

    /// Every file of `commit`, by walking its folders from the root.
    async fn plan(&self, commit: &str) -> Result<TreeWalk, ProviderError> {
        let mut walk = TreeWalk::new(&self.source.repository, commit);
        while let Some(folder) = walk.next_folder() {
            let out = self
                .client
                .get_folder()
                .repository_name(&self.source.repository)
                .commit_specifier(commit)
                .folder_path(&folder)
                .send()
                .await
                .map_err(|e| self.error(CodeCommitCall::Folder(&folder), &e))?;
            walk.add(FolderListing {
                sub_folders: out
                    .sub_folders()
                    .iter()
                    .filter_map(|f| f.absolute_path().map(str::to_string))
                    .collect(),
                files: out
                    .files()
                    .iter()
                    .map(|f| ListedFile {
                        absolute_path: f.absolute_path().unwrap_or_default().to_string(),
                        blob_id: f.blob_id().unwrap_or_default().to_string(),
                        mode: f.file_mode().map(|m| m.as_str().to_string()),
                    })
                    .collect(),
                symbolic_links: out.symbolic_links().len(),
                sub_modules: out.sub_modules().len(),
            })?;
        }
        Ok(walk)
    }

    /// Read the commit's files into `work`, then zip and upload them; returns the artifact's
    /// location.
    async fn write_artifact(
        &self,
        commit: &Commit,
        artifacts: &S3Artifacts,
        work: &Path,
        output: &ArtifactDetail,
        limit: u64,
    ) -> Result<ArtifactLocation, ProviderError> {
        let walk = self.plan(&commit.sha).await?;
        let files = walk.files();
        if files.is_empty() {
            return Err(ProviderError::Job(format!(
                "CodeCommit repository {}: commit {} has no files to put in artifact {}",
                self.source.repository, commit.sha, output.name
            )));
        }
        let dir = work.join("files");
        tokio::fs::create_dir_all(&dir)
            .await
            .map_err(|e| ProviderError::Job(format!("creating {}: {e}", dir.display())))?;
        let bytes = self
            .write_files(&commit.sha, files.clone(), &dir, limit)
            .await?;
        tracing::info!(
            files = files.len(),
            bytes,
            symlinks_skipped = walk.links_skipped(),
            submodules_skipped = walk.sub_modules_skipped(),
            "commit read"
        );
        artifacts
            .upload_dir(
                &dir,
                &[],
                &output.s3_location.bucket,
                &output.s3_location.key,
            )
            .await
            .context(|| format!("output artifact {}", output.name))
    }

    /// `GetBlob` each file (a few at once) and write it under `dir` with its mode; returns the
    /// bytes written.
    async fn write_files(
        &self,
        commit: &str,
        files: Vec<PlannedFile>,
        dir: &Path,
        limit: u64,
    ) -> Result<u64, ProviderError> {
        let mut budget = ContentBudget::new(limit);
        let mut pending = files.into_iter();
        let mut reads = JoinSet::new();
        loop {
            while reads.len() < BLOBS_AT_ONCE {
                let Some(file) = pending.next() else { break };
                let request = self
                    .client
                    .get_blob()
                    .repository_name(&self.source.repository)
                    .blob_id(&file.blob_id);
                reads.spawn(async move { (file, request.send().await) });
            }
            let Some(read) = reads.join_next().await else {
                break;
            };
            let (file, answer) =
                read.map_err(|e| ProviderError::Job(format!("reading a file: {e}")))?;
            let blob = answer
                .map_err(|e| self.error(CodeCommitCall::Blob(&file.path), &e))?
                .content
                .into_inner();
            budget.take(blob.len() as u64, &self.source.repository, commit)?;
            write_file(dir, &file, blob).await?;
        }
        Ok(budget.used())
    }
}

/// Write `contents` to `file.path` under `dir` (refusing paths that would leave it), with mode
/// 755 for executables and 644 otherwise.
async fn write_file(
    dir: &Path,
    file: &PlannedFile,
    contents: Vec<u8>,
) -> Result<(), ProviderError> {
    let parts = safe_relative(&file.path).context(|| format!("file {}", file.path))?;
    if parts.is_empty() {
        return Err(ProviderError::Job(format!(
            "file `{}` has no usable path",
            file.path
        )));
    }
    let target: PathBuf = parts.iter().fold(dir.to_path_buf(), |p, c| p.join(c));
    let io = |what: &str, e: std::io::Error| {
        ProviderError::Job(format!("{what} {}: {e}", target.display()))
    };
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| io("creating the folder of", e))?;
    }
    tokio::fs::write(&target, contents)
        .await
        .map_err(|e| io("writing", e))?;
    let mode = if file.executable { 0o755 } else { 0o644 };
    tokio::fs::set_permissions(&target, std::fs::Permissions::from_mode(mode))
        .await
        .map_err(|e| io("setting the mode of", e))
}

#[cfg(test)]
mod tests {
    use base64::Engine as _;
    use serde_json::{json, Value};

    use super::super::test_support::{aws_error, aws_json_service, codecommit_client};
    use super::*;
    use pipewright_core::execution::FailureType;

    const SHA: &str = "3e0f3b5a1c9e1a7c5d6b2f4e8a9c0d1e2f3a4b5c";
    const OLD: &str = "9f8e7d6c5b4a39281706f5e4d3c2b1a098765432";

    fn b64(text: &str) -> String {
        base64::engine::general_purpose::STANDARD.encode(text)
    }

    /// CodeCommit as the action sees it: repository `my-app`, branch `main` at [`SHA`], whose
    /// tree is `README.md`, `bin/run.sh` (executable), `docs/guide/intro.md` and a symbolic
    /// link `latest`.
    fn codecommit(operation: &str, body: &Value) -> (u16, Value) {
        if body["repositoryName"] != "my-app" {
            return aws_error("RepositoryDoesNotExistException", "my-app2 does not exist");
        }
        let file = |path: &str, blob: &str, mode: &str| json!({"absolutePath": path, "relativePath": path.rsplit('/').next().unwrap(), "blobId": blob, "fileMode": mode});
        let folder = |path: &str| json!({"absolutePath": path, "relativePath": path.rsplit('/').next().unwrap(), "treeId": "t"});
        match operation {
            "GetBranch" if body["branchName"] == "main" => (
                200,
                json!({"branch": {"branchName": "main", "commitId": SHA}}),
            ),
            "GetBranch" => aws_error(
                "BranchDoesNotExistException",
                "The specified branch does not exist.",
            ),
            "GetCommit" if body["commitId"] == SHA || body["commitId"] == OLD => (
                200,
                json!({"commit": {
                    "commitId": body["commitId"],
                    "treeId": "t",
                    "parents": [],
                    "message": "Add run script\n",
                    "author": {"name": "Ada", "email": "ada@example.com", "date": "1484167798 -0800"},
                    "committer": {"name": "Ada", "email": "ada@example.com", "date": "1484167800 -0800"}
                }}),
            ),
            "GetCommit" => aws_error(
                "CommitIdDoesNotExistException",
                "The specified commit ID does not exist.",
            ),
            "GetFolder" => {
                assert_eq!(body["commitSpecifier"], SHA);
                let (sub_folders, files, links) = match body["folderPath"].as_str().unwrap() {
                    "/" => (
                        vec![folder("bin"), folder("docs")],
                        vec![file("README.md", "b1", "NORMAL")],
                        vec![file("latest", "b1", "SYMLINK")],
                    ),
                    "bin" => (vec![], vec![file("bin/run.sh", "b2", "EXECUTABLE")], vec![]),
                    "docs" => (vec![folder("docs/guide")], vec![], vec![]),
                    "docs/guide" => (
                        vec![],
                        vec![file("docs/guide/intro.md", "b3", "NORMAL")],
                        vec![],
                    ),
                    other => panic!("GetFolder {other}"),
                };
                (
                    200,
                    json!({"commitId": SHA, "folderPath": body["folderPath"], "treeId": "t",
                           "subFolders": sub_folders, "files": files, "symbolicLinks": links, "subModules": []}),
                )
            }
            "GetBlob" => match body["blobId"].as_str().unwrap() {
                "b1" => (200, json!({"content": b64("# app\n")})),
                "b2" => (200, json!({"content": b64("#!/bin/sh\necho run\n")})),
                "b3" => (200, json!({"content": b64("Hello\n")})),
                _ => aws_error("BlobIdDoesNotExistException", "no blob"),
            },
            other => panic!("unexpected {other}"),
        }
    }

    fn source(repository: &str, branch: &str) -> CodeCommitSource {
        CodeCommitSource {
            repository: repository.into(),
            branch: branch.into(),
        }
    }

    #[tokio::test]
    async fn the_branch_head_is_read_folder_by_folder_into_files() {
        let (base, calls) = aws_json_service(codecommit).await;
        let client = codecommit_client(&base);
        let source = source("my-app", "main");
        let reader = Reader {
            client: &client,
            source: &source,
        };
        let commit = reader.commit(None, "us-east-1").await.unwrap();
        assert_eq!(commit.sha, SHA);
        assert_eq!(commit.message, "Add run script");
        assert_eq!(commit.author_date.as_deref(), Some("2017-01-11T20:49:58Z"));
        assert_eq!(
            commit.committer_date.as_deref(),
            Some("2017-01-11T20:50:00Z")
        );
        assert_eq!(
            commit.html_url.as_deref(),
            Some(format!("https://us-east-1.console.aws.amazon.com/codesuite/codecommit/repositories/my-app/commit/{SHA}?region=us-east-1").as_str())
        );

        let walk = reader.plan(SHA).await.unwrap();
        let files = walk.files();
        assert_eq!(
            files.iter().map(|f| f.path.as_str()).collect::<Vec<_>>(),
            vec!["README.md", "bin/run.sh", "docs/guide/intro.md"]
        );
        assert_eq!(walk.links_skipped(), 1);

        let dir = tempfile::tempdir().unwrap();
        let bytes = reader
            .write_files(SHA, files.clone(), dir.path(), 1 << 20)
            .await
            .unwrap();
        assert_eq!(bytes, 6 + 19 + 6);
        let read = |p: &str| std::fs::read_to_string(dir.path().join(p)).unwrap();
        assert_eq!(read("README.md"), "# app\n");
        assert_eq!(read("bin/run.sh"), "#!/bin/sh\necho run\n");
        assert_eq!(read("docs/guide/intro.md"), "Hello\n");
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("README.md"), 0o644);
        assert!(!dir.path().join("latest").exists());

        // Over the limit: refused.
        let small = tempfile::tempdir().unwrap();
        let err = reader
            .write_files(SHA, files, small.path(), 10)
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::JobFailed);
        assert!(
            err.to_string().contains("come to more than 10 bytes"),
            "{err}"
        );

        let calls = calls.lock().unwrap().clone();
        let operations: Vec<&str> = calls.iter().map(|(op, _)| op.as_str()).collect();
        assert_eq!(
            &operations[..6],
            [
                "GetBranch",
                "GetCommit",
                "GetFolder",
                "GetFolder",
                "GetFolder",
                "GetFolder"
            ]
        );
    }

    #[tokio::test]
    async fn a_pinned_commit_is_read_without_the_branch() {
        let (base, calls) = aws_json_service(codecommit).await;
        let client = codecommit_client(&base);
        let source = source("my-app", "main");
        let reader = Reader {
            client: &client,
            source: &source,
        };
        let commit = reader.commit(Some(OLD), "eu-west-1").await.unwrap();
        assert_eq!(commit.sha, OLD);
        assert!(calls
            .lock()
            .unwrap()
            .iter()
            .all(|(op, _)| op != "GetBranch"));

        let err = reader
            .commit(
                Some("0123456789012345678901234567890123456789"),
                "eu-west-1",
            )
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::RevisionUnavailable);
        assert!(
            err.to_string().starts_with("CodeCommit repository my-app: GetCommit 0123456789012345678901234567890123456789 failed: CommitIdDoesNotExistException"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn unknown_repositories_and_branches_are_configuration_errors() {
        let (base, _) = aws_json_service(codecommit).await;
        let client = codecommit_client(&base);
        for (source, wants) in [
            (
                source("my-app2", "main"),
                "there is no repository my-app2 in this account and region: check RepositoryName",
            ),
            (
                source("my-app", "release"),
                "repository my-app has no branch `release`: check BranchName",
            ),
        ] {
            let reader = Reader {
                client: &client,
                source: &source,
            };
            let err = reader.commit(None, "us-east-1").await.unwrap_err();
            assert_eq!(err.code(), FailureType::ConfigurationError);
            assert!(err.to_string().ends_with(wants), "{err}");
        }
    }

    #[tokio::test]
    async fn an_unreachable_service_is_a_job_failure() {
        let closed = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", closed.local_addr().unwrap());
        drop(closed);
        let client = codecommit_client(&base);
        let source = source("my-app", "main");
        let reader = Reader {
            client: &client,
            source: &source,
        };
        let err = reader.commit(None, "us-east-1").await.unwrap_err();
        assert_eq!(err.code(), FailureType::JobFailed);
        assert!(
            err.to_string()
                .starts_with("CodeCommit repository my-app: GetBranch (the head of branch `main`) failed: no answer"),
            "{err}"
        );
    }

    #[tokio::test]
    async fn files_are_written_with_their_mode_and_never_outside_the_folder() {
        let dir = tempfile::tempdir().unwrap();
        let planned = |path: &str, executable| PlannedFile {
            path: path.into(),
            blob_id: "b".into(),
            executable,
        };
        write_file(
            dir.path(),
            &planned("bin/run.sh", true),
            b"#!/bin/sh\n".to_vec(),
        )
        .await
        .unwrap();
        write_file(
            dir.path(),
            &planned("README.md", false),
            b"# app\n".to_vec(),
        )
        .await
        .unwrap();
        let mode = |p: &str| {
            std::fs::metadata(dir.path().join(p))
                .unwrap()
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode("bin/run.sh"), 0o755);
        assert_eq!(mode("README.md"), 0o644);
        assert_eq!(
            std::fs::read_to_string(dir.path().join("README.md")).unwrap(),
            "# app\n"
        );
        let err = write_file(dir.path(), &planned("../escape", false), vec![])
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::JobFailed);
        assert!(err.to_string().starts_with("file ../escape"), "{err}");
        assert!(!dir.path().parent().unwrap().join("escape").exists());
    }
}
