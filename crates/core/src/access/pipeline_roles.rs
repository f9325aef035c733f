//! What an action's AWS work runs as: a session of the pipeline's role (or the action's own
//! `roleArn`), as CodePipeline does it.
//!
//! The action function assumes the role with
//! - `ExternalId` = the pipeline's ARN: a role's trust policy names the pipelines that may use
//!   it (`sts:ExternalId`), so one pipeline's author cannot borrow another pipeline's role by
//!   writing its ARN in a declaration (the confused deputy);
//! - a session name naming pipeline, execution and action (CloudTrail shows who did what);
//! - a session policy ([`session_policy`]) that keeps the session inside the pipeline's own
//!   artifact prefix and away from the stack itself, whatever the role grants: the stack's
//!   tables, its secrets, its state machines, every task token, its functions.
//!
//! A session policy can only narrow what the role allows: IAM grants the intersection.

use serde_json::json;

/// The stack resources no pipeline role session may touch, and the artifact bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackBoundary {
    /// The region of the stack.
    pub region: String,
    /// The account of the stack.
    pub account: String,
    /// The artifact bucket (a session reaches only `<bucket>/<pipeline>/*` of it).
    pub artifact_bucket: String,
    /// The stack's name. CloudFormation names the stack's tables, functions and roles
    /// `<stack>-<LogicalId>-<suffix>`: every name starting `<stack>-` is denied (a pipeline's
    /// own tables, functions or roles must not start with it).
    pub stack_name: String,
    /// Secrets Manager name prefixes of the stack's own secrets (`pipewright/<stack>/`: access
    /// keys, the approval link key, the stack's webhook secret; the webhook secrets' prefix).
    pub secret_prefixes: Vec<String>,
    /// The Secrets Manager name prefix of the pipelines' own secrets
    /// (`pipewright-pipelines/<stack>/`, see `PIPELINE_SECRET_PREFIX`): a session reads its
    /// own pipeline's secret, `<prefix><pipeline>`, and no other under the prefix.
    pub pipeline_secret_prefix: Option<String>,
    /// The stack's state machine name prefix (`pipewright-`).
    pub state_machine_prefix: String,
    /// Also grant `s3:HeadObject` on the pipeline's artifacts: the local emulator authorizes a
    /// HEAD request as an action of its own, where AWS authorizes it as `s3:GetObject`.
    pub head_object_action: bool,
}

/// IAM's limit on a session policy, in characters.
pub const MAX_SESSION_POLICY: usize = 2048;

/// IAM's limits on a role session name: 2 to 64 characters of `[\w+=,.@-]`.
const MAX_SESSION_NAME: usize = 64;

/// The session name for action `action` of execution `execution_id` of `pipeline`:
/// `<pipeline>.<first 8 of the execution id>.<action>`, each part cut so the whole fits IAM's
/// 64 characters, any character IAM refuses replaced by `-`.
pub fn session_name(pipeline: &str, execution_id: &str, action: &str) -> String {
    let clean = |s: &str, max: usize| -> String {
        s.chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || "_+=,.@-".contains(c) {
                    c
                } else {
                    '-'
                }
            })
            .take(max)
            .collect()
    };
    let execution = clean(execution_id, 8);
    let room = MAX_SESSION_NAME - execution.len() - 2;
    let action = clean(action, room / 2);
    let pipeline = clean(pipeline, room - action.len());
    let name = format!("{pipeline}.{execution}.{action}");
    if name.len() < 2 {
        format!("pipewright{name}")
    } else {
        name
    }
}

