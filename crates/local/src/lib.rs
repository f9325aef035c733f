//! The local stack: the whole of `template.yaml` running in an AWS emulator on 127.0.0.1, with
//! the real function binaries, no AWS account and no Docker.
//!
//! `up` builds the template's functions for this host, starts fakecloud (a separate AGPL
//! program, never linked) with `pipewright-lambda-host` as its container engine, creates the
//! template's stack through the emulator's CloudFormation API, and writes the endpoints to
//! `.pipewright/local.env`. `down` stops it all.

pub mod emulator;
pub mod env_file;
pub mod gateway;
pub mod invoke;
pub mod package;
pub mod roles;
pub mod stack;
pub mod template;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use emulator::{Emulator, EmulatorOptions};
use gateway::Gateway;
use package::{PackagedFunction, Profile, Workspace, LAMBDA_HOST_PACKAGE};
use template::Template;

/// The stack's name in the emulator.
pub const STACK_NAME: &str = "pipewright-local";

/// The artifact bucket's encryption on the local stack (`ArtifactBucketEncryption`).
pub const LOCAL_ARTIFACT_ENCRYPTION: &str = "AES256";

/// The stack output naming the control-plane function the gateway serves.
pub const API_FUNCTION_OUTPUT: &str = "ApiFunctionName";

/// The stack output naming the control plane's key-door function (the gateway at
/// `PIPEWRIGHT_ENDPOINT` serves it).
pub const API_KEY_FUNCTION_OUTPUT: &str = "ApiKeyFunctionName";

/// The emulator's credentials (`local.env`): the IAM door's one identity, and an admin
/// Pipewright key on the key door, so one pair works everywhere locally.
pub const LOCAL_ACCESS_KEY_ID: &str = "test";
/// The secret of [`LOCAL_ACCESS_KEY_ID`].
pub const LOCAL_SECRET_ACCESS_KEY: &str = "test";
/// Who the local IAM door says the caller is.
pub const LOCAL_PRINCIPAL: &str = "arn:aws:iam::123456789012:root";

/// The stack output naming the approval function (its links get a gateway of their own).
pub const APPROVAL_FUNCTION_OUTPUT: &str = "ApprovalFunctionName";

/// The stack output naming the webhook function (git host deliveries get a gateway of their own).
pub const WEBHOOK_FUNCTION_OUTPUT: &str = "WebhookFunctionName";

/// Why the local stack could not be brought up or down.
#[derive(Debug, thiserror::Error)]
pub enum LocalError {
    /// `template.yaml` could not be read or is not usable.
    #[error("template: {0}")]
    Template(String),
    /// Building or packing the functions failed.
    #[error("build: {0}")]
    Build(String),
    /// The emulator could not be started or reached.
    #[error("emulator: {0}")]
    Emulator(String),
    /// Creating the stack in the emulator failed.
    #[error("deploy: {0}")]
    Deploy(String),
    /// An AWS call to the emulator failed.
    #[error("{0}")]
    Aws(String),
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
}

impl LocalError {
    fn io(path: &Path, source: std::io::Error) -> Self {
        Self::Io {
            path: path.to_path_buf(),
            source,
        }
    }

    fn aws<E: std::error::Error + 'static>(call: &str, err: E) -> Self {
        Self::Aws(pipewright_aws::error_chain(call, &err))
    }
}

/// How to bring the stack up.
#[derive(Debug, Clone)]
pub struct UpOptions {
    /// The project root: `template.yaml` and the workspace `Cargo.toml`.
    pub root: PathBuf,
    /// Where the emulator's log, pid, sandboxes and `local.env` go (default `<root>/.pipewright`).
    pub state_dir: PathBuf,
    /// Emulator port on 127.0.0.1; 0 picks a free one.
    pub port: u16,
    /// Profile the functions are built with.
    pub profile: Profile,
    /// The stack's `ActionTimeoutCapSeconds` (`None`: no cap).
    pub action_timeout_cap_seconds: Option<u64>,
    /// The stack's `GitApiBaseUrl`: where git source actions fetch commits (`None`: the
    /// template's default, github.com's API).
    pub git_api_base_url: Option<String>,
    /// The stack's `StartExecutionOnCreate`: CreatePipeline runs the new pipeline once, as
    /// CodePipeline does (default true).
    pub start_on_create: bool,
}

