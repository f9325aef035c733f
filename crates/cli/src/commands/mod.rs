//! The commands that talk to the control plane through the official `aws-sdk-codepipeline`
//! client: one module per group, each doing its own I/O; rendering is in [`crate::render`].

mod approve;
mod console;
mod execution;
mod keys;
mod pipeline;
mod status;
mod watch;

use std::path::PathBuf;
use std::time::Duration;

use clap::{Subcommand, ValueEnum};
use serde_json::Value;

use crate::client::{self, CliError, Endpoint, EXIT_USAGE};

/// `--output`: how the read commands print.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// Tables and lines for people.
    Text,
    /// The service's response as CodePipeline's JSON (timestamps as epoch seconds).
    Json,
}

/// `--mode` of `retry`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RetryMode {
    /// Re-run only the failed actions.
    #[value(name = "FAILED_ACTIONS")]
    FailedActions,
    /// Re-run every action of the stage.
    #[value(name = "ALL_ACTIONS")]
    AllActions,
}

/// What `approve` and `reject` take.
#[derive(Debug, clap::Args)]
pub struct ApprovalArgs {
    /// The pipeline.
    pub name: String,
    /// The stage of the approval action.
    pub stage: String,
    /// The approval action.
    pub action: String,
    /// The summary recorded with the decision.
    #[arg(long)]
    pub summary: Option<String>,
    /// The approval token (default: the waiting approval's, read with GetPipelineState).
    #[arg(long)]
    pub token: Option<String>,
}

