//! Step Functions: answering task tokens ([`TaskCallbacks`]) and the per-pipeline-version state
//! machines ([`StateMachines`]).
//!
//! A task token is a secret (whoever holds it completes the task), so no message made here quotes
//! it, including the service's own error messages (some echo the token back).

use async_trait::async_trait;
use aws_sdk_sfn::config::http::HttpResponse;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_sfn::types::{ExecutionStatus, StateMachineType};
use aws_sdk_sfn::Client;
use pipewright_core::engine::{PortError, StateMachines, TaskCallbacks};
use pipewright_core::events::partition;
use pipewright_core::sweep::RunStatus;
use serde_json::Value;

use crate::error_chain;
use crate::port_errors::classify;

/// `SendTaskFailure` takes an `error` of at most this many characters.
pub const MAX_ERROR_CHARS: usize = 256;
/// `SendTaskFailure` takes a `cause` of at most this many characters.
pub const MAX_CAUSE_CHARS: usize = 32_768;

/// Answers `.waitForTaskToken` tasks.
#[derive(Debug, Clone)]
pub struct SfnTaskCallbacks {
    client: Client,
}

impl SfnTaskCallbacks {
    /// Callbacks through `client`.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

#[async_trait]
impl TaskCallbacks for SfnTaskCallbacks {
    async fn succeed(&self, token: &str, output: &Value) -> Result<(), PortError> {
        refuse_sealed(token)?;
        self.client
            .send_task_success()
            .task_token(token)
            .output(output.to_string())
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let gone = e.as_service_error().is_some_and(|s| {
                    s.is_task_timed_out() || s.is_task_does_not_exist() || s.is_invalid_token()
                });
                callback_error("SendTaskSuccess", token, &e, gone)
            })
    }

    async fn fail(&self, token: &str, error: &str, cause: &str) -> Result<(), PortError> {
        refuse_sealed(token)?;
        self.client
            .send_task_failure()
            .task_token(token)
            .error(truncate_chars(error, MAX_ERROR_CHARS))
            .cause(truncate_chars(cause, MAX_CAUSE_CHARS))
            .send()
            .await
            .map(|_| ())
            .map_err(|e| {
                let gone = e.as_service_error().is_some_and(|s| {
                    s.is_task_timed_out() || s.is_task_does_not_exist() || s.is_invalid_token()
                });
                callback_error("SendTaskFailure", token, &e, gone)
            })
    }
}

/// Creates and starts the state machines compiled from pipeline declarations.
#[derive(Debug, Clone)]
pub struct SfnStateMachines {
    client: Client,
    role_arn: Option<String>,
    region: String,
    account: String,
}

impl SfnStateMachines {
    /// State machines in `region` of `account`, created with the execution role `role_arn`
    /// (without one, only existing state machines can be used).
    pub fn new(
        client: Client,
        role_arn: Option<String>,
        region: impl Into<String>,
        account: impl Into<String>,
    ) -> Self {
        Self {
            client,
            role_arn,
            region: region.into(),
            account: account.into(),
        }
    }

    /// `arn:<partition>:states:<region>:<account>:stateMachine:<name>`.
    pub fn state_machine_arn(&self, name: &str) -> String {
        format!(
            "arn:{}:states:{}:{}:stateMachine:{name}",
            partition(&self.region),
            self.region,
            self.account
        )
    }

    /// The ARN of execution `name` of the state machine `state_machine_arn`:
    /// `arn:<partition>:states:<region>:<account>:execution:<machine name>:<name>`.
    pub fn execution_arn(&self, state_machine_arn: &str, name: &str) -> String {
        let fields: Vec<&str> = state_machine_arn.splitn(7, ':').collect();
        match fields.as_slice() {
            ["arn", partition, "states", region, account, "stateMachine", machine] => {
                format!("arn:{partition}:states:{region}:{account}:execution:{machine}:{name}")
            }
            _ => {
                let machine = state_machine_arn.rsplit(':').next().unwrap_or_default();
                format!(
                    "arn:{}:states:{}:{}:execution:{machine}:{name}",
                    partition(&self.region),
                    self.region,
                    self.account
                )
            }
        }
    }
}

