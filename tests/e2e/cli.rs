//! The `pipewright` command line against the local stack: create / update a pipeline from a file,
//! start it, watch it to the end, read its state and history, answer its approval, and the exit
//! status of each kind of error. The CLI talks to the control plane only through the official
//! `aws-sdk-codepipeline` client, so this is also that client against Pipewright.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use pipewright_e2e::pipelines::{
    clients, versioned_source, without_approvals, zip_of, Clients, EXECUTION_TIMEOUT,
};
use pipewright_e2e::{root, stack, unique, Stack};
use pipewright_local::package::{Profile, Workspace};
use serde_json::{json, Value};

/// The `pipewright` binary, built once per test binary.
pub(crate) fn binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            // The workspace's binaries, as the stack builds them (one feature set, no rebuild).
            .args(["build", "--workspace", "--bins", "--manifest-path"])
            .arg(root().join("Cargo.toml"))
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build --workspace --bins failed");
        let workspace = Workspace::open(&root()).expect("cargo metadata");
        workspace.binary(Profile::Dev, "pipewright")
    })
}

/// What a `pipewright` run did.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// Exit 0, or panic showing the output.
    fn ok(self) -> Self {
        assert_eq!(self.code, 0, "{self:#?}");
        self
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {self:#?}"))
    }
}

