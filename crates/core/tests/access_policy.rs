//! The one authorization check of both doors: per operation (CodePipeline IAM action names with
//! wildcards, without regard to case) and per pipeline (name globs; an operation on every
//! pipeline needs `*`), refused with IAM's words naming the action and the pipeline's ARN.

use pipewright_core::access::policy::{authorize, check_grant, pipeline_of, Grant};
use pipewright_core::control_plane::KNOWN_OPERATIONS;
use proptest::prelude::*;
use serde_json::{json, Value};

fn arn(name: &str) -> String {
    format!("arn:aws:codepipeline:us-east-1:123456789012:{name}")
}

fn grant(actions: &[&str], pipelines: &[&str]) -> Grant {
    Grant {
        actions: actions.iter().map(|s| s.to_string()).collect(),
        pipelines: pipelines.iter().map(|s| s.to_string()).collect(),
    }
}

const CALLER: &str = "arn:aws:codepipeline:us-east-1:123456789012:key/PWK1";

#[test]
fn operations_name_their_pipeline_from_the_member_codepipeline_uses() {
    let cases = [
        (
            "CreatePipeline",
            json!({"pipeline": {"name": "web"}}),
            Some("web"),
        ),
        (
            "UpdatePipeline",
            json!({"pipeline": {"name": "web"}}),
            Some("web"),
        ),
        ("GetPipeline", json!({"name": "web"}), Some("web")),
        (
            "StartPipelineExecution",
            json!({"name": "web"}),
            Some("web"),
        ),
        (
            "PutApprovalResult",
            json!({"pipelineName": "web"}),
            Some("web"),
        ),
        (
            "RetryStageExecution",
            json!({"pipelineName": "web"}),
            Some("web"),
        ),
        (
            "TagResource",
            json!({"resourceArn": arn("web")}),
            Some("web"),
        ),
        ("ListPipelines", json!({}), None),
        ("DeleteWebhook", json!({"name": "my-hook"}), None),
        ("PutJobSuccessResult", json!({"jobId": "j"}), None),
    ];
    for (operation, body, expected) in cases {
        assert_eq!(
            pipeline_of(operation, &body).as_deref(),
            expected,
            "{operation}"
        );
    }
}

#[test]
fn a_grant_allows_its_actions_on_its_pipelines_only() {
    let reader = grant(&["codepipeline:Get*", "codepipeline:List*"], &["web-*"]);
    let allow = |g: &Grant, op: &str, body: Value| authorize(g, CALLER, op, &body, arn);
    assert_eq!(
        allow(&reader, "GetPipeline", json!({"name": "web-app"})),
        Ok(())
    );
    assert_eq!(
        allow(&reader, "GetPipelineState", json!({"name": "web-app"})),
        Ok(())
    );
    // Not its action.
    let denied = allow(&reader, "DeletePipeline", json!({"name": "web-app"})).unwrap_err();
    assert_eq!(
        denied,
        format!(
            "User: {CALLER} is not authorized to perform: codepipeline:DeletePipeline on \
             resource: {}",
            arn("web-app")
        )
    );
    // Not its pipeline.
    let denied = allow(&reader, "GetPipeline", json!({"name": "api"})).unwrap_err();
    assert!(denied.ends_with(&arn("api")), "{denied}");
    // Every pipeline needs `*`.
    let denied = allow(&reader, "ListPipelines", json!({})).unwrap_err();
    assert!(denied.ends_with("on resource: *"), "{denied}");
    let lister = grant(&["codepipeline:list*"], &["*"]);
    assert_eq!(allow(&lister, "ListPipelines", json!({})), Ok(()));
    // An approver of one pipeline.
    let approver = grant(&["codepipeline:PutApprovalResult"], &["release"]);
    assert_eq!(
        allow(
            &approver,
            "PutApprovalResult",
            json!({"pipelineName": "release"})
        ),
        Ok(())
    );
    assert!(allow(
        &approver,
        "PutApprovalResult",
        json!({"pipelineName": "other"})
    )
    .is_err());
    assert!(allow(&approver, "GetPipeline", json!({"name": "release"})).is_err());
    // Admin.
    for op in KNOWN_OPERATIONS {
        assert_eq!(
            allow(&Grant::admin(), op, json!({"name": "x"})),
            Ok(()),
            "{op}"
        );
    }
}

#[test]
fn grants_are_checked_naming_the_field() {
    assert_eq!(check_grant(&Grant::admin()), Ok(()));
    assert_eq!(
        check_grant(&grant(
            &["codepipeline:Get*", "codepipeline:PutApprovalResult"],
            &["web-*"]
        )),
        Ok(())
    );
    for (bad, field) in [
        (grant(&[], &["*"]), "actions"),
        (grant(&["s3:GetObject"], &["*"]), "actions"),
        (grant(&["codepipeline:Get Pipeline"], &["*"]), "actions"),
        (grant(&["codepipeline:*"], &[]), "pipelines"),
        (grant(&["codepipeline:*"], &[""]), "pipelines"),
    ] {
        let e = check_grant(&bad).unwrap_err();
        assert!(e.starts_with(field), "{e}");
    }
}

proptest! {
    /// Whatever the request body, the check answers, and a grant of nothing allows nothing.
    #[test]
    fn any_request_is_decided(op in prop::sample::select(KNOWN_OPERATIONS), name in "\\PC{0,40}", arn_text in "\\PC{0,80}") {
        for body in [json!({"name": name}), json!({"pipelineName": name}),
                     json!({"pipeline": {"name": name}}), json!({"resourceArn": arn_text}),
                     json!(null), json!([1, 2]), json!({"name": 7})] {
            let nothing = grant(&["codepipeline:None"], &["none"]);
            prop_assert!(authorize(&nothing, CALLER, op, &body, arn).is_err());
            prop_assert!(authorize(&Grant::admin(), CALLER, op, &body, arn).is_ok());
        }
    }
}

#[test]
fn creating_or_updating_a_pipeline_passes_each_of_its_roles_once() {
    use pipewright_core::access::policy::passed_roles;
    let body = serde_json::json!({"pipeline": {
        "roleArn": "arn:aws:iam::1:role/pipewright/p",
        "stages": [
            {"name": "S", "actions": [
                {"name": "a", "roleArn": "arn:aws:iam::1:role/pipewright/a"},
                {"name": "b", "roleArn": "arn:aws:iam::1:role/pipewright/p"},
                {"name": "c"},
                {"name": "d", "roleArn": "not-a-role"}
            ]},
            {"name": "T", "actions": [], "beforeEntry": {"conditions": [{"rules": [
                {"name": "r", "roleArn": "arn:aws:iam::1:role/pipewright/r"}
            ]}]}}
        ]
    }});
    assert_eq!(
        passed_roles("CreatePipeline", &body),
        [
            "arn:aws:iam::1:role/pipewright/p",
            "arn:aws:iam::1:role/pipewright/a",
            "arn:aws:iam::1:role/pipewright/r"
        ]
    );
    assert_eq!(passed_roles("UpdatePipeline", &body).len(), 3);
    assert!(passed_roles("GetPipeline", &body).is_empty());
    assert!(passed_roles("CreatePipeline", &serde_json::json!({})).is_empty());
}
