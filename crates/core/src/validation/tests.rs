//! Unit tests for [`super::validate`]: a valid base pipeline, one mutation
//! per test, and the exact path plus a reason fragment of the problem.

use super::*;
use crate::declaration::{
    parse_pipeline, ActionCategory, ActionDeclaration, ActionTypeId, BeforeEntryConditions,
    Condition, ConditionResult, Configuration, EnvironmentVariable, ExecutionMode,
    FailureConditions, GitConfiguration, GitFilterCriteria, GitPushFilter, InputArtifact,
    OutputArtifact, PipelineTriggerDeclaration, PipelineType, PipelineVariableDeclaration,
    RetryConfiguration, RuleCategory, RuleDeclaration, RuleTypeId, StageRetryMode,
    SuccessConditions, TriggerProviderType,
};

/// Source (S3, namespace SourceVars) -> Build (CodeBuild `Compile` and
/// Commands `Docs` at runOrder 1, Commands `Check` at runOrder 2) ->
/// Approve (Manual) -> Deploy (S3 deploy of `Bin`).
const BASE: &str = r##"{
  "name": "base",
  "roleArn": "arn:aws:iam::123456789012:role/base",
  "artifactStore": {"type": "S3", "location": "base-artifacts"},
  "pipelineType": "V2",
  "variables": [{"name": "Bucket", "defaultValue": "site-bucket"}],
  "stages": [
    {"name": "Source", "actions": [{
      "name": "Fetch",
      "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"S3Bucket": "src", "S3ObjectKey": "app.zip"},
      "outputArtifacts": [{"name": "Src"}],
      "namespace": "SourceVars"
    }]},
    {"name": "Build", "actions": [
      {
        "name": "Compile",
        "actionTypeId": {"category": "Build", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
        "runOrder": 1,
        "configuration": {"ProjectName": "compile"},
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "Bin"}],
        "namespace": "BuildVars"
      },
      {
        "name": "Docs",
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "runOrder": 1,
        "commands": ["make docs REV=#{SourceVars.VersionId}"],
        "inputArtifacts": [{"name": "Src"}],
        "outputArtifacts": [{"name": "DocsOut", "files": ["docs/**/*"]}]
      },
      {
        "name": "Check",
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "runOrder": 2,
        "commands": ["echo #{BuildVars.Version} #{codepipeline.PipelineExecutionId}"],
        "inputArtifacts": [{"name": "Bin"}]
      }
    ]},
    {"name": "Approve", "actions": [{
      "name": "Gate",
      "actionTypeId": {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"},
      "configuration": {"CustomData": "Ship it?"}
    }]},
    {"name": "Deploy", "actions": [{
      "name": "Upload",
      "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
      "configuration": {"BucketName": "#{variables.Bucket}", "Extract": "true"},
      "inputArtifacts": [{"name": "Bin"}]
    }]}
  ]
}"##;

fn base() -> PipelineDeclaration {
    parse_pipeline(BASE).expect("the base pipeline parses")
}

fn action(p: &mut PipelineDeclaration, s: usize, a: usize) -> &mut ActionDeclaration {
    &mut p.stages[s].actions[a]
}

fn type_id(category: ActionCategory, provider: &str) -> ActionTypeId {
    ActionTypeId {
        category,
        owner: crate::declaration::ActionOwner::Aws,
        provider: provider.into(),
        version: "1".into(),
    }
}

fn config(pairs: &[(&str, &str)]) -> Option<Configuration> {
    Some(
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    )
}

fn inputs(names: &[&str]) -> Option<Vec<InputArtifact>> {
    Some(
        names
            .iter()
            .map(|n| InputArtifact { name: (*n).into() })
            .collect(),
    )
}

fn outputs(names: &[&str]) -> Option<Vec<OutputArtifact>> {
    Some(
        names
            .iter()
            .map(|n| OutputArtifact {
                name: (*n).into(),
                files: None,
            })
            .collect(),
    )
}

fn problems(p: &PipelineDeclaration) -> Vec<Problem> {
    match validate(p) {
        Ok(()) => Vec::new(),
        Err(problems) => problems,
    }
}

/// Asserts that `p` has exactly one problem, at `path`, whose reason contains `reason`.
#[track_caller]
fn assert_only(p: &PipelineDeclaration, path: &str, reason: &str) {
    let found = problems(p);
    assert_eq!(found.len(), 1, "expected one problem, got: {found:#?}");
    assert_eq!(found[0].path, path, "{found:#?}");
    assert!(
        found[0].reason.contains(reason),
        "reason {:?} should contain {reason:?}",
        found[0].reason
    );
}

fn rule(name: &str, provider: &str, pairs: &[(&str, &str)]) -> RuleDeclaration {
    RuleDeclaration {
        name: name.into(),
        rule_type_id: RuleTypeId {
            category: RuleCategory::Rule,
            owner: Some(crate::declaration::RuleOwner::Aws),
            provider: provider.into(),
            version: Some("1".into()),
        },
        configuration: config(pairs),
        commands: None,
        input_artifacts: None,
        role_arn: None,
        region: None,
        timeout_in_minutes: None,
    }
}

fn condition(result: ConditionResult, rules: Vec<RuleDeclaration>) -> Condition {
    Condition {
        result: Some(result),
        rules: Some(rules),
    }
}

fn alarm_rule() -> RuleDeclaration {
    rule("Alarm", "CloudWatchAlarm", &[("AlarmName", "errors")])
}

// --- the base ---------------------------------------------------------------

#[test]
fn base_pipeline_is_valid() {
    assert_eq!(validate(&base()), Ok(()));
}

#[test]
fn problem_displays_path_and_reason() {
    let problem = Problem {
        path: "stages[0].name".into(),
        reason: "bad".into(),
    };
    assert_eq!(problem.to_string(), "stages[0].name: bad");
}

// --- pipeline fields --------------------------------------------------------

