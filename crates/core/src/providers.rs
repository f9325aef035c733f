//! The action types Pipewright implements, with the structural facts
//! validation needs about each: how many input and output artifacts it takes,
//! which configuration keys it requires, and its timeouts.
//!
//! The numbers follow CodePipeline's action structure reference and quotas.

use std::fmt;

use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId, Configuration};

/// An inclusive range of artifact counts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ArtifactCount {
    /// The fewest artifacts allowed.
    pub min: usize,
    /// The most artifacts allowed.
    pub max: usize,
}

impl ArtifactCount {
    const fn exactly(n: usize) -> Self {
        ArtifactCount { min: n, max: n }
    }

    const fn between(min: usize, max: usize) -> Self {
        ArtifactCount { min, max }
    }

    /// Whether `n` artifacts are allowed.
    pub fn allows(&self, n: usize) -> bool {
        (self.min..=self.max).contains(&n)
    }
}

impl fmt::Display for ArtifactCount {
    /// `exactly 1`, `none`, `1 to 5`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.min, self.max) {
            (0, 0) => f.write_str("none"),
            (a, b) if a == b => write!(f, "exactly {a}"),
            (a, b) => write!(f, "{a} to {b}"),
        }
    }
}

/// How an action type treats the action-level `commands` list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CommandsUse {
    /// `commands` is required (1 to 50 items): the `Commands` action.
    Required,
    /// `commands` is not used by this action type and must be absent.
    NotUsed,
}

/// An action type's timeouts, in minutes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeout {
    /// The timeout when the action declares no `timeoutInMinutes`.
    pub default_minutes: u32,
    /// The smallest `timeoutInMinutes` allowed.
    pub min_minutes: u32,
    /// The largest `timeoutInMinutes` allowed.
    pub max_minutes: u32,
}

impl Timeout {
    /// A timeout that can be shortened (down to 5 minutes) but not lengthened.
    const fn fixed(minutes: u32) -> Self {
        Timeout {
            default_minutes: minutes,
            min_minutes: MIN_TIMEOUT_MINUTES,
            max_minutes: minutes,
        }
    }
}

/// botocore's minimum `ActionTimeout`.
const MIN_TIMEOUT_MINUTES: u32 = 5;

/// A configuration key that is required only for some configurations.
type ConditionalKeys = fn(&Configuration) -> Vec<&'static str>;

/// What Pipewright knows about one action type.
#[derive(Debug)]
pub struct ActionTypeSpec {
    /// The category (`Source`, `Build`, ...).
    pub category: ActionCategory,
    /// The owner (`AWS`, `ThirdParty`).
    pub owner: ActionOwner,
    /// The provider (`S3`, `CodeBuild`, ...).
    pub provider: &'static str,
    /// The version (`1`).
    pub version: &'static str,
    /// How many input artifacts an action of this type takes.
    pub input_artifacts: ArtifactCount,
    /// How many output artifacts an action of this type produces.
    pub output_artifacts: ArtifactCount,
    /// Configuration keys every action of this type must set.
    pub required_configuration: &'static [&'static str],
    /// When `Some`, the only configuration keys allowed.
    pub allowed_configuration: Option<&'static [&'static str]>,
    /// Configuration keys whose value must be one of a closed set.
    pub allowed_values: &'static [(&'static str, &'static [&'static str])],
    /// Whether the action-level `commands` list is used.
    pub commands: CommandsUse,
    /// Default and allowed `timeoutInMinutes`.
    pub timeout: Timeout,
    /// Keys required depending on other keys' values (e.g. CloudFormation's `ActionMode`).
    conditional_configuration: ConditionalKeys,
}

impl ActionTypeSpec {
    /// Whether this spec describes the given action type id.
    pub fn matches(&self, id: &ActionTypeId) -> bool {
        self.category == id.category
            && self.owner == id.owner
            && self.provider == id.provider
            && self.version == id.version
    }

