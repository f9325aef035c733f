//! The action providers the action function runs itself, chosen by the action's type:
//!
//! - `Source/AWS/S3` ([`s3_source`]): copies the source object into the output artifact;
//! - `Compute/AWS/Commands` ([`commands`]): has the Commands runner run the action's shell
//!   commands on its input artifacts and zip its declared output files;
//! - `Deploy/AWS/S3` ([`s3_deploy`]): publishes the input artifact to a bucket, extracted or as
//!   the zip;
//! - `Invoke/AWS/Lambda` ([`lambda_invoke`]): invokes the function with CodePipeline's job event
//!   and leaves the action pending until the function reports its job result;
//! - `Source/AWS/CodeStarSourceConnection` and `Source/ThirdParty/GitHub` version 1
//!   ([`git_source`]): the files of one commit, fetched from the GitHub REST API;
//! - `Source/AWS/CodeCommit` ([`codecommit_source`]): the files of one commit, read with
//!   CodeCommit's GetFolder / GetBlob;
//! - `Source/AWS/ECR` ([`ecr_source`]): `imageDetail.json` describing one image;
//! - `Invoke/AWS/StepFunctions` ([`step_functions`]): starts an execution and leaves the action
//!   in progress until Step Functions' status event completes it ([`Providers::complete`]);
//! - `Deploy/AWS/CloudFormation` ([`cloudformation`]): creates, updates or deletes a stack and
//!   leaves the action in progress until the stack's status event completes it
//!   ([`Providers::complete_stack`]);
//! - `Build/AWS/CodeBuild` and `Test/AWS/CodeBuild` ([`codebuild`]): starts a build on the input
//!   artifacts and leaves the action in progress until the build's state event completes it
//!   ([`Providers::complete_build`]);
//! - `Deploy/AWS/CodeDeploy` ([`codedeploy`]): deploys the input artifact as an S3 revision and
//!   leaves the action in progress until the deployment's state event completes it
//!   ([`Providers::complete_deployment`]);
//! - `Deploy/AWS/ECS` ([`ecs`]): registers the service's task definition again with the images
//!   of the input artifact's image definitions, updates the service, and leaves the action in
//!   progress until the service deployment's event completes it
//!   ([`Providers::complete_service_deployment`]).
//!
//! Any other provider is refused with `ConfigurationError`. A provider returns an
//! [`ActionOutcome`] (a failure of the work itself, such as a command's exit code, is an outcome
//! with the log tail), nothing when the action is completed later by someone else (a job
//! result), or a [`ProviderError`], which the handler records with [`ProviderError::code`].

mod cloudformation;
mod codebuild;
mod codecommit_source;
mod codedeploy;
mod commands;
mod ecr_source;
mod ecs;
mod git_source;
mod lambda_invoke;
mod s3_deploy;
mod s3_source;
mod step_functions;

use pipewright_core::execution::FailureType;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use aws_sdk_codecommit::error::{ProvideErrorMetadata, SdkError};
use pipewright_aws::artifacts::{ArtifactError, S3Artifacts};
use pipewright_aws::connections::ConnectionSecrets;
use pipewright_aws::engine::Adapters;
use pipewright_aws::lambda::LambdaFunctions;
use pipewright_aws::roles::{PipelineRoles, RoleSession};
use pipewright_aws::runner::CommandsRunner;
use pipewright_core::access::pipeline_roles::{self, StackBoundary};
use pipewright_core::declaration::{ActionCategory, ActionOwner};
use pipewright_core::engine::external::WorkEvent;
use pipewright_core::engine::{ActionOutcome, PreparedAction};
use pipewright_core::execution::ArtifactDetail;

/// Why a provider could not do its work, by CodePipeline's failure types.
#[derive(Debug, thiserror::Error)]
pub enum ProviderError {
    /// The action's configuration cannot work (a missing key, an unsupported option).
    #[error("{0}")]
    Configuration(String),
    /// AWS refused access.
    #[error("{0}")]
    Permission(String),
    /// The source revision asked for does not exist.
    #[error("{0}")]
    RevisionUnavailable(String),
    /// The work failed.
    #[error("{0}")]
    Job(String),
    /// The service's event says the work ended, and the service does not show it yet: not an
    /// outcome; the event is to be delivered again.
    #[error("{0}")]
    NotYet(String),
    /// Reading or writing an artifact failed.
    #[error("{context}: {source}")]
    Artifact {
        /// What the action was doing (`input artifact SourceArtifact`, ...).
        context: String,
        /// The error.
        #[source]
        source: ArtifactError,
    },
}

impl ProviderError {
    /// CodePipeline's name for the failure (`FailureDetails.type` / `ErrorDetails.code`):
    /// `ConfigurationError`, `PermissionError`, `RevisionUnavailable` or `JobFailed`.
    pub fn code(&self) -> FailureType {
        match self {
            Self::Configuration(_) => FailureType::ConfigurationError,
            Self::Permission(_) => FailureType::PermissionError,
            Self::RevisionUnavailable(_) => FailureType::RevisionUnavailable,
            Self::Job(_) | Self::NotYet(_) => FailureType::JobFailed,
            Self::Artifact { source, .. } if source.is_access_denied() => {
                FailureType::PermissionError
            }
            Self::Artifact {
                source: ArtifactError::Pattern { .. },
                ..
            } => FailureType::ConfigurationError,
            Self::Artifact { .. } => FailureType::JobFailed,
        }
    }
}

/// Attach what the action was doing to an artifact error.
trait Context<T> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, ProviderError>;
}

impl<T> Context<T> for Result<T, ArtifactError> {
    fn context(self, what: impl FnOnce() -> String) -> Result<T, ProviderError> {
        self.map_err(|source| ProviderError::Artifact {
            context: what(),
            source,
        })
    }
}

