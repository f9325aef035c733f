//! Stage conditions (`beforeEntry`, `onSuccess`, `onFailure`) and their rules.
//!
//! How Pipewright reads them (CodePipeline's documented behaviour):
//! - `beforeEntry`: each condition's rules must all pass for the stage to be entered; the first
//!   condition that does not pass applies its result: `FAIL` (the default: the stage and the
//!   execution fail) or `SKIP` (the stage is skipped, the execution goes on).
//! - `onSuccess`: checked when every action succeeded; the first condition that does not pass
//!   applies `FAIL` (default) or `ROLLBACK` (the stage fails and is rolled back to the last
//!   successful execution).
//! - `onFailure`: when the stage fails. Without conditions its `result` applies (`FAIL`,
//!   `ROLLBACK`, or `RETRY` with `retryConfiguration.retryMode`, at most
//!   [`MAX_AUTOMATIC_RETRIES`] time). With conditions, the result of the first condition whose
//!   rules all pass (its own `result`, else the stage's) applies; if none passes, `FAIL`.
//!
//! Rules: `VariableCheck` (`Variable` resolved like any configuration, compared with `Value` by
//! `Operator` EQ, NE, CONTAINS, MATCHES (a regular expression the whole value matches, as in
//! CodePipeline, [`regex_match`]), GT, GE, LT, LE), `DeploymentWindow` (`Cron`: an
//! EventBridge cron expression, or CodePipeline's seven-field form, [`cron_matches`]; the rule
//! passes while the current minute matches, on the wall clock of `TimeZone` (an IANA name,
//! default UTC, daylight saving time included)), `LambdaInvoke` (`FunctionName`, optional
//! `UserParameters`: invoked synchronously; passes unless the function errs or answers
//! `{"status": "FAILED"}`) and `CloudWatchAlarm`
//! (`AlarmName`: passes unless the alarm is in `ALARM`). `Commands` and `CodeBuild` rules (work
//! rules, [`is_work_rule`]) of `onSuccess` and `onFailure` conditions run in a task of the state
//! machine before the check ([`crate::engine::work_rules`]); the check reads what they found
//! ([`RuleContext::work`]). In `beforeEntry` they are refused at CreatePipeline.
//!
//! Each evaluation is recorded on the stage execution ([`ConditionRun`]) and shown by
//! GetPipelineState (`beforeEntryConditionState`, ...).
//!
//! This module evaluates rules and conditions ([`run_condition`], [`RuleChecks`]) without the
//! engine; the records it makes ([`ConditionRun`], [`RuleRun`], [`ConditionKind`]) belong to
//! [`crate::execution`]; when conditions run and what their results do is the engine's
//! ([`crate::engine::conditions`]).

use std::collections::BTreeMap;

use async_trait::async_trait;
use serde_json::{json, Value};

use crate::declaration::{
    ActionCategory, ActionDeclaration, ActionOwner, ActionTypeId, Condition, ConditionResult,
    RuleDeclaration, StageDeclaration,
};
use crate::port_error::PortError;

/// How many times `onFailure: RETRY` retries a stage by itself.
pub const MAX_AUTOMATIC_RETRIES: u32 = 1;

pub use crate::execution::{ConditionKind, ConditionRun, RuleRun};

/// What rules need from AWS.
#[async_trait]
pub trait RuleChecks: Send + Sync {
    /// Invoke `function` synchronously with `payload`; its answer, or why it failed.
    async fn invoke(&self, function: &str, payload: &Value) -> Result<Value, PortError>;
    /// The state of CloudWatch alarm `name` (`OK`, `ALARM`, `INSUFFICIENT_DATA`).
    async fn alarm_state(&self, name: &str) -> Result<String, PortError>;
}

/// Where a rule runs: what it may refer to.
pub struct RuleContext<'a> {
    /// Pipeline.
    pub pipeline_name: &'a str,
    /// Stage.
    pub stage_name: &'a str,
    /// Execution.
    pub pipeline_execution_id: &'a str,
    /// Variables visible at the stage (namespace → key → value).
    pub variables: &'a BTreeMap<String, BTreeMap<String, String>>,
    /// Now, seconds since the epoch.
    pub now: f64,
    /// When every rule that calls out (`LambdaInvoke`, `CloudWatchAlarm`) must have answered: the
    /// rules of one check share [`RULE_CALL_BUDGET`], so they never outlive the orchestrator.
    pub deadline: tokio::time::Instant,
    /// Which conditions run (the key of a work rule's result, [`work_rule_key`]).
    pub kind: ConditionKind,
    /// What the work rules (`Commands`, `CodeBuild`) of this check found: they ran before it,
    /// in a task of their own ([`crate::asl`]), by [`work_rule_key`].
    pub work: &'a BTreeMap<String, WorkRuleResult>,
}

