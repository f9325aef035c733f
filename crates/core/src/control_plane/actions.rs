//! ListActionExecutions and ListRuleExecutions: the action executions (or the stage-condition
//! rule runs) of one pipeline execution (`filter.pipelineExecutionId`) or of the pipeline's
//! executions, newest execution first and, within an execution, newest first (start time, then
//! id, descending).
//!
//! The `nextToken` is opaque to callers: base64url of a small JSON [`Cursor`] naming the pipeline,
//! the execution being listed, the executions-list token of the page holding it, and the last
//! action returned from it. A page resumes strictly after that action in the same order, so an
//! action started meanwhile is never returned twice, and executions started meanwhile (newer,
//! so in front of the cursor) are skipped.

use std::collections::BTreeMap;

use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};
use serde_with::skip_serializing_none;

use super::executions::{require_pipeline, store_error};
use super::{check_name, parse_pipeline_execution_id, ApiError};
use crate::declaration::{masked_configuration, RuleDeclaration, StageDeclaration};
use crate::engine::Engine;
use crate::execution::{
    ActionExecution, ArtifactDetail, ConditionRun, ExecutionSnapshot, RuleRun, StageExecution,
};
use crate::store::PipelineRecord;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub(super) struct ListInput {
    pipeline_name: String,
    filter: Option<Filter>,
    max_results: Option<i64>,
    next_token: Option<String>,
}

/// `ActionExecutionFilter`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Filter {
    pipeline_execution_id: Option<String>,
    latest_in_pipeline_execution: Option<LatestInPipelineExecution>,
}

/// `LatestInPipelineExecutionFilter`: the action executions of one pipeline execution, only the
/// latest run of each action (`startTimeRange` `Latest`: what a retried stage ran last) or all
/// of them (`All`).
#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct LatestInPipelineExecution {
    pipeline_execution_id: Option<String>,
    start_time_range: Option<String>,
}

/// Where a page resumes.
#[skip_serializing_none]
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Cursor {
    /// The pipeline.
    #[serde(rename = "n")]
    pipeline_name: String,
    /// The executions-list token of the page holding the execution (none: the first page).
    #[serde(rename = "p", default)]
    page_token: Option<String>,
    /// The execution being listed.
    #[serde(rename = "e")]
    pipeline_execution_id: String,
    /// The last action of that execution returned (none: none of its actions yet).
    #[serde(rename = "a", default)]
    after: Option<ActionKey>,
}

/// A row's place in the order: start time and action (or rule) execution id.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct ActionKey(f64, String);

impl ActionKey {
    fn of(a: &ActionExecution) -> Self {
        Self(a.start_time, a.action_execution_id.clone())
    }

    /// True when `self` comes after `other`, newest first.
    fn follows(&self, other: &ActionKey) -> bool {
        self.0
            .total_cmp(&other.0)
            .then_with(|| self.1.cmp(&other.1))
            .is_lt()
    }
}

impl Cursor {
    fn encode(&self) -> String {
        B64.encode(serde_json::to_vec(self).unwrap_or_default())
    }

    fn decode(token: &str) -> Option<Self> {
        if token.is_empty() || token.len() > 2048 {
            return None;
        }
        let bytes = B64.decode(token).ok()?;
        serde_json::from_slice(&bytes).ok()
    }
}

fn invalid_token() -> ApiError {
    ApiError::new(
        "InvalidNextTokenException",
        "nextToken: not a token this service issued for this request",
    )
}

fn execution_not_found(pipeline: &str, id: &str) -> ApiError {
    ApiError::new(
        "PipelineExecutionNotFoundException",
        format!("pipeline {pipeline} has no execution {id}"),
    )
}

/// The most executions one listing call reads the records of (see `walk`).
const MAX_EXECUTIONS_READ: usize = 200;

/// What is listed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Listing {
    /// ListActionExecutions.
    Actions,
    /// ListRuleExecutions.
    Rules,
}

impl Listing {
    /// The answer's list member.
    fn member(self) -> &'static str {
        match self {
            Listing::Actions => "actionExecutionDetails",
            Listing::Rules => "ruleExecutionDetails",
        }
    }
}

/// One row of a listing, before it is written out.
enum Row<'s> {
    Action(&'s ActionExecution),
    Rule(RuleRow<'s>),
}

/// One rule's run in a stage attempt's condition.
struct RuleRow<'s> {
    id: String,
    stage: &'s StageExecution,
    condition: &'s ConditionRun,
    rule: &'s RuleRun,
    pipeline_version: u32,
}