#[async_trait]
impl StateMachines for SfnStateMachines {
    async fn ensure(&self, name: &str, definition: &Value) -> Result<String, PortError> {
        let arn = self.state_machine_arn(name);
        match self
            .client
            .describe_state_machine()
            .state_machine_arn(&arn)
            .send()
            .await
        {
            Ok(out) => return Ok(out.state_machine_arn().to_string()),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_does_not_exist()) => {}
            Err(e) => return Err(classify(&e, sdk_error("DescribeStateMachine", &e))),
        }
        let role = self.role_arn.as_deref().ok_or_else(|| {
            PortError::NotFound(format!("state machine {name} does not exist and cannot be created here (no STATE_MACHINE_ROLE_ARN)"))
        })?;
        match self
            .client
            .create_state_machine()
            .name(name)
            .definition(definition.to_string())
            .role_arn(role)
            .r#type(StateMachineType::Standard)
            .send()
            .await
        {
            Ok(out) => Ok(out.state_machine_arn().to_string()),
            // Created meanwhile by a concurrent start of the same pipeline version.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_already_exists()) =>
            {
                Ok(arn)
            }
            Err(e) => Err(classify(&e, sdk_error("CreateStateMachine", &e))),
        }
    }

    async fn start(
        &self,
        state_machine_arn: &str,
        name: &str,
        input: &Value,
    ) -> Result<String, PortError> {
        match self
            .client
            .start_execution()
            .state_machine_arn(state_machine_arn)
            .name(name)
            .input(input.to_string())
            .send()
            .await
        {
            Ok(out) => Ok(out.execution_arn().to_string()),
            // Started before (an at-least-once caller): that execution is this one.
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_already_exists()) =>
            {
                Ok(self.execution_arn(state_machine_arn, name))
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
            {
                Err(PortError::NotFound(sdk_error("StartExecution", &e)))
            }
            Err(e) => Err(classify(&e, sdk_error("StartExecution", &e))),
        }
    }

    async fn delete(&self, name: &str) -> Result<(), PortError> {
        match self
            .client
            .delete_state_machine()
            .state_machine_arn(self.state_machine_arn(name))
            .send()
            .await
        {
            Ok(_) => Ok(()),
            Err(e)
                if e.as_service_error()
                    .and_then(|s| s.code())
                    .is_some_and(|c| c == "StateMachineDoesNotExist") =>
            {
                Ok(())
            }
            Err(e) => Err(classify(&e, sdk_error("DeleteStateMachine", &e))),
        }
    }

    async fn has_running(&self, name: &str) -> Result<Option<bool>, PortError> {
        match self
            .client
            .list_executions()
            .state_machine_arn(self.state_machine_arn(name))
            .status_filter(ExecutionStatus::Running)
            .max_results(1)
            .send()
            .await
        {
            Ok(out) => Ok(Some(!out.executions().is_empty())),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_state_machine_does_not_exist()) =>
            {
                Ok(None)
            }
            Err(e) => Err(classify(&e, sdk_error("ListExecutions", &e))),
        }
    }

    async fn run_status(&self, execution_arn: &str) -> Result<RunStatus, PortError> {
        match self
            .client
            .describe_execution()
            .execution_arn(execution_arn)
            .send()
            .await
        {
            Ok(out) => Ok(match out.status() {
                ExecutionStatus::Running | ExecutionStatus::PendingRedrive => RunStatus::Running,
                status => RunStatus::Ended {
                    status: status.as_str().to_string(),
                    error: out.error().map(str::to_string),
                    cause: out.cause().map(str::to_string),
                },
            }),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_execution_does_not_exist()) =>
            {
                Ok(RunStatus::Missing)
            }
            Err(e) => Err(classify(&e, sdk_error("DescribeExecution", &e))),
        }
    }
}

/// `call: Code: message` for a service error, the error and its causes otherwise.
fn sdk_error<E>(call: &str, err: &E) -> String
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    match err.code() {
        Some(code) => format!("{call}: {code}: {}", err.message().unwrap_or("")),
        None => error_chain(call, err),
    }
}

/// A failed `SendTask*` call as a [`PortError`], without the token: [`PortError::TaskGone`] when
/// the service said the task is `gone` (timed out, does not exist, an invalid token).
fn callback_error<E>(
    call: &str,
    token: &str,
    err: &SdkError<E, HttpResponse>,
    gone: bool,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = redact(&sdk_error(call, err), token);
    if gone {
        PortError::TaskGone(message)
    } else {
        classify(err, message)
    }
}

