//! Invoking a function of the local stack by its logical id, as `cargo lambda invoke` does for a
//! function under `cargo lambda watch`.

use aws_sdk_lambda::primitives::Blob;
use pipewright_aws::config::{self, Target};

use crate::{LocalError, LocalStack};

/// What an invocation returned.
#[derive(Debug, Clone)]
pub struct Invocation {
    /// The function's response (or error) payload.
    pub payload: Vec<u8>,
    /// Set when the function failed (`Handled` / `Unhandled`).
    pub function_error: Option<String>,
}

/// Invoke `function` (a logical id from the template, such as `ApiFunction`, or a function name)
/// with `payload`.
pub async fn invoke(
    stack: &LocalStack,
    function: &str,
    payload: Vec<u8>,
) -> Result<Invocation, LocalError> {
    let name = stack
        .outputs
        .get(&format!("{function}Name"))
        .map(String::as_str)
        .unwrap_or(function);
    let sdk = config::load(&Target::local(stack.emulator.endpoint.clone())).await;
    let out = aws_sdk_lambda::Client::new(&sdk)
        .invoke()
        .function_name(name)
        .payload(Blob::new(payload))
        .send()
        .await
        .map_err(|e| LocalError::aws("lambda:Invoke", e))?;
    Ok(Invocation {
        payload: out
            .payload()
            .map(|b| b.as_ref().to_vec())
            .unwrap_or_default(),
        function_error: out.function_error().map(str::to_string),
    })
}