impl Row<'_> {
    fn key(&self) -> ActionKey {
        match self {
            Row::Action(a) => ActionKey::of(a),
            Row::Rule(r) => ActionKey(r.rule.at, r.id.clone()),
        }
    }
    fn version(&self) -> u32 {
        match self {
            Row::Action(a) => a.pipeline_version,
            Row::Rule(r) => r.pipeline_version,
        }
    }
    fn stage_name(&self) -> &str {
        match self {
            Row::Action(a) => &a.stage_name,
            Row::Rule(r) => &r.stage.stage_name,
        }
    }
}

/// The rule runs of `snapshot`, each with a stable id (a digest of where it ran). Only the
/// latest attempt of each stage when `latest_only`.
fn rule_rows(snapshot: &ExecutionSnapshot, latest_only: bool) -> Vec<RuleRow<'_>> {
    let execution = &snapshot.execution;
    snapshot
        .stages
        .iter()
        .filter(|s| {
            !latest_only
                || snapshot
                    .stage(&s.stage_name)
                    .is_some_and(|latest| latest.attempt == s.attempt)
        })
        .flat_map(|stage| {
            stage
                .conditions
                .iter()
                .enumerate()
                .flat_map(move |(c, condition)| {
                    condition.rules.iter().enumerate().map(move |(r, rule)| {
                        let id = crate::events::digest_uuid(&[
                            &execution.pipeline_execution_id,
                            &stage.stage_name,
                            &stage.attempt.to_string(),
                            &c.to_string(),
                            &r.to_string(),
                            &rule.rule_name,
                        ]);
                        RuleRow {
                            id,
                            stage,
                            condition,
                            rule,
                            pipeline_version: execution.pipeline_version,
                        }
                    })
                })
        })
        .collect()
}

/// What a listing collects.
struct Collector<'p> {
    pipeline_name: String,
    limit: usize,
    details: Vec<Value>,
    /// Declarations by version, for each action's `roleArn` and each rule's declaration.
    versions: BTreeMap<u32, Option<PipelineRecord>>,
    /// Only the latest run of each action (or stage attempt) of an execution.
    latest_only: bool,
    listing: Listing,
    engine: &'p Engine<'p>,
}

impl Collector<'_> {
    /// Add the actions of `snapshot` after `after`. When the page fills up before they are all
    /// added, returns the cursor of the next page (`page_token` is that of the page holding the
    /// execution).
    async fn add(
        &mut self,
        snapshot: &ExecutionSnapshot,
        page_token: Option<&str>,
        after: Option<&ActionKey>,
    ) -> Result<Option<Cursor>, ApiError> {
        let mut rows: Vec<Row> = match self.listing {
            Listing::Actions => {
                let latest = self.latest_only.then(|| latest_runs(snapshot));
                snapshot
                    .actions
                    .iter()
                    .filter(|a| {
                        latest
                            .as_ref()
                            .is_none_or(|ids| ids.contains(a.action_execution_id.as_str()))
                    })
                    .map(Row::Action)
                    .collect()
            }
            Listing::Rules => rule_rows(snapshot, self.latest_only)
                .into_iter()
                .map(Row::Rule)
                .collect(),
        };
        rows.retain(|row| after.is_none_or(|after| row.key().follows(after)));
        rows.sort_by(|a, b| {
            let (a, b) = (a.key(), b.key());
            b.0.total_cmp(&a.0).then_with(|| b.1.cmp(&a.1))
        });
        let mut last: Option<ActionKey> = after.cloned();
        for row in rows {
            if self.details.len() == self.limit {
                return Ok(Some(Cursor {
                    pipeline_name: self.pipeline_name.clone(),
                    page_token: page_token.map(str::to_string),
                    pipeline_execution_id: snapshot.execution.pipeline_execution_id.clone(),
                    after: last,
                }));
            }
            let detail = match &row {
                Row::Action(action) => {
                    let role_arn = self
                        .declared_stage(row.version(), row.stage_name())
                        .await?
                        .and_then(|s| s.actions.iter().find(|a| a.name == action.action_name))
                        .and_then(|a| a.role_arn.clone());
                    detail_json(action, role_arn.as_deref())
                }
                Row::Rule(rule) => {
                    let declared = self
                        .declared_stage(row.version(), row.stage_name())
                        .await?
                        .and_then(|s| declared_rule(s, rule))
                        .cloned();
                    rule_detail_json(snapshot, rule, declared.as_ref())
                }
            };
            self.details.push(detail);
            last = Some(row.key());
        }
        Ok(None)
    }

    /// Stage `stage` as pipeline version `version` declared it.
    async fn declared_stage(
        &mut self,
        version: u32,
        stage: &str,
    ) -> Result<Option<&StageDeclaration>, ApiError> {
        if !self.versions.contains_key(&version) {
            let record = self
                .engine
                .pipelines
                .get(&self.pipeline_name, Some(version))
                .await
                .map_err(store_error)?;
            self.versions.insert(version, record);
        }
        Ok(self
            .versions
            .get(&version)
            .and_then(Option::as_ref)
            .and_then(|r| r.declaration.stages.iter().find(|s| s.name == stage)))
    }
}