    /// The configuration keys that `configuration` must hold: the
    /// always-required ones, then the ones its other values make required.
    pub fn required_keys(&self, configuration: &Configuration) -> Vec<&'static str> {
        let mut keys: Vec<&'static str> = self.required_configuration.to_vec();
        for key in (self.conditional_configuration)(configuration) {
            if !keys.contains(&key) {
                keys.push(key);
            }
        }
        keys
    }

    /// `Category/Owner/Provider`.
    pub fn short_name(&self) -> String {
        format!("{}/{}/{}", self.category, self.owner, self.provider)
    }
}

impl fmt::Display for ActionTypeSpec {
    /// `Category/Owner/Provider (version V)`, like [`ActionTypeId`].
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (version {})", self.short_name(), self.version)
    }
}

fn no_conditional_keys(_: &Configuration) -> Vec<&'static str> {
    Vec::new()
}

/// The CloudFormation action modes.
pub const CLOUDFORMATION_ACTION_MODES: &[&str] = &[
    "CHANGE_SET_EXECUTE",
    "CHANGE_SET_REPLACE",
    "CREATE_UPDATE",
    "DELETE_ONLY",
    "REPLACE_ON_FAILURE",
];

/// CloudFormation: change-set modes need `ChangeSetName`; the modes that
/// call CloudFormation with a template or delete a stack need `RoleArn` (the
/// role CloudFormation acts as), and the modes that send a template need
/// `TemplatePath`.
fn cloudformation_keys(configuration: &Configuration) -> Vec<&'static str> {
    let mode = configuration.get("ActionMode").map(String::as_str);
    let mut keys = Vec::new();
    if matches!(mode, Some("CHANGE_SET_REPLACE" | "CHANGE_SET_EXECUTE")) {
        keys.push("ChangeSetName");
    }
    if matches!(
        mode,
        Some("CREATE_UPDATE" | "REPLACE_ON_FAILURE" | "DELETE_ONLY" | "CHANGE_SET_REPLACE")
    ) {
        keys.push("RoleArn");
    }
    if matches!(
        mode,
        Some("CREATE_UPDATE" | "REPLACE_ON_FAILURE" | "CHANGE_SET_REPLACE")
    ) {
        keys.push("TemplatePath");
    }
    keys
}

/// S3 deploy: without extraction the object needs a key.
fn s3_deploy_keys(configuration: &Configuration) -> Vec<&'static str> {
    match configuration.get("Extract") {
        Some(v) if v.eq_ignore_ascii_case("false") => vec!["ObjectKey"],
        _ => Vec::new(),
    }
}

/// Step Functions: `InputType` `FilePath` reads the file `Input` names.
fn step_functions_keys(configuration: &Configuration) -> Vec<&'static str> {
    match configuration.get("InputType") {
        Some(v) if v == "FilePath" => vec!["Input"],
        _ => Vec::new(),
    }
}

/// The configuration keys the manual approval action accepts.
/// `OneClickLinks` is Pipewright's own: `"false"` turns off the approval's one-click links.
pub const MANUAL_APPROVAL_KEYS: &[&str] = &[
    "NotificationArn",
    "CustomData",
    "ExternalEntityLink",
    "OneClickLinks",
];

/// Default timeout of a manual approval: 7 days.
pub const APPROVAL_DEFAULT_TIMEOUT_MINUTES: u32 = 7 * 24 * 60;

/// Largest configurable timeout (botocore's `ActionTimeout` maximum, 60 days).
pub const MAX_TIMEOUT_MINUTES: u32 = 86_400;

/// CodePipeline's timeout for every action type without its own: 1 hour.
const ONE_HOUR: u32 = 60;

const fn source(provider: &'static str, required: &'static [&'static str]) -> ActionTypeSpec {
    source_owned(ActionOwner::Aws, provider, required)
}

const fn source_owned(
    owner: ActionOwner,
    provider: &'static str,
    required: &'static [&'static str],
) -> ActionTypeSpec {
    ActionTypeSpec {
        category: ActionCategory::Source,
        owner,
        provider,
        version: "1",
        input_artifacts: ArtifactCount::exactly(0),
        output_artifacts: ArtifactCount::exactly(1),
        required_configuration: required,
        allowed_configuration: None,
        allowed_values: &[],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(ONE_HOUR),
        conditional_configuration: no_conditional_keys,
    }
}