/// The clients one action's providers work with: the pipeline role session's, or (in unit
/// tests, which assume no role) fixed ones.
#[derive(Debug, Clone)]
struct Clients {
    artifacts: S3Artifacts,
    /// The functions `Invoke/AWS/Lambda` actions invoke.
    functions: LambdaFunctions,
    /// What git source actions fetch with.
    git: git_source::GitSources,
    /// What CodeCommit source actions read with.
    codecommit: aws_sdk_codecommit::Client,
    /// What ECR source actions read with.
    ecr: aws_sdk_ecr::Client,
    /// What Step Functions actions start executions with.
    sfn: aws_sdk_sfn::Client,
    /// What CloudFormation actions deploy with.
    cfn: aws_sdk_cloudformation::Client,
    /// What CodeBuild actions build with.
    codebuild: aws_sdk_codebuild::Client,
    /// What CodeDeploy actions deploy with.
    codedeploy: aws_sdk_codedeploy::Client,
    /// What ECS actions deploy with.
    ecs: aws_sdk_ecs::Client,
}

impl Clients {
    /// Clients with `session`'s credentials.
    fn for_session(session: &RoleSession) -> Self {
        let sdk = session.sdk();
        Self {
            artifacts: S3Artifacts::new(session.s3()),
            functions: LambdaFunctions::new(aws_sdk_lambda::Client::new(sdk)),
            git: git_source::GitSources::new(
                &git_source::GitSources::api_base_url_from_env(),
                ConnectionSecrets::from_env(sdk),
            ),
            codecommit: aws_sdk_codecommit::Client::new(sdk),
            ecr: aws_sdk_ecr::Client::new(sdk),
            sfn: aws_sdk_sfn::Client::new(sdk),
            cfn: aws_sdk_cloudformation::Client::new(sdk),
            codebuild: aws_sdk_codebuild::Client::new(sdk),
            codedeploy: aws_sdk_codedeploy::Client::new(sdk),
            ecs: aws_sdk_ecs::Client::new(sdk),
        }
    }
}

/// How actions get their AWS identity: a session of the pipeline's role, kept inside the
/// stack's boundary.
#[derive(Debug, Clone)]
struct Roles {
    roles: PipelineRoles,
    /// The stack's region.
    region: String,
    artifact_bucket: String,
    /// `STACK_NAME`.
    stack_name: Option<String>,
    secret_prefixes: Vec<String>,
    /// `PIPELINE_SECRET_PREFIX`: where the pipelines' own secrets are.
    pipeline_secret_prefix: Option<String>,
    /// The local emulator (which authorizes `s3:HeadObject` on its own).
    local: bool,
}

/// Environment variables naming the stack's own secrets' prefixes, which no pipeline role
/// session may read.
const STACK_SECRET_PREFIX_ENVS: [&str; 2] = ["STACK_SECRET_PREFIX", "WEBHOOK_SECRET_PREFIX"];

/// The providers, with what they share.
#[derive(Debug, Clone)]
pub struct Providers {
    /// Pipeline roles; `None` only in unit tests, where `fixed` clients are used.
    roles: Option<Roles>,
    /// The clients when no role is assumed.
    fixed: Option<Clients>,
    /// Where Commands actions run (invoked with the function's own identity).
    runner: CommandsRunner,
}

impl Providers {
    /// Providers for the function: every action assumes its pipeline's role.
    pub fn new(adapters: &Adapters) -> Self {
        let settings = &adapters.settings;
        let secret_prefixes = STACK_SECRET_PREFIX_ENVS
            .iter()
            .filter_map(|name| std::env::var(name).ok())
            .filter(|p| !p.is_empty())
            .collect();
        Self {
            roles: Some(Roles {
                roles: PipelineRoles::new(&adapters.sdk, &adapters.target),
                region: adapters
                    .sdk
                    .region()
                    .map_or_else(|| "us-east-1".to_string(), |r| r.to_string()),
                artifact_bucket: settings.artifact_bucket.clone(),
                stack_name: std::env::var("STACK_NAME").ok().filter(|n| !n.is_empty()),
                secret_prefixes,
                pipeline_secret_prefix: std::env::var("PIPELINE_SECRET_PREFIX")
                    .ok()
                    .filter(|p| !p.is_empty()),
                local: adapters.target.is_local(),
            }),
            fixed: None,
            runner: CommandsRunner::from_env(&adapters.sdk),
        }
    }

    /// Providers over fixed clients, assuming no role: `s3`, `functions`, `secrets` (git
    /// connection tokens), `codecommit`, `ecr` and the Commands `runner`; git sources use the
    /// API base URL of the environment (`GIT_API_BASE_URL`).
    #[cfg(test)]
    pub fn with_clients(
        s3: aws_sdk_s3::Client,
        functions: LambdaFunctions,
        secrets: ConnectionSecrets,
        codecommit: aws_sdk_codecommit::Client,
        ecr: aws_sdk_ecr::Client,
        runner: CommandsRunner,
    ) -> Self {
        Self {
            roles: None,
            fixed: Some(Clients {
                artifacts: S3Artifacts::new(s3),
                functions,
                git: git_source::GitSources::new(
                    &git_source::GitSources::api_base_url_from_env(),
                    secrets,
                ),
                codecommit,
                ecr,
                sfn: aws_sdk_sfn::Client::from_conf(
                    aws_sdk_sfn::Config::builder()
                        .behavior_version(aws_sdk_sfn::config::BehaviorVersion::latest())
                        .region(aws_sdk_sfn::config::Region::new("us-east-1"))
                        .build(),
                ),
                cfn: aws_sdk_cloudformation::Client::from_conf(
                    aws_sdk_cloudformation::Config::builder()
                        .behavior_version(aws_sdk_cloudformation::config::BehaviorVersion::latest())
                        .region(aws_sdk_cloudformation::config::Region::new("us-east-1"))
                        .build(),
                ),
                codebuild: aws_sdk_codebuild::Client::from_conf(
                    aws_sdk_codebuild::Config::builder()
                        .behavior_version(aws_sdk_codebuild::config::BehaviorVersion::latest())
                        .region(aws_sdk_codebuild::config::Region::new("us-east-1"))
                        .build(),
                ),
                codedeploy: aws_sdk_codedeploy::Client::from_conf(
                    aws_sdk_codedeploy::Config::builder()
                        .behavior_version(aws_sdk_codedeploy::config::BehaviorVersion::latest())
                        .region(aws_sdk_codedeploy::config::Region::new("us-east-1"))
                        .build(),
                ),
                ecs: aws_sdk_ecs::Client::from_conf(
                    aws_sdk_ecs::Config::builder()
                        .behavior_version(aws_sdk_ecs::config::BehaviorVersion::latest())
                        .region(aws_sdk_ecs::config::Region::new("us-east-1"))
                        .build(),
                ),
            }),
            runner,
        }
    }