/// The declaration of the rule `row` ran: the rule of that name in a condition of the same
/// kind.
fn declared_rule<'d>(stage: &'d StageDeclaration, row: &RuleRow) -> Option<&'d RuleDeclaration> {
    crate::conditions::conditions_of(stage, row.condition.kind)
        .iter()
        .flat_map(|c| c.rules.iter().flatten())
        .find(|r| r.name == row.rule.rule_name)
}

pub(super) async fn list(
    engine: &Engine<'_>,
    input: ListInput,
    listing: Listing,
) -> Result<Value, ApiError> {
    check_name("pipelineName", &input.pipeline_name)?;
    let limit = match input.max_results {
        None => 100,
        Some(n @ 1..=100) => n as usize,
        Some(n) => {
            return Err(ApiError::validation(format!(
                "maxResults: must be 1..100, got {n}"
            )))
        }
    };
    let mut filter = input.filter.unwrap_or(Filter {
        pipeline_execution_id: None,
        latest_in_pipeline_execution: None,
    });
    if let Some(id) = &filter.pipeline_execution_id {
        parse_pipeline_execution_id("filter.pipelineExecutionId", id)?;
    }
    let mut latest_only = false;
    if let Some(latest) = filter.latest_in_pipeline_execution.take() {
        const MEMBER: &str = "filter.latestInPipelineExecution";
        let id = latest.pipeline_execution_id.ok_or_else(|| {
            ApiError::validation(format!("{MEMBER}.pipelineExecutionId: required"))
        })?;
        parse_pipeline_execution_id(&format!("{MEMBER}.pipelineExecutionId"), &id)?;
        latest_only = match latest.start_time_range.as_deref() {
            Some("Latest") => true,
            Some("All") => false,
            Some(other) => {
                return Err(ApiError::validation(format!(
                    "{MEMBER}.startTimeRange: must be Latest or All, got {other:?}"
                )))
            }
            None => {
                return Err(ApiError::validation(format!(
                    "{MEMBER}.startTimeRange: required"
                )))
            }
        };
        match &filter.pipeline_execution_id {
            Some(other) if *other != id => {
                return Err(ApiError::validation(format!(
                    "{MEMBER}.pipelineExecutionId: {id} differs from filter.pipelineExecutionId {other}"
                )))
            }
            _ => filter.pipeline_execution_id = Some(id),
        }
    }
    let cursor = match &input.next_token {
        None => None,
        Some(token) => {
            let cursor = Cursor::decode(token).ok_or_else(invalid_token)?;
            let fits = cursor.pipeline_name == input.pipeline_name
                && filter.pipeline_execution_id.as_ref().is_none_or(|id| {
                    *id == cursor.pipeline_execution_id && cursor.page_token.is_none()
                });
            if !fits {
                return Err(invalid_token());
            }
            Some(cursor)
        }
    };
    require_pipeline(engine, &input.pipeline_name).await?;
    let mut collector = Collector {
        pipeline_name: input.pipeline_name.clone(),
        limit,
        details: Vec::new(),
        versions: BTreeMap::new(),
        latest_only,
        listing,
        engine,
    };
    let next = match &filter.pipeline_execution_id {
        Some(id) => {
            let snapshot = engine
                .executions
                .snapshot(id)
                .await
                .map_err(store_error)?
                .filter(|s| s.execution.pipeline_name == input.pipeline_name)
                .ok_or_else(|| execution_not_found(&input.pipeline_name, id))?;
            let after = cursor.as_ref().and_then(|c| c.after.as_ref());
            collector.add(&snapshot, None, after).await?
        }
        None => walk(engine, &mut collector, cursor).await?,
    };
    let mut out = json!({ listing.member(): collector.details });
    if let Some(cursor) = next {
        out["nextToken"] = json!(cursor.encode());
    }
    Ok(out)
}