/// Whether rules of `provider` do work that takes minutes (`Commands`, `CodeBuild`): they run in
/// a task of the state machine before the condition is checked, not in the check.
pub fn is_work_rule(provider: &str) -> bool {
    matches!(provider, "Commands" | "CodeBuild")
}

/// `stage`'s `kind` conditions, as declared (none: it has no such conditions).
pub fn conditions_of(stage: &StageDeclaration, kind: ConditionKind) -> &[Condition] {
    let conditions = match kind {
        ConditionKind::BeforeEntry => stage.before_entry.as_ref().map(|c| &c.conditions),
        ConditionKind::OnSuccess => stage.on_success.as_ref().map(|c| &c.conditions),
        ConditionKind::OnFailure => stage
            .on_failure
            .as_ref()
            .and_then(|c| c.conditions.as_ref()),
    };
    conditions.map_or(&[], Vec::as_slice)
}

/// The work rules of `stage`'s `kind` conditions.
pub fn work_rules_of(stage: &StageDeclaration, kind: ConditionKind) -> Vec<&RuleDeclaration> {
    conditions_of(stage, kind)
        .iter()
        .flat_map(|c| c.rules.iter().flatten())
        .filter(|r| is_work_rule(&r.rule_type_id.provider))
        .collect()
}

/// The action a work rule runs as: a `Commands` rule as a Commands action, a `CodeBuild` rule as
/// a CodeBuild build action, with the rule's configuration, commands, input artifacts, role,
/// region and timeout; no output artifacts.
pub fn rule_as_action(rule: &RuleDeclaration) -> ActionDeclaration {
    let (category, provider) = match rule.rule_type_id.provider.as_str() {
        "CodeBuild" => (ActionCategory::Build, "CodeBuild"),
        _ => (ActionCategory::Compute, "Commands"),
    };
    ActionDeclaration {
        name: rule.name.clone(),
        action_type_id: ActionTypeId {
            category,
            owner: ActionOwner::Aws,
            provider: provider.into(),
            version: "1".into(),
        },
        run_order: None,
        configuration: rule.configuration.clone(),
        commands: rule.commands.clone(),
        output_artifacts: None,
        input_artifacts: rule.input_artifacts.clone(),
        output_variables: None,
        role_arn: rule.role_arn.clone(),
        region: rule.region.clone(),
        namespace: None,
        timeout_in_minutes: rule.timeout_in_minutes,
        environment_variables: None,
    }
}

/// How a work rule's result is named in what its task answers: stage, condition kind, rule.
pub fn work_rule_key(stage: &str, kind: ConditionKind, rule: &str) -> String {
    let kind = match kind {
        ConditionKind::BeforeEntry => "BEFORE_ENTRY",
        ConditionKind::OnSuccess => "ON_SUCCESS",
        ConditionKind::OnFailure => "ON_FAILURE",
    };
    format!("{stage}/{kind}/{rule}")
}

/// What a work rule (`Commands`, `CodeBuild`) found.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkRuleResult {
    /// Its commands exited 0, or its build succeeded.
    pub passed: bool,
    /// What happened, for a person.
    pub summary: String,
}

/// How long the calls of the rules of one condition check may take together. The orchestrator
/// that runs them has 30 s (template `Globals`); past the budget a rule fails, saying so, instead
/// of the orchestrator timing out with the stage half-checked. A `LambdaInvoke` rule's function
/// must answer within it (a rule's `timeoutInMinutes` can only shorten it); a longer check
/// belongs in a `Commands` rule.
pub const RULE_CALL_BUDGET: std::time::Duration = std::time::Duration::from_secs(20);