impl UpOptions {
    /// Defaults for the project at `root`.
    pub fn new(root: impl Into<PathBuf>) -> Self {
        let root = root.into();
        Self {
            state_dir: root.join(".pipewright"),
            root,
            port: 0,
            profile: Profile::Dev,
            action_timeout_cap_seconds: None,
            start_on_create: true,
            git_api_base_url: None,
        }
    }
}

/// A running local stack.
#[derive(Debug, Clone)]
pub struct LocalStack {
    /// The emulator.
    pub emulator: Emulator,
    /// The control plane's local Function URL.
    pub gateway: Gateway,
    /// The control plane's IAM door (the `AWS_IAM` Function URL): requests signed for the
    /// service `lambda` with the emulator's credentials.
    pub iam_gateway: Gateway,
    /// The approval function's local Function URL (where approval links point).
    pub approvals: Gateway,
    /// The webhook function's local Function URL (where git hosts deliver).
    pub webhooks: Gateway,
    /// The stack's outputs (`ArtifactBucketName`, `PipelinesTableName`, ...).
    pub outputs: BTreeMap<String, String>,
}

impl LocalStack {
    /// The `KEY=value` pairs that describe the stack, in a stable order.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            (
                "AWS_ENDPOINT_URL".to_string(),
                self.emulator.endpoint.clone(),
            ),
            (
                "AWS_REGION".to_string(),
                pipewright_aws::config::DEFAULT_REGION.to_string(),
            ),
            (
                "AWS_DEFAULT_REGION".to_string(),
                pipewright_aws::config::DEFAULT_REGION.to_string(),
            ),
            (
                "AWS_ACCESS_KEY_ID".to_string(),
                LOCAL_ACCESS_KEY_ID.to_string(),
            ),
            (
                "AWS_SECRET_ACCESS_KEY".to_string(),
                LOCAL_SECRET_ACCESS_KEY.to_string(),
            ),
            ("AWS_EC2_METADATA_DISABLED".to_string(), "true".to_string()),
            (
                "PIPEWRIGHT_ENDPOINT".to_string(),
                self.gateway.endpoint.clone(),
            ),
            ("PIPEWRIGHT_STACK".to_string(), STACK_NAME.to_string()),
            (
                "PIPEWRIGHT_EMULATOR_PID".to_string(),
                self.emulator.pid.to_string(),
            ),
            (
                "PIPEWRIGHT_GATEWAY_PID".to_string(),
                self.gateway.pid.to_string(),
            ),
            (
                "PIPEWRIGHT_IAM_ENDPOINT".to_string(),
                self.iam_gateway.endpoint.clone(),
            ),
            (
                "PIPEWRIGHT_IAM_GATEWAY_PID".to_string(),
                self.iam_gateway.pid.to_string(),
            ),
            (
                "PIPEWRIGHT_APPROVAL_ENDPOINT".to_string(),
                self.approvals.endpoint.clone(),
            ),
            (
                "PIPEWRIGHT_APPROVAL_GATEWAY_PID".to_string(),
                self.approvals.pid.to_string(),
            ),
            (
                "PIPEWRIGHT_WEBHOOK_ENDPOINT".to_string(),
                self.webhooks.endpoint.clone(),
            ),
            (
                "PIPEWRIGHT_WEBHOOK_GATEWAY_PID".to_string(),
                self.webhooks.pid.to_string(),
            ),
        ];
        env.extend(
            self.outputs
                .iter()
                .map(|(k, v)| (env_file::output_key(k), v.clone())),
        );
        env
    }

    /// Stop the gateway, the emulator and every function sandbox it started.
    pub fn stop(&self, state_dir: &Path) {
        self.stop_gateways();
        emulator::stop_pid(self.emulator.pid);
        // The function sandboxes watch their folders and exit when they are removed.
        let _ = std::fs::remove_dir_all(state_dir.join("lambda"));
        let _ = std::fs::remove_dir_all(state_dir.join("tmp"));
    }

    /// Stop the stack's gateways (the emulator keeps running).
    pub fn stop_gateways(&self) {
        emulator::stop_pid(self.gateway.pid);
        emulator::stop_pid(self.iam_gateway.pid);
        emulator::stop_pid(self.approvals.pid);
        emulator::stop_pid(self.webhooks.pid);
    }
}

