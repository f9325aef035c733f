//! Stage condition rules (`beforeEntry`, `onSuccess`, `onFailure`): results
//! valid where they sit, no rollback in PARALLEL mode or of the first stage,
//! supported rule providers with their configuration, and rule inputs and
//! variable references available when the condition is checked.

use std::collections::HashMap;

use super::artifacts::check_inputs;
use super::limits::{
    check_command_sizes, check_configuration_sizes, check_count, check_region, check_role_arn,
    check_text, ENTITY_NAME,
};
use super::timeline::{Consumer, Index, When};
use super::variables::check_references_in;
use super::{stage_path, Problems};
use crate::declaration::{Condition, ConditionResult, ExecutionMode, PipelineDeclaration};
use crate::providers;

/// Where a stage condition sits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConditionSite {
    BeforeEntry,
    OnSuccess,
    OnFailure,
}

impl ConditionSite {
    fn member(self) -> &'static str {
        match self {
            ConditionSite::BeforeEntry => "beforeEntry",
            ConditionSite::OnSuccess => "onSuccess",
            ConditionSite::OnFailure => "onFailure",
        }
    }

    fn allowed_results(self) -> &'static [ConditionResult] {
        match self {
            ConditionSite::BeforeEntry => &[ConditionResult::Fail, ConditionResult::Skip],
            ConditionSite::OnSuccess => &[ConditionResult::Rollback, ConditionResult::Fail],
            ConditionSite::OnFailure => &[
                ConditionResult::Rollback,
                ConditionResult::Fail,
                ConditionResult::Retry,
            ],
        }
    }

    /// When the condition's rules run: before the stage's actions, or after.
    fn when(self, stage: usize) -> When {
        match self {
            ConditionSite::BeforeEntry => When::stage_entry(stage),
            ConditionSite::OnSuccess | ConditionSite::OnFailure => When::stage_exit(stage),
        }
    }
}