/// The session policy of `pipeline`'s sessions: everything the role allows except the
/// artifact bucket, of which only the pipeline's own prefix, and nothing of the stack: its
/// tables, functions, roles, CloudFormation stack, secrets, state machines, any task token, and
/// any function tagged `pipewright:function` (every Pipewright stack's).
///
/// Refused, naming the size, when it would pass IAM's [`MAX_SESSION_POLICY`] characters (a very
/// long stack or pipeline name).
pub fn session_policy(boundary: &StackBoundary, pipeline: &str) -> Result<String, String> {
    let p = crate::events::partition(&boundary.region);
    let (region, account) = (&boundary.region, &boundary.account);
    let (bucket, stack_name) = (&boundary.artifact_bucket, &boundary.stack_name);
    let machines = &boundary.state_machine_prefix;
    let mut stack: Vec<String> = vec![
        format!("arn:{p}:dynamodb:{region}:{account}:table/{stack_name}-*"),
        format!("arn:{p}:lambda:{region}:{account}:function:{stack_name}-*"),
        format!("arn:{p}:iam::{account}:role/{stack_name}-*"),
        format!("arn:{p}:cloudformation:{region}:{account}:stack/{stack_name}/*"),
        format!("arn:{p}:states:{region}:{account}:stateMachine:{machines}*"),
        format!("arn:{p}:states:{region}:{account}:execution:{machines}*"),
    ];
    for prefix in &boundary.secret_prefixes {
        stack.push(format!(
            "arn:{p}:secretsmanager:{region}:{account}:secret:{prefix}*"
        ));
    }
    // `s3:GetObject*` reads versions too; a multipart upload is authorized as s3:PutObject.
    let mut own = vec!["s3:GetObject*", "s3:PutObject", "s3:AbortMultipartUpload"];
    if boundary.head_object_action {
        own.push("s3:HeadObject");
    }
    let mut statements = vec![json!({
        "Effect": "Allow",
        "Action": own,
        "Resource": format!("arn:{p}:s3:::{bucket}/{pipeline}/*")
    })];
    let mut not_resource = vec![
        format!("arn:{p}:s3:::{bucket}"),
        format!("arn:{p}:s3:::{bucket}/*"),
    ];
    if let Some(prefix) = &boundary.pipeline_secret_prefix {
        // Secrets Manager ends every secret ARN with `-` and six random characters.
        statements.push(json!({
            "Effect": "Allow",
            "Action": "secretsmanager:GetSecretValue",
            "Resource": format!(
                "arn:{p}:secretsmanager:{region}:{account}:secret:{prefix}{pipeline}-??????"
            )
        }));
        // No other pipeline's, of any stack (every prefix starts with the same folder).
        let root = prefix.split_inclusive('/').next().unwrap_or(prefix);
        not_resource.push(format!("arn:{p}:secretsmanager:*:*:secret:{root}*"));
    }
    statements.push(json!({
        "Effect": "Allow",
        "Action": "*",
        "NotResource": not_resource
    }));
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": statements.into_iter().chain([

            json!({
                "Effect": "Deny",
                "Action": "*",
                "Resource": stack
            }),
            json!({
                "Effect": "Deny",
                "Action": "states:SendTask*",
                "Resource": "*"
            }),
            json!({
                "Effect": "Deny",
                "Action": "lambda:*",
                "Resource": "*",
                "Condition": {"Null": {"aws:ResourceTag/pipewright:function": "false"}}
            })
        ]).collect::<Vec<_>>()
    })
    .to_string();
    if policy.len() > MAX_SESSION_POLICY {
        return Err(format!(
            "the session policy that keeps pipeline {pipeline} off the stack takes {} characters; \
             IAM allows {MAX_SESSION_POLICY}: use a shorter pipeline name (or stack name)",
            policy.len()
        ));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn boundary() -> StackBoundary {
        StackBoundary {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            artifact_bucket: "arts".into(),
            stack_name: "stack".into(),
            secret_prefixes: vec!["pipewright/stack/".into(), "pipewright/webhooks/".into()],
            pipeline_secret_prefix: Some("pipewright-pipelines/stack/".into()),
            state_machine_prefix: "pipewright-".into(),
            head_object_action: false,
        }
    }

    #[test]
    fn session_names_fit_iam() {
        assert_eq!(
            session_name("web", "0f3c2a9e-1111-2222-3333-444455556666", "Build"),
            "web.0f3c2a9e.Build"
        );
        let long = session_name(&"p".repeat(100), "abcdefgh-x", &"a".repeat(100));
        assert_eq!(long.len(), 64, "{long}");
        assert!(long.contains(".abcdefgh."), "{long}");
        let odd = session_name("my pipe", "e", "act/1");
        assert_eq!(odd, "my-pipe.e.act-1");
        let valid = |s: &str| {
            (2..=64).contains(&s.len())
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c))
        };
        for (p, e, a) in [("", "", ""), ("x", "", ""), ("ü", "é", "ß")] {
            let name = session_name(p, e, a);
            assert!(valid(&name), "{name:?}");
        }
    }

    #[test]
    fn the_session_policy_keeps_to_the_pipelines_prefix_and_off_the_stack() {
        let policy: Value =
            serde_json::from_str(&session_policy(&boundary(), "web").unwrap()).unwrap();
        let statements = policy["Statement"].as_array().unwrap();
        // Statements have no Sid (IAM counts every character): found by what they do.
        let sid = |what: &str| {
            let found = statements.iter().find(|s| match what {
                "OwnArtifacts" => s["Resource"]
                    .as_str()
                    .is_some_and(|r| r.starts_with("arn:aws:s3")),
                "OwnSecret" => s["Action"] == "secretsmanager:GetSecretValue",
                "NotOtherPipelines" => s.get("NotResource").is_some(),
                "NothingOfTheStack" => s["Effect"] == "Deny" && s["Action"] == "*",
                "NoPipewrightFunctions" => s["Action"] == "lambda:*",
                _ => false,
            });
            found.unwrap_or_else(|| panic!("no {what} in {policy:#}"))
        };
        assert_eq!(
            sid("OwnArtifacts")["Resource"],
            "arn:aws:s3:::arts/web/*",
            "{policy:#}"
        );
        // Its own secret, and no other pipeline's: `web-??????` is not `web-api-??????`.
        assert_eq!(
            sid("OwnSecret")["Resource"],
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pipewright-pipelines/stack/web-??????"
        );
        assert_eq!(
            sid("NotOtherPipelines")["NotResource"],
            json!([
                "arn:aws:s3:::arts",
                "arn:aws:s3:::arts/*",
                "arn:aws:secretsmanager:*:*:secret:pipewright-pipelines/*"
            ])
        );
        let denied = sid("NothingOfTheStack")["Resource"].as_array().unwrap();
        for arn in [
            "arn:aws:dynamodb:eu-west-1:123456789012:table/stack-*",
            "arn:aws:lambda:eu-west-1:123456789012:function:stack-*",
            "arn:aws:iam::123456789012:role/stack-*",
            "arn:aws:cloudformation:eu-west-1:123456789012:stack/stack/*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pipewright/stack/*",
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pipewright/webhooks/*",
            "arn:aws:states:eu-west-1:123456789012:stateMachine:pipewright-*",
        ] {
            assert!(denied.contains(&json!(arn)), "{arn} in {policy:#}");
        }
        assert_eq!(
            sid("NoPipewrightFunctions")["Condition"]["Null"]
                ["aws:ResourceTag/pipewright:function"],
            "false"
        );
    }

    #[test]
    fn the_session_policy_fits_iams_limit_or_says_why() {
        // CloudFormation allows 128-character stack names; a long but real one fits with a
        // long pipeline name.
        let long = "pipewright-production-europe-team-payments-and-invoicing";
        let realistic = StackBoundary {
            region: "ap-southeast-2".into(),
            account: "123456789012".into(),
            artifact_bucket: format!("{long}-artifactbucket-1a2b3c4d5e6f"),
            stack_name: long.into(),
            secret_prefixes: vec![format!("pipewright/{long}/"), "pipewright/webhooks/".into()],
            pipeline_secret_prefix: Some(format!("pipewright-pipelines/{long}/")),
            state_machine_prefix: "pipewright-".into(),
            head_object_action: true,
        };
        let text = session_policy(&realistic, &"p".repeat(100)).unwrap();
        assert!(text.len() <= MAX_SESSION_POLICY, "{}", text.len());
        let too_long = StackBoundary {
            stack_name: "s".repeat(128),
            secret_prefixes: vec![format!("pipewright/{}/", "s".repeat(128)), "w".repeat(256)],
            ..realistic
        };
        let err = session_policy(&too_long, &"p".repeat(100)).unwrap_err();
        assert!(err.contains("IAM allows 2048"), "{err}");
    }
}
