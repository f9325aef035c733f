//! PutJobSuccessResult, PutJobFailureResult: a job worker (the function of an `Invoke/AWS/Lambda`
//! action) reports how its job ended. Members are checked as botocore's model says; the result
//! is applied by [`Engine::put_job_result`].

use std::collections::BTreeMap;

use serde::Deserialize;
use serde_json::{json, Value};

use super::{ApiError, ServiceContext};
use crate::engine::{Engine, EngineError};
use crate::execution::{FailureType, SourceRevision};
use crate::jobs::{JobError, JobResult};

/// CodePipeline's limit on an action's output variables together, in bytes.
pub const MAX_OUTPUT_VARIABLES_BYTES: usize = 122_880;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct SuccessInput {
    job_id: String,
    current_revision: Option<CurrentRevision>,
    continuation_token: Option<String>,
    execution_details: Option<ExecutionDetails>,
    output_variables: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct CurrentRevision {
    revision: String,
    change_identifier: String,
    /// Accepted as the model allows; GetPipelineState shows when the pipeline heard of it.
    #[allow(dead_code)]
    created: Option<f64>,
    revision_summary: Option<String>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct ExecutionDetails {
    summary: Option<String>,
    external_execution_id: Option<String>,
    percent_complete: Option<i64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct FailureInput {
    job_id: String,
    failure_details: FailureDetails,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct FailureDetails {
    #[serde(rename = "type")]
    failure_type: String,
    message: String,
    external_execution_id: Option<String>,
}

/// `failureDetails.type`, read as a string so that an unknown type is refused naming the member
/// (a `ValidationException`, as CodePipeline's).
fn check_failure_type(text: &str) -> Result<FailureType, ApiError> {
    text.parse()
        .map_err(|e| ApiError::validation(format!("failureDetails.type: {e}")))
}

/// `JobId`: a UUID in lower-case hex (`[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}`).
fn check_job_id(id: &str) -> Result<(), ApiError> {
    let groups: Vec<&str> = id.split('-').collect();
    let ok = groups.len() == 5
        && groups
            .iter()
            .zip([8, 4, 4, 4, 12])
            .all(|(g, n)| g.len() == n && g.chars().all(|c| matches!(c, '0'..='9' | 'a'..='f')));
    if ok {
        Ok(())
    } else {
        Err(ApiError::validation(
            "jobId: must be a job id (8-4-4-4-12 characters of 0-9 and a-f)",
        ))
    }
}

/// A string member of `min..=max` characters.
fn check_length(member: &str, value: &str, min: usize, max: usize) -> Result<(), ApiError> {
    let n = value.chars().count();
    if (min..=max).contains(&n) {
        Ok(())
    } else {
        Err(ApiError::validation(format!(
            "{member}: length must be {min}..{max}, got {n}"
        )))
    }
}

fn check_optional(member: &str, value: Option<&String>, max: usize) -> Result<(), ApiError> {
    value.map_or(Ok(()), |v| check_length(member, v, 1, max))
}

fn check_output_variables(variables: &BTreeMap<String, String>) -> Result<(), ApiError> {
    for key in variables.keys() {
        if key.is_empty()
            || !key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '@' | '-' | '_'))
        {
            return Err(ApiError::validation(format!(
                "outputVariables: key {key:?} must be letters, digits and @ - _"
            )));
        }
    }
    let size: usize = variables.iter().map(|(k, v)| k.len() + v.len()).sum();
    if size > MAX_OUTPUT_VARIABLES_BYTES {
        return Err(ApiError::new(
            "OutputVariablesSizeExceededException",
            format!(
                "outputVariables: {size} bytes, more than the {MAX_OUTPUT_VARIABLES_BYTES} an action may export"
            ),
        ));
    }
    Ok(())
}

fn job_error(e: JobError) -> ApiError {
    match e {
        JobError::NotFound(message) => ApiError::new("JobNotFoundException", message),
        JobError::InvalidState(message) => ApiError::new("InvalidJobStateException", message),
        JobError::Engine(EngineError::Invalid(message)) => ApiError::validation(message),
        JobError::Engine(other) => ApiError {
            kind: "InternalFailure",
            message: other.to_string(),
            server_fault: true,
        },
    }
}

pub(super) async fn put_success(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: SuccessInput,
) -> Result<Value, ApiError> {
    check_job_id(&input.job_id)?;
    if let Some(r) = &input.current_revision {
        check_length("currentRevision.revision", &r.revision, 1, 1500)?;
        check_length(
            "currentRevision.changeIdentifier",
            &r.change_identifier,
            1,
            100,
        )?;
        check_optional(
            "currentRevision.revisionSummary",
            r.revision_summary.as_ref(),
            2048,
        )?;
    }
    check_optional("continuationToken", input.continuation_token.as_ref(), 2048)?;
    let details = input.execution_details.unwrap_or_default();
    check_optional("executionDetails.summary", details.summary.as_ref(), 2048)?;
    check_optional(
        "executionDetails.externalExecutionId",
        details.external_execution_id.as_ref(),
        1500,
    )?;
    if let Some(p) = details.percent_complete {
        if !(0..=100).contains(&p) {
            return Err(ApiError::validation(format!(
                "executionDetails.percentComplete: must be 0..100, got {p}"
            )));
        }
    }
    let output_variables = input.output_variables.unwrap_or_default();
    check_output_variables(&output_variables)?;
    let result = JobResult::Succeeded {
        continuation_token: input.continuation_token,
        summary: details.summary,
        external_execution_id: details.external_execution_id,
        output_variables,
        // Checked to be 0..=100 above.
        percent_complete: details.percent_complete.map(|p| p as u8),
        current_revision: input.current_revision.map(|r| SourceRevision {
            action_name: String::new(),
            revision_id: Some(r.revision),
            revision_summary: r.revision_summary,
            revision_url: None,
            revision_change_id: Some(r.change_identifier),
        }),
    };
    engine
        .put_job_result(&input.job_id, result, ctx.now)
        .await
        .map_err(job_error)?;
    Ok(json!({}))
}

pub(super) async fn put_failure(
    engine: &Engine<'_>,
    ctx: &ServiceContext,
    input: FailureInput,
) -> Result<Value, ApiError> {
    check_job_id(&input.job_id)?;
    let details = input.failure_details;
    let failure_type = check_failure_type(&details.failure_type)?;
    check_length("failureDetails.message", &details.message, 1, 5000)?;
    check_optional(
        "failureDetails.externalExecutionId",
        details.external_execution_id.as_ref(),
        1500,
    )?;
    let result = JobResult::Failed {
        failure_type,
        message: details.message,
        external_execution_id: details.external_execution_id,
    };
    engine
        .put_job_result(&input.job_id, result, ctx.now)
        .await
        .map_err(job_error)?;
    Ok(json!({}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_unknown_failure_type_is_refused_naming_the_member() {
        assert_eq!(
            check_failure_type("RevisionOutOfSync"),
            Ok(FailureType::RevisionOutOfSync)
        );
        let err = check_failure_type("Oops").unwrap_err();
        assert_eq!(
            err,
            ApiError::validation(
                "failureDetails.type: \"Oops\" is not one of JobFailed, ConfigurationError, \
                 PermissionError, RevisionOutOfSync, RevisionUnavailable, SystemUnavailable"
            )
        );
    }

    #[test]
    fn job_ids_follow_the_model_pattern() {
        assert!(check_job_id("0a1b2c3d-0000-4000-8000-00000000abcd").is_ok());
        for bad in [
            "",
            "0A1B2C3D-0000-4000-8000-00000000ABCD",
            "0a1b2c3d-0000-4000-8000-00000000abc",
            "0a1b2c3d00004000800000000000abcd",
            "0a1b2c3d-0000-4000-8000-00000000abcd-1",
        ] {
            let err = check_job_id(bad).unwrap_err();
            assert_eq!(err.kind, "ValidationException");
            assert!(err.message.starts_with("jobId:"), "{}", err.message);
        }
    }

    #[test]
    fn output_variables_are_named_and_sized_as_codepipeline_allows() {
        let ok = BTreeMap::from([("greeting@v-1_x".to_string(), "hello".to_string())]);
        assert!(check_output_variables(&ok).is_ok());
        let bad = BTreeMap::from([("a.b".to_string(), "x".to_string())]);
        assert_eq!(
            check_output_variables(&bad).unwrap_err().kind,
            "ValidationException"
        );
        let big = BTreeMap::from([("k".to_string(), "x".repeat(MAX_OUTPUT_VARIABLES_BYTES))]);
        assert_eq!(
            check_output_variables(&big).unwrap_err().kind,
            "OutputVariablesSizeExceededException"
        );
    }
}