/// The action execution ids of the latest run of each action (stage and action name) of
/// `snapshot`.
fn latest_runs(snapshot: &ExecutionSnapshot) -> std::collections::BTreeSet<&str> {
    let mut latest: BTreeMap<(&str, &str), &ActionExecution> = BTreeMap::new();
    for a in &snapshot.actions {
        let key = (a.stage_name.as_str(), a.action_name.as_str());
        let newer = latest
            .get(&key)
            .is_none_or(|b| ActionKey::of(b).follows(&ActionKey::of(a)));
        if newer {
            latest.insert(key, a);
        }
    }
    latest
        .values()
        .map(|a| a.action_execution_id.as_str())
        .collect()
}

/// The pipeline's executions, newest first, from `cursor` on, until the page is full.
async fn walk(
    engine: &Engine<'_>,
    collector: &mut Collector<'_>,
    cursor: Option<Cursor>,
) -> Result<Option<Cursor>, ApiError> {
    let (mut page_token, mut resume) = match cursor {
        None => (None, None),
        Some(c) => (c.page_token, Some((c.pipeline_execution_id, c.after))),
    };
    // Executions whose records were read by this call: past MAX_EXECUTIONS_READ the page ends
    // short, with a cursor after the last one read (most executions run no rule: a listing of
    // rule runs must not read a long history in one call).
    let mut read = 0;
    loop {
        let page = engine
            .executions
            .list_executions(
                &collector.pipeline_name,
                page_token.as_deref(),
                collector.limit,
            )
            .await
            .map_err(store_error)?;
        for execution in &page.items {
            let mut after = None;
            if let Some((id, last)) = &resume {
                // Executions in front of the cursor's (started since) were not part of the
                // listing.
                if *id != execution.pipeline_execution_id {
                    continue;
                }
                after = last.clone();
                resume = None;
            }
            if read == MAX_EXECUTIONS_READ {
                return Ok(Some(Cursor {
                    pipeline_name: collector.pipeline_name.clone(),
                    page_token: page_token.clone(),
                    pipeline_execution_id: execution.pipeline_execution_id.clone(),
                    after: None,
                }));
            }
            read += 1;
            let Some(snapshot) = engine
                .executions
                .snapshot(&execution.pipeline_execution_id)
                .await
                .map_err(store_error)?
            else {
                continue;
            };
            if let Some(next) = collector
                .add(&snapshot, page_token.as_deref(), after.as_ref())
                .await?
            {
                return Ok(Some(next));
            }
        }
        match page.next_token {
            Some(token) if !page.items.is_empty() => page_token = Some(token),
            _ => return Ok(None),
        }
    }
}

/// `ArtifactDetail` as the API returns it (the S3 version id stays Pipewright's).
fn artifact_json(a: &ArtifactDetail) -> Value {
    json!({
        "name": a.name,
        "s3location": { "bucket": a.s3_location.bucket, "key": a.s3_location.key },
    })
}