    /// The secrets no action may have read for it (the stack's own, every pipeline's), which a
    /// build would read with its project's role, out of the session policy's reach.
    fn stack_secret_prefixes(&self) -> Vec<String> {
        let mut prefixes = Vec::new();
        if let Some(roles) = &self.roles {
            prefixes.extend(roles.secret_prefixes.iter().cloned());
            // Every pipeline's, of any stack: their prefixes share the first folder.
            if let Some(prefix) = &roles.pipeline_secret_prefix {
                prefixes.push(
                    prefix
                        .split_inclusive('/')
                        .next()
                        .unwrap_or(prefix)
                        .to_string(),
                );
            }
        }
        prefixes
    }

    /// The clients of `prepared`: a session of its role, assumed for it (a role that cannot be
    /// assumed is a configuration error naming the role and STS's reason).
    async fn clients(
        &self,
        prepared: &PreparedAction,
        deadline: Option<Instant>,
    ) -> Result<(Clients, Option<RoleSession>), ProviderError> {
        let Some(roles) = &self.roles else {
            let fixed = self.fixed.clone().expect("fixed clients without roles");
            return Ok((fixed, None));
        };
        let role = prepared.role_arn.as_deref().ok_or_else(|| {
            ProviderError::Configuration(
                "roleArn: the action does its AWS work with the pipeline's role (or the \
                 action's own roleArn), and neither is set"
                    .into(),
            )
        })?;
        let pipeline = prepared.pipeline_name();
        let stack_name = roles.stack_name.clone().ok_or_else(|| {
            ProviderError::Job("STACK_NAME is not set: the action function cannot tell which resources are the stack's".into())
        })?;
        let boundary = StackBoundary {
            region: roles.region.clone(),
            account: prepared.account_id.clone(),
            artifact_bucket: roles.artifact_bucket.clone(),
            stack_name,
            secret_prefixes: roles.secret_prefixes.clone(),
            pipeline_secret_prefix: roles.pipeline_secret_prefix.clone(),
            state_machine_prefix: "pipewright-".into(),
            head_object_action: roles.local,
        };
        let policy = pipeline_roles::session_policy(&boundary, pipeline)
            .map_err(ProviderError::Configuration)?;
        let name = pipeline_roles::session_name(
            pipeline,
            &prepared.record.pipeline_execution_id,
            &prepared.record.action_name,
        );
        let lasting = deadline
            .map(|d| d.saturating_duration_since(Instant::now()))
            .unwrap_or_default()
            + Duration::from_secs(120);
        let session = roles
            .roles
            .assume(role, &prepared.pipeline_arn, &name, &policy, lasting)
            .await
            .map_err(|e| {
                if e.is_refusal() {
                    ProviderError::Configuration(e.to_string())
                } else {
                    ProviderError::Job(e.to_string())
                }
            })?;
        tracing::info!(role = %role, session = %name, "pipeline role assumed");
        let clients = Clients::for_session(&session);
        Ok((clients, Some(session)))
    }

