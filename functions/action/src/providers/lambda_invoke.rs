//! `Invoke/AWS/Lambda`: invoke `FunctionName` asynchronously with CodePipeline's job event
//! ([`pipewright_core::jobs::job_event`]); the function reports back with `PutJobSuccessResult`
//! or `PutJobFailureResult`, which completes the action. Until then the action is pending: its
//! record keeps the task token, and the action's timeout fails it if the function never reports.

use pipewright_core::engine::PreparedAction;
use pipewright_core::execution::FailureType;
use pipewright_core::jobs::{job_event, Functions, FUNCTION_NAME};

use super::{required, ProviderError};

/// Start the job: the action is left in progress.
pub async fn run(
    functions: &dyn Functions,
    prepared: &PreparedAction,
) -> Result<(), ProviderError> {
    let function = required(prepared, FUNCTION_NAME)?;
    // The event is not logged: CodePipeline warns that it carries credentials.
    functions
        .invoke_event(function, &job_event(prepared, None))
        .await
        .map_err(|e| match e.code {
            FailureType::ConfigurationError => ProviderError::Configuration(e.message),
            FailureType::PermissionError => ProviderError::Permission(e.message),
            _ => ProviderError::Job(e.message),
        })?;
    tracing::info!(function, job = %prepared.record.action_execution_id, "function invoked; waiting for its job result");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use pipewright_core::engine::memory::MemoryFunctions;
    use pipewright_core::jobs::InvokeError;
    use serde_json::json;

    use crate::providers::test_support::prepared;

    fn invoke(configuration: serde_json::Value) -> PreparedAction {
        prepared(json!({
            "name": "Invoke",
            "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "Lambda", "version": "1"},
            "configuration": configuration
        }))
    }

    #[tokio::test]
    async fn the_function_gets_the_job_event() {
        let functions = MemoryFunctions::default();
        let action = invoke(json!({"FunctionName": "pipewright-worker", "UserParameters": "hi"}));
        run(&functions, &action).await.unwrap();
        let invoked = functions.invoked.lock().unwrap().clone();
        assert_eq!(
            invoked,
            vec![("pipewright-worker".to_string(), job_event(&action, None))]
        );
        let job = &invoked[0].1["CodePipeline.job"];
        assert_eq!(job["id"], "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee");
        assert_eq!(
            job["data"]["actionConfiguration"]["configuration"]["UserParameters"],
            "hi"
        );
    }

    #[tokio::test]
    async fn refusals_keep_their_failure_type() {
        let err = run(&MemoryFunctions::default(), &invoke(json!({})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(err.to_string().contains("FunctionName"), "{err}");

        let functions = MemoryFunctions::default();
        *functions.failure.lock().unwrap() = Some(InvokeError {
            code: FailureType::PermissionError,
            message: "lambda:Invoke denied".into(),
        });
        let err = run(&functions, &invoke(json!({"FunctionName": "f"})))
            .await
            .unwrap_err();
        assert_eq!(err.code(), FailureType::PermissionError);
        assert_eq!(err.to_string(), "lambda:Invoke denied");
    }
}
