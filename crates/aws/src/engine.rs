//! The engine's adapters, built once per function from its environment (outside the handler),
//! and the [`Engine`] over them for each invocation.
//!
//! Environment (set by `template.yaml`):
//! - `PIPELINES_TABLE`, `EXECUTIONS_TABLE`, `ARTIFACT_BUCKET`: required;
//! - `EVENTS_TABLE`: the event outbox (default: the executions table);
//! - `ORCHESTRATOR_ARN`, `ACTION_ARN` and `APPROVAL_ARN`: the functions the compiled state
//!   machines call; only functions that start executions have them (all or none);
//! - `ACTION_TIMEOUT_CAP_SECONDS`: the longest timeout any action gets (unset or 0: none);
//! - `STATE_MACHINE_ROLE_ARN`: the role new state machines run with (same functions);
//! - `AWS_ENDPOINT_URL` (the local emulator) and `AWS_REGION`, through [`Target::from_env`].
//!
//! The account id is not in a Lambda's environment: [`Adapters::engine`] takes it from the
//! invoked function's ARN.

use std::sync::OnceLock;

use aws_config::SdkConfig;
use pipewright_core::asl::AslTargets;
use pipewright_core::engine::{Engine, EngineConfig};

use crate::config::{self, Target, DEFAULT_REGION};
use crate::execution_store::DynamoExecutionStore;
use crate::lambda::LambdaFunctions;
use crate::pipeline_store::DynamoPipelineStore;
use crate::sfn::{SfnStateMachines, SfnTaskCallbacks};

/// The account id used when the function ARN has none (the local emulator's default).
pub const FALLBACK_ACCOUNT_ID: &str = "123456789012";

/// What a function's environment configures.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// `PIPELINES_TABLE`.
    pub pipelines_table: String,
    /// `EXECUTIONS_TABLE`.
    pub executions_table: String,
    /// `EVENTS_TABLE`: the event outbox (the executions table when unset).
    pub events_table: String,
    /// `ARTIFACT_BUCKET`.
    pub artifact_bucket: String,
    /// `ORCHESTRATOR_ARN`, `ACTION_ARN` and `APPROVAL_ARN`, when all are set.
    pub targets: Option<AslTargets>,
    /// `STATE_MACHINE_ROLE_ARN`.
    pub state_machine_role_arn: Option<String>,
    /// `ACTION_TIMEOUT_CAP_SECONDS` (unset or 0: none).
    pub action_timeout_cap_seconds: Option<u64>,
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
        let action_timeout_cap_seconds = match get("ACTION_TIMEOUT_CAP_SECONDS") {
            None => None,
            Some(v) => match v.trim().parse::<u64>() {
                Ok(0) => None,
                Ok(n) => Some(n),
                Err(_) => {
                    return Err(format!(
                        "ACTION_TIMEOUT_CAP_SECONDS must be a whole number of seconds (0: no cap), not {v:?}"
                    ))
                }
            },
        };
        const TARGETS: [&str; 3] = ["ORCHESTRATOR_ARN", "ACTION_ARN", "APPROVAL_ARN"];
        let set: Vec<&str> = TARGETS.into_iter().filter(|n| get(n).is_some()).collect();
        let targets = match set.len() {
            0 => None,
            // The orchestrator cannot name itself in its own environment (a circular reference
            // in the template): its ARN comes from its invocation ([`Adapters::engine`]).
            2 if !set.contains(&"ORCHESTRATOR_ARN") => Some(AslTargets {
                orchestrator_arn: String::new(),
                action_arn: get("ACTION_ARN").unwrap_or_default(),
                approval_arn: get("APPROVAL_ARN").unwrap_or_default(),
                action_timeout_cap_seconds,
            }),
            3 => Some(AslTargets {
                orchestrator_arn: get("ORCHESTRATOR_ARN").unwrap_or_default(),
                action_arn: get("ACTION_ARN").unwrap_or_default(),
                approval_arn: get("APPROVAL_ARN").unwrap_or_default(),
                action_timeout_cap_seconds,
            }),
            _ => {
                let unset: Vec<&str> = TARGETS.into_iter().filter(|n| !set.contains(n)).collect();
                return Err(format!(
                    "{} set but {} not: set all of {} or none",
                    set.join(", "),
                    unset.join(", "),
                    TARGETS.join(", ")
                ));
            }
        };
        Ok(Self {
            pipelines_table: get("PIPELINES_TABLE").unwrap_or_default(),
            executions_table: get("EXECUTIONS_TABLE").unwrap_or_default(),
            events_table: get("EVENTS_TABLE")
                .or_else(|| get("EXECUTIONS_TABLE"))
                .unwrap_or_default(),
            artifact_bucket: get("ARTIFACT_BUCKET").unwrap_or_default(),
            targets,
            state_machine_role_arn: get("STATE_MACHINE_ROLE_ARN"),
            action_timeout_cap_seconds,
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
    /// Task tokens.
    pub tasks: SfnTaskCallbacks,
    /// The functions job-worker actions invoke.
    pub functions: LambdaFunctions,
    /// What stage-condition rules read.
    pub checks: crate::rules::AwsRuleChecks,
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
            pipelines: DynamoPipelineStore::new(dynamodb.clone(), &settings.pipelines_table)
                .with_secrets(crate::pipeline_secrets::PipelineSecrets::from_env(&sdk)),
            executions: DynamoExecutionStore::new(dynamodb, &settings.executions_table)
                .with_events_table(&settings.events_table)
                .with_token_seal(crate::task_tokens::TokenSeal::from_env(&sdk)),
            tasks: SfnTaskCallbacks::new(sfn.clone()),
            functions: LambdaFunctions::new(aws_sdk_lambda::Client::new(&sdk)),
            checks: crate::rules::AwsRuleChecks::new(
                aws_sdk_lambda::Client::new(&sdk),
                aws_sdk_cloudwatch::Client::new(&sdk),
            ),
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
            tasks: &self.tasks,
            machines: self.state_machines(&account_id),
            functions: &self.functions,
            checks: &self.checks,
            config: EngineConfig {
                region: self.region(),
                account_id,
                artifact_bucket: self.settings.artifact_bucket.clone(),
                targets: self.settings.targets.clone().map(|mut t| {
                    if t.orchestrator_arn.is_empty() {
                        t.orchestrator_arn = unqualified(invoked_function_arn);
                    }
                    t
                }),
                action_timeout_cap_seconds: self.settings.action_timeout_cap_seconds,
            },
        }
    }
}