/// A token still sealed reached a function that cannot open it: say so, rather than send it
/// (Step Functions would answer InvalidToken, which reads as a task already answered).
fn refuse_sealed(token: &str) -> Result<(), PortError> {
    if crate::task_tokens::is_sealed(token) {
        return Err(PortError::Other(
            "a task token reached Step Functions still sealed: this function has no task token \
             key (TASK_TOKEN_KEY_SECRET; only the functions that answer tokens hold it), or the \
             token was sealed with a key no longer kept"
                .into(),
        ));
    }
    Ok(())
}

/// `message` with every occurrence of `token` replaced.
fn redact(message: &str, token: &str) -> String {
    if token.is_empty() {
        message.to_string()
    } else {
        message.replace(token, "<task token>")
    }
}

/// At most `max` characters of `text`.
fn truncate_chars(text: &str, max: usize) -> String {
    match text.char_indices().nth(max) {
        Some((end, _)) => text[..end].to_string(),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn machines(region: &str) -> SfnStateMachines {
        let config = aws_sdk_sfn::Config::builder()
            .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
            .region(aws_sdk_sfn::config::Region::new(region.to_string()))
            .build();
        SfnStateMachines::new(Client::from_conf(config), None, region, "111122223333")
    }

    #[test]
    fn arns_follow_the_region_and_account() {
        let m = machines("eu-west-1");
        let machine = m.state_machine_arn("pipewright-app-v1");
        assert_eq!(
            machine,
            "arn:aws:states:eu-west-1:111122223333:stateMachine:pipewright-app-v1"
        );
        assert_eq!(
            m.execution_arn(&machine, "e1"),
            "arn:aws:states:eu-west-1:111122223333:execution:pipewright-app-v1:e1"
        );
        assert_eq!(
            machines("cn-north-1").state_machine_arn("x"),
            "arn:aws-cn:states:cn-north-1:111122223333:stateMachine:x"
        );
        assert_eq!(
            m.execution_arn("not-an-arn:m", "e"),
            "arn:aws:states:eu-west-1:111122223333:execution:m:e"
        );
    }

    #[test]
    fn failure_fields_are_cut_to_the_api_limits() {
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        assert_eq!(
            truncate_chars(&long, MAX_ERROR_CHARS).chars().count(),
            MAX_ERROR_CHARS
        );
        assert_eq!(truncate_chars("short", MAX_ERROR_CHARS), "short");
    }

    #[test]
    fn a_task_no_longer_awaited_is_gone() {
        use aws_sdk_s3::primitives::SdkBody;
        use aws_sdk_sfn::error::ErrorMetadata;
        use aws_sdk_sfn::operation::send_task_success::SendTaskSuccessError;
        use aws_sdk_sfn::types::error::TaskTimedOut;

        let response =
            |status: u16| HttpResponse::new(status.try_into().unwrap(), SdkBody::empty());
        let timed_out = SdkError::service_error(
            SendTaskSuccessError::TaskTimedOut(
                TaskTimedOut::builder()
                    .message("Task Timed Out: 'AAAsecret'")
                    .build(),
            ),
            response(400),
        );
        let gone = timed_out
            .as_service_error()
            .is_some_and(SendTaskSuccessError::is_task_timed_out);
        let err = callback_error("SendTaskSuccess", "AAAsecret", &timed_out, gone);
        assert!(err.is_task_gone(), "{err:?}");
        assert!(!err.to_string().contains("AAAsecret"), "{err}");
        let throttled = SdkError::service_error(
            SendTaskSuccessError::generic(
                ErrorMetadata::builder()
                    .code("ThrottlingException")
                    .message("Rate exceeded")
                    .build(),
            ),
            response(400),
        );
        let err = callback_error("SendTaskSuccess", "AAAsecret", &throttled, false);
        assert_eq!(
            err,
            PortError::Unavailable("SendTaskSuccess: ThrottlingException: Rate exceeded".into())
        );
    }

    #[test]
    fn tokens_never_appear_in_errors() {
        assert_eq!(
            redact("TaskDoesNotExist: Task does not exist: AAAtok", "AAAtok"),
            "TaskDoesNotExist: Task does not exist: <task token>"
        );
    }
}