    /// Run `prepared` through its provider. `deadline` is when the function will be stopped
    /// (the Lambda deadline): long work is stopped a little before it and fails as timed out.
    /// `None` means the work was started and the action is completed later by whoever finishes
    /// it (a job result).
    pub async fn run(
        &self,
        prepared: &PreparedAction,
        deadline: Option<Instant>,
    ) -> Result<Option<ActionOutcome>, ProviderError> {
        let id = &prepared.declaration.action_type_id;
        let provider = (id.category, id.owner, id.provider.as_str());
        if !is_run_here(provider) {
            return Err(ProviderError::Configuration(format!(
                "provider {id} is not run by the action function yet"
            )));
        }
        if let Some(work) = pipewright_core::engine::external::started_work(&prepared.record) {
            // An earlier delivery of this task started the work: wait for it, start nothing.
            tracing::info!(%work, "the work was started by an earlier delivery: waiting for it");
            return Ok(Some(ActionOutcome::in_progress(
                prepared.record.output.execution_result.clone(),
                prepared.record.output.output_variables.clone(),
            )));
        }
        let (clients, session) = self.clients(prepared, deadline).await?;
        let work_root = std::env::temp_dir();
        let c = &clients;
        match provider {
            (ActionCategory::Source, ActionOwner::Aws, "S3") => {
                s3_source::run(&c.artifacts, prepared).await.map(Some)
            }
            (ActionCategory::Compute, ActionOwner::Aws, "Commands")
                if pipewright_core::codebuild::runs_on_codebuild(id, &prepared.configuration) =>
            {
                codebuild::run_commands(&c.codebuild, prepared, &self.stack_secret_prefixes())
                    .await
                    .map(Some)
            }
            (ActionCategory::Compute, ActionOwner::Aws, "Commands") => commands::run(
                &c.artifacts,
                &self.runner,
                prepared,
                deadline,
                session.as_ref(),
            )
            .await
            .map(Some),
            (ActionCategory::Deploy, ActionOwner::Aws, "S3") => {
                s3_deploy::run(&c.artifacts, prepared, &work_root)
                    .await
                    .map(Some)
            }
            (ActionCategory::Source, ActionOwner::Aws, "CodeStarSourceConnection")
            | (ActionCategory::Source, ActionOwner::ThirdParty, "GitHub") => {
                git_source::run(&c.git, &c.artifacts, prepared, &work_root, deadline)
                    .await
                    .map(Some)
            }
            (ActionCategory::Source, ActionOwner::Aws, "CodeCommit") => {
                let region = action_region(prepared, c.codecommit.config().region());
                codecommit_source::run(
                    &c.codecommit,
                    &c.artifacts,
                    prepared,
                    &work_root,
                    deadline,
                    &region,
                )
                .await
                .map(Some)
            }
            (ActionCategory::Source, ActionOwner::Aws, "ECR") => {
                let region = action_region(prepared, c.ecr.config().region());
                ecr_source::run(&c.ecr, &c.artifacts, prepared, &work_root, &region)
                    .await
                    .map(Some)
            }
            (ActionCategory::Invoke, ActionOwner::Aws, "Lambda") => {
                lambda_invoke::run(&c.functions, prepared)
                    .await
                    .map(|()| None)
            }
            (ActionCategory::Invoke, ActionOwner::Aws, "StepFunctions") => {
                step_functions::run(&c.sfn, &c.artifacts, prepared, &work_root)
                    .await
                    .map(Some)
            }
            (ActionCategory::Deploy, ActionOwner::Aws, "CloudFormation") => {
                cloudformation::run(&c.cfn, &c.artifacts, prepared, &work_root, deadline)
                    .await
                    .map(Some)
            }
            (ActionCategory::Build | ActionCategory::Test, ActionOwner::Aws, "CodeBuild") => {
                codebuild::run(&c.codebuild, prepared, &self.stack_secret_prefixes())
                    .await
                    .map(Some)
            }
            (ActionCategory::Deploy, ActionOwner::Aws, "CodeDeploy") => {
                codedeploy::run(&c.codedeploy, prepared).await.map(Some)
            }
            (ActionCategory::Deploy, ActionOwner::Aws, "ECS") => {
                ecs::run(&c.ecs, &c.artifacts, prepared, &work_root)
                    .await
                    .map(Some)
            }
            _ => unreachable!("is_run_here lists the providers matched above"),
        }
    }

    /// The outcome of `prepared`, whose work the service's `event` says ended, read (and its
    /// output written) with the pipeline role's session.
    pub async fn complete(
        &self,
        prepared: &PreparedAction,
        event: &WorkEvent,
    ) -> Result<ActionOutcome, ProviderError> {
        let (c, _session) = self.clients(prepared, None).await?;
        let work_root = std::env::temp_dir();
        match event {
            WorkEvent::StateMachine(ended) => {
                step_functions::complete(&c.artifacts, prepared, ended, &work_root).await
            }
            WorkEvent::Stack(changed) => {
                cloudformation::complete(&c.cfn, &c.artifacts, prepared, changed, &work_root).await
            }
            WorkEvent::Build(ended) => {
                codebuild::complete(&c.codebuild, &c.artifacts, prepared, ended).await
            }
            WorkEvent::Deployment(ended) => {
                codedeploy::complete(&c.codedeploy, prepared, ended).await
            }
            WorkEvent::ServiceDeployment(ended) => ecs::complete(&c.ecs, prepared, ended).await,
        }
    }

    /// For work just started (`outcome` in progress): its outcome when it already ended (a
    /// stack the emulator, a build, or a quick failure, settled within the call), so nothing
    /// waits for an event that may have come before the start was recorded.
    pub async fn settled(
        &self,
        prepared: &PreparedAction,
        outcome: &ActionOutcome,
    ) -> Result<Option<ActionOutcome>, ProviderError> {
        let id = &prepared.declaration.action_type_id;
        match (id.category, id.owner, id.provider.as_str()) {
            (ActionCategory::Deploy, ActionOwner::Aws, "CloudFormation") => {
                let (c, _session) = self.clients(prepared, None).await?;
                cloudformation::settled(
                    &c.cfn,
                    &c.artifacts,
                    prepared,
                    outcome,
                    &std::env::temp_dir(),
                )
                .await
            }
            (ActionCategory::Deploy, ActionOwner::Aws, "CodeDeploy") => {
                let (c, _session) = self.clients(prepared, None).await?;
                codedeploy::settled(&c.codedeploy, prepared, outcome).await
            }
            (ActionCategory::Deploy, ActionOwner::Aws, "ECS") => {
                let (c, _session) = self.clients(prepared, None).await?;
                ecs::settled(&c.ecs, prepared, outcome).await
            }
            _ if pipewright_core::codebuild::runs_on_codebuild(id, &prepared.configuration) => {
                let (c, _session) = self.clients(prepared, None).await?;
                codebuild::settled(&c.codebuild, &c.artifacts, prepared, outcome).await
            }
            _ => Ok(None),
        }
    }
}