const fn codebuild(category: ActionCategory) -> ActionTypeSpec {
    ActionTypeSpec {
        category,
        owner: ActionOwner::Aws,
        provider: "CodeBuild",
        version: "1",
        input_artifacts: ArtifactCount::between(1, 5),
        output_artifacts: ArtifactCount::between(0, 5),
        required_configuration: &["ProjectName"],
        allowed_configuration: None,
        allowed_values: &[
            ("BatchEnabled", &["true", "false"]),
            ("CombineArtifacts", &["true", "false"]),
        ],
        commands: CommandsUse::NotUsed,
        // CodePipeline waits for the build, whose own limit is 8 hours.
        timeout: Timeout::fixed(8 * 60),
        conditional_configuration: no_conditional_keys,
    }
}

static SPECS: &[ActionTypeSpec] = &[
    source("S3", &["S3Bucket", "S3ObjectKey"]),
    source("CodeCommit", &["RepositoryName", "BranchName"]),
    source(
        "CodeStarSourceConnection",
        &["ConnectionArn", "FullRepositoryId", "BranchName"],
    ),
    source_owned(
        ActionOwner::ThirdParty,
        "GitHub",
        &["Owner", "Repo", "Branch", "OAuthToken"],
    ),
    source("ECR", &["RepositoryName"]),
    codebuild(ActionCategory::Build),
    codebuild(ActionCategory::Test),
    ActionTypeSpec {
        category: ActionCategory::Compute,
        owner: ActionOwner::Aws,
        provider: "Commands",
        version: "1",
        input_artifacts: ArtifactCount::between(1, 10),
        output_artifacts: ArtifactCount::between(0, 1),
        required_configuration: &[],
        allowed_configuration: None,
        allowed_values: &[],
        commands: CommandsUse::Required,
        // "The timeout for builds with the Commands action is 55 minutes."
        timeout: Timeout::fixed(55),
        conditional_configuration: no_conditional_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Invoke,
        owner: ActionOwner::Aws,
        provider: "Lambda",
        version: "1",
        input_artifacts: ArtifactCount::between(0, 5),
        output_artifacts: ArtifactCount::between(0, 5),
        required_configuration: &["FunctionName"],
        allowed_configuration: None,
        allowed_values: &[],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(24 * 60),
        conditional_configuration: no_conditional_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Invoke,
        owner: ActionOwner::Aws,
        provider: "StepFunctions",
        version: "1",
        input_artifacts: ArtifactCount::between(0, 1),
        output_artifacts: ArtifactCount::between(0, 1),
        required_configuration: &["StateMachineArn"],
        allowed_configuration: Some(&[
            "StateMachineArn",
            "ExecutionNamePrefix",
            "InputType",
            "Input",
        ]),
        allowed_values: &[("InputType", &["Literal", "FilePath"])],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(ONE_HOUR),
        conditional_configuration: step_functions_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Deploy,
        owner: ActionOwner::Aws,
        provider: "S3",
        version: "1",
        input_artifacts: ArtifactCount::exactly(1),
        output_artifacts: ArtifactCount::exactly(0),
        required_configuration: &["BucketName", "Extract"],
        allowed_configuration: None,
        allowed_values: &[("Extract", &["true", "false"])],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(90),
        conditional_configuration: s3_deploy_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Deploy,
        owner: ActionOwner::Aws,
        provider: "CloudFormation",
        version: "1",
        input_artifacts: ArtifactCount::between(0, 10),
        output_artifacts: ArtifactCount::between(0, 1),
        required_configuration: &["ActionMode", "StackName"],
        allowed_configuration: None,
        allowed_values: &[("ActionMode", CLOUDFORMATION_ACTION_MODES)],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(3 * 24 * 60),
        conditional_configuration: cloudformation_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Deploy,
        owner: ActionOwner::Aws,
        provider: "CodeDeploy",
        version: "1",
        input_artifacts: ArtifactCount::exactly(1),
        output_artifacts: ArtifactCount::exactly(0),
        required_configuration: &["ApplicationName", "DeploymentGroupName"],
        allowed_configuration: None,
        allowed_values: &[],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(5 * 24 * 60),
        conditional_configuration: no_conditional_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Deploy,
        owner: ActionOwner::Aws,
        provider: "ECS",
        version: "1",
        input_artifacts: ArtifactCount::exactly(1),
        output_artifacts: ArtifactCount::exactly(0),
        required_configuration: &["ClusterName", "ServiceName"],
        allowed_configuration: None,
        allowed_values: &[],
        commands: CommandsUse::NotUsed,
        timeout: Timeout::fixed(ONE_HOUR),
        conditional_configuration: no_conditional_keys,
    },
    ActionTypeSpec {
        category: ActionCategory::Approval,
        owner: ActionOwner::Aws,
        provider: "Manual",
        version: "1",
        input_artifacts: ArtifactCount::exactly(0),
        output_artifacts: ArtifactCount::exactly(0),
        required_configuration: &[],
        allowed_configuration: Some(MANUAL_APPROVAL_KEYS),
        allowed_values: &[("OneClickLinks", &["true", "false"])],
        commands: CommandsUse::NotUsed,
        timeout: Timeout {
            default_minutes: APPROVAL_DEFAULT_TIMEOUT_MINUTES,
            min_minutes: MIN_TIMEOUT_MINUTES,
            max_minutes: MAX_TIMEOUT_MINUTES,
        },
        conditional_configuration: no_conditional_keys,
    },
];