fn results_text(results: &[ConditionResult]) -> String {
    results
        .iter()
        .map(|r| r.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Stage conditions: results valid where they sit, no rollback in PARALLEL
/// mode or of the first stage, supported rule providers with their keys.
pub(super) fn check_stage_conditions(p: &PipelineDeclaration, index: &Index, out: &mut Problems) {
    for (s, stage) in p.stages.iter().enumerate() {
        let path = stage_path(s);
        if let Some(on_failure) = &stage.on_failure {
            let site_path = format!("{path}.onFailure");
            if let Some(result) = on_failure.result {
                check_result(
                    p,
                    s,
                    ConditionSite::OnFailure,
                    result,
                    &format!("{site_path}.result"),
                    out,
                );
            }
            if on_failure.retry_configuration.is_some()
                && on_failure.result != Some(ConditionResult::Retry)
            {
                out.add(
                    format!("{site_path}.retryConfiguration"),
                    "retryConfiguration applies only with result RETRY",
                );
            }
            if let Some(conditions) = &on_failure.conditions {
                check_conditions(
                    p,
                    index,
                    s,
                    ConditionSite::OnFailure,
                    conditions,
                    &site_path,
                    out,
                );
            }
        }
        if let Some(on_success) = &stage.on_success {
            let site_path = format!("{path}.onSuccess");
            check_conditions(
                p,
                index,
                s,
                ConditionSite::OnSuccess,
                &on_success.conditions,
                &site_path,
                out,
            );
        }
        if let Some(before_entry) = &stage.before_entry {
            let site_path = format!("{path}.beforeEntry");
            check_conditions(
                p,
                index,
                s,
                ConditionSite::BeforeEntry,
                &before_entry.conditions,
                &site_path,
                out,
            );
        }
    }
}

fn check_result(
    p: &PipelineDeclaration,
    stage: usize,
    site: ConditionSite,
    result: ConditionResult,
    path: &str,
    out: &mut Problems,
) {
    let allowed = site.allowed_results();
    if !allowed.contains(&result) {
        out.add(
            path,
            format!(
                "{result} is not a valid result for {}; use one of: {}",
                site.member(),
                results_text(allowed)
            ),
        );
        return;
    }
    if result == ConditionResult::Rollback {
        if p.execution_mode() == ExecutionMode::Parallel {
            out.add(path, "ROLLBACK is not available in PARALLEL execution mode");
        }
        if stage == 0 {
            out.add(path, "the first (source) stage cannot be rolled back");
        }
    }
}

fn check_conditions(
    p: &PipelineDeclaration,
    index: &Index,
    stage: usize,
    site: ConditionSite,
    conditions: &[Condition],
    site_path: &str,
    out: &mut Problems,
) {
    let list_path = format!("{site_path}.conditions");
    if conditions.len() != 1 {
        out.add(
            &list_path,
            format!("must hold exactly 1 condition, found {}", conditions.len()),
        );
    }
    for (c, condition) in conditions.iter().enumerate() {
        let path = format!("{list_path}[{c}]");
        if let Some(result) = condition.result {
            check_result(p, stage, site, result, &format!("{path}.result"), out);
        }
        let rules = condition.rules.as_deref().unwrap_or_default();
        check_count(out, &format!("{path}.rules"), rules.len(), 1, 5, "rules");
        let consumer = Consumer {
            when: site.when(stage),
            action: None,
        };
        let mut names: HashMap<&str, usize> = HashMap::new();
        for (r, rule) in rules.iter().enumerate() {
            let rule_path = format!("{path}.rules[{r}]");
            check_text(out, &format!("{rule_path}.name"), &rule.name, &ENTITY_NAME);
            if let Some(first) = names.get(rule.name.as_str()) {
                out.add(
                    format!("{rule_path}.name"),
                    format!(
                        "duplicate rule name `{}`: rules[{first}] has the same name",
                        rule.name
                    ),
                );
            } else {
                names.insert(&rule.name, r);
            }
            let provider = rule.rule_type_id.provider.as_str();
            if !providers::RULE_PROVIDERS.contains(&provider) {
                out.add(
                    format!("{rule_path}.ruleTypeId.provider"),
                    format!(
                        "unsupported rule provider `{provider}`; supported: {}",
                        providers::RULE_PROVIDERS.join(", ")
                    ),
                );
            } else if site == ConditionSite::BeforeEntry
                && condition.result == Some(ConditionResult::Skip)
                && !matches!(provider, "LambdaInvoke" | "VariableCheck")
            {
                out.add(
                    format!("{rule_path}.ruleTypeId.provider"),
                    format!("a beforeEntry condition with result SKIP takes only LambdaInvoke and VariableCheck rules, found {provider}"),
                );
            }
            let config = rule.configuration.clone().unwrap_or_default();
            if provider == "DeploymentWindow" {
                // Refused here, not when the stage is reached.
                if let Some(cron) = config
                    .get("Cron")
                    .filter(|c| crate::variables::references(c).is_empty())
                {
                    if let Err(e) = crate::conditions::cron_matches(cron, 0.0) {
                        out.add(format!("{rule_path}.configuration.Cron"), e);
                    }
                }
                if let Some(zone) = config
                    .get("TimeZone")
                    .filter(|z| crate::variables::references(z).is_empty())
                {
                    if let Err(e) = crate::conditions::utc_offset_seconds(zone, 0.0) {
                        out.add(format!("{rule_path}.configuration.TimeZone"), e);
                    }
                }
            }
            if provider == "VariableCheck"
                && config.get("Operator").map(String::as_str) == Some("MATCHES")
            {
                if let Some(pattern) = config
                    .get("Value")
                    .filter(|v| crate::variables::references(v).is_empty())
                {
                    if let Err(e) = crate::conditions::regex_match(pattern, "") {
                        out.add(format!("{rule_path}.configuration.Value"), e);
                    }
                }
            }
            for key in providers::rule_required_keys(provider) {
                if !config.contains_key(*key) {
                    out.add(
                        format!("{rule_path}.configuration"),
                        format!("the {provider} rule requires configuration key `{key}`"),
                    );
                }
            }
            if config.len() > 200 {
                out.add(
                    format!("{rule_path}.configuration"),
                    format!("may hold at most 200 keys, found {}", config.len()),
                );
            }
            check_configuration_sizes(out, &format!("{rule_path}.configuration"), &config, 10_000);
            match (&rule.commands, provider == "Commands") {
                (Some(commands), true) => {
                    check_command_sizes(out, &format!("{rule_path}.commands"), commands)
                }
                (None, true) => out.add(
                    format!("{rule_path}.commands"),
                    "the Commands rule requires a commands list (1 to 50 commands)",
                ),
                (Some(_), false) => out.add(
                    format!("{rule_path}.commands"),
                    "only the Commands rule runs commands",
                ),
                (None, false) => {}
            }
            if let Some(role) = &rule.role_arn {
                check_role_arn(out, &format!("{rule_path}.roleArn"), role);
            }
            if let Some(region) = &rule.region {
                check_region(out, &format!("{rule_path}.region"), region);
            }
            if let Some(timeout) = rule.timeout_in_minutes {
                if !(5..=86_400).contains(&timeout) {
                    out.add(
                        format!("{rule_path}.timeoutInMinutes"),
                        format!("must be 5 to 86400 minutes, found {timeout}"),
                    );
                }
            }
            if let Some(inputs) = &rule.input_artifacts {
                check_inputs(
                    inputs,
                    &format!("{rule_path}.inputArtifacts"),
                    &consumer,
                    index,
                    out,
                );
            }
            for (key, value) in &config {
                check_references_in(
                    p,
                    index,
                    &consumer,
                    &format!("{rule_path}.configuration.{key}"),
                    value,
                    out,
                );
            }
            for (i, command) in rule.commands.iter().flatten().enumerate() {
                check_references_in(
                    p,
                    index,
                    &consumer,
                    &format!("{rule_path}.commands[{i}]"),
                    command,
                    out,
                );
            }
        }
    }
}