/// Whether the action function runs provider (category, owner, provider).
fn is_run_here(provider: (ActionCategory, ActionOwner, &str)) -> bool {
    matches!(
        provider,
        (ActionCategory::Source, ActionOwner::Aws, "S3")
            | (ActionCategory::Compute, ActionOwner::Aws, "Commands")
            | (ActionCategory::Deploy, ActionOwner::Aws, "S3")
            | (
                ActionCategory::Source,
                ActionOwner::Aws,
                "CodeStarSourceConnection"
            )
            | (ActionCategory::Source, ActionOwner::ThirdParty, "GitHub")
            | (ActionCategory::Source, ActionOwner::Aws, "CodeCommit")
            | (ActionCategory::Source, ActionOwner::Aws, "ECR")
            | (ActionCategory::Invoke, ActionOwner::Aws, "Lambda")
            | (ActionCategory::Invoke, ActionOwner::Aws, "StepFunctions")
            | (ActionCategory::Deploy, ActionOwner::Aws, "CloudFormation")
            | (
                ActionCategory::Build | ActionCategory::Test,
                ActionOwner::Aws,
                "CodeBuild"
            )
            | (ActionCategory::Deploy, ActionOwner::Aws, "CodeDeploy")
            | (ActionCategory::Deploy, ActionOwner::Aws, "ECS")
    )
}

/// The Lambda deadline (`Context::deadline`, milliseconds since the epoch) as an [`Instant`];
/// `None` when unknown (0).
pub fn lambda_deadline(deadline_ms: u64) -> Option<Instant> {
    if deadline_ms == 0 {
        return None;
    }
    Some(pipewright_core::runner::instant_from_epoch_ms(deadline_ms))
}

/// The region the action works in: its own `region`, else the client's, else `us-east-1`.
fn action_region(
    prepared: &PreparedAction,
    client: Option<&aws_sdk_codecommit::config::Region>,
) -> String {
    prepared
        .record
        .input
        .region
        .clone()
        .filter(|r| !r.is_empty())
        .or_else(|| client.map(|r| r.to_string()))
        .unwrap_or_else(|| "us-east-1".to_string())
}

/// What an AWS SDK error says: its code and the HTTP status when the service answered, and its
/// message (the error and its causes when there was no answer).
fn aws_failure<E>(err: &SdkError<E>) -> (Option<String>, Option<u16>, String)
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = err.raw_response().map(|r| r.status().as_u16());
    match err.code() {
        Some(code) => (
            Some(code.to_string()),
            status,
            err.message().unwrap_or_default().to_string(),
        ),
        None => (
            None,
            status,
            pipewright_aws::error_chain(
                &status.map_or_else(|| "no answer".to_string(), |s| format!("HTTP {s}")),
                err,
            ),
        ),
    }
}

/// A refusal of `service:call` on `what` as the failure it means: access denied is a
/// `PermissionError`, a code `is_configuration` accepts a `ConfigurationError` (the action's
/// configuration names something that does not exist or cannot work), anything else `JobFailed`.
/// The message names the call, what it was about, the code and the service's message.
fn service_error<E>(
    service: &str,
    call: &str,
    what: &str,
    err: &SdkError<E>,
    is_configuration: impl Fn(&str) -> bool,
) -> ProviderError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let (code, _, message) = aws_failure(err);
    let text = format!(
        "{service}:{call} {what}: {}{message}",
        code.as_deref()
            .map(|c| format!("{c}: "))
            .unwrap_or_default()
    );
    match code.as_deref() {
        Some("AccessDenied" | "AccessDeniedException") => ProviderError::Permission(text),
        Some(c) if is_configuration(c) => ProviderError::Configuration(text),
        _ => ProviderError::Job(text),
    }
}

/// A required configuration key.
fn required<'a>(prepared: &'a PreparedAction, key: &str) -> Result<&'a str, ProviderError> {
    match prepared.configuration.get(key).map(|v| v.trim()) {
        Some(v) if !v.is_empty() => Ok(v),
        _ => Err(ProviderError::Configuration(format!(
            "configuration {key} is required by {}",
            prepared.declaration.action_type_id
        ))),
    }
}

/// Configuration `key`'s bucket, unless it is the stack's artifact bucket (where the action's own
/// log goes): that bucket holds every pipeline's artifacts and logs, so an action reading or
/// writing it directly could read or overwrite another pipeline's. The role allows the bucket
/// (the action function moves artifacts), so this check is what keeps actions out.
fn outside_artifact_bucket<'a>(
    prepared: &PreparedAction,
    key: &str,
    bucket: &'a str,
) -> Result<&'a str, ProviderError> {
    if bucket == prepared.log_location.bucket {
        return Err(ProviderError::Configuration(format!(
            "configuration {key}: {bucket} is this Pipewright stack's artifact bucket, which \
             holds every pipeline's artifacts and logs; an action may not read or write it \
             directly: use a bucket of your own"
        )));
    }
    Ok(bucket)
}

/// An optional configuration key (blank counts as absent).
fn optional<'a>(prepared: &'a PreparedAction, key: &str) -> Option<&'a str> {
    prepared
        .configuration
        .get(key)
        .map(|v| v.trim())
        .filter(|v| !v.is_empty())
}

/// The text of file `path` (configuration `key`) of input artifact `artifact`: the artifact is
/// downloaded and extracted in a scratch folder under `work_root` (removed after), the file read
/// as [`read_extracted`] reads it, at most `max` bytes.
async fn read_input_file(
    artifacts: &S3Artifacts,
    prepared: &PreparedAction,
    artifact: &ArtifactDetail,
    path: &str,
    key: &str,
    max: u64,
    work_root: &std::path::Path,
) -> Result<String, ProviderError> {
    let parts = pipewright_aws::artifacts::safe_relative(path)
        .context(|| format!("configuration {key}"))?;
    let work = work_root.join(format!(
        "pipewright-{}",
        prepared.record.action_execution_id
    ));
    let read = async {
        tokio::fs::create_dir_all(&work)
            .await
            .map_err(|e| ProviderError::Job(format!("creating {}: {e}", work.display())))?;
        artifacts
            .download_and_extract(
                &artifact.s3_location,
                &work.join("artifact.zip"),
                &work.join("files"),
            )
            .await
            .context(|| format!("input artifact {}", artifact.name))?;
        read_extracted(&work.join("files"), &parts, path, &artifact.name, key, max).await
    };
    let text = read.await;
    remove_work_dir(work).await;
    text
}