/// One configuration property of an action or rule type, as ListActionTypes / ListRuleTypes
/// describe it (`ActionConfigurationProperty`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ConfigurationProperty {
    /// The configuration key.
    pub name: &'static str,
    /// Whether every action of the type must set it.
    pub required: bool,
    /// Whether its value is secret (masked by GetPipeline).
    pub secret: bool,
    /// `String`, `Boolean` or `Number`.
    pub kind: &'static str,
    /// What it means.
    pub description: &'static str,
}

const fn prop(
    name: &'static str,
    required: bool,
    kind: &'static str,
    description: &'static str,
) -> ConfigurationProperty {
    ConfigurationProperty {
        name,
        required,
        secret: false,
        kind,
        description,
    }
}

/// The configuration properties of an action type (CodePipeline's action structure reference),
/// required ones first.
pub fn configuration_properties(spec: &ActionTypeSpec) -> Vec<ConfigurationProperty> {
    const S: &str = "String";
    const B: &str = "Boolean";
    let list: &[ConfigurationProperty] = match (spec.category, spec.provider) {
        (ActionCategory::Source, "S3") => &[
            prop("S3Bucket", true, S, "The bucket the source object is in"),
            prop("S3ObjectKey", true, S, "The key of the source object (a ZIP file)"),
            prop("PollForSourceChanges", false, B, "Whether to poll the object for changes"),
            prop("AllowOverrideForS3ObjectKey", false, B, "Whether a start may name another key"),
        ],
        (ActionCategory::Source, "CodeCommit") => &[
            prop("RepositoryName", true, S, "The repository"),
            prop("BranchName", true, S, "The branch"),
            prop("PollForSourceChanges", false, B, "Whether to poll the branch for changes"),
            prop("OutputArtifactFormat", false, S, "CODE_ZIP"),
        ],
        (ActionCategory::Source, "CodeStarSourceConnection") => &[
            prop("ConnectionArn", true, S, "The connection to the git host"),
            prop("FullRepositoryId", true, S, "owner/repository"),
            prop("BranchName", true, S, "The branch"),
            prop("OutputArtifactFormat", false, S, "CODE_ZIP"),
            prop("DetectChanges", false, B, "Whether pushes start the pipeline"),
        ],
        (ActionCategory::Source, "GitHub") => &[
            prop("Owner", true, S, "The repository's owner"),
            prop("Repo", true, S, "The repository"),
            prop("Branch", true, S, "The branch"),
            ConfigurationProperty {
                name: "OAuthToken",
                required: true,
                secret: true,
                kind: S,
                description: "A GitHub token, or a {{resolve:secretsmanager:...}} reference",
            },
            prop("PollForSourceChanges", false, B, "Whether to poll the branch for changes"),
        ],
        (ActionCategory::Source, "ECR") => &[
            prop("RepositoryName", true, S, "The image repository"),
            prop("ImageTag", false, S, "The tag (latest when absent)"),
        ],
        (_, "CodeBuild") => &[
            prop("ProjectName", true, S, "The build project"),
            prop("PrimarySource", false, S, "The input artifact that is the primary source"),
            prop("BatchEnabled", false, B, "Batch builds (not run by Pipewright yet)"),
            prop("CombineArtifacts", false, B, "Combine a batch's artifacts"),
            prop("EnvironmentVariables", false, S, "JSON array of {name, value, type}"),
        ],
        (ActionCategory::Compute, "Commands") => &[prop(
            "PipewrightCodeBuildProject",
            false,
            S,
            "Pipewright: run the commands as a build of this CodeBuild project",
        )],
        (ActionCategory::Invoke, "Lambda") => &[
            prop("FunctionName", true, S, "The function to invoke with the job"),
            prop("UserParameters", false, S, "Text handed to the function"),
        ],
        (ActionCategory::Invoke, "StepFunctions") => &[
            prop("StateMachineArn", true, S, "The state machine"),
            prop("ExecutionNamePrefix", false, S, "Prefix of the execution's name"),
            prop("InputType", false, S, "Literal or FilePath"),
            prop("Input", false, S, "The input, or the path of the input file"),
        ],
        (ActionCategory::Deploy, "S3") => &[
            prop("BucketName", true, S, "The bucket to deploy to"),
            prop("Extract", true, B, "Whether to extract the artifact's files"),
            prop("ObjectKey", false, S, "The key (the folder, when extracting)"),
            prop("KMSEncryptionKeyARN", false, S, "The KMS key to encrypt with"),
            prop("CannedACL", false, S, "The canned ACL of the objects"),
            prop("CacheControl", false, S, "The objects' Cache-Control"),
        ],
        (ActionCategory::Deploy, "CloudFormation") => &[
            prop("ActionMode", true, S, "CREATE_UPDATE, DELETE_ONLY, REPLACE_ON_FAILURE, CHANGE_SET_REPLACE or CHANGE_SET_EXECUTE"),
            prop("StackName", true, S, "The stack"),
            prop("Capabilities", false, S, "Comma-separated capabilities"),
            prop("ChangeSetName", false, S, "The change set (change-set modes)"),
            prop("OutputFileName", false, S, "File of the stack's outputs in the output artifact"),
            prop("ParameterOverrides", false, S, "JSON of parameter values"),
            prop("RoleArn", false, S, "The role CloudFormation acts as"),
            prop("TemplateConfiguration", false, S, "Artifact::path of a configuration file"),
            prop("TemplatePath", false, S, "Artifact::path of the template"),
        ],
        (ActionCategory::Deploy, "CodeDeploy") => &[
            prop("ApplicationName", true, S, "The CodeDeploy application"),
            prop("DeploymentGroupName", true, S, "Its deployment group"),
        ],
        (ActionCategory::Deploy, "ECS") => &[
            prop("ClusterName", true, S, "The cluster"),
            prop("ServiceName", true, S, "The service"),
            prop("FileName", false, S, "The image definitions file (imagedefinitions.json)"),
            prop("DeploymentTimeout", false, S, "Minutes to wait for the deployment"),
        ],
        (ActionCategory::Approval, "Manual") => &[
            prop("NotificationArn", false, S, "The SNS topic notified"),
            prop("CustomData", false, S, "Text for the approver"),
            prop("ExternalEntityLink", false, S, "A link for the approver to review"),
            prop("OneClickLinks", false, B, "Pipewright: false turns off one-click links"),
        ],
        _ => &[],
    };
    list.to_vec()
}