#[test]
fn pipeline_name_pattern_and_length() {
    let mut p = base();
    p.name = "my pipeline".into();
    assert_only(&p, "name", "contains ' ', which is not allowed");
    p.name = "x".repeat(101);
    assert_only(&p, "name", "must be 1 to 100 characters long, found 101");
    p.name = String::new();
    assert_only(&p, "name", "must not be empty");
    p.name = "a.b@c-d_e".into();
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn role_arn_must_be_an_iam_role() {
    let mut p = base();
    p.role_arn = "arn:aws:iam::123:role/x".into();
    assert_only(&p, "roleArn", "is not an IAM role ARN");
    p.role_arn = "arn:aws:s3:::bucket".into();
    assert_only(&p, "roleArn", "is not an IAM role ARN");
    p.role_arn = "arn:aws-us-gov:iam::123456789012:role/service-role/x".into();
    assert_eq!(validate(&p), Ok(()));
    p.role_arn = "arn:aws-cn:iam::123456789012:role/x".into();
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn exactly_one_artifact_store_kind() {
    let mut p = base();
    let store = p.artifact_store.clone();
    p.artifact_store = None;
    assert_only(&p, "artifactStore", "an artifact store is required");
    p.artifact_store = store.clone();
    p.artifact_stores = Some([("us-east-1".to_owned(), store.clone().expect("store"))].into());
    assert_only(
        &p,
        "artifactStores",
        "either artifactStore or artifactStores",
    );
}

#[test]
fn artifact_store_location_is_a_bucket_name() {
    let mut p = base();
    if let Some(store) = p.artifact_store.as_mut() {
        store.location = "ab".into();
    }
    assert_only(
        &p,
        "artifactStore.location",
        "must be 3 to 63 characters long, found 2",
    );
    if let Some(store) = p.artifact_store.as_mut() {
        store.location = "my_bucket".into();
    }
    assert_only(&p, "artifactStore.location", "contains '_'");
}

#[test]
fn action_region_needs_an_artifact_store_for_it() {
    let mut p = base();
    let store = p.artifact_store.take().expect("store");
    p.artifact_stores = Some(
        [
            ("us-east-1".to_owned(), store.clone()),
            ("eu-west-1".to_owned(), store),
        ]
        .into(),
    );
    action(&mut p, 3, 0).region = Some("eu-west-1".into());
    assert_eq!(validate(&p), Ok(()));
    action(&mut p, 3, 0).region = Some("ap-south-1".into());
    assert_only(
        &p,
        "stages[3].actions[0].region",
        "artifactStores has no store for region `ap-south-1` (it has: eu-west-1, us-east-1)",
    );
}

#[test]
fn version_must_be_positive() {
    let mut p = base();
    p.version = Some(0);
    assert_only(&p, "version", "must be at least 1");
    p.version = Some(3);
    assert_eq!(validate(&p), Ok(()));
}

// --- stages and names -------------------------------------------------------

#[test]
fn needs_two_to_fifty_stages() {
    let mut p = base();
    p.stages.truncate(1);
    p.variables = None;
    assert_only(&p, "stages", "a pipeline needs 2 to 50 stages, found 1");
    let mut p = base();
    let extra = p.stages[2].clone();
    while p.stages.len() < 51 {
        let mut stage = extra.clone();
        stage.name = format!("Extra{}", p.stages.len());
        p.stages.push(stage);
    }
    assert_only(&p, "stages", "found 51");
}

#[test]
fn at_most_500_actions() {
    let mut p = base();
    let gate = p.stages[2].actions[0].clone();
    for s in 0..11 {
        let mut stage = p.stages[2].clone();
        stage.name = format!("Gates{s}");
        stage.actions = (0..50)
            .map(|a| {
                let mut g = gate.clone();
                g.name = format!("Gate{a}");
                g
            })
            .collect();
        p.stages.push(stage);
    }
    assert_only(&p, "stages", "at most 500 actions, found 556");
}

#[test]
fn stage_needs_one_to_fifty_actions() {
    let mut p = base();
    p.stages[2].actions.clear();
    assert_only(
        &p,
        "stages[2].actions",
        "a stage needs 1 to 50 actions, found 0",
    );
    let gate = base().stages[2].actions[0].clone();
    p.stages[2].actions = (0..51)
        .map(|a| {
            let mut g = gate.clone();
            g.name = format!("Gate{a}");
            g
        })
        .collect();
    assert_only(&p, "stages[2].actions", "found 51");
}

#[test]
fn stage_names_are_valid_and_unique() {
    let mut p = base();
    p.stages[3].name = "Build".into();
    assert_only(
        &p,
        "stages[3].name",
        "duplicate stage name `Build`: stages[1] has the same name",
    );
    p.stages[3].name = "De ploy".into();
    assert_only(&p, "stages[3].name", "contains ' '");
}

#[test]
fn action_names_are_valid_and_unique_within_a_stage() {
    let mut p = base();
    action(&mut p, 1, 1).name = "Compile".into();
    assert_only(
        &p,
        "stages[1].actions[1].name",
        "duplicate action name `Compile` in stage `Build`: stages[1].actions[0]",
    );
    // The same name in another stage is fine.
    let mut p = base();
    action(&mut p, 3, 0).name = "Compile".into();
    assert_eq!(validate(&p), Ok(()));
    action(&mut p, 3, 0).name = "Up/load".into();
    assert_only(&p, "stages[3].actions[0].name", "contains '/'");
}

// --- placement --------------------------------------------------------------

#[test]
fn source_actions_only_in_the_first_stage() {
    let mut p = base();
    let source = p.stages[0].actions[0].clone();
    let mut second = source.clone();
    second.name = "Fetch2".into();
    second.output_artifacts = outputs(&["Src2"]);
    second.namespace = None;
    p.stages[3].actions.push(second);
    assert_only(
        &p,
        "stages[3].actions[1].actionTypeId.category",
        "source actions are only allowed in the first stage",
    );
}

#[test]
fn first_stage_holds_only_source_actions() {
    let mut p = base();
    let mut build = p.stages[1].actions[0].clone();
    build.name = "EarlyBuild".into();
    build.input_artifacts = None;
    build.output_artifacts = None;
    build.namespace = None;
    p.stages[0].actions.push(build);
    let found = problems(&p);
    assert_eq!(
        found[0].to_string(),
        "stages[0].actions[1].actionTypeId.category: the first stage may hold only source actions, found a Build action"
    );
}

#[test]
fn approval_not_in_the_first_stage() {
    let mut p = base();
    let gate = p.stages[2].actions[0].clone();
    p.stages[0].actions.push(gate);
    assert_only(
        &p,
        "stages[0].actions[1].actionTypeId.category",
        "an approval action cannot be in the first stage",
    );
}

// --- action fields ----------------------------------------------------------

#[test]
fn run_order_is_1_to_999() {
    let mut p = base();
    action(&mut p, 3, 0).run_order = Some(0);
    assert_only(
        &p,
        "stages[3].actions[0].runOrder",
        "must be 1 to 999, found 0",
    );
    action(&mut p, 3, 0).run_order = Some(1000);
    assert_only(&p, "stages[3].actions[0].runOrder", "found 1000");
    action(&mut p, 3, 0).run_order = Some(999);
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn action_role_arn_and_region_limits() {
    let mut p = base();
    action(&mut p, 3, 0).role_arn = Some("role".into());
    action(&mut p, 3, 0).region = Some("eu".into());
    let found = problems(&p);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(found[0].path, "stages[3].actions[0].region");
    assert_eq!(found[1].path, "stages[3].actions[0].roleArn");
}

#[test]
fn configuration_key_and_value_lengths() {
    let mut p = base();
    let long_key = "K".repeat(51);
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "x"), (&long_key, "v")]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration",
        "must be 1 to 50 characters long",
    );
    let long_value = "v".repeat(1001);
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", &long_value)]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.ProjectName",
        "must be 1 to 1000 characters long, found 1001",
    );
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "")]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.ProjectName",
        "must not be empty",
    );
}

