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

use serde_json::{json, Value};

/// The stack resources no pipeline role session may touch, and the artifact bucket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StackBoundary {
    /// The region of the stack.
    pub region: String,
    /// The account of the stack.
    pub account: String,
    /// The artifact bucket (a session reaches only `<bucket>/<pipeline>/*` of it).
    pub artifact_bucket: String,
    /// The stack's DynamoDB table names.
    pub tables: Vec<String>,
    /// Secrets Manager name prefixes of the stack's own secrets (access keys, approval link
    /// keys, webhook secrets).
    pub secret_prefixes: Vec<String>,
    /// ARNs of the stack's own secrets whose names it does not choose (the approval link key,
    /// the webhook secret).
    pub secret_arns: Vec<String>,
    /// The stack's state machine name prefix (`pipewright-`).
    pub state_machine_prefix: String,
    /// The stack's name: its functions are `<stack>-<LogicalId>Function-<suffix>`, as
    /// CloudFormation names them (denied by name as well as by their `pipewright:function`
    /// tag, for IAM implementations that do not evaluate resource tags).
    pub stack_name: Option<String>,
    /// Also grant `s3:HeadObject` on the pipeline's artifacts: the local emulator authorizes a
    /// HEAD request as an action of its own, where AWS authorizes it as `s3:GetObject`.
    pub head_object_action: bool,
}

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
/// artifact bucket, of which only the pipeline's own prefix, and nothing of the stack.
pub fn session_policy(boundary: &StackBoundary, pipeline: &str) -> Value {
    let p = crate::events::partition(&boundary.region);
    let (region, account) = (&boundary.region, &boundary.account);
    let bucket = &boundary.artifact_bucket;
    let mut stack: Vec<String> = Vec::new();
    // `<name>*`: the table, its indexes and streams (and, harmlessly, tables whose names
    // extend it). IAM allows a session policy 2,048 characters.
    for table in &boundary.tables {
        stack.push(format!(
            "arn:{p}:dynamodb:{region}:{account}:table/{table}*"
        ));
    }
    for prefix in &boundary.secret_prefixes {
        stack.push(format!(
            "arn:{p}:secretsmanager:{region}:{account}:secret:{prefix}*"
        ));
    }
    stack.extend(boundary.secret_arns.iter().cloned());
    let machines = &boundary.state_machine_prefix;
    stack.push(format!(
        "arn:{p}:states:{region}:{account}:stateMachine:{machines}*"
    ));
    stack.push(format!(
        "arn:{p}:states:{region}:{account}:execution:{machines}*"
    ));
    if let Some(name) = &boundary.stack_name {
        stack.push(format!(
            "arn:{p}:lambda:{region}:{account}:function:{name}-*Function-*"
        ));
    }
    // `s3:GetObject*` reads versions too; a multipart upload is authorized as s3:PutObject.
    let mut own = vec!["s3:GetObject*", "s3:PutObject", "s3:AbortMultipartUpload"];
    if boundary.head_object_action {
        own.push("s3:HeadObject");
    }
    json!({
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "OwnArtifacts",
                "Effect": "Allow",
                "Action": own,
                "Resource": format!("arn:{p}:s3:::{bucket}/{pipeline}/*")
            },
            {
                "Sid": "NotTheArtifactBucket",
                "Effect": "Allow",
                "Action": "*",
                "NotResource": [
                    format!("arn:{p}:s3:::{bucket}"),
                    format!("arn:{p}:s3:::{bucket}/*")
                ]
            },
            {
                "Sid": "NothingOfTheStack",
                "Effect": "Deny",
                "Action": "*",
                "Resource": stack
            },
            {
                "Sid": "NoTaskTokens",
                "Effect": "Deny",
                "Action": [
                    "states:SendTaskSuccess",
                    "states:SendTaskFailure",
                    "states:SendTaskHeartbeat"
                ],
                "Resource": "*"
            },
            {
                "Sid": "NoStackFunctions",
                "Effect": "Deny",
                "Action": ["lambda:InvokeFunction", "lambda:InvokeFunctionUrl"],
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:ResourceTag/pipewright:function": "true"}}
            }
        ]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn boundary() -> StackBoundary {
        StackBoundary {
            region: "eu-west-1".into(),
            account: "123456789012".into(),
            artifact_bucket: "arts".into(),
            tables: vec!["pipes".into(), "execs".into()],
            secret_prefixes: vec!["pipewright/stack/".into()],
            secret_arns: vec![
                "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf".into(),
            ],
            state_machine_prefix: "pipewright-".into(),
            stack_name: Some("stack".into()),
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
        let policy = session_policy(&boundary(), "web");
        let statements = policy["Statement"].as_array().unwrap();
        assert_eq!(
            statements[0]["Resource"], "arn:aws:s3:::arts/web/*",
            "{policy:#}"
        );
        assert_eq!(statements[1]["NotResource"][1], "arn:aws:s3:::arts/*");
        let denied = statements[2]["Resource"].as_array().unwrap();
        assert!(denied.contains(&json!(
            "arn:aws:dynamodb:eu-west-1:123456789012:table/pipes*"
        )));
        assert!(denied.contains(&json!(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:pipewright/stack/*"
        )));
        assert!(denied.contains(&json!(
            "arn:aws:states:eu-west-1:123456789012:stateMachine:pipewright-*"
        )));
        assert!(denied.contains(&json!(
            "arn:aws:secretsmanager:eu-west-1:123456789012:secret:k-AbCdEf"
        )));
        assert!(denied.contains(&json!(
            "arn:aws:lambda:eu-west-1:123456789012:function:stack-*Function-*"
        )));
        // IAM's limit on a session policy: 2,048 characters. A stack with a long name
        // (CloudFormation names its tables and secrets after it) still fits.
        let long = "pipewright-production-europe-team-payments";
        let realistic = StackBoundary {
            region: "ap-southeast-2".into(),
            account: "123456789012".into(),
            artifact_bucket: format!("{long}-artifactbucket-1a2b3c4d5e6f7"),
            tables: ["PipelinesTable", "ExecutionsTable", "EventsTable"]
                .map(|t| format!("{long}-{t}-1A2B3C4D5E6F7"))
                .to_vec(),
            secret_prefixes: vec![format!("pipewright/{long}/"), "pipewright/webhooks/".into()],
            secret_arns: ["ApprovalLinkKey", "WebhookSecret"]
                .map(|s| {
                    format!(
                        "arn:aws:secretsmanager:ap-southeast-2:123456789012:secret:{s}-a1B2c3D4e5F6-AbCdEf"
                    )
                })
                .to_vec(),
            state_machine_prefix: "pipewright-".into(),
            stack_name: Some(long.into()),
            head_object_action: true,
        };
        let text = session_policy(&realistic, &"p".repeat(100)).to_string();
        assert!(text.len() < 2048, "{} characters: {text}", text.len());
    }
}