/// Bring the local stack up (see the crate docs) and write `local.env`. When a healthy stack is
/// already running from `opts.state_dir`, it is returned as it is.
pub async fn up(opts: &UpOptions) -> Result<LocalStack, LocalError> {
    if let Some(running) = status(&opts.state_dir) {
        return Ok(running);
    }
    let (functions, lambda_host) = build(opts)?;
    let emulator = Emulator::start(&EmulatorOptions {
        fakecloud: emulator::find_fakecloud()?,
        lambda_host: lambda_host.clone(),
        state_dir: opts.state_dir.clone(),
        port: opts.port,
    })?;
    match deploy_into(opts, &emulator, &lambda_host, &functions, STACK_NAME).await {
        Ok(stack) => {
            env_file::write(&opts.state_dir, &stack.env())?;
            Ok(stack)
        }
        Err(e) => {
            emulator::stop_pid(emulator.pid);
            Err(e)
        }
    }
}

/// Deploy another stack, named `stack_name`, into a running `emulator`, with its own gateways
/// (state under `opts.state_dir`): two stacks in one account, as two teams (or a team's staging
/// and production) would have them. Nothing is written to `local.env`;
/// [`LocalStack::stop_gateways`] stops what this started (the emulator keeps running).
pub async fn up_beside(
    emulator: &Emulator,
    opts: &UpOptions,
    stack_name: &str,
) -> Result<LocalStack, LocalError> {
    let (functions, lambda_host) = build(opts)?;
    deploy_into(opts, emulator, &lambda_host, &functions, stack_name).await
}

/// Build the template's functions (packaged under `<state_dir>/build`) and find the lambda host
/// that runs them.
fn build(opts: &UpOptions) -> Result<(Vec<PackagedFunction>, PathBuf), LocalError> {
    let template = Template::load(&opts.root.join("template.yaml"))?;
    let workspace = Workspace::open(&opts.root)?;
    let functions = workspace.build_functions(
        &template.rust_functions(),
        opts.profile,
        &opts.state_dir.join("build"),
    )?;
    Ok((
        functions,
        workspace.binary(opts.profile, LAMBDA_HOST_PACKAGE),
    ))
}