#[test]
fn codebuild_environment_variables_and_primary_source_are_checked() {
    let mut p = base();
    action(&mut p, 1, 0).configuration = config(&[
        ("ProjectName", "x"),
        (
            "EnvironmentVariables",
            r#"[{"name":"A","value":"1","type":"PLAIN"}]"#,
        ),
    ]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.EnvironmentVariables",
        "entry 0: unknown variant `PLAIN`",
    );
    action(&mut p, 1, 0).configuration = config(&[
        ("ProjectName", "x"),
        (
            "EnvironmentVariables",
            r##"[{"name":"A","value":"#{SourceVars.CommitId}"}]"##,
        ),
        ("PrimarySource", "Nope"),
    ]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.PrimarySource",
        "Nope is not one of the action's input artifacts",
    );
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "x")]);
    action(&mut p, 1, 0).output_artifacts = Some(vec![
        OutputArtifact {
            name: "Bin".into(),
            files: None,
        },
        OutputArtifact {
            name: "web-docs".into(),
            files: None,
        },
    ]);
    assert_only(
        &p,
        "stages[1].actions[0].outputArtifacts",
        "artifact web-docs: with several, CodeBuild names each after its artifact",
    );
    action(&mut p, 1, 0).output_artifacts = Some(vec![OutputArtifact {
        name: "Bin".into(),
        files: None,
    }]);
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "x"), ("BatchEnabled", "yes")]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.BatchEnabled",
        "`yes` is not a valid BatchEnabled",
    );
}

#[test]
fn batch_builds_are_refused_and_ecs_deployment_timeouts_checked() {
    let mut p = base();
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "x"), ("BatchEnabled", "true")]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.BatchEnabled",
        "batch builds are not run by Pipewright",
    );
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "x"), ("BatchEnabled", "false")]);
    assert!(problems(&p).is_empty(), "{:#?}", problems(&p));

    for (value, ok) in [
        ("15", true),
        ("60", true),
        ("0", false),
        ("61", false),
        ("ten", false),
    ] {
        let mut p = base();
        let a = action(&mut p, 3, 0);
        a.action_type_id = type_id(ActionCategory::Deploy, "ECS");
        a.configuration = config(&[
            ("ClusterName", "c"),
            ("ServiceName", "s"),
            ("DeploymentTimeout", value),
        ]);
        if ok {
            assert!(problems(&p).is_empty(), "{value}: {:#?}", problems(&p));
        } else {
            assert_only(
                &p,
                "stages[3].actions[0].configuration.DeploymentTimeout",
                "is not a number of minutes from 1 to 60",
            );
        }
    }
}

#[test]
fn output_files_and_variables_limits() {
    let mut p = base();
    if let Some(outs) = action(&mut p, 1, 1).output_artifacts.as_mut() {
        outs[0].files = Some(Vec::new());
    }
    action(&mut p, 1, 1).output_variables = Some(vec![String::new()]);
    let found = problems(&p);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert_eq!(
        found[0].path,
        "stages[1].actions[1].outputArtifacts[0].files"
    );
    assert!(found[0]
        .reason
        .contains("must hold 1 to 10 file paths, found 0"));
    assert_eq!(found[1].path, "stages[1].actions[1].outputVariables[0]");
}

#[test]
fn environment_variable_limits() {
    let mut p = base();
    action(&mut p, 1, 1).environment_variables = Some(vec![EnvironmentVariable {
        name: "BAD-NAME".into(),
        value: "x".into(),
        variable_type: None,
    }]);
    assert_only(
        &p,
        "stages[1].actions[1].environmentVariables[0].name",
        "contains '-'",
    );
}

// --- action types -----------------------------------------------------------

#[test]
fn unsupported_action_type_lists_the_supported_ones() {
    let mut p = base();
    action(&mut p, 1, 0).action_type_id = type_id(ActionCategory::Build, "Jenkins");
    let found = problems(&p);
    assert_eq!(found.len(), 1, "{found:#?}");
    assert_eq!(found[0].path, "stages[1].actions[0].actionTypeId");
    assert!(found[0].reason.starts_with(
        "unsupported action type Build/AWS/Jenkins (version 1); supported: Source/AWS/S3, "
    ));
    assert!(found[0].reason.contains("Build/AWS/CodeBuild"));
    assert!(found[0].reason.contains("Approval/AWS/Manual"));
}

#[test]
fn unsupported_version_is_refused() {
    let mut p = base();
    action(&mut p, 0, 0).action_type_id.version = "2".into();
    assert_only(
        &p,
        "stages[0].actions[0].actionTypeId",
        "unsupported action type Source/AWS/S3 (version 2)",
    );
}

#[test]
fn input_artifact_counts_per_provider() {
    let mut p = base();
    action(&mut p, 1, 0).input_artifacts = Some(Vec::new());
    assert_only(
        &p,
        "stages[1].actions[0].inputArtifacts",
        "CodeBuild takes 1 to 5 input artifacts, found 0",
    );
    let mut p = base();
    action(&mut p, 3, 0).input_artifacts = inputs(&["Bin", "Src"]);
    assert_only(
        &p,
        "stages[3].actions[0].inputArtifacts",
        "Deploy/AWS/S3 takes exactly 1 input artifacts, found 2",
    );
}

#[test]
fn output_artifact_counts_per_provider() {
    let mut p = base();
    action(&mut p, 2, 0).output_artifacts = outputs(&["Approved"]);
    assert_only(
        &p,
        "stages[2].actions[0].outputArtifacts",
        "Approval/AWS/Manual produces none output artifacts, found 1",
    );
    let mut p = base();
    action(&mut p, 0, 0).output_artifacts = Some(Vec::new());
    let found = problems(&p);
    assert_eq!(found[0].path, "stages[0].actions[0].outputArtifacts");
    assert!(found[0]
        .reason
        .contains("produces exactly 1 output artifacts, found 0"));
}

