//! `pipewright`: validate pipeline declarations and run the local stack.

mod local;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Pipewright: CodePipeline-style release orchestration on Rust Lambda functions.
#[derive(Debug, Parser)]
#[command(name = "pipewright", version, about, long_about = None)]
struct Cli {
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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match cli.command {
        Command::Validate { file } => validate::run(
            &file,
            &mut std::io::stdout().lock(),
            &mut std::io::stderr().lock(),
        ),
        Command::Local { command } => local::run(command),
    };
    ExitCode::from(u8::try_from(code).unwrap_or(1))
}