/// Run `call` of `what` (`function f`, `alarm a`) until `ctx.deadline` (or the rule's own
/// `timeoutInMinutes`, if sooner); its error, for a person, names `what`.
async fn within_budget<T>(
    rule: &RuleDeclaration,
    ctx: &RuleContext<'_>,
    what: &str,
    call: impl std::future::Future<Output = Result<T, PortError>>,
) -> Result<T, String> {
    let mut deadline = ctx.deadline;
    if let Some(minutes) = rule.timeout_in_minutes {
        let own =
            tokio::time::Instant::now() + std::time::Duration::from_secs(u64::from(minutes) * 60);
        deadline = deadline.min(own);
    }
    match tokio::time::timeout_at(deadline, call).await {
        Ok(answer) => answer.map_err(|e| format!("{what}: {e}")),
        Err(_) => Err(format!(
            "{what} did not answer in time: the calls of a condition's rules get {} s together \
             (a rule's timeoutInMinutes can shorten its share)",
            RULE_CALL_BUDGET.as_secs()
        )),
    }
}

/// Run every rule of `condition`; the condition passes when all pass.
pub async fn run_condition(
    kind: ConditionKind,
    condition: &Condition,
    ctx: &RuleContext<'_>,
    checks: &dyn RuleChecks,
) -> ConditionRun {
    let mut rules = Vec::new();
    for rule in condition.rules.iter().flatten() {
        let (passed, summary) = match run_rule(rule, ctx, checks).await {
            Ok(summary) => (true, summary),
            Err(summary) => (false, summary),
        };
        rules.push(RuleRun {
            rule_name: rule.name.clone(),
            status: if passed { "Succeeded" } else { "Failed" }.into(),
            summary,
            at: ctx.now,
        });
    }
    let passed = rules.iter().all(|r| r.status == "Succeeded");
    ConditionRun {
        kind,
        status: if passed { "Succeeded" } else { "Failed" }.into(),
        summary: rules
            .iter()
            .map(|r| format!("{}: {}", r.rule_name, r.summary))
            .collect::<Vec<_>>()
            .join("; "),
        applied: None,
        rules,
        at: ctx.now,
    }
}

/// Run one rule: `Ok(summary)` when it passes, `Err(summary)` when not.
pub async fn run_rule(
    rule: &RuleDeclaration,
    ctx: &RuleContext<'_>,
    checks: &dyn RuleChecks,
) -> Result<String, String> {
    let mut config = BTreeMap::new();
    for (key, value) in rule.configuration.iter().flatten() {
        let resolved = crate::variables::resolve(value, |ns, k| {
            ctx.variables.get(ns).and_then(|m| m.get(k)).cloned()
        })
        .map_err(|e| format!("configuration {key}: {e}"))?;
        config.insert(key.as_str(), resolved);
    }
    let get = |key: &str| {
        config
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| format!("configuration {key} is required"))
    };
    match rule.rule_type_id.provider.as_str() {
        "VariableCheck" => {
            let (variable, operator, value) = (get("Variable")?, get("Operator")?, get("Value")?);
            if variable_check(variable, operator, value)? {
                Ok(format!("{variable:?} {operator} {value:?}"))
            } else {
                Err(format!("{variable:?} is not {operator} {value:?}"))
            }
        }
        "DeploymentWindow" => {
            let offset = match config.get("TimeZone") {
                Some(zone) => utc_offset_seconds(zone, ctx.now)?,
                None => 0,
            };
            let cron = get("Cron")?;
            if cron_matches(cron, ctx.now + f64::from(offset))? {
                Ok(format!("now is inside the window {cron}"))
            } else {
                Err(format!("now is outside the window {cron}"))
            }
        }
        "LambdaInvoke" => {
            let function = get("FunctionName")?;
            let payload = json!({
                "pipelineName": ctx.pipeline_name,
                "stageName": ctx.stage_name,
                "ruleName": rule.name,
                "pipelineExecutionId": ctx.pipeline_execution_id,
                "userParameters": config.get("UserParameters"),
            });
            let who = format!("function {function}");
            let answer = within_budget(rule, ctx, &who, checks.invoke(function, &payload)).await?;
            match answer.get("status").and_then(Value::as_str) {
                Some(s) if s.eq_ignore_ascii_case("FAILED") => Err(format!(
                    "function {function} answered FAILED{}",
                    answer
                        .get("summary")
                        .and_then(Value::as_str)
                        .map(|m| format!(": {m}"))
                        .unwrap_or_default()
                )),
                _ => Ok(format!("function {function} passed")),
            }
        }
        "CloudWatchAlarm" => {
            let alarm = get("AlarmName")?;
            let who = format!("alarm {alarm}");
            let state = within_budget(rule, ctx, &who, checks.alarm_state(alarm)).await?;
            if state == "ALARM" {
                Err(format!("alarm {alarm} is in ALARM"))
            } else {
                Ok(format!("alarm {alarm} is {state}"))
            }
        }
        provider if is_work_rule(provider) => {
            let key = work_rule_key(ctx.stage_name, ctx.kind, &rule.name);
            match ctx.work.get(&key) {
                Some(found) if found.passed => Ok(found.summary.clone()),
                Some(found) => Err(found.summary.clone()),
                None => Err(format!(
                    "the {provider} rule did not finish (its task failed or timed out)"
                )),
            }
        }
        other => Err(format!("{other} rules are not run by Pipewright")),
    }
}