/// Deploy `template.yaml` as `stack_name` into `emulator` and start the stack's gateways.
async fn deploy_into(
    opts: &UpOptions,
    emulator: &Emulator,
    lambda_host: &Path,
    functions: &[PackagedFunction],
    stack_name: &str,
) -> Result<LocalStack, LocalError> {
    let template = Template::load(&opts.root.join("template.yaml"))?;
    let mut gateways = Vec::new();
    let started = async {
        // The approval links' base URL is a stack parameter, so its gateway's port is chosen
        // before the stack exists.
        let approval_port = gateway::free_port()?;
        let mut parameters = BTreeMap::from([
            (
                "ApprovalLinkBaseUrl".to_string(),
                format!("http://127.0.0.1:{approval_port}/"),
            ),
            // SSE-S3, not SSE-KMS: fakecloud 0.51's S3 deadlocks when a CopyObject arrives
            // while a GetObject of an SSE-KMS object holds its state lock (docs/local-stack.md).
            (
                "ArtifactBucketEncryption".to_string(),
                LOCAL_ARTIFACT_ENCRYPTION.to_string(),
            ),
        ]);
        // The emulator has no account concurrency quota: the webhook function's reservation
        // (0 by default, for new accounts) is exercised here.
        parameters.insert("PublicFunctionConcurrency".into(), "10".into());
        // The end-to-end tests deliver to the stack-wide URL too (off by default on AWS).
        parameters.insert("WebhookStackSecret".into(), "Enabled".into());
        if let Some(cap) = opts.action_timeout_cap_seconds {
            parameters.insert("ActionTimeoutCapSeconds".into(), cap.to_string());
        }
        if let Some(url) = &opts.git_api_base_url {
            parameters.insert("GitApiBaseUrl".into(), url.clone());
        }
        if !opts.start_on_create {
            parameters.insert("StartExecutionOnCreate".into(), "Disabled".into());
        }
        let outputs = stack::deploy(
            &emulator.endpoint,
            &template,
            functions,
            stack_name,
            &parameters,
        )
        .await?;
        let output = |name: &str| {
            outputs
                .get(name)
                .cloned()
                .ok_or_else(|| LocalError::Deploy(format!("template.yaml has no output {name}")))
        };
        let (api_iam, api_key, approval, webhook) = (
            output(API_FUNCTION_OUTPUT)?,
            output(API_KEY_FUNCTION_OUTPUT)?,
            output(APPROVAL_FUNCTION_OUTPUT)?,
            output(WEBHOOK_FUNCTION_OUTPUT)?,
        );
        register_admin_key(&emulator.endpoint, stack_name).await?;
        roles::ensure_pipeline_role(&emulator.endpoint, &outputs, &roles::sample_role()).await?;
        let state_dir = &opts.state_dir;
        let api = gateway::start(
            lambda_host,
            &emulator.endpoint,
            &api_key,
            0,
            state_dir,
            "gateway",
            None,
            // fakecloud sends no Step Functions status events; this gateway does.
            gateway::Extras {
                status_events: true,
            },
        )?;
        gateways.push(api.pid);
        let iam_gateway = gateway::start(
            lambda_host,
            &emulator.endpoint,
            &api_iam,
            0,
            state_dir,
            "iam-gateway",
            Some(gateway::IamDoor {
                access_key_id: LOCAL_ACCESS_KEY_ID,
                secret: LOCAL_SECRET_ACCESS_KEY,
                principal: LOCAL_PRINCIPAL,
            }),
            gateway::Extras::default(),
        )?;
        gateways.push(iam_gateway.pid);
        let approvals = gateway::start(
            lambda_host,
            &emulator.endpoint,
            &approval,
            approval_port,
            state_dir,
            "approval-gateway",
            None,
            gateway::Extras::default(),
        )?;
        gateways.push(approvals.pid);
        let webhooks = gateway::start(
            lambda_host,
            &emulator.endpoint,
            &webhook,
            0,
            state_dir,
            "webhook-gateway",
            None,
            gateway::Extras::default(),
        )?;
        Ok::<_, LocalError>((outputs, api, iam_gateway, approvals, webhooks))
    };
    let (outputs, gateway, iam_gateway, approvals, webhooks) = match started.await {
        Ok(started) => started,
        Err(e) => {
            gateways.iter().for_each(|pid| emulator::stop_pid(*pid));
            return Err(e);
        }
    };
    Ok(LocalStack {
        emulator: emulator.clone(),
        gateway,
        iam_gateway,
        approvals,
        webhooks,
        outputs,
    })
}

/// Make the emulator's credentials an admin Pipewright key of stack `stack_name`, so the one
/// pair in `local.env` signs for the key door too (as `aws codepipeline --endpoint-url
/// "$PIPEWRIGHT_ENDPOINT"` does).
async fn register_admin_key(emulator_endpoint: &str, stack_name: &str) -> Result<(), LocalError> {
    use pipewright_core::access::keys::{AccessKey, KeyStore};
    let sdk =
        pipewright_aws::config::load(&pipewright_aws::config::Target::local(emulator_endpoint))
            .await;
    let store = pipewright_aws::access_keys::SecretsKeyStore::new(
        &sdk,
        &format!("pipewright/{stack_name}/access-keys/"),
    );
    let key = AccessKey {
        access_key_id: LOCAL_ACCESS_KEY_ID.into(),
        secret_access_key: LOCAL_SECRET_ACCESS_KEY.into(),
        name: "local-admin".into(),
        grant: pipewright_core::access::policy::Grant::admin(),
        created: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64()),
        expires: None,
        created_by: Some("pipewright local up".into()),
    };
    store
        .put(&key)
        .await
        .map_err(|e| LocalError::Deploy(format!("registering the local admin key: {e}")))
}

