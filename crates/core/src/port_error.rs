//! [`PortError`]: how a call through one of the engine's ports (EventBridge, Step Functions task
//! tokens and state machines, the AWS reads of stage-condition rules) failed, classified by what
//! the engine decides on. The adapters in `pipewright-aws` classify the SDK's typed errors; the
//! in-memory ports (the `memory` modules) make them directly.

/// Why a port call failed. Every variant carries the human message, which is all that
/// [`Display`](std::fmt::Display) shows (it ends up in `statusSummary` and error messages as it
/// always has).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// Step Functions no longer awaits the task token (`TaskTimedOut`, `TaskDoesNotExist`,
    /// `InvalidToken`: answered before, timed out, its run ended): nothing is left to answer.
    #[error("{0}")]
    TaskGone(String),
    /// The state machine or run does not exist.
    #[error("{0}")]
    NotFound(String),
    /// The service was unavailable (throttling, a 5xx, a network failure, no answer in time):
    /// the same call may succeed later.
    #[error("{0}")]
    Unavailable(String),
    /// Anything else.
    #[error("{0}")]
    Other(String),
}

impl PortError {
    /// The human message.
    pub fn message(&self) -> &str {
        match self {
            Self::TaskGone(m) | Self::NotFound(m) | Self::Unavailable(m) | Self::Other(m) => m,
        }
    }

    /// Whether Step Functions no longer awaits the task ([`PortError::TaskGone`]).
    pub fn is_task_gone(&self) -> bool {
        matches!(self, Self::TaskGone(_))
    }

    /// Whether the same call may succeed later ([`PortError::Unavailable`]).
    pub fn is_retryable(&self) -> bool {
        matches!(self, Self::Unavailable(_))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_is_the_message() {
        for e in [
            PortError::TaskGone("TaskTimedOut: t".into()),
            PortError::NotFound("n".into()),
            PortError::Unavailable("ThrottlingException: slow down".into()),
            PortError::Other("o".into()),
        ] {
            assert_eq!(e.to_string(), e.message());
        }
        assert!(PortError::TaskGone(String::new()).is_task_gone());
        assert!(!PortError::Unavailable(String::new()).is_task_gone());
        assert!(PortError::Unavailable(String::new()).is_retryable());
    }
}