/// `VariableCheck`: compare `variable` with `value` by `operator`.
pub fn variable_check(variable: &str, operator: &str, value: &str) -> Result<bool, String> {
    let numbers = || -> Result<(f64, f64), String> {
        Ok((
            variable
                .trim()
                .parse()
                .map_err(|_| format!("{variable:?} is not a number ({operator})"))?,
            value
                .trim()
                .parse()
                .map_err(|_| format!("{value:?} is not a number ({operator})"))?,
        ))
    };
    Ok(match operator {
        "EQ" => variable == value,
        "NE" => variable != value,
        "CONTAINS" => variable.contains(value),
        "MATCHES" => regex_match(value, variable)?,
        "GT" => numbers().map(|(a, b)| a > b)?,
        "GE" => numbers().map(|(a, b)| a >= b)?,
        "LT" => numbers().map(|(a, b)| a < b)?,
        "LE" => numbers().map(|(a, b)| a <= b)?,
        other => {
            return Err(format!(
                "Operator {other:?} is not one of EQ, NE, CONTAINS, MATCHES, GT, GE, LT, LE"
            ))
        }
    })
}

/// `MATCHES`: whether all of `text` matches the regular expression `pattern`, as CodePipeline's
/// rules match (Java's `Pattern.matches`: the whole value, not a part of it). Patterns use the
/// common syntax (classes, groups, alternation, repetition, anchors); one that does not compile
/// fails the rule naming it.
pub fn regex_match(pattern: &str, text: &str) -> Result<bool, String> {
    if pattern.len() > MAX_PATTERN_CHARS {
        return Err(format!(
            "Value: a regular expression of at most {MAX_PATTERN_CHARS} characters"
        ));
    }
    let compile = |source: &str| {
        regex_lite::RegexBuilder::new(source)
            .size_limit(MAX_REGEX_SIZE)
            .build()
            .map_err(|e| format!("Value {pattern:?} is not a regular expression: {e}"))
    };
    // The pattern must stand on its own: wrapped first, `a)|(?:.*` would match everything.
    compile(pattern)?;
    Ok(compile(&format!("^(?:{pattern})$"))?.is_match(text))
}

/// The longest `MATCHES` pattern a VariableCheck rule takes.
pub const MAX_PATTERN_CHARS: usize = 1_000;
/// How large a compiled `MATCHES` pattern may grow (`[a-z]{50000}` does not fit): matching time
/// stays proportional to the value's length.
const MAX_REGEX_SIZE: usize = 1 << 16;

/// How far the wall clock of IANA time zone `zone` (`UTC`, `Europe/Paris`, ...) is ahead of UTC
/// at `now` (seconds since the epoch), daylight saving time included.
pub fn utc_offset_seconds(zone: &str, now: f64) -> Result<i32, String> {
    use chrono::{Offset, TimeZone};
    let tz: chrono_tz::Tz = zone.parse().map_err(|_| {
        format!("TimeZone {zone:?}: not an IANA time zone name (e.g. UTC, America/New_York)")
    })?;
    let utc = chrono::DateTime::from_timestamp(now.floor() as i64, 0)
        .ok_or_else(|| format!("time {now} is out of range"))?
        .naive_utc();
    Ok(tz.offset_from_utc_datetime(&utc).fix().local_minus_utc())
}