/// The text of file `parts` (`shown` as configured) of input artifact `artifact`, extracted under
/// `root`, reached without following a symbolic link: an archive's links may point anywhere on
/// the machine that extracted it. At most `max` bytes; `key` names the configuration in errors.
async fn read_extracted(
    root: &std::path::Path,
    parts: &[&str],
    shown: &str,
    artifact: &str,
    key: &str,
    max: u64,
) -> Result<String, ProviderError> {
    let missing = || {
        ProviderError::Configuration(format!(
            "configuration {key}: input artifact {artifact} has no file {shown}"
        ))
    };
    let mut path = root.to_path_buf();
    for (i, part) in parts.iter().enumerate() {
        path.push(part);
        let meta = tokio::fs::symlink_metadata(&path)
            .await
            .map_err(|_| missing())?;
        if meta.file_type().is_symlink() {
            return Err(ProviderError::Configuration(format!(
                "configuration {key}: {shown} of input artifact {artifact} is reached through a \
                 symbolic link, which is not followed"
            )));
        }
        let last = i + 1 == parts.len();
        if (last && !meta.is_file()) || (!last && !meta.is_dir()) {
            return Err(missing());
        }
        if last && meta.len() > max {
            return Err(ProviderError::Configuration(format!(
                "configuration {key}: {shown} is {} bytes, more than the {max} read",
                meta.len()
            )));
        }
    }
    if parts.is_empty() {
        return Err(missing());
    }
    tokio::fs::read_to_string(&path).await.map_err(|e| {
        ProviderError::Configuration(format!("configuration {key}: {shown} is not text: {e}"))
    })
}

/// Zip the files of `dir` into output artifact `output`'s location.
async fn upload_output(
    artifacts: &S3Artifacts,
    output: &ArtifactDetail,
    dir: &std::path::Path,
) -> Result<pipewright_core::execution::ArtifactLocation, ProviderError> {
    artifacts
        .upload_dir(
            dir,
            &[],
            &output.s3_location.bucket,
            &output.s3_location.key,
        )
        .await
        .context(|| format!("output artifact {}", output.name))
}

/// Output artifact `output` holding one file, `path` (relative; `key` names the configuration
/// it comes from in errors), with `contents`; `work` is a scratch folder.
async fn write_output_file(
    artifacts: &S3Artifacts,
    output: &ArtifactDetail,
    (key, path): (&str, &str),
    contents: &[u8],
    work: &std::path::Path,
) -> Result<ArtifactDetail, ProviderError> {
    let parts = pipewright_aws::artifacts::safe_relative(path)
        .context(|| format!("configuration {key}"))?;
    let files = work.join("files");
    let file = parts.iter().fold(files.clone(), |p, part| p.join(part));
    if let Some(parent) = file.parent() {
        tokio::fs::create_dir_all(parent)
            .await
            .map_err(|e| ProviderError::Job(format!("creating {}: {e}", parent.display())))?;
    }
    tokio::fs::write(&file, contents)
        .await
        .map_err(|e| ProviderError::Job(format!("writing {path}: {e}")))?;
    Ok(ArtifactDetail {
        name: output.name.clone(),
        s3_location: upload_output(artifacts, output, &files).await?,
    })
}

/// Remove a work directory, off the async threads.
async fn remove_work_dir(dir: PathBuf) {
    let shown = dir.display().to_string();
    let removed = tokio::task::spawn_blocking(move || match std::fs::remove_dir_all(&dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    })
    .await;
    if !matches!(removed, Ok(Ok(()))) {
        tracing::warn!(dir = %shown, "the work directory could not be removed");
    }
}

#[cfg(test)]
pub(crate) mod test_support {
    use std::collections::BTreeMap;
    use std::sync::{Arc, Mutex};

    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    use pipewright_core::declaration::ActionDeclaration;
    use pipewright_core::engine::PreparedAction;
    use pipewright_core::execution::{
        ActionExecution, ActionExecutionInput, ActionExecutionStatus,
    };

    /// A prepared action of `declaration` (JSON of an `ActionDeclaration`) with `configuration`.
    pub fn prepared(declaration: serde_json::Value) -> PreparedAction {
        let declaration: ActionDeclaration =
            serde_json::from_value(declaration).expect("declaration");
        PreparedAction {
            record: ActionExecution {
                pipeline_execution_id: "11111111-2222-3333-4444-555555555555".into(),
                action_execution_id: "aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee".into(),
                pipeline_version: 1,
                stage_name: "Build".into(),
                action_name: declaration.name.clone(),
                attempt: 1,
                status: ActionExecutionStatus::InProgress,
                start_time: 0.0,
                last_update_time: 0.0,
                updated_by: None,
                input: ActionExecutionInput {
                    action_type_id: declaration.action_type_id.clone(),
                    configuration: declaration.configuration().clone(),
                    resolved_configuration: declaration.configuration().clone(),
                    region: Some("us-east-1".into()),
                    input_artifacts: Vec::new(),
                    namespace: None,
                },
                output: Default::default(),
                log_tail: None,
                log_location: None,
                source_revision: None,
                task_token: None,
                percent_complete: None,
            },
            configuration: declaration.configuration().clone(),
            commands: declaration.commands().to_vec(),
            declaration,
            inputs: Vec::new(),
            outputs: Vec::new(),
            variables: BTreeMap::new(),
            source_revision_overrides: Vec::new(),
            account_id: "123456789012".into(),
            log_location: pipewright_core::execution::ArtifactLocation {
                bucket: "artifacts".into(),
                key: "pipeline/logs/aaaaaaaa-bbbb-cccc-dddd-eeeeeeeeeeee.log".into(),
                version_id: None,
            },
            role_arn: Some("arn:aws:iam::123456789012:role/pipeline".into()),
            pipeline_arn: "arn:aws:codepipeline:us-east-1:123456789012:pipeline".into(),
        }
    }

