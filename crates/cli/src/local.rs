//! `pipewright local up|down|status`.

use std::path::{Path, PathBuf};

use clap::Subcommand;
use pipewright_local::{env_file, package::Profile, UpOptions};

#[derive(Debug, Subcommand)]
pub enum LocalCommand {
    /// Build the functions, start the emulator and create the stack; print its endpoints as
    /// `KEY=value` lines (also written to .pipewright/local.env).
    #[command(
        after_help = "Example:\n  pipewright local up && set -a && . .pipewright/local.env && set +a\n  \
                            aws dynamodb list-tables"
    )]
    Up {
        /// Port for the emulator on 127.0.0.1 (0 picks a free one).
        #[arg(long, default_value_t = 0)]
        port: u16,
        /// Build the functions with --release.
        #[arg(long)]
        release: bool,
        /// Cap every action's timeout at this many seconds (the stack's ActionTimeoutCapSeconds),
        /// so that an approval nobody answers fails soon instead of in 7 days.
        #[arg(long, value_name = "SECONDS")]
        action_timeout_cap: Option<u64>,
        /// The GitHub REST API git source actions fetch commits from (the stack's
        /// GitApiBaseUrl; default https://api.github.com), e.g. a GitHub Enterprise Server's
        /// https://<host>/api/v3.
        #[arg(long, value_name = "URL")]
        git_api_base_url: Option<String>,
        /// CreatePipeline does not run the new pipeline (the stack's StartExecutionOnCreate
        /// Disabled); by default it runs once, as in CodePipeline.
        #[arg(long)]
        no_start_on_create: bool,
        /// The project folder (template.yaml and Cargo.toml); default: found upwards from here.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Stop the emulator and every function it started.
    Down {
        /// The project folder; default: found upwards from here.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Invoke a function of the running stack with an event file; print its response.
    #[command(
        after_help = "Example:\n  pipewright local invoke ApiFunction --data-file events/api-list-pipelines.json"
    )]
    Invoke {
        /// The function's logical id in template.yaml (e.g. ApiFunction) or its name.
        function: String,
        /// The event to send (JSON).
        #[arg(long)]
        data_file: PathBuf,
        /// The project folder; default: found upwards from here.
        #[arg(long)]
        root: Option<PathBuf>,
    },
    /// Print the running stack's endpoints, or exit 1 when none runs.
    Status {
        /// The project folder; default: found upwards from here.
        #[arg(long)]
        root: Option<PathBuf>,
    },
}

/// Run a `local` subcommand; returns the exit code.
pub fn run(command: LocalCommand) -> i32 {
    match command {
        LocalCommand::Up {
            port,
            release,
            action_timeout_cap,
            git_api_base_url,
            no_start_on_create,
            root,
        } => {
            let Some(root) = project_root(root) else {
                return no_project();
            };
            let mut opts = UpOptions::new(root);
            opts.port = port;
            opts.action_timeout_cap_seconds = action_timeout_cap.filter(|s| *s > 0);
            opts.git_api_base_url = git_api_base_url.filter(|u| !u.trim().is_empty());
            opts.start_on_create = !no_start_on_create;
            opts.profile = if release {
                Profile::Release
            } else {
                Profile::Dev
            };
            let result = runtime().and_then(|rt| {
                rt.block_on(pipewright_local::up(&opts))
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok(stack) => {
                    print!("{}", env_file::render(&stack.env()));
                    0
                }
                Err(e) => {
                    eprintln!("pipewright local up: {e}");
                    1
                }
            }
        }
        LocalCommand::Down { root } => {
            let Some(root) = project_root(root) else {
                return no_project();
            };
            if pipewright_local::down(&root.join(".pipewright")) {
                eprintln!("local stack stopped");
            } else {
                eprintln!("no local stack was running");
            }
            0
        }
        LocalCommand::Invoke {
            function,
            data_file,
            root,
        } => {
            let Some(root) = project_root(root) else {
                return no_project();
            };
            let Some(stack) = pipewright_local::status(&root.join(".pipewright")) else {
                eprintln!("no local stack is running (start one with `pipewright local up`)");
                return 1;
            };
            let payload = match std::fs::read(&data_file) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("pipewright: {}: {e}", data_file.display());
                    return 2;
                }
            };
            let result = runtime().and_then(|rt| {
                rt.block_on(pipewright_local::invoke::invoke(&stack, &function, payload))
                    .map_err(|e| e.to_string())
            });
            match result {
                Ok(out) => {
                    println!("{}", String::from_utf8_lossy(&out.payload));
                    match out.function_error {
                        Some(kind) => {
                            eprintln!("pipewright: {function} failed ({kind})");
                            1
                        }
                        None => 0,
                    }
                }
                Err(e) => {
                    eprintln!("pipewright local invoke: {e}");
                    1
                }
            }
        }
        LocalCommand::Status { root } => {
            let Some(root) = project_root(root) else {
                return no_project();
            };
            match pipewright_local::status(&root.join(".pipewright")) {
                Some(stack) => {
                    print!("{}", env_file::render(&stack.env()));
                    0
                }
                None => {
                    eprintln!("no local stack is running (start one with `pipewright local up`)");
                    1
                }
            }
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start a runtime: {e}"))
}

fn no_project() -> i32 {
    eprintln!("pipewright: no template.yaml here or in any parent folder; pass --root");
    2
}

/// The given root, or the nearest folder upwards holding `template.yaml`.
pub(crate) fn project_root(given: Option<PathBuf>) -> Option<PathBuf> {
    if let Some(root) = given {
        return Some(root);
    }
    let cwd = std::env::current_dir().ok()?;
    cwd.ancestors()
        .find(|d| d.join("template.yaml").is_file())
        .map(Path::to_path_buf)
}