/// The commands that call the control plane.
#[derive(Debug, Subcommand)]
pub enum Remote {
    /// Create a pipeline from a declaration file (JSON or YAML), validated here first.
    #[command(after_help = concat!(
        "Examples:\n  pipewright create -f infra/pipelines/sample.json\n  \
         pipewright create -f pipeline.yaml --output json\n\n",
        exit_codes!()
    ))]
    Create {
        /// The declaration (bare, in a `pipeline` wrapper, or get-pipeline output).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Update a pipeline from a declaration file.
    ///
    /// Without a `version` in the file, the current one is read with GetPipeline first.
    #[command(after_help = concat!(
        "Examples:\n  pipewright get my-pipeline > p.json && $EDITOR p.json && pipewright update -f p.json\n\n",
        exit_codes!()
    ))]
    Update {
        /// The declaration (bare, in a `pipeline` wrapper, or get-pipeline output).
        #[arg(short = 'f', long = "file", value_name = "FILE")]
        file: PathBuf,
    },
    /// Print a pipeline's declaration and metadata as GetPipeline's JSON (`update -f` reads it).
    #[command(after_help = concat!(
        "Examples:\n  pipewright get pipewright-sample\n  pipewright get pipewright-sample --pipeline-version 1\n\n",
        exit_codes!()
    ))]
    Get {
        /// The pipeline.
        name: String,
        /// A version other than the current one.
        #[arg(long, value_name = "N")]
        pipeline_version: Option<i32>,
    },
    /// Start an execution; prints its id.
    #[command(after_help = concat!(
        "Examples:\n  pipewright start pipewright-sample\n  \
         id=$(pipewright start pipewright-sample --var SiteBucket=staging-site) && pipewright watch pipewright-sample \"$id\"\n\n",
        exit_codes!()
    ))]
    Start {
        /// The pipeline.
        name: String,
        /// A pipeline variable for this execution (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
        /// An idempotency token: starting twice with the same token starts once.
        #[arg(long, value_name = "T")]
        client_request_token: Option<String>,
    },
    /// List every pipeline with its latest execution (ListPipelines, ListPipelineExecutions).
    #[command(after_help = concat!(
        "Examples:\n  pipewright list\n  pipewright list --output json\n\n",
        exit_codes!()
    ))]
    List,
    /// Serve the pipeline console on 127.0.0.1: pipelines, executions and actions, live;
    /// approve, retry, stop and roll back from the page.
    ///
    /// Prints the console's URL (it carries a one-time token, exchanged for a session cookie
    /// on first use) and opens it in the browser. The pages call the control plane with your
    /// own credentials, through the endpoint the other commands use. Runs until interrupted.
    #[command(after_help = concat!(
        "Examples:\n  pipewright console\n  pipewright console --port 8642 --no-open\n  \
         pipewright console --iam-endpoint-url \"$(aws cloudformation describe-stacks --stack-name pipewright \\\n    --query \"Stacks[0].Outputs[?OutputKey=='ApiIamUrl'].OutputValue\" --output text)\"\n\n",
        exit_codes!()
    ))]
    Console {
        /// The port on 127.0.0.1 (default: any free port).
        #[arg(long, default_value_t = 0, value_name = "N")]
        port: u16,
        /// Print the URL without opening a browser.
        #[arg(long)]
        no_open: bool,
    },
    /// Show each stage's latest execution and each action's latest run (GetPipelineState).
    ///
    /// A waiting approval shows its token, which `approve` and `reject` take.
    #[command(after_help = concat!(
        "Examples:\n  pipewright status pipewright-sample\n  pipewright status pipewright-sample --output json\n\n",
        exit_codes!()
    ))]
    Status {
        /// The pipeline.
        name: String,
    },
    /// List a pipeline's executions, newest first (ListPipelineExecutions).
    #[command(after_help = concat!(
        "Examples:\n  pipewright history pipewright-sample\n  pipewright history pipewright-sample --max 5 --output json\n\n",
        exit_codes!()
    ))]
    History {
        /// The pipeline.
        name: String,
        /// At most this many executions.
        #[arg(long, default_value_t = 20, value_name = "N")]
        max: usize,
    },
    /// Approve a waiting manual approval (PutApprovalResult).
    #[command(after_help = concat!(
        "Examples:\n  pipewright approve pipewright-sample Approve Release --summary \"looks good\"\n\n",
        exit_codes!()
    ))]
    Approve(ApprovalArgs),
    /// Reject a waiting manual approval: the action, its stage and the execution fail.
    #[command(after_help = concat!(
        "Examples:\n  pipewright reject pipewright-sample Approve Release --summary \"breaks the login page\"\n\n",
        exit_codes!()
    ))]
    Reject(ApprovalArgs),
    /// Follow an execution live until it ends.
    ///
    /// Each stage and action with its status, elapsed time and the failing action's error,
    /// polled every second (GetPipelineExecution, GetPipelineState, ListActionExecutions).
    /// Redraws in place on a terminal, prints changed lines otherwise; with `--output json`
    /// prints only the final state. Exit 0 when the execution succeeds, 1 when it fails, stops,
    /// is superseded or cancelled.
    #[command(after_help = concat!(
        "Examples:\n  pipewright watch pipewright-sample\n  \
         pipewright watch pipewright-sample \"$(pipewright start pipewright-sample)\"\n\n",
        exit_codes!()
    ))]
    Watch {
        /// The pipeline.
        name: String,
        /// The execution (default: the latest).
        execution: Option<String>,
        /// Seconds between polls.
        #[arg(long, default_value_t = 1.0, value_name = "SECONDS")]
        interval: f64,
    },
    /// Retry a failed stage of an execution (RetryStageExecution); prints the execution id.
    #[command(after_help = concat!(
        "Examples:\n  pipewright retry pipewright-sample Build --execution 1b4e28ba-2fa1-41d2-883f-0016d3cca427\n  \
         pipewright retry pipewright-sample Build --mode ALL_ACTIONS --execution \"$id\"\n\n",
        exit_codes!()
    ))]
    Retry {
        /// The pipeline.
        name: String,
        /// The failed stage.
        stage: String,
        /// Which actions run again.
        #[arg(long, value_enum, default_value_t = RetryMode::FailedActions)]
        mode: RetryMode,
        /// The execution whose stage failed.
        #[arg(long, value_name = "ID")]
        execution: String,
    },
    /// Stop an execution (StopPipelineExecution): let running actions finish, or abandon them.
    #[command(after_help = concat!(
        "Examples:\n  pipewright stop pipewright-sample \"$id\" --reason \"wrong branch\"\n  \
         pipewright stop pipewright-sample \"$id\" --abandon\n\n",
        exit_codes!()
    ))]
    Stop {
        /// The pipeline.
        name: String,
        /// The execution.
        execution: String,
        /// Abandon the running actions instead of waiting for them.
        #[arg(long)]
        abandon: bool,
        /// Why (recorded with the execution).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Pipewright access keys for the key door (made, listed, rotated and revoked through the
    /// IAM door only).
    Keys {
        #[command(subcommand)]
        command: keys::KeysCommand,
    },
}