/// The stack described by `<state_dir>/local.env`, if its emulator is alive and healthy.
pub fn status(state_dir: &Path) -> Option<LocalStack> {
    let env = env_file::read(state_dir)?;
    let pid: u32 = env.get("PIPEWRIGHT_EMULATOR_PID")?.parse().ok()?;
    let emulator = Emulator {
        endpoint: env.get("AWS_ENDPOINT_URL")?.clone(),
        pid,
    };
    let gateway = Gateway {
        endpoint: env.get("PIPEWRIGHT_ENDPOINT")?.clone(),
        pid: env.get("PIPEWRIGHT_GATEWAY_PID")?.parse().ok()?,
    };
    let iam_gateway = Gateway {
        endpoint: env.get("PIPEWRIGHT_IAM_ENDPOINT")?.clone(),
        pid: env.get("PIPEWRIGHT_IAM_GATEWAY_PID")?.parse().ok()?,
    };
    let approvals = Gateway {
        endpoint: env.get("PIPEWRIGHT_APPROVAL_ENDPOINT")?.clone(),
        pid: env.get("PIPEWRIGHT_APPROVAL_GATEWAY_PID")?.parse().ok()?,
    };
    let webhooks = Gateway {
        endpoint: env.get("PIPEWRIGHT_WEBHOOK_ENDPOINT")?.clone(),
        pid: env.get("PIPEWRIGHT_WEBHOOK_GATEWAY_PID")?.parse().ok()?,
    };
    if !emulator::is_alive(pid)
        || !emulator.healthy()
        || !emulator::is_alive(gateway.pid)
        || !emulator::is_alive(iam_gateway.pid)
        || !emulator::is_alive(approvals.pid)
        || !emulator::is_alive(webhooks.pid)
    {
        return None;
    }
    let outputs = env
        .iter()
        .filter_map(|(k, v)| Some((output_name(k.strip_prefix("PIPEWRIGHT_")?)?, v.clone())))
        .collect();
    Some(LocalStack {
        emulator,
        gateway,
        iam_gateway,
        approvals,
        webhooks,
        outputs,
    })
}

/// Take the stack down: stop the emulator and the sandboxes, remove `local.env`. Returns false
/// when nothing was running.
pub fn down(state_dir: &Path) -> bool {
    let Some(env) = env_file::read(state_dir) else {
        return false;
    };
    let alive = |key: &str| {
        env.get(key)
            .and_then(|p| p.parse::<u32>().ok())
            .filter(|pid| emulator::is_alive(*pid))
    };
    for key in [
        "PIPEWRIGHT_GATEWAY_PID",
        "PIPEWRIGHT_IAM_GATEWAY_PID",
        "PIPEWRIGHT_APPROVAL_GATEWAY_PID",
        "PIPEWRIGHT_WEBHOOK_GATEWAY_PID",
    ] {
        if let Some(pid) = alive(key) {
            emulator::stop_pid(pid);
        }
    }
    let running = alive("PIPEWRIGHT_EMULATOR_PID");
    if let Some(pid) = running {
        emulator::stop_pid(pid);
    }
    let _ = std::fs::remove_dir_all(state_dir.join("lambda"));
    let _ = std::fs::remove_dir_all(state_dir.join("tmp"));
    let _ = std::fs::remove_file(state_dir.join(env_file::FILE_NAME));
    running.is_some()
}

/// `ARTIFACT_BUCKET_NAME` → `ArtifactBucketName` (the inverse of [`env_file::output_key`]),
/// skipping the keys that are not stack outputs.
fn output_name(key: &str) -> Option<String> {
    if matches!(
        key,
        "STACK"
            | "EMULATOR_PID"
            | "GATEWAY_PID"
            | "ENDPOINT"
            | "APPROVAL_ENDPOINT"
            | "APPROVAL_GATEWAY_PID"
            | "WEBHOOK_ENDPOINT"
            | "WEBHOOK_GATEWAY_PID"
    ) {
        return None;
    }
    Some(
        key.split('_')
            .map(|w| {
                let mut c = w.chars();
                c.next()
                    .map(|f| f.to_string() + &c.as_str().to_ascii_lowercase())
                    .unwrap_or_default()
            })
            .collect(),
    )
}