#[test]
fn required_configuration_keys() {
    let mut p = base();
    action(&mut p, 1, 0).configuration = None;
    assert_only(
        &p,
        "stages[1].actions[0].configuration",
        "Build/AWS/CodeBuild requires configuration key `ProjectName`",
    );
    let mut p = base();
    action(&mut p, 0, 0).configuration = config(&[]);
    let found = problems(&p);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].reason.contains("`S3Bucket`"));
    assert!(found[1].reason.contains("`S3ObjectKey`"));
}

#[test]
fn s3_deploy_without_extract_needs_object_key() {
    let mut p = base();
    action(&mut p, 3, 0).configuration = config(&[("BucketName", "b"), ("Extract", "false")]);
    assert_only(
        &p,
        "stages[3].actions[0].configuration",
        "requires configuration key `ObjectKey`",
    );
    action(&mut p, 3, 0).configuration = config(&[
        ("BucketName", "b"),
        ("Extract", "false"),
        ("ObjectKey", "app.zip"),
    ]);
    assert_eq!(validate(&p), Ok(()));
    action(&mut p, 3, 0).configuration = config(&[("BucketName", "b"), ("Extract", "yes")]);
    assert_only(
        &p,
        "stages[3].actions[0].configuration.Extract",
        "`yes` is not a valid Extract for Deploy/AWS/S3; use one of: true, false",
    );
}

