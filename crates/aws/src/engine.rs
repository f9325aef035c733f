//! The engine's adapters, built once per function from its environment (outside the handler),
//! and the [`Engine`] over them for each invocation.
//!
//! Environment (set by `template.yaml`):
//! - `PIPELINES_TABLE`, `EXECUTIONS_TABLE`, `ARTIFACT_BUCKET`: required;
//! - `ORCHESTRATOR_ARN` and `ACTION_ARN`: the functions the compiled state machines call; only
//!   functions that start executions have them (both or neither);
//! - `STATE_MACHINE_ROLE_ARN`: the role new state machines run with (same functions);
//! - `EVENT_BUS_NAME`: where state-change events go (default `default`);
//! - `AWS_ENDPOINT_URL` (the local emulator) and `AWS_REGION`, through [`Target::from_env`].
//!
//! The account id is not in a Lambda's environment: [`Adapters::engine`] takes it from the
//! invoked function's ARN.

use std::sync::OnceLock;

use aws_config::SdkConfig;
use pipewright_core::asl::AslTargets;
use pipewright_core::engine::{Engine, EngineConfig};

use crate::config::{self, Target, DEFAULT_REGION};
use crate::events::EventBridgePublisher;
use crate::execution_store::DynamoExecutionStore;
use crate::lambda::LambdaFunctions;
use crate::pipeline_store::DynamoPipelineStore;
use crate::sfn::{SfnStateMachines, SfnTaskCallbacks};

/// The account id used when the function ARN has none (the local emulator's default).
pub const FALLBACK_ACCOUNT_ID: &str = "123456789012";

/// The bus events go to when `EVENT_BUS_NAME` is not set.
pub const DEFAULT_EVENT_BUS: &str = "default";

/// What a function's environment configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PIPELINES_TABLE`.
    pub pipelines_table: String,
    /// `EXECUTIONS_TABLE`.
    pub executions_table: String,
    /// `ARTIFACT_BUCKET`.
    pub artifact_bucket: String,
    /// `ORCHESTRATOR_ARN` and `ACTION_ARN`, when both are set.
    pub targets: Option<AslTargets>,
    /// `STATE_MACHINE_ROLE_ARN`.
    pub state_machine_role_arn: Option<String>,
    /// `EVENT_BUS_NAME`, default [`DEFAULT_EVENT_BUS`].
    pub event_bus_name: String,
}

impl Settings {
    /// Read the process environment.
    pub fn from_env() -> Result<Self, String> {
        Self::from_lookup(|name| std::env::var(name).ok())
    }

    /// Read variables through `get` (empty values count as unset). The error names the missing
    /// or inconsistent variables.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self, String> {
        let get = |name: &str| get(name).filter(|v| !v.trim().is_empty());
        let required = ["PIPELINES_TABLE", "EXECUTIONS_TABLE", "ARTIFACT_BUCKET"];
        let missing: Vec<&str> = required
            .iter()
            .copied()
            .filter(|name| get(name).is_none())
            .collect();
        if !missing.is_empty() {
            return Err(format!(
                "environment variable{} {} not set",
                if missing.len() == 1 { "" } else { "s" },
                match missing.len() {
                    1 => format!("{} is", missing[0]),
                    _ => format!("{} are", missing.join(", ")),
                }
            ));
        }
        let targets = match (get("ORCHESTRATOR_ARN"), get("ACTION_ARN")) {
            (Some(orchestrator_arn), Some(action_arn)) => Some(AslTargets {
                orchestrator_arn,
                action_arn,
            }),
            (None, None) => None,
            (Some(_), None) => {
                return Err(
                    "ORCHESTRATOR_ARN is set but ACTION_ARN is not: set both or neither".into(),
                )
            }
            (None, Some(_)) => {
                return Err(
                    "ACTION_ARN is set but ORCHESTRATOR_ARN is not: set both or neither".into(),
                )
            }
        };
        Ok(Self {
            pipelines_table: get("PIPELINES_TABLE").unwrap_or_default(),
            executions_table: get("EXECUTIONS_TABLE").unwrap_or_default(),
            artifact_bucket: get("ARTIFACT_BUCKET").unwrap_or_default(),
            targets,
            state_machine_role_arn: get("STATE_MACHINE_ROLE_ARN"),
            event_bus_name: get("EVENT_BUS_NAME").unwrap_or_else(|| DEFAULT_EVENT_BUS.into()),
        })
    }
}

/// SDK configuration, clients and the engine's adapters: built once, used by every invocation.
#[derive(Debug)]
pub struct Adapters {
    /// The shared SDK configuration.
    pub sdk: SdkConfig,
    /// Where the clients point (the local emulator or AWS).
    pub target: Target,
    /// The environment's settings.
    pub settings: Settings,
    /// S3 (path-style against the emulator).
    pub s3: aws_sdk_s3::Client,
    /// Pipeline declarations.
    pub pipelines: DynamoPipelineStore,
    /// Execution records.
    pub executions: DynamoExecutionStore,
    /// State-change events.
    pub events: EventBridgePublisher,
    /// Task tokens.
    pub tasks: SfnTaskCallbacks,
    /// The functions job-worker actions invoke.
    pub functions: LambdaFunctions,
    sfn: aws_sdk_sfn::Client,
    /// Built on first use, for the account of the first invoked function ARN (one function has
    /// one ARN, so one account).
    machines: OnceLock<SfnStateMachines>,
}