/// Whether `now` falls in a minute matched by cron expression `cron`: EventBridge's
/// `cron(minutes hours day-of-month month day-of-week year)` (or those six fields alone), or
/// the seven fields of CodePipeline's `DeploymentWindow` examples (`0 0 9-17 ? * MON-FRI *`:
/// seconds first, which only have to be valid, as CodePipeline does not use them).
///
/// The fields are read by `croner` as EventBridge and CodePipeline write them: lists, ranges
/// and steps (`*/15`, `0/15`, `10-40/10`), month and day names (`JAN`, `MON-FRI`), `?` in the
/// day of the month or of the week, days of the week numbered Sunday 1 to Saturday 7, `L` (in
/// the day of the month: its last day; in the day of the week: Saturday, and `6L` the month's
/// last Friday), `W` (`15W`: the weekday nearest the 15th; `LW`: the last weekday) and `#`
/// (`2#1`: the first Monday), years 1970 to 2199. A day of the month and a day of the week
/// both given must both match.
pub fn cron_matches(cron: &str, now: f64) -> Result<bool, String> {
    use croner::parser::{CronParser, Seconds, Year};
    let trimmed = cron.trim();
    let (body, wrapped) = match trimmed
        .strip_prefix("cron(")
        .and_then(|c| c.strip_suffix(')'))
    {
        Some(body) => (body, true),
        None => (trimmed, false),
    };
    let fields: Vec<&str> = body.split_whitespace().collect();
    let fields = match fields.len() {
        6 => &fields[..],
        7 if !wrapped => {
            // Parsed once for their validity; a matching minute matches at any second.
            let seconds = format!("{} 0 0 ? * * *", fields[0]);
            CronParser::builder()
                .seconds(Seconds::Required)
                .year(Year::Required)
                .build()
                .parse(&seconds)
                .map_err(|e| format!("Cron {cron:?}: seconds field: {e}"))?;
            &fields[1..]
        }
        _ => {
            return Err(format!(
                "Cron {cron:?}: expected 6 fields (minutes hours day-of-month month day-of-week \
                 year), or 7 with seconds first"
            ))
        }
    };
    // A lone `L` in the day of the week is its last day, Saturday (croner has no reading of it).
    let day_of_week = fields[4]
        .split(',')
        .map(|part| {
            if part.eq_ignore_ascii_case("L") {
                "7"
            } else {
                part
            }
        })
        .collect::<Vec<_>>()
        .join(",");
    let pattern = format!(
        "* {} {} {} {} {day_of_week} {}",
        fields[0], fields[1], fields[2], fields[3], fields[5]
    );
    let schedule = CronParser::builder()
        .seconds(Seconds::Required)
        .year(Year::Required)
        .alternative_weekdays(true)
        .dom_and_dow(true)
        .sloppy_ranges(true)
        .build()
        .parse(&pattern)
        .map_err(|e| format!("Cron {cron:?}: {e}"))?;
    // croner takes years 1 to 5000; the years named (not the steps) must be EventBridge's.
    let mut named_years = fields[5]
        .split(',')
        .filter_map(|part| part.split('/').next())
        .flat_map(|range| range.split('-'))
        .filter_map(|year| year.parse::<u32>().ok());
    if let Some(year) = named_years.find(|y| !(1970..=2199).contains(y)) {
        return Err(format!("Cron {cron:?}: year {year} is outside 1970..2199"));
    }
    let at = chrono::DateTime::from_timestamp(now.floor() as i64, 0)
        .ok_or_else(|| format!("time {now} is out of range"))?
        .naive_utc();
    schedule
        .is_time_matching(&at)
        .map_err(|e| format!("Cron {cron:?}: {e}"))
}

/// The result a `beforeEntry` / `onSuccess` evaluation applies: the first condition that did
/// not pass, with its result (`default` when it names none).
pub fn first_failed(
    conditions: &[Condition],
    runs: &[ConditionRun],
    default: ConditionResult,
) -> Option<(usize, ConditionResult)> {
    runs.iter()
        .position(|r| r.status != "Succeeded")
        .map(|i| (i, conditions[i].result.unwrap_or(default)))
}