    /// The requests an [`aws_json_service`] saw: (operation, body).
    pub type Calls = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

    /// A loopback server speaking AWS's JSON 1.1 protocol: each request's operation (from
    /// `X-Amz-Target`) and body go to `answer`, which returns the status and body (an error is
    /// `{"__type": "<code>", "message": ...}`). Returns its base URL and the calls it saw.
    pub async fn aws_json_service(
        answer: impl Fn(&str, &serde_json::Value) -> (u16, serde_json::Value) + Send + Sync + 'static,
    ) -> (String, Calls) {
        let calls: Calls = Arc::default();
        let log = calls.clone();
        let base = loopback(move |head, body| {
            let operation = header(head, "x-amz-target")
                .and_then(|t| t.rsplit('.').next().map(str::to_string))
                .unwrap_or_default();
            let body: serde_json::Value =
                serde_json::from_slice(body).unwrap_or(serde_json::Value::Null);
            log.lock().unwrap().push((operation.clone(), body.clone()));
            let (status, out) = answer(&operation, &body);
            let out = out.to_string();
            format!(
                "HTTP/1.1 {status} X\r\nConnection: close\r\nContent-Type: application/x-amz-json-1.1\r\nContent-Length: {}\r\n\r\n{out}",
                out.len()
            )
            .into_bytes()
        })
        .await;
        (base, calls)
    }