#[test]
fn cloudformation_keys_depend_on_action_mode() {
    let mut p = base();
    let deploy = action(&mut p, 3, 0);
    deploy.action_type_id = type_id(ActionCategory::Deploy, "CloudFormation");
    deploy.configuration = config(&[("ActionMode", "CHANGE_SET_EXECUTE"), ("StackName", "app")]);
    assert_only(
        &p,
        "stages[3].actions[0].configuration",
        "requires configuration key `ChangeSetName`",
    );
    action(&mut p, 3, 0).configuration = config(&[("ActionMode", "DELETE_ONLY")]);
    let found = problems(&p);
    assert_eq!(found.len(), 2, "{found:#?}");
    assert!(found[0].reason.contains("`StackName`"));
    assert!(found[1].reason.contains("`RoleArn`"));
    action(&mut p, 3, 0).configuration = config(&[("ActionMode", "CREATE"), ("StackName", "s")]);
    assert_only(
        &p,
        "stages[3].actions[0].configuration.ActionMode",
        "`CREATE` is not a valid ActionMode",
    );
    // A variable reference is resolved at run time, so it is not checked.
    action(&mut p, 3, 0).configuration =
        config(&[("ActionMode", "#{variables.Bucket}"), ("StackName", "s")]);
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn manual_approval_takes_only_its_keys() {
    let mut p = base();
    action(&mut p, 2, 0).configuration = config(&[("CustomData", "x"), ("Foo", "y")]);
    assert_only(
        &p,
        "stages[2].actions[0].configuration.Foo",
        "does not take configuration key `Foo`; allowed: NotificationArn, CustomData, ExternalEntityLink, OneClickLinks",
    );
}

#[test]
fn commands_action_requires_commands() {
    let mut p = base();
    action(&mut p, 1, 1).commands = None;
    assert_only(
        &p,
        "stages[1].actions[1].commands",
        "Compute/AWS/Commands requires a commands list",
    );
    action(&mut p, 1, 1).commands = Some(Vec::new());
    assert_only(
        &p,
        "stages[1].actions[1].commands",
        "must hold 1 to 50 commands, found 0",
    );
    action(&mut p, 1, 1).commands = Some(vec!["ls".into(); 51]);
    assert_only(&p, "stages[1].actions[1].commands", "found 51");
    action(&mut p, 1, 1).commands = Some(vec!["ls".into(), String::new()]);
    assert_only(&p, "stages[1].actions[1].commands[1]", "must not be empty");
}

#[test]
fn other_actions_do_not_take_commands() {
    let mut p = base();
    action(&mut p, 1, 0).commands = Some(vec!["make".into()]);
    assert_only(
        &p,
        "stages[1].actions[0].commands",
        "Build/AWS/CodeBuild does not run commands",
    );
}

#[test]
fn timeouts_within_the_action_type_range() {
    let mut p = base();
    action(&mut p, 2, 0).timeout_in_minutes = Some(4);
    assert_only(
        &p,
        "stages[2].actions[0].timeoutInMinutes",
        "must be 5 to 86400 minutes for Approval/AWS/Manual, found 4",
    );
    action(&mut p, 2, 0).timeout_in_minutes = Some(86_401);
    assert_only(&p, "stages[2].actions[0].timeoutInMinutes", "found 86401");
    action(&mut p, 2, 0).timeout_in_minutes = Some(86_400);
    assert_eq!(validate(&p), Ok(()));
    action(&mut p, 3, 0).timeout_in_minutes = Some(91);
    assert_only(
        &p,
        "stages[3].actions[0].timeoutInMinutes",
        "must be 5 to 90 minutes for Deploy/AWS/S3, found 91",
    );
}

// --- artifacts --------------------------------------------------------------

#[test]
fn output_artifact_names_unique_across_the_pipeline() {
    let mut p = base();
    action(&mut p, 1, 1).output_artifacts = outputs(&["Bin"]);
    assert_only(
        &p,
        "stages[1].actions[1].outputArtifacts[0].name",
        "duplicate output artifact `Bin`: `Compile` (stages[1].actions[0]) already produces it",
    );
}

#[test]
fn duplicate_output_within_one_action() {
    let mut p = base();
    action(&mut p, 1, 0).output_artifacts = outputs(&["Bin", "Bin"]);
    assert_only(
        &p,
        "stages[1].actions[0].outputArtifacts[1].name",
        "duplicate output artifact `Bin`",
    );
}

#[test]
fn artifact_name_pattern() {
    let mut p = base();
    action(&mut p, 1, 1).output_artifacts = outputs(&["Docs.Out"]);
    assert_only(
        &p,
        "stages[1].actions[1].outputArtifacts[0].name",
        "`Docs.Out` contains '.'",
    );
    let mut p = base();
    action(&mut p, 1, 1).output_artifacts = outputs(&[&"D".repeat(101)]);
    assert_only(
        &p,
        "stages[1].actions[1].outputArtifacts[0].name",
        "found 101",
    );
}

#[test]
fn input_not_produced_by_any_action() {
    let mut p = base();
    action(&mut p, 3, 0).input_artifacts = inputs(&["Nope"]);
    assert_only(
        &p,
        "stages[3].actions[0].inputArtifacts[0].name",
        "artifact `Nope` is not produced by any action",
    );
}

#[test]
fn input_produced_in_a_later_stage() {
    let mut p = base();
    action(&mut p, 3, 0).output_artifacts = None;
    action(&mut p, 1, 0).input_artifacts = inputs(&["Late"]);
    // Give Deploy's stage a producer of `Late`: a second Commands action.
    let mut late = p.stages[1].actions[1].clone();
    late.name = "MakeLate".into();
    late.output_artifacts = outputs(&["Late"]);
    p.stages[3].actions.push(late);
    assert_only(
        &p,
        "stages[1].actions[0].inputArtifacts[0].name",
        "artifact `Late` is produced by `MakeLate` (stages[3].actions[1]), which runs after this action",
    );
}

#[test]
fn input_produced_in_the_same_action_group() {
    let mut p = base();
    action(&mut p, 1, 1).input_artifacts = inputs(&["Bin"]);
    assert_only(
        &p,
        "stages[1].actions[1].inputArtifacts[0].name",
        "artifact `Bin` is produced by `Compile` (stages[1].actions[0]), which runs in the same action group (runOrder 1)",
    );
}

#[test]
fn input_produced_at_a_higher_run_order_in_the_same_stage() {
    let mut p = base();
    action(&mut p, 1, 0).run_order = Some(3);
    let found = problems(&p);
    assert_eq!(found.len(), 2, "{found:#?}");
    // Check (runOrder 2) reads Bin from Compile (now runOrder 3), and reads its namespace.
    assert_eq!(found[0].path, "stages[1].actions[2].commands[0]");
    assert_eq!(found[1].path, "stages[1].actions[2].inputArtifacts[0].name");
    assert!(found[1].reason.contains("which runs after this action"));
}

#[test]
fn input_that_is_the_action_own_output() {
    let mut p = base();
    action(&mut p, 1, 0).input_artifacts = inputs(&["Bin"]);
    assert_only(
        &p,
        "stages[1].actions[0].inputArtifacts[0].name",
        "artifact `Bin` is produced by this same action",
    );
}

#[test]
fn input_listed_twice() {
    let mut p = base();
    action(&mut p, 1, 0).input_artifacts = inputs(&["Src", "Src"]);
    assert_only(
        &p,
        "stages[1].actions[0].inputArtifacts[1].name",
        "artifact `Src` is listed twice",
    );
}

// --- namespaces -------------------------------------------------------------

#[test]
fn namespaces_unique() {
    let mut p = base();
    action(&mut p, 1, 1).namespace = Some("SourceVars".into());
    assert_only(
        &p,
        "stages[1].actions[1].namespace",
        "duplicate namespace `SourceVars`: `Fetch` (stages[0].actions[0]) already declares it",
    );
}

#[test]
fn namespace_reserved_names() {
    for reserved in ["codepipeline", "variables"] {
        let mut p = base();
        action(&mut p, 3, 0).namespace = Some(reserved.into());
        assert_only(
            &p,
            "stages[3].actions[0].namespace",
            &format!("namespace `{reserved}` is reserved"),
        );
    }
}

#[test]
fn namespace_not_an_artifact_name() {
    let mut p = base();
    action(&mut p, 3, 0).namespace = Some("Bin".into());
    assert_only(
        &p,
        "stages[3].actions[0].namespace",
        "namespace `Bin` is also the name of an artifact",
    );
}

#[test]
fn namespace_pattern() {
    let mut p = base();
    action(&mut p, 3, 0).namespace = Some("Deploy.Vars".into());
    assert_only(&p, "stages[3].actions[0].namespace", "contains '.'");
}

// --- variable references ----------------------------------------------------

#[test]
fn reference_to_unknown_namespace() {
    let mut p = base();
    action(&mut p, 1, 0).configuration = config(&[("ProjectName", "app-#{Nowhere.Name}")]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.ProjectName",
        "variable #{Nowhere.Name} refers to namespace `Nowhere`, which no action declares",
    );
}

#[test]
fn reference_to_a_namespace_of_a_later_action() {
    let mut p = base();
    action(&mut p, 3, 0).namespace = Some("DeployVars".into());
    action(&mut p, 1, 1).commands = Some(vec!["echo #{DeployVars.Url}".into()]);
    assert_only(
        &p,
        "stages[1].actions[1].commands[0]",
        "variable #{DeployVars.Url} refers to the namespace of `Upload` (stages[3].actions[0]), which runs after this action",
    );
}

#[test]
fn reference_to_a_namespace_in_the_same_group() {
    let mut p = base();
    action(&mut p, 1, 1).commands = Some(vec!["echo #{BuildVars.Version}".into()]);
    assert_only(
        &p,
        "stages[1].actions[1].commands[0]",
        "which runs in the same action group (runOrder 1)",
    );
}

#[test]
fn reference_to_own_namespace() {
    let mut p = base();
    action(&mut p, 1, 0).configuration = config(&[
        ("ProjectName", "x"),
        ("EnvironmentVariables", "#{BuildVars.X}"),
    ]);
    assert_only(
        &p,
        "stages[1].actions[0].configuration.EnvironmentVariables",
        "refers to the namespace of this same action",
    );
}

#[test]
fn reference_to_undeclared_pipeline_variable() {
    let mut p = base();
    p.variables = None;
    assert_only(
        &p,
        "stages[3].actions[0].configuration.BucketName",
        "variable #{variables.Bucket} refers to pipeline variable `Bucket`, which is not declared",
    );
}

#[test]
fn reference_to_unknown_codepipeline_variable() {
    let mut p = base();
    action(&mut p, 1, 2).commands = Some(vec!["echo #{codepipeline.PipelineName}".into()]);
    assert_only(
        &p,
        "stages[1].actions[2].commands[0]",
        "variable #{codepipeline.PipelineName} is not a codepipeline variable (known: PipelineExecutionId)",
    );
}

#[test]
fn references_in_environment_variable_values() {
    let mut p = base();
    action(&mut p, 1, 1).environment_variables = Some(vec![EnvironmentVariable {
        name: "REV".into(),
        value: "#{Missing.Rev}".into(),
        variable_type: None,
    }]);
    assert_only(
        &p,
        "stages[1].actions[1].environmentVariables[0].value",
        "which no action declares",
    );
}

// --- pipeline variables -----------------------------------------------------

#[test]
fn pipeline_variable_names_and_values() {
    let mut p = base();
    p.variables = Some(vec![
        PipelineVariableDeclaration {
            name: "Bucket".into(),
            default_value: Some(String::new()),
            description: None,
        },
        PipelineVariableDeclaration {
            name: "Bucket".into(),
            default_value: None,
            description: None,
        },
        PipelineVariableDeclaration {
            name: "bad.name".into(),
            default_value: Some("v".repeat(1001)),
            description: Some("d".repeat(201)),
        },
    ]);
    let found: Vec<String> = problems(&p).iter().map(Problem::to_string).collect();
    assert_eq!(
        found,
        [
            "variables[0].defaultValue: must not be empty (1 to 1000 characters)",
            "variables[1].name: duplicate pipeline variable `Bucket`: variables[0] has the same name",
            "variables[2].defaultValue: must be 1 to 1000 characters long, found 1001",
            "variables[2].description: must be 0 to 200 characters long, found 201",
            "variables[2].name: `bad.name` contains '.', which is not allowed; use only A-Z a-z 0-9 @ - _",
        ]
    );
}

#[test]
fn pipeline_variable_name_length() {
    let mut p = base();
    p.variables = Some(vec![PipelineVariableDeclaration {
        name: "v".repeat(129),
        default_value: None,
        description: None,
    }]);
    action(&mut p, 3, 0).configuration = config(&[("BucketName", "b"), ("Extract", "true")]);
    assert_only(
        &p,
        "variables[0].name",
        "must be 1 to 128 characters long, found 129",
    );
}

// --- V1 and V2 --------------------------------------------------------------

fn v1() -> PipelineDeclaration {
    let mut p = base();
    p.pipeline_type = Some(PipelineType::V1);
    p.variables = None;
    action(&mut p, 3, 0).configuration = config(&[("BucketName", "b"), ("Extract", "true")]);
    // V1 has no Commands action: replace both with CodeBuild.
    for a in [1, 2] {
        let act = action(&mut p, 1, a);
        act.action_type_id = type_id(ActionCategory::Build, "CodeBuild");
        act.commands = None;
        act.configuration = config(&[("ProjectName", "p")]);
    }
    p
}

#[test]
fn v1_pipeline_without_v2_features_is_valid() {
    assert_eq!(validate(&v1()), Ok(()));
    let mut p = v1();
    p.pipeline_type = None;
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn variables_need_v2() {
    let mut p = v1();
    p.variables = base().variables;
    assert_only(
        &p,
        "variables",
        "pipeline variables need pipelineType V2; this pipeline is V1",
    );
    p.pipeline_type = None;
    assert_only(&p, "variables", "declares no pipelineType, so it is V1");
}

#[test]
fn v2_features_without_a_pipeline_type_make_the_pipeline_v2() {
    use crate::declaration::PipelineType;
    use crate::validation::infer_pipeline_type;
    let mut p = v1();
    p.pipeline_type = None;
    infer_pipeline_type(&mut p);
    assert_eq!(
        p.pipeline_type, None,
        "no V2 feature: it stays untyped (V1)"
    );
    p.variables = base().variables;
    infer_pipeline_type(&mut p);
    assert_eq!(p.pipeline_type, Some(PipelineType::V2));
    assert_eq!(validate(&p), Ok(()));
    // A declared V1 stays V1, and is told what needs V2.
    let mut declared = v1();
    declared.variables = base().variables;
    infer_pipeline_type(&mut declared);
    assert_eq!(declared.pipeline_type, Some(PipelineType::V1));
    assert!(validate(&declared).is_err());
}

#[test]
fn execution_modes_other_than_superseded_need_v2() {
    let mut p = v1();
    p.execution_mode = Some(ExecutionMode::Queued);
    assert_only(
        &p,
        "executionMode",
        "QUEUED execution mode needs pipelineType V2",
    );
    p.execution_mode = Some(ExecutionMode::Parallel);
    assert_only(
        &p,
        "executionMode",
        "PARALLEL execution mode needs pipelineType V2",
    );
    p.execution_mode = Some(ExecutionMode::Superseded);
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn commands_action_needs_v2() {
    let mut p = v1();
    *action(&mut p, 1, 1) = base().stages[1].actions[1].clone();
    assert_only(
        &p,
        "stages[1].actions[1].actionTypeId",
        "the Commands action needs pipelineType V2",
    );
}

#[test]
fn stage_conditions_need_v2() {
    let mut p = v1();
    p.stages[3].on_failure = Some(FailureConditions {
        result: Some(ConditionResult::Rollback),
        retry_configuration: None,
        conditions: None,
    });
    assert_only(&p, "stages[3].onFailure", "needs pipelineType V2");
}

// --- triggers ---------------------------------------------------------------

fn connection_pipeline() -> PipelineDeclaration {
    let mut p = base();
    let fetch = action(&mut p, 0, 0);
    fetch.action_type_id = type_id(ActionCategory::Source, "CodeStarSourceConnection");
    fetch.configuration = config(&[
        (
            "ConnectionArn",
            "arn:aws:codestar-connections:us-east-1:123456789012:connection/x",
        ),
        ("FullRepositoryId", "org/repo"),
        ("BranchName", "main"),
    ]);
    p.triggers = Some(vec![PipelineTriggerDeclaration {
        provider_type: TriggerProviderType::CodeStarSourceConnection,
        git_configuration: GitConfiguration {
            source_action_name: "Fetch".into(),
            push: Some(vec![GitPushFilter {
                tags: None,
                branches: Some(GitFilterCriteria {
                    includes: Some(vec!["main".into(), "release/**".into()]),
                    excludes: None,
                }),
                file_paths: None,
            }]),
            pull_request: None,
        },
    }]);
    p
}

#[test]
fn trigger_on_a_connection_source_is_valid() {
    assert_eq!(validate(&connection_pipeline()), Ok(()));
}

#[test]
fn trigger_names_an_existing_source_action() {
    let mut p = connection_pipeline();
    p.triggers.as_mut().expect("triggers")[0]
        .git_configuration
        .source_action_name = "Nope".into();
    assert_only(
        &p,
        "triggers[0].gitConfiguration.sourceActionName",
        "no action is named `Nope`",
    );
    p.triggers.as_mut().expect("triggers")[0]
        .git_configuration
        .source_action_name = "Compile".into();
    assert_only(
        &p,
        "triggers[0].gitConfiguration.sourceActionName",
        "`Compile` is not a source action",
    );
}

#[test]
fn trigger_needs_a_connection_source() {
    let mut p = connection_pipeline();
    *action(&mut p, 0, 0) = base().stages[0].actions[0].clone();
    assert_only(
        &p,
        "triggers[0].gitConfiguration.sourceActionName",
        "a CodeStarSourceConnection trigger needs a CodeStarSourceConnection source action; `Fetch` is Source/AWS/S3 (version 1)",
    );
}

#[test]
fn trigger_filter_limits() {
    let mut p = connection_pipeline();
    let git = &mut p.triggers.as_mut().expect("triggers")[0].git_configuration;
    let filter = git.push.as_ref().expect("push")[0].clone();
    git.push = Some(vec![filter; 4]);
    assert_only(
        &p,
        "triggers[0].gitConfiguration.push",
        "must hold 1 to 3 push filters, found 4",
    );
    let mut p = connection_pipeline();
    let git = &mut p.triggers.as_mut().expect("triggers")[0].git_configuration;
    git.push.as_mut().expect("push")[0].branches = Some(GitFilterCriteria {
        includes: Some(vec!["b".into(); 9]),
        excludes: Some(vec![String::new()]),
    });
    let found: Vec<String> = problems(&p).iter().map(Problem::to_string).collect();
    assert_eq!(
        found,
        [
            "triggers[0].gitConfiguration.push[0].branches.excludes[0]: must not be empty (1 to 255 characters)",
            "triggers[0].gitConfiguration.push[0].branches.includes: must hold 1 to 8 patterns, found 9",
        ]
    );
}

// --- stage conditions -------------------------------------------------------

#[test]
fn valid_stage_conditions() {
    let mut p = base();
    p.stages[3].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(
            ConditionResult::Skip,
            vec![rule(
                "OnlyMain",
                "VariableCheck",
                &[
                    ("Variable", "#{SourceVars.VersionId}"),
                    ("Value", "x"),
                    ("Operator", "EQ"),
                ],
            )],
        )],
    });
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Rollback, vec![alarm_rule()])],
    });
    p.stages[3].on_failure = Some(FailureConditions {
        result: Some(ConditionResult::Retry),
        retry_configuration: Some(RetryConfiguration {
            retry_mode: Some(StageRetryMode::FailedActions),
        }),
        conditions: None,
    });
    assert_eq!(validate(&p), Ok(()));
}