/// The configuration properties of a condition rule provider.
pub fn rule_properties(provider: &str) -> Vec<ConfigurationProperty> {
    const S: &str = "String";
    let list: &[ConfigurationProperty] = match provider {
        "CloudWatchAlarm" => &[
            prop("AlarmName", true, S, "The alarm"),
            prop(
                "AlarmStates",
                false,
                S,
                "Comma-separated states that fail the rule",
            ),
            prop("WaitTime", false, S, "Minutes to wait for the alarm"),
        ],
        "CodeBuild" => &[prop("ProjectName", true, S, "The build project")],
        "DeploymentWindow" => &[
            prop("Cron", true, S, "When deployments may run"),
            prop("TimeZone", false, S, "The time zone of Cron"),
        ],
        "LambdaInvoke" => &[
            prop("FunctionName", true, S, "The function deciding the rule"),
            prop("UserParameters", false, S, "Text handed to the function"),
        ],
        "VariableCheck" => &[
            prop("Variable", true, S, "The variable compared"),
            prop("Value", true, S, "What it is compared with"),
            prop("Operator", true, S, "EQ, NE, CONTAINS, MATCHES"),
        ],
        _ => &[],
    };
    list.to_vec()
}

/// What a value placed in a URL's path or query must not hold as is.
const URL_COMPONENT: &percent_encoding::AsciiSet = &percent_encoding::CONTROLS
    .add(b' ')
    .add(b'"')
    .add(b'#')
    .add(b'%')
    .add(b'&')
    .add(b'+')
    .add(b'/')
    .add(b'<')
    .add(b'>')
    .add(b'?')
    .add(b'`')
    .add(b'{')
    .add(b'}');