    /// Header `name` (any case) of a request `head`.
    pub fn header(head: &str, name: &str) -> Option<String> {
        head.lines().find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case(name).then(|| v.trim().to_string())
        })
    }

    /// A loopback HTTP/1.1 server: each request's head (request line and headers) and body
    /// (`Content-Length` bytes) go to `respond`, whose bytes are the whole response; one request
    /// per connection. Returns its base URL.
    pub async fn loopback(
        respond: impl Fn(&str, &[u8]) -> Vec<u8> + Send + Sync + 'static,
    ) -> String {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let respond = Arc::new(respond);
        tokio::spawn(async move {
            loop {
                let Ok((mut socket, _)) = listener.accept().await else {
                    return;
                };
                let respond = respond.clone();
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut byte = [0u8; 1];
                    while !head.ends_with(b"\r\n\r\n") {
                        if socket.read(&mut byte).await.unwrap_or(0) == 0 {
                            return;
                        }
                        head.push(byte[0]);
                    }
                    let head = String::from_utf8_lossy(&head).to_string();
                    let length: usize = header(&head, "content-length")
                        .and_then(|v| v.parse().ok())
                        .unwrap_or(0);
                    let mut body = vec![0u8; length];
                    if socket.read_exact(&mut body).await.is_err() {
                        return;
                    }
                    let _ = socket.write_all(&respond(&head, &body)).await;
                    let _ = socket.shutdown().await;
                });
            }
        });
        base
    }

    /// An AWS error answer.
    pub fn aws_error(code: &str, message: &str) -> (u16, serde_json::Value) {
        (400, serde_json::json!({"__type": code, "message": message}))
    }

    /// A CodeCommit client of `base` (an [`aws_json_service`]).
    pub fn codecommit_client(base: &str) -> aws_sdk_codecommit::Client {
        aws_sdk_codecommit::Client::from_conf(
            aws_sdk_codecommit::Config::builder()
                .behavior_version(aws_sdk_codecommit::config::BehaviorVersion::latest())
                .region(aws_sdk_codecommit::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_codecommit::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(base)
                .build(),
        )
    }

    /// An ECR client of `base` (an [`aws_json_service`]).
    pub fn ecr_client(base: &str) -> aws_sdk_ecr::Client {
        aws_sdk_ecr::Client::from_conf(
            aws_sdk_ecr::Config::builder()
                .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
                .region(aws_sdk_ecr::config::Region::new("us-east-1"))
                .credentials_provider(aws_sdk_ecr::config::Credentials::new(
                    "test", "test", None, None, "test",
                ))
                .endpoint_url(base)
                .build(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn the_stack_artifact_bucket_is_refused_as_an_actions_own_bucket() {
        let p = test_support::prepared(json!({
            "name": "Publish",
            "actionTypeId": {"category": "Deploy", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"BucketName": "b", "Extract": "true"}
        }));
        let stack_bucket = p.log_location.bucket.clone();
        let err = outside_artifact_bucket(&p, "BucketName", &stack_bucket).unwrap_err();
        assert!(
            matches!(&err, ProviderError::Configuration(m) if m.contains("BucketName") && m.contains("artifact bucket")),
            "{err}"
        );
        assert_eq!(
            outside_artifact_bucket(&p, "BucketName", "my-site").unwrap(),
            "my-site"
        );
    }

    fn providers() -> Providers {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .region(aws_sdk_s3::config::Region::new("us-east-1"))
            .build();
        let lambda = aws_sdk_lambda::Config::builder()
            .behavior_version(aws_sdk_lambda::config::BehaviorVersion::latest())
            .region(aws_sdk_lambda::config::Region::new("us-east-1"))
            .build();
        let secrets = aws_sdk_secretsmanager::Config::builder()
            .behavior_version(aws_sdk_secretsmanager::config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .build();
        let codecommit = aws_sdk_codecommit::Config::builder()
            .behavior_version(aws_sdk_codecommit::config::BehaviorVersion::latest())
            .region(aws_sdk_codecommit::config::Region::new("us-east-1"))
            .build();
        let ecr = aws_sdk_ecr::Config::builder()
            .behavior_version(aws_sdk_ecr::config::BehaviorVersion::latest())
            .region(aws_sdk_ecr::config::Region::new("us-east-1"))
            .build();
        Providers::with_clients(
            aws_sdk_s3::Client::from_conf(config),
            LambdaFunctions::new(aws_sdk_lambda::Client::from_conf(lambda.clone())),
            ConnectionSecrets::new(
                aws_sdk_secretsmanager::Client::from_conf(secrets),
                "pipewright/connections/",
            ),
            aws_sdk_codecommit::Client::from_conf(codecommit),
            aws_sdk_ecr::Client::from_conf(ecr),
            CommandsRunner::new(aws_sdk_lambda::Client::from_conf(lambda), None),
        )
    }

    #[tokio::test]
    async fn other_providers_are_configuration_errors() {
        let prepared = test_support::prepared(json!({
            "name": "Deploy",
            "actionTypeId": {"category": "Invoke", "owner": "AWS", "provider": "CodePipeline", "version": "1"}
        }));
        let err = providers().run(&prepared, None).await.unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert_eq!(
            err.to_string(),
            "provider Invoke/AWS/CodePipeline (version 1) is not run by the action function yet"
        );
    }

    #[tokio::test]
    async fn missing_configuration_is_named() {
        let prepared = test_support::prepared(json!({
            "name": "Src",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": "b"}
        }));
        let err = providers().run(&prepared, None).await.unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(err.to_string().contains("S3ObjectKey"), "{err}");
    }

    #[tokio::test]
    async fn codecommit_and_ecr_configurations_are_checked_before_any_call() {
        let codecommit = test_support::prepared(json!({
            "name": "Src",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "CodeCommit", "version": "1"},
            "configuration": {"RepositoryName": "app", "BranchName": "main", "OutputArtifactFormat": "CODEBUILD_CLONE_REF"}
        }));
        let err = providers().run(&codecommit, None).await.unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert!(
            err.to_string()
                .starts_with("configuration OutputArtifactFormat: CODEBUILD_CLONE_REF"),
            "{err}"
        );
        let ecr = test_support::prepared(json!({
            "name": "Src",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
            "configuration": {"ImageTag": "v1"}
        }));
        let err = providers().run(&ecr, None).await.unwrap_err();
        assert_eq!(err.code(), FailureType::ConfigurationError);
        assert_eq!(err.to_string(), "configuration RepositoryName is required");
        // A valid configuration without an output artifact.
        let no_output = test_support::prepared(json!({
            "name": "Src",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"},
            "configuration": {"RepositoryName": "app"}
        }));
        let err = providers().run(&no_output, None).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "an ECR source action needs one output artifact"
        );
    }

    #[test]
    fn the_action_region_wins_over_the_clients() {
        let mut prepared = test_support::prepared(json!({
            "name": "Src",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "ECR", "version": "1"}
        }));
        let client = aws_sdk_codecommit::config::Region::new("eu-west-1");
        assert_eq!(action_region(&prepared, Some(&client)), "us-east-1");
        prepared.record.input.region = None;
        assert_eq!(action_region(&prepared, Some(&client)), "eu-west-1");
        assert_eq!(action_region(&prepared, None), "us-east-1");
    }

    #[test]
    fn artifact_errors_map_to_failure_types() {
        let s3 = |code: &str, status| ProviderError::Artifact {
            context: "input artifact A".into(),
            source: ArtifactError::S3(Box::new(pipewright_aws::artifacts::S3Failure {
                operation: "GetObject",
                bucket: "b".into(),
                key: "k".into(),
                code: Some(code.into()),
                status: Some(status),
                message: "m".into(),
            })),
        };
        assert_eq!(s3("AccessDenied", 403).code(), FailureType::PermissionError);
        assert_eq!(s3("InternalError", 500).code(), FailureType::JobFailed);
        assert_eq!(
            s3("InternalError", 500).to_string(),
            "input artifact A: S3 GetObject s3://b/k: m"
        );
        let pattern = ProviderError::Artifact {
            context: "output artifact B".into(),
            source: ArtifactError::Pattern {
                pattern: "../x".into(),
                reason: "no".into(),
            },
        };
        assert_eq!(pattern.code(), FailureType::ConfigurationError);
    }

    /// A file of an artifact is read only where the archive put it: a link (which an archive
    /// may hold, pointing anywhere on the machine) is not followed.
    #[tokio::test]
    async fn artifact_files_are_read_without_following_links() {
        let root = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        std::fs::write(outside.path().join("secret"), "host secret").unwrap();
        std::fs::create_dir(root.path().join("infra")).unwrap();
        std::fs::write(root.path().join("infra/template.json"), "{}").unwrap();
        std::os::unix::fs::symlink(outside.path().join("secret"), root.path().join("link.json"))
            .unwrap();
        std::os::unix::fs::symlink(outside.path(), root.path().join("dir")).unwrap();
        let read = |parts: Vec<&'static str>| {
            let root = root.path().to_path_buf();
            async move { read_extracted(&root, &parts, "shown", "Src", "TemplatePath", 100).await }
        };
        assert_eq!(read(vec!["infra", "template.json"]).await.unwrap(), "{}");
        for parts in [vec!["link.json"], vec!["dir", "secret"]] {
            let err = read(parts).await.unwrap_err();
            assert_eq!(err.code(), FailureType::ConfigurationError);
            assert!(err.to_string().contains("symbolic link"), "{err}");
        }
        let err = read(vec!["infra", "nope.json"]).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "configuration TemplatePath: input artifact Src has no file shown"
        );
    }

    #[test]
    fn deadline_from_lambda_context() {
        assert_eq!(lambda_deadline(0), None);
        let now_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis() as u64;
        let deadline = lambda_deadline(now_ms + 60_000).unwrap();
        let left = deadline.saturating_duration_since(Instant::now());
        assert!(
            left > Duration::from_secs(58) && left <= Duration::from_secs(60),
            "{left:?}"
        );
    }
}
