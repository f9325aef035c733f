//! Scheduled invocations of the trigger function: the stack's polling rule, and schedules that
//! start one pipeline.
//!
//! - **Poll** ([`is_poll`]): an EventBridge `Scheduled Event` (source `aws.events`) as a
//!   scheduled rule delivers it without an input of its own: the stack's `SourcePolling` rule.
//!   Every source action with `PollForSourceChanges: true` is checked ([`super::polling`]).
//! - **Scheduled start** ([`scheduled_start`]): an input naming a pipeline, as an EventBridge
//!   rule (an `InputTransformer`) or an EventBridge Scheduler schedule (its target `Input`)
//!   passes it:
//!
//! ```json
//! {"pipelineName": "my-app",
//!  "schedule": "<aws.events.rule-arn> or <aws.scheduler.schedule-arn>",
//!  "scheduledTime": "<time> (the event's $.time) or <aws.scheduler.scheduled-time>",
//!  "eventId": "<id> (the event's $.id) or <aws.scheduler.execution-id>",
//!  "variables": [{"name": "SiteBucket", "value": "my-nightly-site"}]}
//! ```
//!
//! Only `pipelineName` is required. The execution records trigger type `CloudWatchEvent` (as
//! CodePipeline does for a pipeline started by a schedule) with the schedule's ARN as its
//! detail. One firing starts one execution however often it is delivered: the idempotency key
//! is the pipeline, the schedule and the scheduled time (else the event id); an input with
//! neither cannot be told from a redelivery, and starts an execution each time it arrives. A
//! context attribute left unsubstituted (`<aws.scheduler.scheduled-time>` verbatim) counts as
//! absent.

use serde::Deserialize;
use serde_json::Value;

use crate::events::TriggerType;
use crate::execution::ExecutionTrigger;

/// Whether `event` is a plain EventBridge `Scheduled Event`: the polling rule's.
pub fn is_poll(event: &Value) -> bool {
    event.get("source").and_then(Value::as_str) == Some("aws.events")
        && event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event")
}

