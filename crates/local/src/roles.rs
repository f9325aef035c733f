//! Pipeline roles on the local stack, made the way docs/security.md tells a user to make them on
//! AWS: a role whose trust policy lets the stack's action function role assume it (with
//! `sts:ExternalId` naming the pipelines that may), with the stack's managed policy
//! `PipelineRolePolicy` attached and an inline policy for what the pipeline's own actions
//! touch.
//!
//! `pipewright local up` makes [`SAMPLE_ROLE`], which the sample pipeline runs with.

use std::collections::BTreeMap;

use aws_sdk_iam::error::ProvideErrorMetadata;
use pipewright_aws::config::{self, Target};
use serde_json::{json, Value};

use crate::LocalError;

/// The sample pipeline's role (`infra/pipelines/sample.json`, `scripts/run_sample.py`).
pub const SAMPLE_ROLE: &str = "pipewright-sample";

/// The IAM path of pipeline roles: the stack's `PipelineRolePath` default, the only roles its
/// action function may assume.
pub const PIPELINE_ROLE_PATH: &str = "/pipewright/";

/// What a pipeline role is: who may assume it for which pipelines, and what it may do.
#[derive(Debug, Clone)]
pub struct PipelineRole<'a> {
    /// The role's name.
    pub name: &'a str,
    /// Its IAM path ([`PIPELINE_ROLE_PATH`] for a role the stack may assume).
    pub path: &'a str,
    /// The pipeline ARNs that may use it (`sts:ExternalId`, wildcards allowed).
    pub pipelines: &'a str,
    /// The inline policy's statements: what the pipeline's actions touch besides artifacts.
    pub statements: Value,
}

/// Make `role` (or bring it up to date) for the stack with `outputs`: trusted by the stack's
/// action function role (added to the principals already trusted, so stacks beside each other
/// can share it), the stack's `PipelineRolePolicy` attached, `statements` inline. Returns the
/// role's ARN.
pub async fn ensure_pipeline_role(
    endpoint: &str,
    outputs: &BTreeMap<String, String>,
    role: &PipelineRole<'_>,
) -> Result<String, LocalError> {
    let output = |name: &str| {
        outputs
            .get(name)
            .cloned()
            .ok_or_else(|| LocalError::Aws(format!("the stack has no output {name}")))
    };
    let principal = output("ActionFunctionRoleArn")?;
    let managed = output("PipelineRolePolicyArn")?;
    let function_arn = output("ActionFunctionArn")?;
    let sdk = config::load(&Target::local(endpoint)).await;
    let iam = aws_sdk_iam::Client::new(&sdk);
    let failed = |what: &str, e: &dyn std::error::Error| {
        LocalError::Aws(pipewright_aws::error_chain(
            &format!("{what} {}", role.name),
            e,
        ))
    };

    let existing = iam.get_role().role_name(role.name).send().await;
    // The emulator matches a trust policy's principal to the caller's ARN exactly, and the
    // action function calls as a session of its role named after the function; AWS matches a
    // role's sessions to the role's ARN. Both are trusted, so the policy reads the same to both.
    let mut principals = vec![
        session_of(&principal, &function_arn).unwrap_or_else(|| principal.clone()),
        principal,
    ];
    let arn = match existing {
        Ok(found) => {
            let found = found
                .role()
                .cloned()
                .ok_or_else(|| LocalError::Aws(format!("iam:GetRole {}: no role", role.name)))?;
            if let Some(doc) = found.assume_role_policy_document() {
                principals.extend(trusted_principals(doc));
            }
            found.arn().to_string()
        }
        Err(e) if e.code() == Some("NoSuchEntity") => {
            let created = iam
                .create_role()
                .role_name(role.name)
                .path(role.path)
                .assume_role_policy_document(trust_policy(&principals, role.pipelines).to_string())
                .description("Pipewright pipeline role (local stack)")
                .send()
                .await
                .map_err(|e| failed("iam:CreateRole", &e))?;
            created
                .role()
                .map(|r| r.arn().to_string())
                .unwrap_or_default()
        }
        Err(e) => return Err(failed("iam:GetRole", &e)),
    };
    principals.sort();
    principals.dedup();
    iam.update_assume_role_policy()
        .role_name(role.name)
        .policy_document(trust_policy(&principals, role.pipelines).to_string())
        .send()
        .await
        .map_err(|e| failed("iam:UpdateAssumeRolePolicy", &e))?;
    iam.attach_role_policy()
        .role_name(role.name)
        .policy_arn(managed)
        .send()
        .await
        .map_err(|e| failed("iam:AttachRolePolicy", &e))?;
    iam.put_role_policy()
        .role_name(role.name)
        .policy_name("pipeline-actions")
        .policy_document(inline_policy(&role.statements).to_string())
        .send()
        .await
        .map_err(|e| failed("iam:PutRolePolicy", &e))?;
    Ok(arn)
}

