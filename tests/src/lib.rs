//! The harness for end-to-end tests (`tests/e2e`): one local stack for the whole test binary.
//!
//! A test calls [`stack`] and gets the endpoint and the stack's outputs. The stack is started on
//! first use (a free port on 127.0.0.1, functions built for the host, `template.yaml` created in
//! the emulator) and stopped when the test binary exits. With `PIPEWRIGHT_LOCAL_ENV` naming a
//! `local.env` file (from `pipewright local up`), that running stack is used instead.
//!
//! Tests share the stack, so each one works on names of its own ([`unique`]) and never resets
//! the emulator.

use std::collections::BTreeMap;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

use pipewright_aws::config::{self, Target};
use pipewright_local::UpOptions;

pub mod approvals;
pub mod browser;
pub mod faults;
pub mod pipelines;
pub mod signing;
pub mod triggers;
mod watchdog;

/// A running local stack.
#[derive(Debug, Clone)]
pub struct Stack {
    /// The emulator's endpoint.
    pub endpoint: String,
    /// The control plane's key door (requests signed for codepipeline with a Pipewright key;
    /// the emulator's credentials are an admin key).
    pub api_endpoint: String,
    /// The control plane's IAM door (requests signed for lambda with the emulator's
    /// credentials).
    pub iam_endpoint: String,
    /// Where approval links point (the approval function's local Function URL).
    pub approval_endpoint: String,
    /// Where git hosts deliver webhooks (the webhook function's local Function URL).
    pub webhook_endpoint: String,
    /// The stack's outputs by name (`ApiFunctionName`, `PipelinesTableName`, ...).
    pub outputs: BTreeMap<String, String>,
    /// The IAM door gateway's file of more identities (`ACCESS_KEY_ID SECRET PRINCIPAL_ARN`
    /// lines): a test adds one to call the IAM door as another IAM principal.
    pub iam_identities: std::path::PathBuf,
}

impl Stack {
    /// An output of the stack; panics with the list of outputs when it is missing.
    pub fn output(&self, name: &str) -> &str {
        self.outputs.get(name).unwrap_or_else(|| {
            panic!(
                "stack has no output {name}; it has {:?}",
                self.outputs.keys()
            )
        })
    }

    /// SDK configuration pointed at the emulator.
    pub async fn sdk(&self) -> aws_config::SdkConfig {
        config::load(&Target::local(self.endpoint.clone())).await
    }
}

static STACK: OnceLock<Stack> = OnceLock::new();
static STARTED: OnceLock<(pipewright_local::LocalStack, PathBuf)> = OnceLock::new();

/// The workspace root.
pub fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent")
        .to_path_buf()
}

/// The role the tests' pipelines run with (`pipewright-tests`): made when the stack starts, on
/// the stack's `PipelineRolePolicy`, trusted for every pipeline of the account, allowed what
/// the suite's actions touch (any bucket, function, repository, image or secret).
pub const TEST_ROLE_ARN: &str = "arn:aws:iam::123456789012:role/pipewright/pipewright-tests";

/// [`TEST_ROLE_ARN`] as a local stack role.
fn test_role() -> pipewright_local::roles::PipelineRole<'static> {
    pipewright_local::roles::PipelineRole {
        name: "pipewright-tests",
        path: pipewright_local::roles::PIPELINE_ROLE_PATH,
        pipelines: "*",
        statements: serde_json::json!([
            {
                "Sid": "SuiteActions",
                "Effect": "Allow",
                "Action": [
                    "s3:GetObject", "s3:GetObjectVersion", "s3:PutObject", "s3:PutObjectAcl",
                    "lambda:InvokeFunction",
                    "codecommit:GetBranch", "codecommit:GetCommit", "codecommit:GetFolder",
                    "codecommit:GetBlob",
                    "ecr:DescribeImages",
                    "secretsmanager:GetSecretValue",
                    "states:StartExecution", "states:DescribeStateMachine",
                    "cloudformation:CreateStack", "cloudformation:UpdateStack",
                    "cloudformation:DeleteStack", "cloudformation:DescribeStacks",
                    "cloudformation:DescribeStackEvents", "sqs:CreateQueue", "sqs:DeleteQueue",
                    "sqs:GetQueueAttributes", "sqs:TagQueue", "iam:PassRole",
                    "codebuild:StartBuild", "codebuild:BatchGetBuilds",
                    "codedeploy:CreateDeployment", "codedeploy:GetDeployment",
                    "codedeploy:ListDeployments", "codedeploy:BatchGetDeployments",
                    "ecs:DescribeServices", "ecs:DescribeTaskDefinition",
                    "ecs:RegisterTaskDefinition", "ecs:UpdateService", "ecs:TagResource"
                ],
                "Resource": "*"
            }
        ]),
    }
}

