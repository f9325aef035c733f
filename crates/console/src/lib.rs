//! The pipeline console: `pipewright console` serves these pages on 127.0.0.1.
//!
//! Every page is drawn on the server from the control plane's answers (GetPipelineState,
//! ListPipelineExecutions, ListActionExecutions, ...), called with the *user's* CodePipeline
//! client: the console holds no credentials of its own and exposes nothing the user could not
//! already call (the log of a Commands action is read from the artifact bucket with the user's
//! S3 client). It is readable without JavaScript; a few lines of plain JavaScript
//! (`assets/console.js`) refresh the page's main part every few seconds.
//!
//! - [`auth`]: the one-time token, the session cookie, and the Host / Origin checks.
//! - [`pages`]: one module per page, pure rendering (SDK outputs in, HTML out).
//! - [`routes`]: the handlers: read from the control plane, render, or act (approve, retry...).

pub mod auth;
pub mod pages;
pub mod routes;
pub mod text;

use std::sync::Arc;

use aws_sdk_codepipeline::Client;

/// What the handlers share.
pub struct Console {
    /// The user's CodePipeline client (the endpoint and door the CLI resolved).
    pub client: Client,
    /// The user's S3 client, to read the log tail of Commands actions from the artifact bucket.
    pub s3: aws_sdk_s3::Client,
    /// The control plane's URL, shown in the page header.
    pub endpoint: String,
    /// Who may use the console.
    pub auth: auth::Auth,
}

impl Console {
    /// A console calling the control plane through `client` (at `endpoint`), served on `port`:
    /// returns it and the one-time token its first URL carries.
    pub fn new(
        client: Client,
        s3: aws_sdk_s3::Client,
        endpoint: impl Into<String>,
        port: u16,
    ) -> (Arc<Self>, String) {
        let (auth, token) = auth::Auth::new(port);
        (
            Arc::new(Self {
                client,
                s3,
                endpoint: endpoint.into(),
                auth,
            }),
            token,
        )
    }
}

/// The console's first URL: the one-time token exchanged for a session cookie.
pub fn start_url(port: u16, token: &str) -> String {
    format!("http://127.0.0.1:{port}/?token={token}")
}

/// Serve `console` on `listener` until the process ends.
pub async fn serve(
    listener: tokio::net::TcpListener,
    console: Arc<Console>,
) -> std::io::Result<()> {
    axum::serve(listener, routes::router(console)).await
}