/// A schedule asking for one pipeline to start.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScheduledStart {
    /// The pipeline.
    pub pipeline_name: String,
    /// The rule's or schedule's ARN.
    pub schedule: Option<String>,
    /// When the firing was scheduled (the same for every delivery and retry of one firing).
    pub scheduled_time: Option<String>,
    /// The event's (or invocation's) id.
    pub event_id: Option<String>,
    /// Pipeline variable overrides.
    pub variables: Vec<(String, String)>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Input {
    pipeline_name: Value,
    #[serde(default)]
    schedule: Option<Value>,
    #[serde(default)]
    scheduled_time: Option<Value>,
    #[serde(default)]
    event_id: Option<Value>,
    #[serde(default)]
    variables: Option<Vec<Variable>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Variable {
    name: String,
    value: String,
}

/// A context attribute or input-path placeholder that was not substituted (`<...>`), or
/// an empty value: absent.
fn given(v: Option<Value>) -> Option<String> {
    let text = match v? {
        Value::String(s) => s,
        Value::Number(n) => n.to_string(),
        _ => return None,
    };
    let text = text.trim();
    let placeholder = text.starts_with('<') && text.ends_with('>');
    (!text.is_empty() && !placeholder).then(|| text.to_string())
}

/// Read `event` as a scheduled start: `None` when it does not name a pipeline (another kind of
/// event), `Some(Err(why))` when it does but cannot be used.
pub fn scheduled_start(event: &Value) -> Option<Result<ScheduledStart, String>> {
    let object = event.as_object()?;
    if !object.contains_key("pipelineName") || object.contains_key("detail-type") {
        return None;
    }
    let input: Input = match serde_json::from_value(event.clone()) {
        Ok(input) => input,
        Err(e) => return Some(Err(format!("scheduled start input: {e}"))),
    };
    let name = input
        .pipeline_name
        .as_str()
        .map(|_| input.pipeline_name.clone());
    let Some(pipeline_name) = given(name) else {
        return Some(Err(
            "scheduled start input: pipelineName must name a pipeline".into(),
        ));
    };
    Some(Ok(ScheduledStart {
        pipeline_name,
        schedule: given(input.schedule),
        scheduled_time: given(input.scheduled_time),
        event_id: given(input.event_id),
        variables: input
            .variables
            .unwrap_or_default()
            .into_iter()
            .map(|v| (v.name, v.value))
            .collect(),
    }))
}

impl ScheduledStart {
    /// `CloudWatchEvent`, detail: the schedule's ARN (and the scheduled time).
    pub fn trigger(&self) -> ExecutionTrigger {
        let detail = match (&self.schedule, &self.scheduled_time) {
            (Some(s), Some(t)) => format!("{s} at {t}"),
            (Some(s), None) => s.clone(),
            (None, Some(t)) => format!("schedule at {t}"),
            (None, None) => "schedule".to_string(),
        };
        ExecutionTrigger {
            trigger_type: TriggerType::CloudWatchEvent,
            trigger_detail: detail,
        }
    }

    /// One firing, one key: the pipeline, the schedule and the scheduled time; else the event
    /// id; else none (every delivery starts an execution).
    pub fn idempotency_key(&self) -> Option<String> {
        let pipeline = &self.pipeline_name;
        match (&self.scheduled_time, &self.event_id) {
            (Some(time), _) => Some(format!(
                "schedule/{pipeline}/{}/{time}",
                self.schedule.as_deref().unwrap_or("-")
            )),
            (None, Some(id)) => Some(format!("schedule/{pipeline}/event/{id}")),
            (None, None) => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn sample(name: &str) -> Value {
        let text = match name {
            "poll" => include_str!("../../../../events/trigger-scheduled-poll.json"),
            "rule" => include_str!("../../../../events/trigger-schedule-rule-start.json"),
            "scheduler" => include_str!("../../../../events/trigger-scheduler-start.json"),
            _ => unreachable!(),
        };
        serde_json::from_str(text).unwrap()
    }

    #[test]
    fn the_polling_rules_event_is_a_poll_and_nothing_else_is() {
        assert!(is_poll(&sample("poll")));
        assert!(scheduled_start(&sample("poll")).is_none());
        for other in ["rule", "scheduler"] {
            assert!(!is_poll(&sample(other)), "{other}");
        }
        let s3 = serde_json::from_str::<Value>(include_str!(
            "../../../../events/trigger-s3-object-created.json"
        ))
        .unwrap();
        assert!(!is_poll(&s3));
        assert!(scheduled_start(&s3).is_none());
        assert!(scheduled_start(&json!("text")).is_none());
    }

    #[test]
    fn reads_the_sample_scheduled_starts() {
        let rule = scheduled_start(&sample("rule")).unwrap().unwrap();
        assert_eq!(rule.pipeline_name, "pipewright-sample");
        assert_eq!(
            rule.schedule.as_deref(),
            Some("arn:aws:events:us-east-1:123456789012:rule/pipewright-sample-nightly")
        );
        assert_eq!(rule.scheduled_time.as_deref(), Some("2026-11-22T03:00:00Z"));
        assert!(rule.event_id.is_some());
        let t = rule.trigger();
        assert_eq!(t.trigger_type, TriggerType::CloudWatchEvent);
        assert_eq!(
            t.trigger_detail,
            "arn:aws:events:us-east-1:123456789012:rule/pipewright-sample-nightly at 2026-11-22T03:00:00Z"
        );
        let scheduler = scheduled_start(&sample("scheduler")).unwrap().unwrap();
        assert!(scheduler
            .schedule
            .as_deref()
            .unwrap()
            .starts_with("arn:aws:scheduler:"));
        assert_eq!(
            scheduler.variables,
            vec![(
                "SiteBucket".to_string(),
                "pipewright-sample-site-nightly".to_string()
            )]
        );
    }

    #[test]
    fn one_firing_has_one_key() {
        let base = sample("rule");
        let key = |edit: &dyn Fn(&mut Value)| {
            let mut e = base.clone();
            edit(&mut e);
            scheduled_start(&e).unwrap().unwrap().idempotency_key()
        };
        let first = key(&|_| {});
        assert!(first.is_some());
        // Redelivered with another event id (a retry): the scheduled time decides.
        assert_eq!(key(&|e| e["eventId"] = json!("another")), first);
        // The next firing, another schedule, another pipeline: another key.
        assert_ne!(
            key(&|e| e["scheduledTime"] = json!("2026-11-23T03:00:00Z")),
            first
        );
        assert_ne!(key(&|e| e["schedule"] = json!("arn:other")), first);
        assert_ne!(key(&|e| e["pipelineName"] = json!("other")), first);
        // Without a time: the event id; with neither: none.
        let by_id = key(&|e| {
            e.as_object_mut().unwrap().remove("scheduledTime");
        });
        assert!(by_id.unwrap().contains("/event/"));
        assert_eq!(
            key(&|e| {
                e["scheduledTime"] = json!("<aws.scheduler.scheduled-time>");
                e["eventId"] = json!("");
            }),
            None
        );
    }

    #[test]
    fn unusable_inputs_say_why() {
        let table: Vec<(Value, &str)> = vec![
            (json!({"pipelineName": ""}), "must name a pipeline"),
            (json!({"pipelineName": 3}), "must name a pipeline"),
            (
                json!({"pipelineName": "p", "variables": [{"name": "a"}]}),
                "missing field `value`",
            ),
            (
                json!({"pipelineName": "p", "pipeline": "q"}),
                "unknown field `pipeline`",
            ),
        ];
        for (event, why) in table {
            let err = scheduled_start(&event).unwrap().unwrap_err();
            assert!(err.contains(why), "{err} (wanted {why})");
        }
        // Numbers are fine as times; placeholders are absent.
        let s = scheduled_start(&json!({"pipelineName": "p", "scheduledTime": 1700000000, "schedule": "<aws.events.rule-arn>"}))
            .unwrap()
            .unwrap();
        assert_eq!(s.scheduled_time.as_deref(), Some("1700000000"));
        assert_eq!(s.schedule, None);
        assert_eq!(s.trigger().trigger_detail, "schedule at 1700000000");
    }
}
