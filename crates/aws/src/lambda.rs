//! [`Functions`] over Lambda's `Invoke` with `InvocationType: Event`: how job-worker actions
//! (`Invoke/AWS/Lambda`) start their function.
//!
//! Lambda's refusals are reported with CodePipeline's failure types: a function that does not
//! exist or a payload it refuses is a `ConfigurationError`, a denied call a `PermissionError`,
//! anything else `JobFailed`.

use async_trait::async_trait;
use aws_sdk_lambda::error::ProvideErrorMetadata;
use aws_sdk_lambda::primitives::Blob;
use aws_sdk_lambda::types::InvocationType;
use aws_sdk_lambda::Client;
use pipewright_core::execution::FailureType;
use pipewright_core::jobs::{Functions, InvokeError};
use serde_json::Value;

/// Lambda error codes that mean the action's configuration cannot work.
const CONFIGURATION_ERRORS: &[&str] = &[
    "ResourceNotFoundException",
    "InvalidParameterValueException",
    "RequestTooLargeException",
    "InvalidRequestContentException",
    "InvalidRuntimeException",
];

/// Lambda functions, invoked through the SDK.
#[derive(Debug, Clone)]
pub struct LambdaFunctions {
    client: Client,
}

impl LambdaFunctions {
    /// Functions reached through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

/// CodePipeline's failure type for a Lambda error code and HTTP status.
pub fn failure_type(code: Option<&str>, status: Option<u16>) -> FailureType {
    match (code, status) {
        (Some(code), _) if CONFIGURATION_ERRORS.contains(&code) => FailureType::ConfigurationError,
        (Some("AccessDeniedException" | "AccessDenied" | "KMSAccessDeniedException"), _)
        | (_, Some(403)) => FailureType::PermissionError,
        (_, Some(404)) => FailureType::ConfigurationError,
        _ => FailureType::JobFailed,
    }
}

#[async_trait]
impl Functions for LambdaFunctions {
    async fn invoke_event(&self, function_name: &str, event: &Value) -> Result<(), InvokeError> {
        let payload = serde_json::to_vec(event).map_err(|e| InvokeError {
            code: FailureType::JobFailed,
            message: format!("cannot encode the job event: {e}"),
        })?;
        match self
            .client
            .invoke()
            .function_name(function_name)
            .invocation_type(InvocationType::Event)
            .payload(Blob::new(payload))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(err) => {
                let code = err.code().map(str::to_string);
                let status = err.raw_response().map(|r| r.status().as_u16());
                Err(InvokeError {
                    code: failure_type(code.as_deref(), status),
                    message: crate::error_chain(&format!("lambda:Invoke {function_name}"), &err),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_errors_map_to_failure_types() {
        assert_eq!(
            failure_type(Some("ResourceNotFoundException"), Some(404)),
            FailureType::ConfigurationError
        );
        assert_eq!(
            failure_type(Some("AccessDeniedException"), Some(403)),
            FailureType::PermissionError
        );
        assert_eq!(failure_type(None, Some(403)), FailureType::PermissionError);
        assert_eq!(
            failure_type(Some("TooManyRequestsException"), Some(429)),
            FailureType::JobFailed
        );
        assert_eq!(failure_type(None, None), FailureType::JobFailed);
    }
}
