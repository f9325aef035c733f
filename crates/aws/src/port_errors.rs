//! SDK errors as [`PortError`]s: what a port's caller decides on is read from the SDK's typed
//! error (its kind, its HTTP status, its error code), never from the message.

use aws_sdk_sfn::config::http::HttpResponse;
use aws_sdk_sfn::error::{ProvideErrorMetadata, SdkError};
use pipewright_core::engine::PortError;

/// Error codes of throttling refusals (as the SDK's own retry classifier reads them).
const THROTTLING: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "RequestThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "TransactionInProgressException",
    "RequestLimitExceeded",
    "BandwidthLimitExceeded",
    "LimitExceededException",
    "RequestThrottled",
    "SlowDown",
    "PriorRequestNotComplete",
    "EC2ThrottledException",
];

/// Whether the same call may succeed later: no response (a timeout, a connection failure), a
/// response that could not be read, a 5xx, a 429 or a throttling refusal.
pub fn is_transient<E: ProvideErrorMetadata>(err: &SdkError<E, HttpResponse>) -> bool {
    if matches!(
        err,
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_)
    ) {
        return true;
    }
    if let SdkError::ServiceError(_) = err {
        let status = err.raw_response().map(|r| r.status());
        return status.is_some_and(|s| s.is_server_error() || s.as_u16() == 429)
            || err.code().is_some_and(|code| THROTTLING.contains(&code));
    }
    false
}

/// `message` as [`PortError::Unavailable`] when `err` [is transient](is_transient),
/// [`PortError::Other`] otherwise.
pub fn classify<E: ProvideErrorMetadata>(
    err: &SdkError<E, HttpResponse>,
    message: String,
) -> PortError {
    if is_transient(err) {
        PortError::Unavailable(message)
    } else {
        PortError::Other(message)
    }
}

/// The failed SDK call `call` as a [`PortError`]: its whole error chain as the message, classified
/// by [`classify`].
pub fn call_failed<E>(call: &str, err: &SdkError<E, HttpResponse>) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    classify(err, crate::error_chain(call, err))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_s3::primitives::SdkBody;
    use aws_sdk_sfn::error::ErrorMetadata;
    use aws_sdk_sfn::operation::describe_execution::DescribeExecutionError;

    fn refused(code: &str, status: u16) -> SdkError<DescribeExecutionError, HttpResponse> {
        SdkError::service_error(
            DescribeExecutionError::generic(ErrorMetadata::builder().code(code).build()),
            HttpResponse::new(status.try_into().unwrap(), SdkBody::empty()),
        )
    }

    #[test]
    fn throttling_server_errors_and_no_answer_are_transient() {
        assert!(is_transient(&refused("ThrottlingException", 400)));
        assert!(is_transient(&refused("ServiceUnavailable", 503)));
        assert!(is_transient(&refused("Whatever", 429)));
        assert!(is_transient(&SdkError::<
            DescribeExecutionError,
            HttpResponse,
        >::timeout_error("slow")));
        assert!(!is_transient(&refused("AccessDeniedException", 400)));
        assert_eq!(
            classify(&refused("ValidationException", 400), "m".into()),
            PortError::Other("m".into())
        );
        assert_eq!(
            classify(&refused("ThrottlingException", 400), "m".into()),
            PortError::Unavailable("m".into())
        );
    }
}
