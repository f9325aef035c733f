//! `pipewright-lambda-host`: a docker-compatible container CLI for fakecloud
//! (`FAKECLOUD_CONTAINER_CLI`) that runs a Lambda function's `bootstrap`,
//! built for the host, as a local process behind a Lambda Runtime API on
//! 127.0.0.1 instead of in a container.
//!
//! `pipewright-lambda-host gateway` is the one command of its own: a local
//! Function URL that turns HTTP requests into invocations in the emulator
//! (see `gateway.rs`).

mod cli_args;
mod commands;
mod container;
mod gateway;
mod process;
mod sandbox;
mod serve;
mod status_events;

use std::io::Write;

use cli_args::Command;
use container::Root;

/// Docker's exit status for a command line it could not parse.
const USAGE_EXIT: i32 = 125;

fn main() {
    let args: Vec<String> = std::env::args_os()
        .skip(1)
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let root = Root::from_env();
    let cmd = match cli_args::parse(&args) {
        Ok(cmd) => cmd,
        Err(e) => {
            if args.first().map(String::as_str) != Some("gateway") {
                root.log(&format!("usage error: {e}; argv: {args:?}"));
            }
            eprintln!("Error: {e}");
            std::process::exit(USAGE_EXIT);
        }
    };
    // The gateway keeps out of the container state root altogether.
    let quiet = matches!(cmd, Command::Gateway(_));
    match &cmd {
        Command::Serve { .. } | Command::Gateway(_) => {}
        Command::Ignored => root.log(&format!("ignored: {args:?}")),
        _ => root.log(&format!("argv: {args:?}")),
    }
    let mut stdout = std::io::stdout().lock();
    let result = commands::run(&root, cmd, &mut stdout);
    let _ = stdout.flush();
    if let Err(commands::Failure(msg)) = result {
        if !quiet {
            root.log(&format!("failed: {msg}; argv: {args:?}"));
        }
        eprintln!("Error: {msg}");
        std::process::exit(1);
    }
}