/// GetPipelineState's `entityUrl` of an action: the console page (or repository) of what the
/// action works on, from its `configuration` (`None` when a value it needs is missing or still
/// holds a `#{...}` variable). `region` and `account` are the action's.
pub fn entity_url(
    type_id: &ActionTypeId,
    configuration: &Configuration,
    region: &str,
    account: &str,
) -> Option<String> {
    let get = |key: &str| {
        configuration
            .get(key)
            .map(String::as_str)
            .filter(|v| !v.is_empty() && !v.contains("#{"))
            .map(|v| percent_encoding::utf8_percent_encode(v, URL_COMPONENT).to_string())
    };
    let console = format!("https://{region}.console.aws.amazon.com");
    let url = match (type_id.category, type_id.provider.as_str()) {
        (ActionCategory::Source, "S3") => format!(
            "{console}/s3/buckets/{}?region={region}&prefix={}",
            get("S3Bucket")?,
            get("S3ObjectKey")?
        ),
        (ActionCategory::Source, "CodeCommit") => format!(
            "{console}/codesuite/codecommit/repositories/{}/browse?region={region}",
            get("RepositoryName")?
        ),
        (ActionCategory::Source, "GitHub") => format!(
            "https://github.com/{}/{}/tree/{}",
            get("Owner")?,
            get("Repo")?,
            get("Branch")?
        ),
        (ActionCategory::Source, "ECR") => format!(
            "{console}/ecr/repositories/private/{account}/{}?region={region}",
            get("RepositoryName")?
        ),
        (_, "CodeBuild") => format!(
            "{console}/codesuite/codebuild/{account}/projects/{}?region={region}",
            get("ProjectName")?
        ),
        (ActionCategory::Invoke, "Lambda") => format!(
            "{console}/lambda/home?region={region}#/functions/{}",
            get("FunctionName")?
        ),
        (ActionCategory::Invoke, "StepFunctions") => format!(
            "{console}/states/home?region={region}#/statemachines/view/{}",
            get("StateMachineArn")?
        ),
        (ActionCategory::Deploy, "S3") => format!(
            "{console}/s3/buckets/{}?region={region}",
            get("BucketName")?
        ),
        (ActionCategory::Deploy, "CloudFormation") => format!(
            "{console}/cloudformation/home?region={region}#/stacks?filteringText={}",
            get("StackName")?
        ),
        (ActionCategory::Deploy, "CodeDeploy") => format!(
            "{console}/codesuite/codedeploy/applications/{}/deployment-groups/{}?region={region}",
            get("ApplicationName")?,
            get("DeploymentGroupName")?
        ),
        (ActionCategory::Deploy, "ECS") => format!(
            "{console}/ecs/v2/clusters/{}/services/{}?region={region}",
            get("ClusterName")?,
            get("ServiceName")?
        ),
        (ActionCategory::Approval, "Manual") => configuration
            .get("ExternalEntityLink")
            .filter(|l| l.starts_with("https://") || l.starts_with("http://"))
            .filter(|l| !l.contains("#{"))?
            .clone(),
        _ => return None,
    };
    Some(url)
}