#[test]
fn condition_result_must_fit_where_it_sits() {
    let mut p = base();
    p.stages[3].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(ConditionResult::Rollback, vec![alarm_rule()])],
    });
    assert_only(
        &p,
        "stages[3].beforeEntry.conditions[0].result",
        "ROLLBACK is not a valid result for beforeEntry; use one of: FAIL, SKIP",
    );
    let mut p = base();
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Skip, vec![alarm_rule()])],
    });
    assert_only(
        &p,
        "stages[3].onSuccess.conditions[0].result",
        "SKIP is not a valid result for onSuccess; use one of: ROLLBACK, FAIL",
    );
    let mut p = base();
    p.stages[3].on_failure = Some(FailureConditions {
        result: Some(ConditionResult::Skip),
        retry_configuration: None,
        conditions: None,
    });
    assert_only(
        &p,
        "stages[3].onFailure.result",
        "SKIP is not a valid result for onFailure; use one of: ROLLBACK, FAIL, RETRY",
    );
}

#[test]
fn no_rollback_in_parallel_mode() {
    let mut p = base();
    p.execution_mode = Some(ExecutionMode::Parallel);
    p.stages[3].on_failure = Some(FailureConditions {
        result: Some(ConditionResult::Rollback),
        retry_configuration: None,
        conditions: None,
    });
    assert_only(
        &p,
        "stages[3].onFailure.result",
        "ROLLBACK is not available in PARALLEL execution mode",
    );
    p.stages[3].on_failure = None;
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Rollback, vec![alarm_rule()])],
    });
    assert_only(
        &p,
        "stages[3].onSuccess.conditions[0].result",
        "not available in PARALLEL",
    );
}

