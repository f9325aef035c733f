//! `pipewright`: validate pipeline declarations, run the local stack, and drive pipelines through
//! the control plane with the official `aws-sdk-codepipeline` client.

/// The exit statuses of the commands that talk to the control plane, for `--help`.
macro_rules! exit_codes {
    () => {
        "Exit status:\n  \
         0  ok\n  \
         1  the execution failed, stopped, was superseded or cancelled; the pipeline is invalid\n  \
         2  bad usage, an unreadable file, or no endpoint\n  \
         3  not found: PipelineNotFoundException, PipelineExecutionNotFoundException,\n     \
            StageNotFoundException, ActionNotFoundException\n  \
         4  the endpoint cannot be reached\n  \
         5  any other error the service answered\n\
         Errors print `pipewright <command>: <ExceptionName>: <message>` on stderr.\n\n\
         Endpoint: --endpoint-url (the key door), else --iam-endpoint-url or\n\
         $PIPEWRIGHT_IAM_ENDPOINT (the IAM door, signed for lambda), else $PIPEWRIGHT_ENDPOINT,\n\
         else the running local stack's IAM door.\n\
         Region: $AWS_REGION / $AWS_DEFAULT_REGION (default us-east-1). Credentials: the\n\
         environment's (test/test for a local endpoint when it has none)."
    };
}

mod client;
mod commands;
mod convert;
mod json;
mod local;
mod render;
mod validate;
mod views;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pipewright: CodePipeline-style release orchestration on Rust Lambda functions.
#[derive(Debug, Parser)]
#[command(name = "pipewright", version, about, long_about = None, after_help = exit_codes!())]
struct Cli {
    /// The control plane's key door (requests signed for codepipeline with a Pipewright key,
    /// stack output ApiUrl). Default: the IAM door, else $PIPEWRIGHT_ENDPOINT.
    #[arg(long, global = true, value_name = "URL")]
    endpoint_url: Option<String>,
    /// The control plane's IAM door (requests signed for lambda with your AWS credentials, stack
    /// output ApiIamUrl). Default: $PIPEWRIGHT_IAM_ENDPOINT, else the running local stack's.
    #[arg(long, global = true, value_name = "URL")]
    iam_endpoint_url: Option<String>,
    /// How read commands print: text tables, or the service's response as CodePipeline's JSON.
    #[arg(long, global = true, value_enum, default_value_t = commands::Output::Text)]
    output: commands::Output,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Check a pipeline declaration (JSON or YAML, as `aws codepipeline create-pipeline` takes it).
    ///
    /// Exit status: 0 valid, 1 invalid (one `path: reason` line per problem), 2 unreadable.
    #[command(
        after_help = "Examples:\n  pipewright validate infra/pipelines/sample.json\n  \
                            aws codepipeline get-pipeline --name app > app.json && pipewright validate app.json"
    )]
    Validate {
        /// The declaration file.
        file: PathBuf,
    },
    /// Run the whole stack (template.yaml) in a local AWS emulator on 127.0.0.1.
    Local {
        #[command(subcommand)]
        command: local::LocalCommand,
    },
    #[command(flatten)]
    Remote(commands::Remote),
}

fn main() -> ExitCode {
    client::disable_instance_metadata();
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { file } => validate::run(
            &file,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Local { command } => local::run(command),
        Command::Remote(command) => {
            commands::run(command, cli.endpoint_url, cli.iam_endpoint_url, cli.output)
        }
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