impl Adapters {
    /// Adapters for the function's environment: [`Settings::from_env`], [`Target::from_env`].
    pub async fn from_env() -> Result<Adapters, String> {
        let settings = Settings::from_env()?;
        let target = Target::from_env();
        let sdk = config::load(&target).await;
        Ok(Self::new(sdk, target, settings))
    }

    /// Adapters over `sdk` (pointed at `target`) with `settings`.
    pub fn new(sdk: SdkConfig, target: Target, settings: Settings) -> Self {
        let dynamodb = aws_sdk_dynamodb::Client::new(&sdk);
        let sfn = aws_sdk_sfn::Client::new(&sdk);
        Self {
            s3: config::s3_client(&sdk, &target),
            pipelines: DynamoPipelineStore::new(dynamodb.clone(), &settings.pipelines_table),
            executions: DynamoExecutionStore::new(dynamodb, &settings.executions_table),
            events: EventBridgePublisher::new(
                aws_sdk_eventbridge::Client::new(&sdk),
                &settings.event_bus_name,
            ),
            tasks: SfnTaskCallbacks::new(sfn.clone()),
            functions: LambdaFunctions::new(aws_sdk_lambda::Client::new(&sdk)),
            sfn,
            machines: OnceLock::new(),
            sdk,
            target,
            settings,
        }
    }

    /// The region of the SDK configuration.
    pub fn region(&self) -> String {
        self.sdk
            .region()
            .map(|r| r.as_ref().to_string())
            .unwrap_or_else(|| DEFAULT_REGION.to_string())
    }

    /// The state machines of `account_id` (the account of the first call is kept).
    pub fn state_machines(&self, account_id: &str) -> &SfnStateMachines {
        self.machines.get_or_init(|| {
            SfnStateMachines::new(
                self.sfn.clone(),
                self.settings.state_machine_role_arn.clone(),
                self.region(),
                account_id,
            )
        })
    }

    /// The engine for one invocation of the function `invoked_function_arn`
    /// (`arn:aws:lambda:<region>:<account>:function:<name>`: the account id is its 5th field,
    /// [`FALLBACK_ACCOUNT_ID`] when it has none).
    pub fn engine(&self, invoked_function_arn: &str) -> Engine<'_> {
        let account_id = account_of(invoked_function_arn);
        Engine {
            pipelines: &self.pipelines,
            executions: &self.executions,
            events: &self.events,
            tasks: &self.tasks,
            machines: self.state_machines(&account_id),
            functions: &self.functions,
            config: EngineConfig {
                region: self.region(),
                account_id,
                artifact_bucket: self.settings.artifact_bucket.clone(),
                targets: self.settings.targets.clone(),
            },
        }
    }
}

/// The account id in an ARN (its 5th field), or [`FALLBACK_ACCOUNT_ID`].
pub fn account_of(arn: &str) -> String {
    arn.split(':')
        .nth(4)
        .filter(|a| !a.is_empty() && a.chars().all(|c| c.is_ascii_digit()))
        .unwrap_or(FALLBACK_ACCOUNT_ID)
        .to_string()
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    fn settings(vars: &[(&str, &str)]) -> Result<Settings, String> {
        let vars: HashMap<String, String> = vars
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|name| vars.get(name).cloned())
    }

    const REQUIRED: [(&str, &str); 3] = [
        ("PIPELINES_TABLE", "p"),
        ("EXECUTIONS_TABLE", "e"),
        ("ARTIFACT_BUCKET", "b"),
    ];

    #[test]
    fn required_variables_are_named_when_missing() {
        let err = settings(&[("PIPELINES_TABLE", "p")]).unwrap_err();
        assert_eq!(
            err,
            "environment variables EXECUTIONS_TABLE, ARTIFACT_BUCKET are not set"
        );
        let err = settings(&[REQUIRED[0], REQUIRED[1], ("ARTIFACT_BUCKET", " ")]).unwrap_err();
        assert_eq!(err, "environment variable ARTIFACT_BUCKET is not set");
    }

    #[test]
    fn optional_variables_have_defaults() {
        let s = settings(&REQUIRED).unwrap();
        assert_eq!(s.event_bus_name, "default");
        assert_eq!(s.targets, None);
        assert_eq!(s.state_machine_role_arn, None);
        let mut vars = REQUIRED.to_vec();
        vars.extend([
            ("ORCHESTRATOR_ARN", "arn:o"),
            ("ACTION_ARN", "arn:a"),
            ("EVENT_BUS_NAME", "bus"),
            ("STATE_MACHINE_ROLE_ARN", "arn:r"),
        ]);
        let s = settings(&vars).unwrap();
        assert_eq!(
            s.targets,
            Some(AslTargets {
                orchestrator_arn: "arn:o".into(),
                action_arn: "arn:a".into()
            })
        );
        assert_eq!(s.event_bus_name, "bus");
        assert_eq!(s.state_machine_role_arn.as_deref(), Some("arn:r"));
        let mut half = REQUIRED.to_vec();
        half.push(("ACTION_ARN", "arn:a"));
        assert!(settings(&half).unwrap_err().contains("ORCHESTRATOR_ARN"));
    }

    #[test]
    fn the_account_comes_from_the_function_arn() {
        assert_eq!(
            account_of("arn:aws:lambda:eu-west-1:111122223333:function:orchestrator"),
            "111122223333"
        );
        assert_eq!(account_of(""), FALLBACK_ACCOUNT_ID);
        assert_eq!(
            account_of("arn:aws:lambda:eu-west-1::function:x"),
            FALLBACK_ACCOUNT_ID
        );
    }
}
