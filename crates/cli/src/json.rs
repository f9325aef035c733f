//! SDK output types as CodePipeline's JSON: the member names of the wire protocol (botocore's
//! model), absent members left out, timestamps as epoch seconds (the wire's own form).
//!
//! `--output json` prints these; the declaration serializer also checks [`crate::convert`].

use std::collections::{BTreeMap, HashMap};

use aws_sdk_codepipeline::operation;
use aws_sdk_codepipeline::primitives::DateTime;
use aws_sdk_codepipeline::types as sdk;
use serde_json::{Map, Value};

/// A JSON object built member by member; `None` members are left out.
struct Obj(Map<String, Value>);

impl Obj {
    fn new() -> Self {
        Self(Map::new())
    }

    fn put(mut self, key: &str, value: impl Into<Value>) -> Self {
        self.0.insert(key.to_owned(), value.into());
        self
    }

    fn opt<T: Into<Value>>(mut self, key: &str, value: Option<T>) -> Self {
        if let Some(v) = value {
            self.0.insert(key.to_owned(), v.into());
        }
        self
    }

    fn done(self) -> Value {
        Value::Object(self.0)
    }
}

/// Epoch seconds: an integer when whole, as the AWS CLI's JSON shows wire timestamps.
pub fn time(t: &DateTime) -> Value {
    let secs = t.as_secs_f64();
    if t.subsec_nanos() == 0 {
        Value::from(t.secs())
    } else {
        Value::from(secs)
    }
}

fn time_opt(t: Option<&DateTime>) -> Option<Value> {
    t.map(time)
}

fn str_opt(s: &Option<String>) -> Option<Value> {
    s.as_deref().map(Value::from)
}

fn list<T>(items: &Option<Vec<T>>, f: impl Fn(&T) -> Value) -> Option<Value> {
    items
        .as_deref()
        .map(|items| Value::Array(items.iter().map(f).collect()))
}

fn strings(items: &Option<Vec<String>>) -> Option<Value> {
    list(items, |s| Value::from(s.as_str()))
}

fn string_map(map: &Option<HashMap<String, String>>) -> Option<Value> {
    map.as_ref().map(|m| {
        // Sorted, so the output is stable.
        let sorted: BTreeMap<&String, &String> = m.iter().collect();
        Value::Object(
            sorted
                .into_iter()
                .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                .collect(),
        )
    })
}

fn enum_opt<T: AsRef<str>>(v: Option<&T>) -> Option<Value> {
    v.map(|v| Value::from(v.as_ref()))
}

// ---------------------------------------------------------------------------------------------
// The declaration.

/// `PipelineDeclaration`.
pub fn pipeline_declaration(p: &sdk::PipelineDeclaration) -> Value {
    Obj::new()
        .put("name", p.name.as_str())
        .put("roleArn", p.role_arn.as_str())
        .opt(
            "artifactStore",
            p.artifact_store.as_ref().map(artifact_store),
        )
        .opt(
            "artifactStores",
            p.artifact_stores.as_ref().map(|stores| {
                let sorted: BTreeMap<&String, &sdk::ArtifactStore> = stores.iter().collect();
                Value::Object(
                    sorted
                        .into_iter()
                        .map(|(region, store)| (region.clone(), artifact_store(store)))
                        .collect(),
                )
            }),
        )
        .put(
            "stages",
            Value::Array(p.stages.iter().map(stage_declaration).collect()),
        )
        .opt("version", p.version)
        .opt("executionMode", enum_opt(p.execution_mode.as_ref()))
        .opt("pipelineType", enum_opt(p.pipeline_type.as_ref()))
        .opt(
            "variables",
            list(&p.variables, |v| {
                Obj::new()
                    .put("name", v.name.as_str())
                    .opt("defaultValue", str_opt(&v.default_value))
                    .opt("description", str_opt(&v.description))
                    .done()
            }),
        )
        .opt("triggers", list(&p.triggers, trigger))
        .done()
}