impl Remote {
    /// The command's name, for error lines.
    fn name(&self) -> &'static str {
        match self {
            Remote::Create { .. } => "create",
            Remote::Update { .. } => "update",
            Remote::Get { .. } => "get",
            Remote::Start { .. } => "start",
            Remote::List => "list",
            Remote::Console { .. } => "console",
            Remote::Status { .. } => "status",
            Remote::History { .. } => "history",
            Remote::Approve(_) => "approve",
            Remote::Reject(_) => "reject",
            Remote::Watch { .. } => "watch",
            Remote::Retry { .. } => "retry",
            Remote::Stop { .. } => "stop",
            Remote::Keys { .. } => "keys",
        }
    }
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_owned(), value.to_owned())),
        _ => Err(format!("`{text}` is not NAME=VALUE")),
    }
}

/// What every command gets: the client and how to print.
pub struct Ctx {
    /// Where the client points.
    pub endpoint: Endpoint,
    /// The CodePipeline client.
    pub client: aws_sdk_codepipeline::Client,
    /// `--output`.
    pub output: Output,
}

impl Ctx {
    /// An SDK error as the command's error.
    pub fn sdk<E>(
        &self,
        err: aws_sdk_codepipeline::error::SdkError<
            E,
            aws_sdk_codepipeline::config::http::HttpResponse,
        >,
    ) -> CliError
    where
        E: aws_sdk_codepipeline::error::ProvideErrorMetadata + std::error::Error + 'static,
    {
        CliError::from_sdk(err, &self.endpoint.url)
    }

    /// True for `--output json`.
    pub fn json(&self) -> bool {
        self.output == Output::Json
    }
}

/// Print a JSON document on stdout.
pub fn print_json(value: &Value) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| value.to_string());
    println!("{text}");
}

/// Print the error line; returns its exit status.
pub fn report(command: &str, err: &CliError) -> i32 {
    eprintln!("pipewright {command}: {}: {}", err.kind, err.message);
    err.code
}

/// Run a remote command; returns the exit status.
pub fn run(
    command: Remote,
    endpoint_url: Option<String>,
    iam_endpoint_url: Option<String>,
    output: Output,
) -> i32 {
    let name = command.name();
    // A declaration is read and validated before anything is sent (or any endpoint looked for).
    let declaration = match &command {
        Remote::Create { file } | Remote::Update { file } => {
            match crate::validate::load(name, file, &mut std::io::stderr().lock()) {
                Ok(d) => Some(d),
                Err(code) => return code,
            }
        }
        _ => None,
    };
    let endpoint =
        match client::resolve_endpoint(endpoint_url.as_deref(), iam_endpoint_url.as_deref()) {
            Ok(e) => e,
            Err(e) => return report(name, &e),
        };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            return report(
                name,
                &CliError::new("Runtime", format!("cannot start: {e}"), EXIT_USAGE),
            )
        }
    };
    let result = runtime.block_on(async move {
        let ctx = Ctx {
            client: client::codepipeline(&endpoint).await,
            endpoint,
            output,
        };
        match command {
            Remote::Create { .. } => pipeline::create(&ctx, declaration.as_ref()).await,
            Remote::Update { .. } => pipeline::update(&ctx, declaration.as_ref()).await,
            Remote::Get {
                name,
                pipeline_version,
            } => pipeline::get(&ctx, &name, pipeline_version).await,
            Remote::Start {
                name,
                vars,
                client_request_token,
            } => execution::start(&ctx, &name, &vars, client_request_token).await,
            Remote::List => status::list(&ctx).await,
            Remote::Console { port, no_open } => console::run(&ctx, port, no_open).await,
            Remote::Status { name } => status::status(&ctx, &name).await,
            Remote::History { name, max } => status::history(&ctx, &name, max).await,
            Remote::Approve(args) => approve::decide(&ctx, &args, true).await,
            Remote::Reject(args) => approve::decide(&ctx, &args, false).await,
            Remote::Watch {
                name,
                execution,
                interval,
            } => {
                let interval = Duration::from_secs_f64(interval.clamp(0.2, 60.0));
                watch::watch(&ctx, &name, execution, interval).await
            }
            Remote::Retry {
                name,
                stage,
                mode,
                execution,
            } => execution::retry(&ctx, &name, &stage, mode, &execution).await,
            Remote::Stop {
                name,
                execution,
                abandon,
                reason,
            } => execution::stop(&ctx, &name, &execution, abandon, reason).await,
            Remote::Keys { command } => keys::run(&ctx, command).await,
        }
    });
    match result {
        Ok(code) => code,
        Err(e) => report(name, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_are_name_equals_value() {
        assert_eq!(parse_var("a=b=c"), Ok(("a".into(), "b=c".into())));
        assert_eq!(parse_var("a="), Ok(("a".into(), String::new())));
        assert!(parse_var("=b").is_err());
        assert!(parse_var("ab").is_err());
    }
}
