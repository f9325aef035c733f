//! `console`: serve the pipeline console ([`pipewright_console`]) on 127.0.0.1 with this
//! command's client, print its URL and open it.

use super::Ctx;
use crate::client::{CliError, EXIT_OK, EXIT_USAGE};

/// Bind 127.0.0.1:`port`, print the URL (on a line of its own), open the browser unless
/// `no_open`, and serve until interrupted.
pub async fn run(ctx: &Ctx, port: u16, no_open: bool) -> Result<i32, CliError> {
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .map_err(|e| {
            CliError::new(
                "PortUnavailable",
                format!("cannot listen on 127.0.0.1:{port}: {e}"),
                EXIT_USAGE,
            )
        })?;
    let port = listener
        .local_addr()
        .map_err(|e| CliError::new("PortUnavailable", e.to_string(), EXIT_USAGE))?
        .port();
    let s3 = s3_client(ctx).await;
    let (console, token) =
        pipewright_console::Console::new(ctx.client.clone(), s3, ctx.endpoint.url.clone(), port);
    let url = pipewright_console::start_url(port, &token);
    eprintln!(
        "pipewright console: serving the control plane at {} (the link works once; Ctrl-C stops)",
        ctx.endpoint.url
    );
    println!("{url}");
    if !no_open {
        open_browser(&url);
    }
    tokio::select! {
        served = pipewright_console::serve(listener, console) => served.map_err(|e| {
            CliError::new("ConsoleStopped", e.to_string(), crate::client::EXIT_SERVICE)
        })?,
        _ = tokio::signal::ctrl_c() => {}
    }
    Ok(EXIT_OK)
}

/// The S3 client the console reads action logs with: the environment's (`AWS_ENDPOINT_URL`
/// included), or for a local control plane without one, the running local stack's emulator.
async fn s3_client(ctx: &Ctx) -> aws_sdk_s3::Client {
    use pipewright_aws::config::{self, Target};
    let mut target = Target::from_env();
    if ctx.endpoint.local && !target.is_local() {
        if let Some(stack) = crate::local::project_root(None)
            .and_then(|root| pipewright_local::status(&root.join(".pipewright")))
        {
            target = Target::local(stack.emulator.endpoint);
        }
    }
    let sdk = config::load(&target).await;
    config::s3_client(&sdk, &target)
}

/// Ask the desktop to open `url` (best effort: the URL is printed either way).
fn open_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let spawned = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
    if spawned.is_err() {
        eprintln!("pipewright console: could not start {opener}; open the link above yourself");
    }
}