/// `ActionExecutionDetail` of one run. Never the task token or the log tail.
pub fn detail_json(a: &ActionExecution, role_arn: Option<&str>) -> Value {
    let mut input = Map::new();
    input.insert("actionTypeId".into(), json!(a.input.action_type_id));
    input.insert(
        "configuration".into(),
        json!(masked_configuration(&a.input.configuration)),
    );
    input.insert(
        "resolvedConfiguration".into(),
        json!(masked_configuration(&a.input.resolved_configuration)),
    );
    if let Some(role) = role_arn {
        input.insert("roleArn".into(), json!(role));
    }
    if let Some(region) = &a.input.region {
        input.insert("region".into(), json!(region));
    }
    input.insert(
        "inputArtifacts".into(),
        a.input.input_artifacts.iter().map(artifact_json).collect(),
    );
    if let Some(namespace) = &a.input.namespace {
        input.insert("namespace".into(), json!(namespace));
    }

    let result = &a.output.execution_result;
    let mut execution_result = Map::new();
    if let Some(id) = &result.external_execution_id {
        execution_result.insert("externalExecutionId".into(), json!(id));
    }
    if let Some(summary) = &result.external_execution_summary {
        execution_result.insert("externalExecutionSummary".into(), json!(summary));
    }
    if let Some(url) = &result.external_execution_url {
        execution_result.insert("externalExecutionUrl".into(), json!(url));
    }
    if let Some(error) = &result.error_details {
        execution_result.insert(
            "errorDetails".into(),
            json!({ "code": error.code, "message": error.message }),
        );
    }
    let mut output = Map::new();
    output.insert(
        "outputArtifacts".into(),
        a.output
            .output_artifacts
            .iter()
            .map(artifact_json)
            .collect(),
    );
    if !execution_result.is_empty() {
        output.insert("executionResult".into(), Value::Object(execution_result));
    }
    output.insert("outputVariables".into(), json!(a.output.output_variables));

    let mut out = Map::new();
    out.insert("pipelineExecutionId".into(), json!(a.pipeline_execution_id));
    out.insert("actionExecutionId".into(), json!(a.action_execution_id));
    out.insert("pipelineVersion".into(), json!(a.pipeline_version));
    out.insert("stageName".into(), json!(a.stage_name));
    out.insert("actionName".into(), json!(a.action_name));
    out.insert("startTime".into(), json!(a.start_time));
    out.insert("lastUpdateTime".into(), json!(a.last_update_time));
    if let Some(by) = &a.updated_by {
        out.insert("updatedBy".into(), json!(by));
    }
    out.insert("status".into(), json!(a.status));
    out.insert("input".into(), Value::Object(input));
    out.insert("output".into(), Value::Object(output));
    Value::Object(out)
}

/// `RuleExecutionDetail` of one rule run: its declaration (type, configuration, role, region,
/// input artifacts) as the pipeline version that ran it declared it, and its result.
fn rule_detail_json(
    snapshot: &ExecutionSnapshot,
    row: &RuleRow,
    declared: Option<&RuleDeclaration>,
) -> Value {
    let mut input = Map::new();
    if let Some(rule) = declared {
        input.insert("ruleTypeId".into(), json!(rule.rule_type_id));
        if let Some(configuration) = &rule.configuration {
            input.insert(
                "configuration".into(),
                json!(masked_configuration(configuration)),
            );
        }
        if let Some(role) = &rule.role_arn {
            input.insert("roleArn".into(), json!(role));
        }
        if let Some(region) = &rule.region {
            input.insert("region".into(), json!(region));
        }
        // Where the artifacts it was given were, in this execution.
        let artifacts = snapshot.artifacts();
        let inputs: Vec<Value> = rule
            .input_artifacts
            .iter()
            .flatten()
            .filter_map(|a| {
                let at = artifacts.get(&a.name)?;
                Some(json!({"name": a.name, "s3location": {"bucket": at.bucket, "key": at.key}}))
            })
            .collect();
        input.insert("inputArtifacts".into(), json!(inputs));
    }
    let mut result = Map::new();
    result.insert("externalExecutionId".into(), json!(row.id));
    result.insert("externalExecutionSummary".into(), json!(row.rule.summary));
    if row.rule.status == "Failed" {
        result.insert(
            "errorDetails".into(),
            json!({"code": "RuleFailed", "message": row.rule.summary}),
        );
    }
    json!({
        "pipelineExecutionId": snapshot.execution.pipeline_execution_id,
        "ruleExecutionId": row.id,
        "pipelineVersion": row.pipeline_version,
        "stageName": row.stage.stage_name,
        "ruleName": row.rule.rule_name,
        "startTime": row.rule.at,
        "lastUpdateTime": row.rule.at,
        "status": row.rule.status,
        "input": input,
        "output": {"executionResult": result},
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_garbage_is_refused() {
        let cursor = Cursor {
            pipeline_name: "app".into(),
            page_token: Some("EXEC#000000000001000#e1".into()),
            pipeline_execution_id: "e1".into(),
            after: Some(ActionKey(1_700_000_000.123, "a1".into())),
        };
        let token = cursor.encode();
        assert!(token.len() <= 2048);
        assert_eq!(Cursor::decode(&token), Some(cursor));
        for bad in [
            "",
            "not base64!",
            &B64.encode(b"{\"x\":1}"),
            &"A".repeat(3000),
        ] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn newer_actions_come_first() {
        let older = ActionKey(10.0, "b".into());
        let newer = ActionKey(11.0, "a".into());
        assert!(older.follows(&newer));
        assert!(!newer.follows(&older));
        assert!(ActionKey(10.0, "a".into()).follows(&older));
        assert!(!older.follows(&older));
    }
}