/// A function ARN without its version or alias qualifier (`...:function:name`).
fn unqualified(function_arn: &str) -> String {
    function_arn
        .splitn(8, ':')
        .take(7)
        .collect::<Vec<_>>()
        .join(":")
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
        assert_eq!(s.targets, None);
        assert_eq!(s.state_machine_role_arn, None);
        let mut vars = REQUIRED.to_vec();
        vars.extend([
            ("ORCHESTRATOR_ARN", "arn:o"),
            ("ACTION_ARN", "arn:a"),
            ("APPROVAL_ARN", "arn:p"),
            ("ACTION_TIMEOUT_CAP_SECONDS", "30"),
            ("STATE_MACHINE_ROLE_ARN", "arn:r"),
        ]);
        let s = settings(&vars).unwrap();
        assert_eq!(
            s.targets,
            Some(AslTargets {
                orchestrator_arn: "arn:o".into(),
                action_arn: "arn:a".into(),
                approval_arn: "arn:p".into(),
                action_timeout_cap_seconds: Some(30),
            })
        );
        assert_eq!(s.state_machine_role_arn.as_deref(), Some("arn:r"));
        let mut half = REQUIRED.to_vec();
        half.push(("ACTION_ARN", "arn:a"));
        assert_eq!(
            settings(&half).unwrap_err(),
            "ACTION_ARN set but ORCHESTRATOR_ARN, APPROVAL_ARN not: \
             set all of ORCHESTRATOR_ARN, ACTION_ARN, APPROVAL_ARN or none"
        );
        // The orchestrator: its own ARN comes from the invocation.
        let mut orchestrator = REQUIRED.to_vec();
        orchestrator.extend([("ACTION_ARN", "arn:a"), ("APPROVAL_ARN", "arn:p")]);
        let targets = settings(&orchestrator).unwrap().targets.unwrap();
        assert_eq!(targets.orchestrator_arn, "");
        assert_eq!(
            unqualified("arn:aws:lambda:us-east-1:123456789012:function:orch:live"),
            "arn:aws:lambda:us-east-1:123456789012:function:orch"
        );
        let mut bad = REQUIRED.to_vec();
        bad.push(("ACTION_TIMEOUT_CAP_SECONDS", "soon"));
        assert!(settings(&bad)
            .unwrap_err()
            .contains("ACTION_TIMEOUT_CAP_SECONDS"));
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