/// A stable UUID-shaped id for what `seed` names (an automatic rollback of one stage attempt):
/// the same seed always gives the same id, so a repeated call starts nothing twice.
pub fn derived_id(seed: &str) -> String {
    use sha2::{Digest, Sha256};
    let hash = Sha256::digest(seed.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&hash[..16]);
    // The first 16 bytes of the hash, stamped as a version-4 (random) UUID.
    uuid::Builder::from_random_bytes(bytes)
        .into_uuid()
        .hyphenated()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Rule calls that answer after `delay`.
    struct Slow {
        delay: std::time::Duration,
    }

    #[async_trait]
    impl RuleChecks for Slow {
        async fn invoke(&self, _function: &str, _payload: &Value) -> Result<Value, PortError> {
            tokio::time::sleep(self.delay).await;
            Ok(json!({"status": "SUCCEEDED"}))
        }
        async fn alarm_state(&self, _name: &str) -> Result<String, PortError> {
            tokio::time::sleep(self.delay).await;
            Ok("OK".into())
        }
    }

    fn rule(provider: &str, configuration: Value) -> RuleDeclaration {
        serde_json::from_value(json!({
            "name": "R",
            "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": provider, "version": "1"},
            "configuration": configuration,
        }))
        .expect("a rule")
    }

    #[test]
    fn calling_rules_answer_within_their_budget() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("a runtime");
        let variables = BTreeMap::new();
        let work = BTreeMap::new();
        let ctx = |budget_ms: u64| RuleContext {
            pipeline_name: "p",
            stage_name: "S",
            pipeline_execution_id: "e",
            variables: &variables,
            now: 0.0,
            deadline: tokio::time::Instant::now() + std::time::Duration::from_millis(budget_ms),
            kind: ConditionKind::OnSuccess,
            work: &work,
        };
        let lambda = rule("LambdaInvoke", json!({"FunctionName": "gate"}));
        let alarm = rule("CloudWatchAlarm", json!({"AlarmName": "errors"}));
        let slow = Slow {
            delay: std::time::Duration::from_secs(30),
        };
        let quick = Slow {
            delay: std::time::Duration::from_millis(1),
        };
        runtime.block_on(async {
            // A function that outlives the budget fails the rule, naming it and why, at the
            // deadline (not after the function's 30 s).
            let started = std::time::Instant::now();
            let failed = run_rule(&lambda, &ctx(50), &slow).await.unwrap_err();
            assert!(started.elapsed() < std::time::Duration::from_secs(10));
            assert!(
                failed.starts_with("function gate did not answer in time"),
                "{failed}"
            );
            let failed = run_rule(&alarm, &ctx(50), &slow).await.unwrap_err();
            assert!(
                failed.starts_with("alarm errors did not answer in time"),
                "{failed}"
            );
            // Within the budget the answer counts.
            assert_eq!(
                run_rule(&lambda, &ctx(5_000), &quick).await,
                Ok("function gate passed".to_string())
            );
            // A rule's own timeoutInMinutes cannot lengthen the shared budget.
            let mut patient = lambda.clone();
            patient.timeout_in_minutes = Some(60);
            assert!(run_rule(&patient, &ctx(50), &slow).await.is_err());
        });
    }

    #[test]
    fn derived_ids_are_stable_uuids_of_their_seed() {
        // The first 16 bytes of SHA-256("exec-1/Deploy/2"), stamped version 4 / variant 1.
        assert_eq!(
            derived_id("exec-1/Deploy/2"),
            "85109a64-77f4-4ba7-8613-ac39f66dd426"
        );
        assert_ne!(derived_id("exec-1/Deploy/3"), derived_id("exec-1/Deploy/2"));
    }

    #[test]
    fn variable_checks_compare_as_documented() {
        assert!(variable_check("main", "EQ", "main").unwrap());
        assert!(variable_check("main", "NE", "dev").unwrap());
        assert!(variable_check("release/1.2", "CONTAINS", "release").unwrap());
        // MATCHES is a regular expression over the whole value (Java's Pattern.matches).
        assert!(variable_check("release/1.2", "MATCHES", "release/.*").unwrap());
        assert!(variable_check("prod", "MATCHES", "^(staging|prod)$").unwrap());
        assert!(variable_check("prod", "MATCHES", "staging|prod").unwrap());
        assert!(!variable_check("hotfix/1", "MATCHES", "release/.*").unwrap());
        assert!(
            !variable_check("v1.2-rc", "MATCHES", r"v\d+\.\d+").unwrap(),
            "a part of the value is not a match"
        );
        assert!(variable_check("v1.2", "MATCHES", r"v\d+\.\d+").unwrap());
        assert!(variable_check("x", "MATCHES", "(unclosed")
            .unwrap_err()
            .contains("not a regular expression"));
        // A pattern cannot escape the whole-value anchoring.
        assert!(variable_check("anything", "MATCHES", "x)|(?:.*")
            .unwrap_err()
            .contains("not a regular expression"));
        assert!(variable_check("x", "MATCHES", "[a-z]{50000}")
            .unwrap_err()
            .contains("not a regular expression"));
        assert!(variable_check("10", "GT", "9").unwrap());
        assert!(!variable_check("10", "LT", "9").unwrap());
        assert!(variable_check("3", "LE", "3").unwrap());
        assert!(variable_check("x", "GT", "1")
            .unwrap_err()
            .contains("not a number"));
        assert!(variable_check("x", "LIKE", "1")
            .unwrap_err()
            .contains("LIKE"));
    }

    /// 2026-11-22 (a Sunday) 03:30:00 UTC.
    const SUNDAY_0330: f64 = 1_795_318_200.0;

    #[test]
    fn deployment_windows_follow_eventbridge_cron() {
        assert!(cron_matches("cron(* * * * ? *)", SUNDAY_0330).unwrap());
        assert!(cron_matches("cron(0-59 3 ? * SUN *)", SUNDAY_0330).unwrap());
        assert!(cron_matches("cron(*/15 0-5 ? NOV 1 2026)", SUNDAY_0330).unwrap());
        assert!(!cron_matches("cron(* 9-17 ? * MON-FRI *)", SUNDAY_0330).unwrap());
        assert!(!cron_matches("cron(31 3 * * ? *)", SUNDAY_0330).unwrap());
        assert!(cron_matches("cron(30 3 22 11 ? 2026)", SUNDAY_0330).unwrap());
        assert!(cron_matches("cron(30 3 22 11 ?)", SUNDAY_0330).is_err());
        assert!(cron_matches("cron(61 * * * ? *)", SUNDAY_0330).is_err());
        assert!(cron_matches("cron(*/0 * * * ? *)", SUNDAY_0330).is_err());
    }

    /// `y-m-d h:min` UTC, seconds since the epoch.
    fn utc(y: i32, m: u32, d: u32, h: u32, min: u32) -> f64 {
        chrono::NaiveDate::from_ymd_opt(y, m, d)
            .and_then(|date| date.and_hms_opt(h, min, 0))
            .unwrap()
            .and_utc()
            .timestamp() as f64
    }

    #[test]
    fn deployment_windows_take_codepipelines_seven_field_form() {
        let window = "0 0 9-17 ? * MON-FRI *";
        // Monday 2026-11-23 and Friday 2026-11-27, on the hour from 9 to 17.
        assert!(cron_matches(window, utc(2026, 11, 23, 9, 0)).unwrap());
        assert!(cron_matches(window, utc(2026, 11, 23, 9, 0) + 59.0).unwrap());
        assert!(cron_matches(window, utc(2026, 11, 27, 17, 0)).unwrap());
        assert!(!cron_matches(window, utc(2026, 11, 23, 9, 30)).unwrap());
        assert!(!cron_matches(window, utc(2026, 11, 23, 8, 0)).unwrap());
        assert!(!cron_matches(window, utc(2026, 11, 23, 18, 0)).unwrap());
        // Saturday and Sunday.
        assert!(!cron_matches(window, utc(2026, 11, 28, 9, 0)).unwrap());
        assert!(!cron_matches(window, utc(2026, 11, 22, 9, 0)).unwrap());
        // The whole of each of those hours.
        let hours = "0 * 9-17 ? * MON-FRI *";
        assert!(cron_matches(hours, utc(2026, 11, 23, 17, 59)).unwrap());
        assert!(!cron_matches(hours, utc(2026, 11, 23, 18, 0)).unwrap());
        // The seconds are checked, not used; `cron(...)` holds EventBridge's six fields only.
        assert!(cron_matches("* 0 9 ? * MON *", utc(2026, 11, 23, 9, 0)).unwrap());
        assert!(cron_matches("61 0 9 ? * MON *", SUNDAY_0330).is_err());
        assert!(cron_matches("cron(0 0 9-17 ? * MON-FRI *)", SUNDAY_0330).is_err());
        // Years are EventBridge's.
        assert!(cron_matches("cron(* * * * ? 2026-2030)", SUNDAY_0330).unwrap());
        assert!(cron_matches("cron(* * * * ? 2200)", SUNDAY_0330).is_err());
        assert!(cron_matches("cron(* * * * ? 1969)", SUNDAY_0330).is_err());
        assert!(cron_matches("cron(* * * * ? 2020/2)", SUNDAY_0330).unwrap());
    }

    #[test]
    fn deployment_windows_know_last_weekday_and_nth() {
        // `L` in the day of the month: 2026-11-30 is November's last day, 2028-02-29 February's.
        assert!(cron_matches("cron(* * L * ? *)", utc(2026, 11, 30, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * L * ? *)", utc(2026, 11, 29, 12, 0)).unwrap());
        assert!(cron_matches("cron(* * L 2 ? *)", utc(2028, 2, 29, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * L 2 ? *)", utc(2028, 2, 28, 12, 0)).unwrap());
        // `6L`: the last Friday (2026-11-27), not an earlier one.
        assert!(cron_matches("cron(* * ? * 6L *)", utc(2026, 11, 27, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * ? * 6L *)", utc(2026, 11, 20, 12, 0)).unwrap());
        // `L` alone in the day of the week: Saturday (2026-11-28).
        assert!(cron_matches("cron(* * ? * L *)", utc(2026, 11, 28, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * ? * L *)", utc(2026, 11, 27, 12, 0)).unwrap());
        // `15W`: 2026-11-15 is a Sunday, so the nearest weekday is Monday the 16th.
        assert!(cron_matches("cron(* * 15W * ? *)", utc(2026, 11, 16, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * 15W * ? *)", utc(2026, 11, 15, 12, 0)).unwrap());
        // `LW`: 2027-01-31 is a Sunday, so January's last weekday is Friday the 29th.
        assert!(cron_matches("cron(* * LW * ? *)", utc(2027, 1, 29, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * LW * ? *)", utc(2027, 1, 31, 12, 0)).unwrap());
        // `#`: the first Monday (2026-11-02) and the third Friday (2026-11-20).
        assert!(cron_matches("cron(* * ? * MON#1 *)", utc(2026, 11, 2, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * ? * MON#1 *)", utc(2026, 11, 9, 12, 0)).unwrap());
        assert!(cron_matches("cron(* * ? * 6#3 *)", utc(2026, 11, 20, 12, 0)).unwrap());
        assert!(!cron_matches("cron(* * ? * 6#3 *)", utc(2026, 11, 27, 12, 0)).unwrap());
        // Steps from a start, as EventBridge writes them.
        assert!(cron_matches("cron(0/15 * * * ? *)", utc(2026, 11, 2, 12, 45)).unwrap());
        assert!(!cron_matches("cron(5/15 * * * ? *)", utc(2026, 11, 2, 12, 45)).unwrap());
        assert!(cron_matches("cron(5/15 * * * ? *)", utc(2026, 11, 2, 12, 50)).unwrap());
        assert!(cron_matches("cron(* * ? * 6#6 *)", SUNDAY_0330).is_err());
    }

    #[test]
    fn deployment_windows_read_the_wall_clock_of_their_time_zone() {
        assert_eq!(utc_offset_seconds("UTC", SUNDAY_0330).unwrap(), 0);
        // November: New York on EST (-5 h), Paris on CET (+1 h), Kolkata +5:30 all year.
        assert_eq!(
            utc_offset_seconds("America/New_York", SUNDAY_0330).unwrap(),
            -5 * 3600
        );
        assert_eq!(
            utc_offset_seconds("Europe/Paris", SUNDAY_0330).unwrap(),
            3600
        );
        assert_eq!(
            utc_offset_seconds("Asia/Kolkata", SUNDAY_0330).unwrap(),
            5 * 3600 + 1800
        );
        // July: daylight saving time in New York (-4 h).
        let july = SUNDAY_0330 - 140.0 * 86_400.0;
        assert_eq!(
            utc_offset_seconds("America/New_York", july).unwrap(),
            -4 * 3600
        );
        let err = utc_offset_seconds("Mars/Olympus", SUNDAY_0330).unwrap_err();
        assert!(
            err.contains("TimeZone") && err.contains("Mars/Olympus"),
            "{err}"
        );
        // 03:30 UTC on Sunday is 22:30 on Saturday in New York.
        let local =
            SUNDAY_0330 + f64::from(utc_offset_seconds("America/New_York", SUNDAY_0330).unwrap());
        assert!(cron_matches("cron(30 22 ? * SAT *)", local).unwrap());
        assert!(!cron_matches("cron(30 22 ? * SAT *)", SUNDAY_0330).unwrap());
    }
}
