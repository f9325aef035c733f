//! The Commands runner function (`functions/runner`), invoked synchronously with one
//! [`RunRequest`]; see `pipewright_core::runner` for the contract.

use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_lambda::Client;
use pipewright_core::execution::FailureType;
use pipewright_core::runner::{RunRequest, RunResponse};

/// Environment variable naming the runner function (name or ARN).
pub const RUNNER_FUNCTION_ENV: &str = "RUNNER_FUNCTION_NAME";

/// Why a run could not be had from the runner.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct RunnerError {
    /// CodePipeline's failure type.
    pub code: FailureType,
    /// What went wrong.
    pub message: String,
}

/// The runner function.
#[derive(Debug, Clone)]
pub struct CommandsRunner {
    client: Client,
    function_name: Option<String>,
}

impl CommandsRunner {
    /// The runner named by `function_name` (`None`: this stack has none configured).
    pub fn new(client: Client, function_name: Option<String>) -> Self {
        Self {
            client,
            function_name: function_name.filter(|n| !n.is_empty()),
        }
    }

    /// The runner named by [`RUNNER_FUNCTION_ENV`], invoked through a client made from `sdk`
    /// that never retries: a retried invoke could run the commands twice.
    pub fn from_env(sdk: &aws_config::SdkConfig) -> Self {
        let config = aws_sdk_lambda::config::Builder::from(sdk)
            .retry_config(aws_sdk_lambda::config::retry::RetryConfig::disabled())
            .build();
        Self::new(
            Client::from_conf(config),
            std::env::var(RUNNER_FUNCTION_ENV).ok(),
        )
    }

    /// Invoke the runner with `request` and wait for its answer.
    pub async fn run(&self, request: &RunRequest) -> Result<RunResponse, RunnerError> {
        let Some(function) = &self.function_name else {
            return Err(RunnerError {
                code: FailureType::ConfigurationError,
                message: format!(
                    "this stack has no Commands runner ({RUNNER_FUNCTION_ENV} is not set)"
                ),
            });
        };
        let payload = serde_json::to_vec(request).map_err(|e| RunnerError {
            code: FailureType::JobFailed,
            message: format!("cannot encode the run request: {e}"),
        })?;
        let invoke = self
            .client
            .invoke()
            .function_name(function)
            .invocation_type(InvocationType::RequestResponse)
            .payload(Blob::new(payload))
            .send();
        // Given up a moment after the run's deadline, so the caller still records the outcome.
        let waited = match request.deadline_epoch_ms {
            Some(ms) => {
                let until = pipewright_core::runner::instant_from_epoch_ms(ms)
                    + std::time::Duration::from_secs(5);
                tokio::time::timeout_at(until.into(), invoke)
                    .await
                    .map_err(|_| RunnerError {
                        code: FailureType::JobFailed,
                        message: format!(
                            "the Commands runner did not answer by the action's deadline ({function})"
                        ),
                    })?
            }
            None => invoke.await,
        };
        let output = waited.map_err(|err| {
            let code = err.code().map(str::to_string);
            let status = err.raw_response().map(|r| r.status().as_u16());
            RunnerError {
                code: crate::lambda::failure_type(code.as_deref(), status),
                message: crate::error_chain(&format!("lambda:Invoke {function}"), &err),
            }
        })?;
        let body = output.payload().map(|b| b.as_ref()).unwrap_or_default();
        if let Some(kind) = output.function_error() {
            let text = String::from_utf8_lossy(&body[..body.len().min(2048)]);
            return Err(RunnerError {
                code: FailureType::JobFailed,
                message: format!("the Commands runner failed ({kind}): {text}"),
            });
        }
        serde_json::from_slice(body).map_err(|e| RunnerError {
            code: FailureType::JobFailed,
            message: format!("the Commands runner's answer cannot be read: {e}"),
        })
    }
}