fn artifact_store(s: &sdk::ArtifactStore) -> Value {
    Obj::new()
        .put("type", s.r#type.as_str())
        .put("location", s.location.as_str())
        .opt(
            "encryptionKey",
            s.encryption_key.as_ref().map(|k| {
                Obj::new()
                    .put("id", k.id.as_str())
                    .put("type", k.r#type.as_str())
                    .done()
            }),
        )
        .done()
}

fn stage_declaration(s: &sdk::StageDeclaration) -> Value {
    Obj::new()
        .put("name", s.name.as_str())
        .opt(
            "blockers",
            list(&s.blockers, |b| {
                Obj::new()
                    .put("name", b.name.as_str())
                    .put("type", b.r#type.as_str())
                    .done()
            }),
        )
        .put(
            "actions",
            Value::Array(s.actions.iter().map(action_declaration).collect()),
        )
        .opt(
            "onFailure",
            s.on_failure.as_ref().map(|f| {
                Obj::new()
                    .opt("result", enum_opt(f.result.as_ref()))
                    .opt(
                        "retryConfiguration",
                        f.retry_configuration.as_ref().map(|r| {
                            Obj::new()
                                .opt("retryMode", enum_opt(r.retry_mode.as_ref()))
                                .done()
                        }),
                    )
                    .opt("conditions", list(&f.conditions, condition))
                    .done()
            }),
        )
        .opt(
            "onSuccess",
            s.on_success.as_ref().map(|c| {
                Obj::new()
                    .put(
                        "conditions",
                        Value::Array(c.conditions.iter().map(condition).collect()),
                    )
                    .done()
            }),
        )
        .opt(
            "beforeEntry",
            s.before_entry.as_ref().map(|c| {
                Obj::new()
                    .put(
                        "conditions",
                        Value::Array(c.conditions.iter().map(condition).collect()),
                    )
                    .done()
            }),
        )
        .done()
}

fn action_type_id(id: &sdk::ActionTypeId) -> Value {
    Obj::new()
        .put("category", id.category.as_str())
        .put("owner", id.owner.as_str())
        .put("provider", id.provider.as_str())
        .put("version", id.version.as_str())
        .done()
}

fn action_declaration(a: &sdk::ActionDeclaration) -> Value {
    Obj::new()
        .put("name", a.name.as_str())
        .opt(
            "actionTypeId",
            a.action_type_id.as_ref().map(action_type_id),
        )
        .opt("runOrder", a.run_order)
        .opt("configuration", string_map(&a.configuration))
        .opt("commands", strings(&a.commands))
        .opt(
            "outputArtifacts",
            list(&a.output_artifacts, |o| {
                Obj::new()
                    .put("name", o.name.as_str())
                    .opt("files", strings(&o.files))
                    .done()
            }),
        )
        .opt("inputArtifacts", list(&a.input_artifacts, input_artifact))
        .opt("outputVariables", strings(&a.output_variables))
        .opt("roleArn", str_opt(&a.role_arn))
        .opt("region", str_opt(&a.region))
        .opt("namespace", str_opt(&a.namespace))
        .opt("timeoutInMinutes", a.timeout_in_minutes)
        .opt(
            "environmentVariables",
            list(&a.environment_variables, |v| {
                Obj::new()
                    .put("name", v.name.as_str())
                    .put("value", v.value.as_str())
                    .opt("type", enum_opt(v.r#type.as_ref()))
                    .done()
            }),
        )
        .done()
}

fn input_artifact(i: &sdk::InputArtifact) -> Value {
    Obj::new().put("name", i.name.as_str()).done()
}

fn condition(c: &sdk::Condition) -> Value {
    Obj::new()
        .opt("result", enum_opt(c.result.as_ref()))
        .opt(
            "rules",
            list(&c.rules, |r| {
                Obj::new()
                    .put("name", r.name.as_str())
                    .opt(
                        "ruleTypeId",
                        r.rule_type_id.as_ref().map(|id| {
                            Obj::new()
                                .put("category", id.category.as_str())
                                .opt("owner", enum_opt(id.owner.as_ref()))
                                .put("provider", id.provider.as_str())
                                .opt("version", str_opt(&id.version))
                                .done()
                        }),
                    )
                    .opt("configuration", string_map(&r.configuration))
                    .opt("commands", strings(&r.commands))
                    .opt("inputArtifacts", list(&r.input_artifacts, input_artifact))
                    .opt("roleArn", str_opt(&r.role_arn))
                    .opt("region", str_opt(&r.region))
                    .opt("timeoutInMinutes", r.timeout_in_minutes)
                    .done()
            }),
        )
        .done()
}

fn trigger(t: &sdk::PipelineTriggerDeclaration) -> Value {
    fn criteria(includes: &Option<Vec<String>>, excludes: &Option<Vec<String>>) -> Value {
        Obj::new()
            .opt("includes", strings(includes))
            .opt("excludes", strings(excludes))
            .done()
    }
    let branches = |c: &sdk::GitBranchFilterCriteria| criteria(&c.includes, &c.excludes);
    let paths = |c: &sdk::GitFilePathFilterCriteria| criteria(&c.includes, &c.excludes);
    Obj::new()
        .put("providerType", t.provider_type.as_str())
        .opt(
            "gitConfiguration",
            t.git_configuration.as_ref().map(|g| {
                Obj::new()
                    .put("sourceActionName", g.source_action_name.as_str())
                    .opt(
                        "push",
                        list(&g.push, |p| {
                            Obj::new()
                                .opt(
                                    "tags",
                                    p.tags.as_ref().map(|c| criteria(&c.includes, &c.excludes)),
                                )
                                .opt("branches", p.branches.as_ref().map(branches))
                                .opt("filePaths", p.file_paths.as_ref().map(paths))
                                .done()
                        }),
                    )
                    .opt(
                        "pullRequest",
                        list(&g.pull_request, |p| {
                            Obj::new()
                                .opt("events", list(&p.events, |e| Value::from(e.as_str())))
                                .opt("branches", p.branches.as_ref().map(branches))
                                .opt("filePaths", p.file_paths.as_ref().map(paths))
                                .done()
                        }),
                    )
                    .done()
            }),
        )
        .done()
}

/// `PipelineMetadata`.
fn pipeline_metadata(m: &sdk::PipelineMetadata) -> Value {
    Obj::new()
        .opt("pipelineArn", str_opt(&m.pipeline_arn))
        .opt("created", time_opt(m.created.as_ref()))
        .opt("updated", time_opt(m.updated.as_ref()))
        .opt(
            "pollingDisabledAt",
            time_opt(m.polling_disabled_at.as_ref()),
        )
        .done()
}

// ---------------------------------------------------------------------------------------------
// Operation outputs.

/// CreatePipeline's output.
pub fn create_pipeline(o: &operation::create_pipeline::CreatePipelineOutput) -> Value {
    Obj::new()
        .opt("pipeline", o.pipeline.as_ref().map(pipeline_declaration))
        .opt(
            "tags",
            list(&o.tags, |t| {
                Obj::new()
                    .put("key", t.key.as_str())
                    .put("value", t.value.as_str())
                    .done()
            }),
        )
        .done()
}

/// UpdatePipeline's output.
pub fn update_pipeline(o: &operation::update_pipeline::UpdatePipelineOutput) -> Value {
    Obj::new()
        .opt("pipeline", o.pipeline.as_ref().map(pipeline_declaration))
        .done()
}

/// GetPipeline's output.
pub fn get_pipeline(o: &operation::get_pipeline::GetPipelineOutput) -> Value {
    Obj::new()
        .opt("pipeline", o.pipeline.as_ref().map(pipeline_declaration))
        .opt("metadata", o.metadata.as_ref().map(pipeline_metadata))
        .done()
}

/// An output that is only the execution id (Start, Retry, Stop).
pub fn execution_id(id: Option<&str>) -> Value {
    Obj::new().opt("pipelineExecutionId", id).done()
}

/// PutApprovalResult's output.
pub fn put_approval_result(o: &operation::put_approval_result::PutApprovalResultOutput) -> Value {
    Obj::new()
        .opt("approvedAt", time_opt(o.approved_at.as_ref()))
        .done()
}

/// GetPipelineState's output.
pub fn get_pipeline_state(o: &operation::get_pipeline_state::GetPipelineStateOutput) -> Value {
    Obj::new()
        .opt("pipelineName", str_opt(&o.pipeline_name))
        .opt("pipelineVersion", o.pipeline_version)
        .opt("stageStates", list(&o.stage_states, stage_state))
        .opt("created", time_opt(o.created.as_ref()))
        .opt("updated", time_opt(o.updated.as_ref()))
        .done()
}

fn stage_execution(e: &sdk::StageExecution) -> Value {
    Obj::new()
        .put("pipelineExecutionId", e.pipeline_execution_id.as_str())
        .put("status", e.status.as_str())
        .done()
}

fn error_details(e: &sdk::ErrorDetails) -> Value {
    Obj::new()
        .opt("code", str_opt(&e.code))
        .opt("message", str_opt(&e.message))
        .done()
}

fn stage_condition_state(c: &sdk::StageConditionState) -> Value {
    Obj::new()
        .opt(
            "latestExecution",
            c.latest_execution.as_ref().map(|e| {
                Obj::new()
                    .opt("status", enum_opt(e.status.as_ref()))
                    .opt("summary", str_opt(&e.summary))
                    .done()
            }),
        )
        .opt(
            "conditionStates",
            list(&c.condition_states, |s| {
                Obj::new()
                    .opt(
                        "latestExecution",
                        s.latest_execution.as_ref().map(|e| {
                            Obj::new()
                                .opt("status", enum_opt(e.status.as_ref()))
                                .opt("summary", str_opt(&e.summary))
                                .opt("lastStatusChange", time_opt(e.last_status_change.as_ref()))
                                .done()
                        }),
                    )
                    .opt(
                        "ruleStates",
                        list(&s.rule_states, |r| {
                            Obj::new()
                                .opt("ruleName", str_opt(&r.rule_name))
                                .opt(
                                    "currentRevision",
                                    r.current_revision.as_ref().map(|v| {
                                        Obj::new()
                                            .put("revisionId", v.revision_id.as_str())
                                            .put("revisionChangeId", v.revision_change_id.as_str())
                                            .put("created", time(&v.created))
                                            .done()
                                    }),
                                )
                                .opt(
                                    "latestExecution",
                                    r.latest_execution.as_ref().map(|e| {
                                        Obj::new()
                                            .opt("ruleExecutionId", str_opt(&e.rule_execution_id))
                                            .opt("status", enum_opt(e.status.as_ref()))
                                            .opt("summary", str_opt(&e.summary))
                                            .opt(
                                                "lastStatusChange",
                                                time_opt(e.last_status_change.as_ref()),
                                            )
                                            .opt("token", str_opt(&e.token))
                                            .opt("lastUpdatedBy", str_opt(&e.last_updated_by))
                                            .opt(
                                                "externalExecutionId",
                                                str_opt(&e.external_execution_id),
                                            )
                                            .opt(
                                                "externalExecutionUrl",
                                                str_opt(&e.external_execution_url),
                                            )
                                            .opt(
                                                "errorDetails",
                                                e.error_details.as_ref().map(error_details),
                                            )
                                            .done()
                                    }),
                                )
                                .opt("entityUrl", str_opt(&r.entity_url))
                                .opt("revisionUrl", str_opt(&r.revision_url))
                                .done()
                        }),
                    )
                    .done()
            }),
        )
        .done()
}

fn stage_state(s: &sdk::StageState) -> Value {
    Obj::new()
        .opt("stageName", str_opt(&s.stage_name))
        .opt(
            "inboundExecution",
            s.inbound_execution.as_ref().map(stage_execution),
        )
        .opt(
            "inboundExecutions",
            list(&s.inbound_executions, stage_execution),
        )
        .opt(
            "inboundTransitionState",
            s.inbound_transition_state.as_ref().map(|t| {
                Obj::new()
                    .put("enabled", t.enabled)
                    .opt("lastChangedBy", str_opt(&t.last_changed_by))
                    .opt("lastChangedAt", time_opt(t.last_changed_at.as_ref()))
                    .opt("disabledReason", str_opt(&t.disabled_reason))
                    .done()
            }),
        )
        .opt(
            "actionStates",
            list(&s.action_states, |a| {
                Obj::new()
                    .opt("actionName", str_opt(&a.action_name))
                    .opt(
                        "currentRevision",
                        a.current_revision.as_ref().map(|r| {
                            Obj::new()
                                .put("revisionId", r.revision_id.as_str())
                                .put("revisionChangeId", r.revision_change_id.as_str())
                                .put("created", time(&r.created))
                                .done()
                        }),
                    )
                    .opt(
                        "latestExecution",
                        a.latest_execution.as_ref().map(action_execution),
                    )
                    .opt("entityUrl", str_opt(&a.entity_url))
                    .opt("revisionUrl", str_opt(&a.revision_url))
                    .done()
            }),
        )
        .opt(
            "latestExecution",
            s.latest_execution.as_ref().map(stage_execution),
        )
        .opt(
            "beforeEntryConditionState",
            s.before_entry_condition_state
                .as_ref()
                .map(stage_condition_state),
        )
        .opt(
            "onSuccessConditionState",
            s.on_success_condition_state
                .as_ref()
                .map(stage_condition_state),
        )
        .opt(
            "onFailureConditionState",
            s.on_failure_condition_state
                .as_ref()
                .map(stage_condition_state),
        )
        .opt(
            "retryStageMetadata",
            s.retry_stage_metadata.as_ref().map(|r| {
                Obj::new()
                    .opt("autoStageRetryAttempt", r.auto_stage_retry_attempt)
                    .opt("manualStageRetryAttempt", r.manual_stage_retry_attempt)
                    .opt(
                        "latestRetryTrigger",
                        enum_opt(r.latest_retry_trigger.as_ref()),
                    )
                    .done()
            }),
        )
        .done()
}

/// `ActionExecution` (GetPipelineState's shape).
fn action_execution(e: &sdk::ActionExecution) -> Value {
    Obj::new()
        .opt("actionExecutionId", str_opt(&e.action_execution_id))
        .opt("status", enum_opt(e.status.as_ref()))
        .opt("summary", str_opt(&e.summary))
        .opt("lastStatusChange", time_opt(e.last_status_change.as_ref()))
        .opt("token", str_opt(&e.token))
        .opt("lastUpdatedBy", str_opt(&e.last_updated_by))
        .opt("externalExecutionId", str_opt(&e.external_execution_id))
        .opt("externalExecutionUrl", str_opt(&e.external_execution_url))
        .opt("percentComplete", e.percent_complete)
        .opt("errorDetails", e.error_details.as_ref().map(error_details))
        .opt("logStreamARN", str_opt(&e.log_stream_arn))
        .done()
}

fn trigger_of(t: &sdk::ExecutionTrigger) -> Value {
    Obj::new()
        .opt("triggerType", enum_opt(t.trigger_type.as_ref()))
        .opt("triggerDetail", str_opt(&t.trigger_detail))
        .done()
}

fn rollback_metadata(r: &sdk::PipelineRollbackMetadata) -> Value {
    Obj::new()
        .opt(
            "rollbackTargetPipelineExecutionId",
            str_opt(&r.rollback_target_pipeline_execution_id),
        )
        .done()
}

/// `PipelineSummary` (ListPipelines' item).
pub fn pipeline_summary(p: &sdk::PipelineSummary) -> Value {
    Obj::new()
        .opt("name", str_opt(&p.name))
        .opt("version", p.version.map(Value::from))
        .opt("pipelineType", enum_opt(p.pipeline_type.as_ref()))
        .opt("executionMode", enum_opt(p.execution_mode.as_ref()))
        .opt("created", time_opt(p.created.as_ref()))
        .opt("updated", time_opt(p.updated.as_ref()))
        .done()
}

/// `PipelineExecutionSummary`.
pub fn pipeline_execution_summary(s: &sdk::PipelineExecutionSummary) -> Value {
    Obj::new()
        .opt("pipelineExecutionId", str_opt(&s.pipeline_execution_id))
        .opt("status", enum_opt(s.status.as_ref()))
        .opt("statusSummary", str_opt(&s.status_summary))
        .opt("startTime", time_opt(s.start_time.as_ref()))
        .opt("lastUpdateTime", time_opt(s.last_update_time.as_ref()))
        .opt(
            "sourceRevisions",
            list(&s.source_revisions, |r| {
                Obj::new()
                    .put("actionName", r.action_name.as_str())
                    .opt("revisionId", str_opt(&r.revision_id))
                    .opt("revisionSummary", str_opt(&r.revision_summary))
                    .opt("revisionUrl", str_opt(&r.revision_url))
                    .done()
            }),
        )
        .opt("trigger", s.trigger.as_ref().map(trigger_of))
        .opt(
            "stopTrigger",
            s.stop_trigger
                .as_ref()
                .map(|t| Obj::new().opt("reason", str_opt(&t.reason)).done()),
        )
        .opt("executionMode", enum_opt(s.execution_mode.as_ref()))
        .opt("executionType", enum_opt(s.execution_type.as_ref()))
        .opt(
            "rollbackMetadata",
            s.rollback_metadata.as_ref().map(rollback_metadata),
        )
        .done()
}

/// ListPipelineExecutions' output (one page or several pages' summaries).
pub fn list_pipeline_executions(
    summaries: &[sdk::PipelineExecutionSummary],
    next_token: Option<&str>,
) -> Value {
    Obj::new()
        .put(
            "pipelineExecutionSummaries",
            Value::Array(summaries.iter().map(pipeline_execution_summary).collect()),
        )
        .opt("nextToken", next_token)
        .done()
}

/// `PipelineExecution` (GetPipelineExecution's member).
pub fn pipeline_execution(e: &sdk::PipelineExecution) -> Value {
    Obj::new()
        .opt("pipelineName", str_opt(&e.pipeline_name))
        .opt("pipelineVersion", e.pipeline_version)
        .opt("pipelineExecutionId", str_opt(&e.pipeline_execution_id))
        .opt("status", enum_opt(e.status.as_ref()))
        .opt("statusSummary", str_opt(&e.status_summary))
        .opt(
            "artifactRevisions",
            list(&e.artifact_revisions, |r| {
                Obj::new()
                    .opt("name", str_opt(&r.name))
                    .opt("revisionId", str_opt(&r.revision_id))
                    .opt(
                        "revisionChangeIdentifier",
                        str_opt(&r.revision_change_identifier),
                    )
                    .opt("revisionSummary", str_opt(&r.revision_summary))
                    .opt("created", time_opt(r.created.as_ref()))
                    .opt("revisionUrl", str_opt(&r.revision_url))
                    .done()
            }),
        )
        .opt(
            "variables",
            list(&e.variables, |v| {
                Obj::new()
                    .opt("name", str_opt(&v.name))
                    .opt("resolvedValue", str_opt(&v.resolved_value))
                    .done()
            }),
        )
        .opt("trigger", e.trigger.as_ref().map(trigger_of))
        .opt("executionMode", enum_opt(e.execution_mode.as_ref()))
        .opt("executionType", enum_opt(e.execution_type.as_ref()))
        .opt(
            "rollbackMetadata",
            e.rollback_metadata.as_ref().map(rollback_metadata),
        )
        .done()
}

/// `ActionExecutionDetail` (ListActionExecutions' member).
pub fn action_execution_detail(d: &sdk::ActionExecutionDetail) -> Value {
    let artifacts = |a: &Option<Vec<sdk::ArtifactDetail>>| {
        list(a, |a| {
            Obj::new()
                .opt("name", str_opt(&a.name))
                .opt(
                    "s3location",
                    a.s3_location.as_ref().map(|l| {
                        Obj::new()
                            .opt("bucket", str_opt(&l.bucket))
                            .opt("key", str_opt(&l.key))
                            .done()
                    }),
                )
                .done()
        })
    };
    Obj::new()
        .opt("pipelineExecutionId", str_opt(&d.pipeline_execution_id))
        .opt("actionExecutionId", str_opt(&d.action_execution_id))
        .opt("pipelineVersion", d.pipeline_version)
        .opt("stageName", str_opt(&d.stage_name))
        .opt("actionName", str_opt(&d.action_name))
        .opt("startTime", time_opt(d.start_time.as_ref()))
        .opt("lastUpdateTime", time_opt(d.last_update_time.as_ref()))
        .opt("updatedBy", str_opt(&d.updated_by))
        .opt("status", enum_opt(d.status.as_ref()))
        .opt(
            "input",
            d.input.as_ref().map(|i| {
                Obj::new()
                    .opt(
                        "actionTypeId",
                        i.action_type_id.as_ref().map(action_type_id),
                    )
                    .opt("configuration", string_map(&i.configuration))
                    .opt(
                        "resolvedConfiguration",
                        string_map(&i.resolved_configuration),
                    )
                    .opt("roleArn", str_opt(&i.role_arn))
                    .opt("region", str_opt(&i.region))
                    .opt("inputArtifacts", artifacts(&i.input_artifacts))
                    .opt("namespace", str_opt(&i.namespace))
                    .done()
            }),
        )
        .opt(
            "output",
            d.output.as_ref().map(|o| {
                Obj::new()
                    .opt("outputArtifacts", artifacts(&o.output_artifacts))
                    .opt(
                        "executionResult",
                        o.execution_result.as_ref().map(|r| {
                            Obj::new()
                                .opt("externalExecutionId", str_opt(&r.external_execution_id))
                                .opt(
                                    "externalExecutionSummary",
                                    str_opt(&r.external_execution_summary),
                                )
                                .opt("externalExecutionUrl", str_opt(&r.external_execution_url))
                                .opt("errorDetails", r.error_details.as_ref().map(error_details))
                                .opt("logStreamARN", str_opt(&r.log_stream_arn))
                                .done()
                        }),
                    )
                    .opt("outputVariables", string_map(&o.output_variables))
                    .done()
            }),
        )
        .done()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_print_as_integers() {
        assert_eq!(
            time(&DateTime::from_secs(1_714_564_800)),
            Value::from(1_714_564_800_i64)
        );
        assert_eq!(
            time(&DateTime::from_secs_f64(1_714_564_800.5)),
            Value::from(1_714_564_800.5)
        );
    }

    #[test]
    fn state_uses_codepipeline_member_names() {
        let out = operation::get_pipeline_state::GetPipelineStateOutput::builder()
            .pipeline_name("p")
            .pipeline_version(2)
            .stage_states(
                sdk::StageState::builder()
                    .stage_name("Approve")
                    .inbound_transition_state(sdk::TransitionState::builder().enabled(true).build())
                    .latest_execution(
                        sdk::StageExecution::builder()
                            .pipeline_execution_id("e1")
                            .status(sdk::StageExecutionStatus::InProgress)
                            .build()
                            .unwrap(),
                    )
                    .action_states(
                        sdk::ActionState::builder()
                            .action_name("Release")
                            .latest_execution(
                                sdk::ActionExecution::builder()
                                    .action_execution_id("a1")
                                    .status(sdk::ActionExecutionStatus::InProgress)
                                    .token("a1")
                                    .last_status_change(DateTime::from_secs(100))
                                    .build(),
                            )
                            .build(),
                    )
                    .build(),
            )
            .build();
        assert_eq!(
            get_pipeline_state(&out),
            serde_json::json!({
                "pipelineName": "p",
                "pipelineVersion": 2,
                "stageStates": [{
                    "stageName": "Approve",
                    "inboundTransitionState": {"enabled": true},
                    "actionStates": [{
                        "actionName": "Release",
                        "latestExecution": {
                            "actionExecutionId": "a1",
                            "status": "InProgress",
                            "lastStatusChange": 100,
                            "token": "a1"
                        }
                    }],
                    "latestExecution": {"pipelineExecutionId": "e1", "status": "InProgress"}
                }]
            })
        );
    }
}
