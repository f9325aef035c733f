//! The Commands runner: one `Compute/AWS/Commands` run per invocation, with nothing of the
//! stack. Its execution role has no permissions; it reads its inputs and writes its outputs
//! and log through the presigned URLs of the request (`pipewright_core::runner`), and the only
//! credentials the commands get are the pipeline role's, passed in their environment.
//!
//! It speaks the Lambda Runtime API itself (three calls) so that it decides what happens after
//! an answer: before answering it kills every process the run started (it is their subreaper,
//! so `setsid` and double forks do not escape) and empties its temporary storage
//! ([`sandbox`]); when that could not be made sure, it answers and then exits, and Lambda
//! starts the next invocation in a fresh sandbox.
//!
//! It also makes itself non-dumpable: the commands run as the same user, and that keeps them
//! from reading its memory or environment through `/proc` or attaching a debugger.

mod run;
mod sandbox;

use std::sync::Arc;

use pipewright_core::runner::{instant_from_epoch_ms, RunRequest};

fn main() {
    sandbox::harden_self();
    let api = match std::env::var("AWS_LAMBDA_RUNTIME_API") {
        Ok(api) => api,
        Err(_) => {
            eprintln!("AWS_LAMBDA_RUNTIME_API is not set: the runner runs as a Lambda function");
            std::process::exit(1);
        }
    };
    let agent = agent();
    let base = format!("http://{api}/2018-06-01/runtime/invocation");
    loop {
        let next = match agent.get(format!("{base}/next")).call() {
            Ok(next) => next,
            Err(e) => {
                eprintln!("runtime API: {e}");
                std::process::exit(1);
            }
        };
        let header = |name: &str| {
            next.headers()
                .get(name)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let Some(request_id) = header("lambda-runtime-aws-request-id") else {
            eprintln!("runtime API: an invocation without a request id");
            std::process::exit(1);
        };
        let deadline = header("lambda-runtime-deadline-ms")
            .and_then(|ms| ms.parse::<u64>().ok())
            .map(instant_from_epoch_ms);
        let body = next
            .into_body()
            .with_config()
            .limit(6 * 1024 * 1024)
            .read_to_vec();
        let request = body
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice::<RunRequest>(&b).map_err(|e| e.to_string()));
        let (path, answer, clean) = match request {
            Ok(request) => {
                eprintln!(
                    "run {}: {} command(s)",
                    request.action_execution_id,
                    request.commands.len()
                );
                // The sooner of the invocation's deadline and the caller's.
                let deadline = match (deadline, request.deadline_epoch_ms) {
                    (Some(own), Some(ms)) => Some(own.min(instant_from_epoch_ms(ms))),
                    (own, ms) => own.or(ms.map(instant_from_epoch_ms)),
                };
                let mut response = run::run(&agent, &request, deadline);
                response.sandbox_clean = sandbox::sweep();
                (
                    "response",
                    serde_json::to_vec(&response).unwrap_or_default(),
                    response.sandbox_clean,
                )
            }
            Err(e) => (
                "error",
                serde_json::to_vec(&serde_json::json!({
                    "errorType": "InvalidRunRequest",
                    "errorMessage": format!("the run request cannot be read: {e}"),
                }))
                .unwrap_or_default(),
                true,
            ),
        };
        if let Err(e) = agent
            .post(format!("{base}/{request_id}/{path}"))
            .header("content-type", "application/json")
            .send(&answer[..])
        {
            eprintln!("runtime API: answering {request_id}: {e}");
        }
        if !clean {
            eprintln!("the sandbox could not be cleaned: ending it so the next run gets a new one");
            std::process::exit(0);
        }
    }
}

/// One HTTP agent for the Runtime API and the presigned URLs: status codes are answers (S3's
/// errors are read, not thrown), TLS with aws-lc-rs and the web PKI roots.
fn agent() -> ureq::Agent {
    let tls = ureq::tls::TlsConfig::builder()
        .provider(ureq::tls::TlsProvider::Rustls)
        .unversioned_rustls_crypto_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
        .build();
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .tls_config(tls)
        .build()
        .into()
}