#[test]
fn first_stage_cannot_roll_back() {
    let mut p = base();
    p.stages[0].on_failure = Some(FailureConditions {
        result: Some(ConditionResult::Rollback),
        retry_configuration: None,
        conditions: None,
    });
    assert_only(
        &p,
        "stages[0].onFailure.result",
        "the first (source) stage cannot be rolled back",
    );
}

#[test]
fn retry_configuration_only_with_retry() {
    let mut p = base();
    p.stages[3].on_failure = Some(FailureConditions {
        result: Some(ConditionResult::Fail),
        retry_configuration: Some(RetryConfiguration {
            retry_mode: Some(StageRetryMode::AllActions),
        }),
        conditions: None,
    });
    assert_only(
        &p,
        "stages[3].onFailure.retryConfiguration",
        "applies only with result RETRY",
    );
}

#[test]
fn rule_count_and_condition_count() {
    let mut p = base();
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Fail, Vec::new())],
    });
    assert_only(
        &p,
        "stages[3].onSuccess.conditions[0].rules",
        "must hold 1 to 5 rules, found 0",
    );
    let rules = (0..6)
        .map(|i| {
            let mut r = alarm_rule();
            r.name = format!("Alarm{i}");
            r
        })
        .collect();
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Fail, rules)],
    });
    assert_only(&p, "stages[3].onSuccess.conditions[0].rules", "found 6");
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![
            condition(ConditionResult::Fail, vec![alarm_rule()]),
            condition(ConditionResult::Fail, vec![alarm_rule()]),
        ],
    });
    assert_only(
        &p,
        "stages[3].onSuccess.conditions",
        "must hold exactly 1 condition, found 2",
    );
}

#[test]
fn rule_provider_must_be_known() {
    let mut p = base();
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(
            ConditionResult::Fail,
            vec![rule("Custom", "MyRule", &[])],
        )],
    });
    assert_only(
        &p,
        "stages[3].onSuccess.conditions[0].rules[0].ruleTypeId.provider",
        "unsupported rule provider `MyRule`; supported: CloudWatchAlarm, CodeBuild, Commands, DeploymentWindow, LambdaInvoke, VariableCheck",
    );
}