/// The ARN of the session the emulator gives the function `function_arn` running as
/// `role_arn`: `arn:aws:sts::<account>:assumed-role/<role name>/<function name>`.
fn session_of(role_arn: &str, function_arn: &str) -> Option<String> {
    let (head, role_path) = role_arn.split_once(":role/")?;
    let account = head.rsplit(':').next()?;
    let partition = head.split(':').nth(1)?;
    let role_name = role_path.rsplit('/').next()?;
    let function = function_arn.split(":function:").nth(1)?.split(':').next()?;
    Some(format!(
        "arn:{partition}:sts::{account}:assumed-role/{role_name}/{function}"
    ))
}

/// The inline policy of `statements`, with `s3:HeadObject` beside `s3:GetObject` for the
/// emulator (see [`crate::template::head_with_get`]).
fn inline_policy(statements: &Value) -> Value {
    let mut policy = json!({"Version": "2012-10-17", "Statement": statements});
    crate::template::head_with_get(&mut policy);
    policy
}

/// The trust policy of a pipeline role: `principals` may assume it for `pipelines`.
pub fn trust_policy(principals: &[String], pipelines: &str) -> Value {
    json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Effect": "Allow",
            "Principal": {"AWS": principals},
            "Action": "sts:AssumeRole",
            "Condition": {"StringLike": {"sts:ExternalId": pipelines}}
        }]
    })
}

/// The AWS principals a trust policy (JSON, possibly URL-encoded as IAM returns it) allows.
fn trusted_principals(doc: &str) -> Vec<String> {
    let decoded = percent_encoding::percent_decode_str(doc).decode_utf8_lossy();
    let Ok(value) = serde_json::from_str::<Value>(&decoded) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for statement in value["Statement"].as_array().into_iter().flatten() {
        match &statement["Principal"]["AWS"] {
            Value::String(p) => out.push(p.clone()),
            Value::Array(ps) => out.extend(ps.iter().filter_map(|p| p.as_str().map(String::from))),
            _ => {}
        }
    }
    out
}

/// The sample pipeline's role: its source and site buckets.
pub fn sample_role() -> PipelineRole<'static> {
    PipelineRole {
        name: SAMPLE_ROLE,
        path: PIPELINE_ROLE_PATH,
        pipelines: "arn:aws:codepipeline:*:*:pipewright-sample*",
        statements: json!([{
            "Sid": "SampleBuckets",
            "Effect": "Allow",
            "Action": ["s3:GetObject", "s3:GetObjectVersion", "s3:PutObject"],
            "Resource": "arn:aws:s3:::pipewright-sample-*/*"
        }]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_emulators_session_of_a_function() {
        assert_eq!(
            session_of(
                "arn:aws:iam::123456789012:role/stack-ActionFunctionRole-X",
                "arn:aws:lambda:us-east-1:123456789012:function:stack-ActionFunction-Y"
            )
            .unwrap(),
            "arn:aws:sts::123456789012:assumed-role/stack-ActionFunctionRole-X/stack-ActionFunction-Y"
        );
    }

    #[test]
    fn trust_policies_name_the_principals_and_pipelines() {
        let doc = trust_policy(
            &["arn:aws:iam::1:role/a".into()],
            "arn:aws:codepipeline:*:*:p",
        );
        assert_eq!(
            doc["Statement"][0]["Principal"]["AWS"][0],
            "arn:aws:iam::1:role/a"
        );
        assert_eq!(
            doc["Statement"][0]["Condition"]["StringLike"]["sts:ExternalId"],
            "arn:aws:codepipeline:*:*:p"
        );
        let encoded = "%7B%22Statement%22%3A%5B%7B%22Principal%22%3A%7B%22AWS%22%3A%22arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fa%22%7D%7D%5D%7D";
        assert_eq!(trusted_principals(encoded), vec!["arn:aws:iam::1:role/a"]);
        assert_eq!(
            trusted_principals(&doc.to_string()),
            vec!["arn:aws:iam::1:role/a"]
        );
    }
}
