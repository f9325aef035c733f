//! Pipewright's adapters to AWS services. Each implements a trait that `pipewright-core` owns, so
//! the domain never sees an SDK type.

pub mod access_keys;
pub mod approvals;
pub mod artifacts;
pub mod config;
pub mod connections;
pub mod engine;
pub mod events;
pub mod execution_store;
pub mod lambda;
pub mod logging;
pub mod pipeline_secrets;
pub mod pipeline_store;
pub mod polling;
pub mod port_errors;
pub mod principals;
pub mod roles;
pub mod rules;
pub mod runner;
pub mod sfn;
pub mod task_tokens;
pub mod webhooks;

/// Now, in seconds since the epoch (the engine's clock).
pub fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// `call: error: source: ...`, the SDK error with its causes.
pub fn error_chain(call: &str, err: &dyn std::error::Error) -> String {
    let mut msg = format!("{call}: {err}");
    let mut source = err.source();
    while let Some(s) = source {
        msg.push_str(&format!(": {s}"));
        source = s.source();
    }
    msg
}