#[test]
fn skip_takes_only_lambda_and_variable_rules() {
    let mut p = base();
    p.stages[3].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(ConditionResult::Skip, vec![alarm_rule()])],
    });
    assert_only(
        &p,
        "stages[3].beforeEntry.conditions[0].rules[0].ruleTypeId.provider",
        "only LambdaInvoke and VariableCheck rules, found CloudWatchAlarm",
    );
}

#[test]
fn rule_required_configuration() {
    let mut p = base();
    p.stages[3].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(
            ConditionResult::Fail,
            vec![rule("Window", "DeploymentWindow", &[("TimeZone", "UTC")])],
        )],
    });
    assert_only(
        &p,
        "stages[3].beforeEntry.conditions[0].rules[0].configuration",
        "the DeploymentWindow rule requires configuration key `Cron`",
    );
}

#[test]
fn deployment_windows_are_checked_at_create_time() {
    let window = |cron: &str, zone: &str| {
        let mut p = base();
        p.stages[3].before_entry = Some(BeforeEntryConditions {
            conditions: vec![condition(
                ConditionResult::Fail,
                vec![rule(
                    "Window",
                    "DeploymentWindow",
                    &[("Cron", cron), ("TimeZone", zone)],
                )],
            )],
        });
        p
    };
    // CodePipeline's own example, and EventBridge's form.
    assert_eq!(
        validate(&window("0 0 9-17 ? * MON-FRI *", "Europe/Paris")),
        Ok(())
    );
    assert_eq!(
        validate(&window("cron(0 9-17 ? * MON-FRI *)", "UTC")),
        Ok(())
    );
    assert_only(
        &window("every weekday", "UTC"),
        "stages[3].beforeEntry.conditions[0].rules[0].configuration.Cron",
        "Cron \"every weekday\"",
    );
    assert_only(
        &window("0 0 9-17 ? * MON-FRI *", "Mars/Olympus"),
        "stages[3].beforeEntry.conditions[0].rules[0].configuration.TimeZone",
        "not an IANA time zone name",
    );
}

#[test]
fn commands_and_codebuild_rules_run_in_conditions_that_do_not_skip() {
    let mut p = base();
    let mut r = rule("Smoke", "Commands", &[]);
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Fail, vec![r.clone()])],
    });
    assert_only(
        &p,
        "stages[3].onSuccess.conditions[0].rules[0].commands",
        "the Commands rule requires a commands list",
    );
    r.commands = Some(vec!["curl #{variables.Bucket}".into()]);
    r.input_artifacts = inputs(&["Bin"]);
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(ConditionResult::Fail, vec![r.clone()])],
    });
    assert_eq!(validate(&p), Ok(()));
    p.stages[3].on_success = Some(SuccessConditions {
        conditions: vec![condition(
            ConditionResult::Fail,
            vec![rule("Tests", "CodeBuild", &[("ProjectName", "tests")])],
        )],
    });
    assert_eq!(validate(&p), Ok(()));
    p.stages[3].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(ConditionResult::Fail, vec![r.clone()])],
    });
    assert_eq!(validate(&p), Ok(()));
    // Not where a condition skips the stage (CodePipeline allows only LambdaInvoke and
    // VariableCheck there).
    p.stages[3].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(ConditionResult::Skip, vec![r])],
    });
    assert_only(
        &p,
        "stages[3].beforeEntry.conditions[0].rules[0].ruleTypeId.provider",
        "only LambdaInvoke and VariableCheck rules, found Commands",
    );
}

#[test]
fn before_entry_rule_cannot_read_this_stage() {
    let mut p = base();
    let mut r = rule(
        "Check",
        "LambdaInvoke",
        &[("FunctionName", "#{BuildVars.Fn}")],
    );
    r.input_artifacts = inputs(&["DocsOut"]);
    p.stages[1].before_entry = Some(BeforeEntryConditions {
        conditions: vec![condition(ConditionResult::Fail, vec![r])],
    });
    let found: Vec<String> = problems(&p).iter().map(Problem::to_string).collect();
    assert_eq!(
        found,
        [
            "stages[1].beforeEntry.conditions[0].rules[0].configuration.FunctionName: variable #{BuildVars.Fn} refers to the namespace of `Compile` (stages[1].actions[0]), which has not run when this condition is checked",
            "stages[1].beforeEntry.conditions[0].rules[0].inputArtifacts[0].name: artifact `DocsOut` is produced by `Docs` (stages[1].actions[1]), which has not run when this condition is checked",
        ]
    );
}

// --- several problems at once ----------------------------------------------

#[test]
fn reports_every_problem_in_document_order() {
    let mut p = base();
    p.name = "bad name".into();
    action(&mut p, 3, 0).input_artifacts = inputs(&["Nope"]);
    action(&mut p, 1, 0).configuration = None;
    p.stages[10 % 4].name = "Build".into();
    let found: Vec<String> = problems(&p).iter().map(Problem::to_string).collect();
    assert_eq!(
        found,
        [
            "name: `bad name` contains ' ', which is not allowed; use only A-Z a-z 0-9 . @ - _",
            "stages[1].actions[0].configuration: Build/AWS/CodeBuild requires configuration key `ProjectName`",
            "stages[2].name: duplicate stage name `Build`: stages[1] has the same name",
            "stages[3].actions[0].inputArtifacts[0].name: artifact `Nope` is not produced by any action",
        ]
    );
}

#[test]
fn paths_sort_numerically() {
    let mut paths = vec![
        "stages[10].name",
        "stages[2].actions[10].name",
        "stages",
        "stages[2].actions[9].name",
        "name",
    ];
    paths.sort_by(|a, b| compare_paths(a, b));
    assert_eq!(
        paths,
        [
            "name",
            "stages",
            "stages[2].actions[9].name",
            "stages[2].actions[10].name",
            "stages[10].name"
        ]
    );
}

#[test]
fn a_matches_value_must_be_a_regular_expression() {
    let check = |value: &str| {
        let mut p = base();
        p.stages[3].before_entry = Some(BeforeEntryConditions {
            conditions: vec![condition(
                ConditionResult::Fail,
                vec![rule(
                    "Env",
                    "VariableCheck",
                    &[
                        ("Variable", "#{variables.Bucket}"),
                        ("Operator", "MATCHES"),
                        ("Value", value),
                    ],
                )],
            )],
        });
        p
    };
    assert!(problems(&check("^(site|web)-.*$")).is_empty());
    // Known only at run time.
    assert!(problems(&check("#{variables.Bucket}")).is_empty());
    assert_only(
        &check("(site"),
        "stages[3].beforeEntry.conditions[0].rules[0].configuration.Value",
        "is not a regular expression",
    );
}