/// The spec of an action type, if Pipewright implements it.
pub fn lookup(id: &ActionTypeId) -> Option<&'static ActionTypeSpec> {
    SPECS.iter().find(|spec| spec.matches(id))
}

/// Every action type Pipewright implements, source types first.
pub fn supported() -> impl Iterator<Item = &'static ActionTypeSpec> {
    SPECS.iter()
}

/// The supported action types as one line for error messages:
/// `Source/AWS/S3, Source/AWS/CodeCommit, ... (all version 1)`.
pub fn supported_list() -> String {
    let all_v1 = SPECS.iter().all(|s| s.version == "1");
    let names: Vec<String> = SPECS
        .iter()
        .map(|s| {
            if all_v1 {
                s.short_name()
            } else {
                s.to_string()
            }
        })
        .collect();
    if all_v1 {
        format!("{} (all version 1)", names.join(", "))
    } else {
        names.join(", ")
    }
}

/// The stage-condition rule providers CodePipeline offers.
pub const RULE_PROVIDERS: &[&str] = &[
    "CloudWatchAlarm",
    "CodeBuild",
    "Commands",
    "DeploymentWindow",
    "LambdaInvoke",
    "VariableCheck",
];

/// The configuration keys a condition rule provider requires.
pub fn rule_required_keys(provider: &str) -> &'static [&'static str] {
    match provider {
        "CloudWatchAlarm" => &["AlarmName"],
        "CodeBuild" => &["ProjectName"],
        "DeploymentWindow" => &["Cron"],
        "LambdaInvoke" => &["FunctionName"],
        "VariableCheck" => &["Variable", "Value", "Operator"],
        _ => &[],
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entity_urls_name_what_the_action_works_on() {
        let config = |pairs: &[(&str, &str)]| -> Configuration {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect()
        };
        let build = ActionTypeId {
            category: ActionCategory::Build,
            owner: ActionOwner::Aws,
            provider: "CodeBuild".into(),
            version: "1".into(),
        };
        assert_eq!(
            entity_url(&build, &config(&[("ProjectName", "web build")]), "eu-west-1", "123"),
            Some("https://eu-west-1.console.aws.amazon.com/codesuite/codebuild/123/projects/web%20build?region=eu-west-1".into())
        );
        assert_eq!(
            entity_url(
                &build,
                &config(&[("ProjectName", "#{Vars.Project}")]),
                "eu-west-1",
                "123"
            ),
            None
        );
        let ecs = ActionTypeId {
            category: ActionCategory::Deploy,
            provider: "ECS".into(),
            ..build.clone()
        };
        assert!(entity_url(&ecs, &config(&[("ClusterName", "c")]), "r", "a").is_none());
        let manual = ActionTypeId {
            category: ActionCategory::Approval,
            provider: "Manual".into(),
            ..build
        };
        assert_eq!(
            entity_url(
                &manual,
                &config(&[("ExternalEntityLink", "https://review.example/1")]),
                "r",
                "a"
            ),
            Some("https://review.example/1".into())
        );
        assert!(entity_url(
            &manual,
            &config(&[("ExternalEntityLink", "javascript:x")]),
            "r",
            "a"
        )
        .is_none());
    }

    #[test]
    fn every_required_key_is_a_described_property() {
        for spec in supported() {
            let properties = configuration_properties(spec);
            for key in spec.required_configuration {
                assert!(
                    properties.iter().any(|p| p.name == *key && p.required),
                    "{spec}: {key}"
                );
            }
            if let Some(allowed) = spec.allowed_configuration {
                for p in &properties {
                    assert!(allowed.contains(&p.name), "{spec}: {}", p.name);
                }
            }
        }
        for provider in RULE_PROVIDERS {
            for key in rule_required_keys(provider) {
                assert!(rule_properties(provider)
                    .iter()
                    .any(|p| p.name == *key && p.required));
            }
        }
    }

    fn id(category: ActionCategory, owner: ActionOwner, provider: &str) -> ActionTypeId {
        ActionTypeId {
            category,
            owner,
            provider: provider.into(),
            version: "1".into(),
        }
    }

    #[test]
    fn looks_up_every_listed_type() {
        for spec in supported() {
            let found = lookup(&id(spec.category, spec.owner, spec.provider)).expect("listed");
            assert!(std::ptr::eq(found, spec), "{spec} found twice");
        }
        assert_eq!(supported().count(), 15);
    }

    #[test]
    fn unknown_versions_and_providers_are_not_found() {
        let mut s3 = id(ActionCategory::Source, ActionOwner::Aws, "S3");
        assert!(lookup(&s3).is_some());
        s3.version = "2".into();
        assert!(lookup(&s3).is_none());
        assert!(lookup(&id(ActionCategory::Build, ActionOwner::Aws, "Jenkins")).is_none());
        // Same provider, other category.
        assert!(lookup(&id(ActionCategory::Deploy, ActionOwner::Aws, "CodeCommit")).is_none());
    }

    #[test]
    fn cloudformation_required_keys_depend_on_mode() {
        let spec = lookup(&id(
            ActionCategory::Deploy,
            ActionOwner::Aws,
            "CloudFormation",
        ))
        .expect("cfn");
        let mut config = Configuration::new();
        config.insert("ActionMode".into(), "CHANGE_SET_EXECUTE".into());
        assert_eq!(
            spec.required_keys(&config),
            ["ActionMode", "StackName", "ChangeSetName"]
        );
        config.insert("ActionMode".into(), "CREATE_UPDATE".into());
        assert_eq!(
            spec.required_keys(&config),
            ["ActionMode", "StackName", "RoleArn", "TemplatePath"]
        );
        config.insert("ActionMode".into(), "DELETE_ONLY".into());
        assert_eq!(
            spec.required_keys(&config),
            ["ActionMode", "StackName", "RoleArn"]
        );
    }

    #[test]
    fn s3_deploy_needs_object_key_without_extract() {
        let spec = lookup(&id(ActionCategory::Deploy, ActionOwner::Aws, "S3")).expect("s3");
        let mut config = Configuration::new();
        config.insert("Extract".into(), "true".into());
        assert_eq!(spec.required_keys(&config), ["BucketName", "Extract"]);
        config.insert("Extract".into(), "false".into());
        assert_eq!(
            spec.required_keys(&config),
            ["BucketName", "Extract", "ObjectKey"]
        );
    }

    #[test]
    fn approval_timeouts() {
        let spec = lookup(&id(ActionCategory::Approval, ActionOwner::Aws, "Manual")).expect("m");
        assert_eq!(spec.timeout.default_minutes, 10_080);
        assert_eq!(
            (spec.timeout.min_minutes, spec.timeout.max_minutes),
            (5, 86_400)
        );
    }

    #[test]
    fn artifact_count_display() {
        assert_eq!(ArtifactCount::exactly(0).to_string(), "none");
        assert_eq!(ArtifactCount::exactly(1).to_string(), "exactly 1");
        assert_eq!(ArtifactCount::between(1, 5).to_string(), "1 to 5");
        assert!(ArtifactCount::between(1, 5).allows(5));
        assert!(!ArtifactCount::between(1, 5).allows(0));
    }

    #[test]
    fn supported_list_mentions_every_type() {
        let list = supported_list();
        assert!(
            list.starts_with("Source/AWS/S3, Source/AWS/CodeCommit, "),
            "{list}"
        );
        assert!(
            list.ends_with("Approval/AWS/Manual (all version 1)"),
            "{list}"
        );
    }
}