/// Every action's timeout on the test stack (`ActionTimeoutCapSeconds`), so an approval nobody
/// answers fails in about a minute, not in 7 days. Longer than any action of the suite runs.
pub const ACTION_TIMEOUT_CAP_SECONDS: u64 = 60;

/// The shared stack, started on first use: every action's timeout capped at
/// [`ACTION_TIMEOUT_CAP_SECONDS`], `GitApiBaseUrl` at the loopback port [`take_git_api_listener`]
/// hands to the git source tests. With `PIPEWRIGHT_LOCAL_ENV`, that running stack instead (bring
/// it up with `pipewright local up --no-start-on-create`, as the suite's own stack runs).
pub fn stack() -> &'static Stack {
    STACK.get_or_init(|| {
        std::env::set_var("AWS_EC2_METADATA_DISABLED", "true");
        if let Some(file) = std::env::var_os("PIPEWRIGHT_LOCAL_ENV") {
            let dir = Path::new(&file)
                .parent()
                .expect("local.env has a folder")
                .to_path_buf();
            let running = pipewright_local::status(&dir).unwrap_or_else(|| {
                panic!("the stack in {} is not running", Path::new(&file).display())
            });
            let (endpoint, outputs) = (running.emulator.endpoint.clone(), running.outputs.clone());
            std::thread::spawn(move || {
                tokio::runtime::Builder::new_multi_thread()
                    .enable_all()
                    .build()
                    .expect("runtime")
                    .block_on(pipewright_local::roles::ensure_pipeline_role(
                        &endpoint,
                        &outputs,
                        &test_role(),
                    ))
            })
            .join()
            .expect("role thread")
            .unwrap_or_else(|e| panic!("the test role: {e}"));
            return Stack::of(running, &dir);
        }
        let mut opts = UpOptions::new(root());
        opts.action_timeout_cap_seconds = Some(ACTION_TIMEOUT_CAP_SECONDS);
        opts.git_api_base_url = Some(git_api_base_url());
        // The suite's pipelines run when a test starts them; the second stack of
        // [`stack_beside`] keeps CodePipeline's default and runs each pipeline on creation.
        opts.start_on_create = false;
        opts.state_dir = root()
            .join("target")
            .join(format!("pipewright-test-{}", std::process::id()));
        // Started on a thread of its own: tests each run their own tokio runtime.
        let stack = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .expect("runtime");
            let result = runtime.block_on(async {
                let stack = pipewright_local::up(&opts).await?;
                pipewright_local::roles::ensure_pipeline_role(
                    &stack.emulator.endpoint,
                    &stack.outputs,
                    &test_role(),
                )
                .await?;
                Ok::<_, pipewright_local::LocalError>(stack)
            });
            (result, opts.state_dir)
        })
        .join()
        .expect("stack thread");
        let (result, state_dir) = stack;
        let stack = result.unwrap_or_else(|e| panic!("local stack did not come up: {e}"));
        watchdog::start(&stack, &state_dir);
        let _ = STARTED.set((stack.clone(), state_dir.clone()));
        // SAFETY: registering a plain extern "C" function with atexit(3).
        unsafe { libc::atexit(stop_at_exit) };
        Stack::of(stack, &state_dir)
    })
}