/// Run `pipewright <args>` with the stack's control plane as `--endpoint-url` (when given) and
/// test credentials, giving up after the execution timeout.
fn pipewright(stack: Option<&Stack>, args: &[&str]) -> Run {
    let dir = std::env::temp_dir().join(unique("pipewright-cli-run"));
    std::fs::create_dir_all(&dir).unwrap();
    let (out_path, err_path) = (dir.join("stdout"), dir.join("stderr"));
    let mut cmd = Command::new(binary());
    cmd.env("AWS_ACCESS_KEY_ID", "test")
        .env("AWS_SECRET_ACCESS_KEY", "test")
        .env("AWS_REGION", "us-east-1")
        .env("AWS_DEFAULT_REGION", "us-east-1")
        .env_remove("PIPEWRIGHT_ENDPOINT")
        .env_remove("PIPEWRIGHT_IAM_ENDPOINT")
        .env_remove("AWS_ENDPOINT_URL")
        .env_remove("AWS_PROFILE")
        .env("NO_COLOR", "1")
        // Not the project folder: the endpoint comes from the flag only.
        .current_dir(&dir)
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).unwrap())
        .stderr(std::fs::File::create(&err_path).unwrap());
    if let Some(stack) = stack {
        cmd.args(["--endpoint-url", &stack.api_endpoint]);
    }
    cmd.args(args);
    let mut child = cmd.spawn().expect("run pipewright");
    let deadline = Instant::now() + EXECUTION_TIMEOUT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for pipewright") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "pipewright {args:?} still running after {EXECUTION_TIMEOUT:?}; output so far:\n{}",
                std::fs::read_to_string(&out_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let run = Run {
        code: status.code().unwrap_or(-1),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    run
}

/// A copy of infra/pipelines/sample.json under a new name, pointing at a fresh versioned source
/// bucket (app.zip with src/index.html and README.md), a fresh site bucket and the stack's
/// artifact bucket, edited by `edit`; written to a file. Returns the name and the file.
async fn sample_file(
    c: &Clients,
    stack: &Stack,
    edit: impl FnOnce(&mut Value),
) -> (String, PathBuf) {
    let name = unique("cli");
    let source_bucket = unique("pipewright-cli-src");
    let site_bucket = unique("pipewright-cli-site");
    c.s3.create_bucket()
        .bucket(&site_bucket)
        .send()
        .await
        .expect("CreateBucket");
    versioned_source(
        c,
        &source_bucket,
        "app.zip",
        zip_of(&[
            ("src/index.html", "<html><body>cli</body></html>\n"),
            ("README.md", "# cli\n"),
        ]),
    )
    .await;
    let text = std::fs::read_to_string(root().join("infra/pipelines/sample.json")).unwrap();
    let mut document: Value = serde_json::from_str(&text).unwrap();
    let declaration = &mut document["pipeline"];
    declaration["name"] = json!(name);
    // The sample's role reaches the sample's own buckets only; these have names of their own.
    declaration["roleArn"] = json!(pipewright_e2e::TEST_ROLE_ARN);
    declaration["artifactStore"]["location"] = json!(stack.output("ArtifactBucketName"));
    declaration["stages"][0]["actions"][0]["configuration"]["S3Bucket"] = json!(source_bucket);
    declaration["variables"][0]["defaultValue"] = json!(site_bucket);
    edit(declaration);
    let path = std::env::temp_dir().join(format!("{name}.json"));
    std::fs::write(&path, serde_json::to_string_pretty(&document).unwrap()).unwrap();
    (name, path)
}

fn stage_names(file: &Path) -> Vec<String> {
    let document: Value = serde_json::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
    document["pipeline"]["stages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_update_start_watch_status_and_history() {
    let stack = stack();
    let c = clients(stack).await;
    let (name, file) = sample_file(&c, stack, without_approvals).await;
    let file_arg = file.to_str().unwrap();
    let s = Some(stack);

    let created = pipewright(s, &["create", "-f", file_arg]).ok();
    assert!(
        created
            .stdout
            .contains(&format!("created pipeline {name} (version 1")),
        "{created:#?}"
    );
    // No version in the file: the current one is read first.
    let updated = pipewright(s, &["update", "-f", file_arg]).ok();
    assert_eq!(
        updated.stdout.trim(),
        format!("updated pipeline {name} to version 2")
    );
    let got = pipewright(s, &["get", &name]).ok().json();
    assert_eq!(got["pipeline"]["version"], 2);
    assert_eq!(
        got["pipeline"]["stages"][1]["actions"][0]["outputArtifacts"][0]["files"][0],
        "dist/**/*"
    );

    let started = pipewright(s, &["start", &name]).ok();
    let id = started.stdout.trim().to_owned();
    assert_eq!(id.len(), 36, "an execution id: {started:#?}");

    let watched = pipewright(s, &["watch", &name, &id]).ok();
    eprintln!("--- pipewright watch\n{}", watched.stdout);
    for stage in stage_names(&file) {
        assert!(
            watched.stdout.contains(&format!(" {stage} "))
                || watched.stdout.contains(&format!(" {stage}\n")),
            "watch shows stage {stage}:\n{}",
            watched.stdout
        );
    }
    assert!(watched.stdout.contains(&id), "{}", watched.stdout);
    assert!(watched.stdout.contains("✔ Succeeded"), "{}", watched.stdout);

    let state = pipewright(s, &["status", &name, "--output", "json"])
        .ok()
        .json();
    assert_eq!(state["pipelineName"], json!(name));
    let stages = state["stageStates"].as_array().expect("stageStates");
    assert_eq!(stages.len(), stage_names(&file).len());
    for stage in stages {
        assert_eq!(
            stage["latestExecution"]["pipelineExecutionId"],
            json!(id),
            "{stage}"
        );
        assert_eq!(stage["latestExecution"]["status"], "Succeeded", "{stage}");
        assert!(stage["actionStates"][0]["latestExecution"]["lastStatusChange"].is_number());
    }
    let table = pipewright(s, &["status", &name]).ok();
    eprintln!("--- pipewright status\n{}", table.stdout);
    assert!(
        table
            .stdout
            .starts_with(&format!("Pipeline {name}, version 2\n")),
        "{}",
        table.stdout
    );

    let history = pipewright(s, &["history", &name]).ok();
    eprintln!("--- pipewright history\n{}", history.stdout);
    let row = history
        .stdout
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("history lists {id}:\n{}", history.stdout));
    assert!(
        row.contains("Succeeded") && row.contains("StartPipelineExecution"),
        "{row}"
    );
    let listed = pipewright(s, &["history", &name, "--max", "1", "--output", "json"])
        .ok()
        .json();
    assert_eq!(
        listed["pipelineExecutionSummaries"][0]["pipelineExecutionId"],
        json!(id)
    );

    // `list`: every pipeline, this one with its latest execution.
    let list = pipewright(s, &["list"]).ok();
    let row = list
        .stdout
        .lines()
        .find(|l| l.starts_with(&format!("{name} ")))
        .unwrap_or_else(|| panic!("list shows {name}:\n{}", list.stdout));
    assert!(row.contains("Succeeded") && row.contains(&id), "{row}");
    let list = pipewright(s, &["list", "--output", "json"]).ok().json();
    let item = list["pipelines"]
        .as_array()
        .expect("pipelines")
        .iter()
        .find(|p| p["name"] == json!(name))
        .unwrap_or_else(|| panic!("{name} in {list:#}"));
    assert_eq!(item["version"], json!(2));
    assert_eq!(item["latestExecution"]["pipelineExecutionId"], json!(id));
    assert_eq!(item["latestExecution"]["status"], "Succeeded");

    // A succeeded execution can be neither retried nor stopped: the service's answer (or its
    // UnsupportedOperationException while these are being built) is printed, exit 5.
    for args in [
        vec!["retry", name.as_str(), "Build", "--execution", id.as_str()],
        vec!["stop", name.as_str(), id.as_str(), "--reason", "test"],
    ] {
        let refused = pipewright(s, &args);
        eprintln!("--- pipewright {}\n{}", args[0], refused.stderr);
        assert_eq!(refused.code, 5, "{args:?}: {refused:#?}");
        let prefix = format!("pipewright {}: ", args[0]);
        assert!(refused.stderr.starts_with(&prefix), "{refused:#?}");
        let kind = refused.stderr[prefix.len()..].split(": ").next().unwrap();
        assert!(kind.ends_with("Exception"), "{refused:#?}");
    }
}

#[tokio::test]
async fn watch_exits_1_and_shows_the_failing_actions_error() {
    let stack = stack();
    let c = clients(stack).await;
    let (name, file) = sample_file(&c, stack, |d| {
        without_approvals(d);
        d["stages"][2]["actions"][0]["commands"] = json!(["echo checking", "exit 3"]);
    })
    .await;
    let s = Some(stack);
    pipewright(s, &["create", "-f", file.to_str().unwrap()]).ok();
    let id = pipewright(s, &["start", &name])
        .ok()
        .stdout
        .trim()
        .to_owned();
    let watched = pipewright(s, &["watch", &name, &id]);
    assert_eq!(watched.code, 1, "{watched:#?}");
    eprintln!("--- pipewright watch (failing)\n{}", watched.stdout);
    let failed = watched
        .stdout
        .lines()
        .rfind(|l| l.trim_start().starts_with("✖ Test.UnitTests ") && l.contains("Failed"))
        .unwrap_or_else(|| panic!("no failed UnitTests line:\n{}", watched.stdout));
    assert!(
        failed.contains("error: "),
        "the error message is shown: {failed}"
    );
    assert!(watched.stdout.contains("✖ Failed"), "{}", watched.stdout);
}

#[tokio::test]
async fn approve_answers_the_waiting_approval() {
    let stack = stack();
    let c = clients(stack).await;
    let (name, file) = sample_file(&c, stack, |_| {}).await;
    let s = Some(stack);
    pipewright(s, &["create", "-f", file.to_str().unwrap()]).ok();
    let id = pipewright(s, &["start", &name])
        .ok()
        .stdout
        .trim()
        .to_owned();

    let deadline = Instant::now() + EXECUTION_TIMEOUT;
    let token = loop {
        let state = pipewright(s, &["status", &name, "--output", "json"])
            .ok()
            .json();
        let token = state["stageStates"]
            .as_array()
            .unwrap()
            .iter()
            .find(|st| st["stageName"] == "Approve")
            .and_then(|st| st["actionStates"][0]["latestExecution"]["token"].as_str())
            .map(str::to_owned);
        if let Some(token) = token {
            break token;
        }
        assert!(
            Instant::now() < deadline,
            "the approval never waited: {state}"
        );
        std::thread::sleep(Duration::from_millis(500));
    };
    let table = pipewright(s, &["status", &name]).ok();
    eprintln!("--- pipewright status\n{}", table.stdout);
    assert!(
        table
            .stdout
            .contains(&format!("waiting for approval, token {token}")),
        "{}",
        table.stdout
    );

    // No --token: read from GetPipelineState.
    let approved = pipewright(
        s,
        &[
            "approve",
            &name,
            "Approve",
            "Release",
            "--summary",
            "approved by the cli test",
        ],
    )
    .ok();
    assert!(
        approved
            .stdout
            .starts_with(&format!("approved Approve.Release of {name} at ")),
        "{approved:#?}"
    );
    assert!(approved.stdout.contains(&token), "{approved:#?}");

    // No execution given: the latest.
    let watched = pipewright(s, &["watch", &name]).ok();
    assert!(watched.stdout.contains(&id), "{}", watched.stdout);
    assert!(watched.stdout.contains("Deploy"), "{}", watched.stdout);

    let final_state = pipewright(s, &["watch", &name, &id, "--output", "json"])
        .ok()
        .json();
    assert_eq!(final_state["pipelineExecution"]["status"], "Succeeded");
    let release = final_state["actionExecutionDetails"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["actionName"] == "Release")
        .expect("the approval's action execution");
    assert_eq!(
        release["output"]["executionResult"]["externalExecutionSummary"],
        "approved by the cli test"
    );
}

#[test]
fn errors_exit_with_their_codes() {
    let stack = stack();
    let missing = pipewright(Some(stack), &["status", "missing-pipeline"]);
    assert_eq!(missing.code, 3, "{missing:#?}");
    assert!(
        missing
            .stderr
            .starts_with("pipewright status: PipelineNotFoundException: "),
        "{missing:#?}"
    );
    let no_execution = pipewright(
        Some(stack),
        &[
            "watch",
            "missing-pipeline",
            "00000000-0000-4000-8000-000000000000",
        ],
    );
    assert_eq!(no_execution.code, 3, "{no_execution:#?}");

    let unreachable = pipewright(
        None,
        &["--endpoint-url", "http://127.0.0.1:9", "status", "x"],
    );
    assert_eq!(unreachable.code, 4, "{unreachable:#?}");
    assert!(
        unreachable.stderr.starts_with(
            "pipewright status: EndpointUnreachable: cannot reach http://127.0.0.1:9: "
        ),
        "{unreachable:#?}"
    );

    // Invalid: every located problem, then the summary; nothing is sent.
    let invalid = root().join("infra/pipelines/invalid/structure.json");
    let refused = pipewright(Some(stack), &["create", "-f", invalid.to_str().unwrap()]);
    assert_eq!(refused.code, 1, "{refused:#?}");
    let expected = std::fs::read_to_string(invalid.with_extension("expected")).unwrap();
    for line in expected.lines() {
        assert!(refused.stderr.contains(line), "{line}\n{refused:#?}");
    }
    assert!(
        refused
            .stderr
            .contains("pipewright create: InvalidStructureException: "),
        "{refused:#?}"
    );
    // Unreadable (a shape error, located): 2.
    let unknown = root().join("infra/pipelines/invalid/unknown-field.json");
    let unreadable = pipewright(Some(stack), &["create", "-f", unknown.to_str().unwrap()]);
    assert_eq!(unreadable.code, 2, "{unreadable:#?}");
    assert!(
        unreadable.stderr.contains("line 12, column 17"),
        "{unreadable:#?}"
    );
}