/// Another stack, `name`, deployed beside the shared one into the same emulator: its own tables,
/// bucket, functions, state machines and gateways, as a second team's stack in the same account.
/// Its gateways stop when the returned guard is dropped (a failing test included); the emulator
/// is the shared stack's.
pub async fn stack_beside(name: &str) -> (Stack, BesideGuard) {
    let shared = stack();
    let mut opts = UpOptions::new(root());
    opts.action_timeout_cap_seconds = Some(ACTION_TIMEOUT_CAP_SECONDS);
    opts.state_dir = root()
        .join("target")
        .join(format!("pipewright-test-{}", std::process::id()))
        .join(name);
    let emulator = pipewright_local::emulator::Emulator {
        endpoint: shared.endpoint.clone(),
        pid: 0,
    };
    let running = pipewright_local::up_beside(&emulator, &opts, name)
        .await
        .unwrap_or_else(|e| panic!("stack {name} did not come up beside the shared one: {e}"));
    pipewright_local::roles::ensure_pipeline_role(
        &running.emulator.endpoint,
        &running.outputs,
        &test_role(),
    )
    .await
    .unwrap_or_else(|e| panic!("the test role for stack {name}: {e}"));
    (
        Stack::of(running.clone(), &opts.state_dir),
        BesideGuard(running),
    )
}

/// Stops a stack's gateways when dropped ([`stack_beside`]).
#[derive(Debug)]
pub struct BesideGuard(pipewright_local::LocalStack);

impl Drop for BesideGuard {
    fn drop(&mut self) {
        self.0.stop_gateways();
    }
}

/// The loopback listener reserved for the git host the stack's `GitApiBaseUrl` points at.
fn git_api() -> &'static Mutex<Option<TcpListener>> {
    static LISTENER: OnceLock<Mutex<Option<TcpListener>>> = OnceLock::new();
    LISTENER.get_or_init(|| {
        Mutex::new(Some(
            TcpListener::bind("127.0.0.1:0").expect("reserve a port for the git host"),
        ))
    })
}

fn git_api_base_url() -> String {
    let guard = git_api().lock().expect("git API listener");
    let listener = guard.as_ref().expect("reserved before it is taken");
    format!("http://{}", listener.local_addr().expect("a local address"))
}

/// The listener on the port the stack's `GitApiBaseUrl` names, for the test that serves a git
/// host there; `None` once taken, or when the tests run on a stack of their own choosing
/// (`PIPEWRIGHT_LOCAL_ENV`), whose git API is elsewhere.
pub fn take_git_api_listener() -> Option<TcpListener> {
    if std::env::var_os("PIPEWRIGHT_LOCAL_ENV").is_some() {
        return None;
    }
    stack();
    git_api().lock().expect("git API listener").take()
}

impl Stack {
    fn of(running: pipewright_local::LocalStack, state_dir: &Path) -> Self {
        Self {
            iam_identities: pipewright_local::gateway::iam_identities_file(state_dir),
            endpoint: running.emulator.endpoint,
            api_endpoint: running.gateway.endpoint,
            iam_endpoint: running.iam_gateway.endpoint,
            approval_endpoint: running.approvals.endpoint,
            webhook_endpoint: running.webhooks.endpoint,
            outputs: running.outputs,
        }
    }
}

extern "C" fn stop_at_exit() {
    if let Some((stack, state_dir)) = STARTED.get() {
        stack.stop(state_dir);
        let _ = std::fs::remove_dir_all(state_dir);
    }
}

/// A name no other test in this run uses: `<prefix>-<pid>-<n>`.
pub fn unique(prefix: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    format!(
        "{prefix}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A Function URL (payload format 2.0) event for a POST of `body` with the given headers, as
/// Lambda hands it to a function behind its URL.
pub fn function_url_event(headers: &[(&str, &str)], body: &str) -> serde_json::Value {
    let template = include_str!("../../events/api-list-pipelines.json");
    let mut event: serde_json::Value =
        serde_json::from_str(template).expect("sample event is JSON");
    let map = event["headers"]
        .as_object_mut()
        .expect("sample event has headers");
    for (k, v) in headers {
        map.insert(
            k.to_ascii_lowercase(),
            serde_json::Value::String(v.to_string()),
        );
    }
    event["body"] = serde_json::Value::String(body.to_string());
    event
}
