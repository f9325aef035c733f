//! Structural checks of a compiled ASL definition against its pipeline,
//! shared by `asl_golden.rs` and `asl_properties.rs`.
//!
//! [`problems`] lists everything wrong, as sentences; an empty list means:
//!
//! - Step Functions would accept the definition's structure: every `StartAt`,
//!   `Next`, `Default` and `Catch` target names a state of the same scope (a
//!   `Parallel` branch never leaves itself), every state is reachable from
//!   its scope's `StartAt`, state names are unique in the whole definition
//!   and at most 80 characters, `Task` / `Pass` / `Parallel` states have
//!   exactly one of `Next` and `End`, `Catch` lists end with a lone
//!   `States.ALL`, `TimeoutSeconds` are positive integers;
//! - the definition follows `docs/engine.md`: the start `Choice` reaches
//!   every stage's enter task, each stage runs its action groups in ascending
//!   runOrder (one `Parallel` per group, one branch per action, the group's
//!   check and outcome), then leaves; the last stage leads to `Succeeded` and
//!   `Done`; each action runs in exactly one branch with its timeout; every
//!   Lambda invocation retries the Lambda service errors.

use std::collections::{BTreeMap, BTreeSet};

use pipewright_core::asl::MAX_NAME_LENGTH;
use pipewright_core::{lookup, PipelineDeclaration};
use serde_json::{json, Map, Value};

const INVOKE: &str = "arn:aws:states:::lambda:invoke";
const INVOKE_WAIT: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// Everything wrong with `asl` as the definition of `p`.
pub fn problems(p: &PipelineDeclaration, asl: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let Some(top) = asl.as_object() else {
        return vec!["the definition is not an object".into()];
    };
    let comment = top.get("Comment").and_then(Value::as_str).unwrap_or("");
    let version = format!("version {}", p.version.unwrap_or(1));
    if !comment.contains(&p.name) || !comment.contains(&version) {
        out.push(format!(
            "the comment `{comment}` does not name the pipeline and {version}"
        ));
    }
    let mut names = BTreeMap::new();
    check_scope(asl, "top level", &mut names, &mut out);
    for (name, count) in &names {
        if *count > 1 {
            out.push(format!("state name `{name}` is used {count} times"));
        }
        if name.chars().count() > MAX_NAME_LENGTH {
            out.push(format!("state name `{name}` is longer than 80 characters"));
        }
    }
    if out.is_empty() {
        check_engine_contract(p, asl, &mut out);
    }
    out
}

/// The transitions a state may take (`Next`, `Default`, choice rules' and catchers' `Next`).
fn targets(state: &Value) -> Vec<&str> {
    let mut targets = Vec::new();
    for key in ["Next", "Default"] {
        targets.extend(state.get(key).and_then(Value::as_str));
    }
    for list in ["Choices", "Catch"] {
        for rule in state
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            targets.extend(rule.get("Next").and_then(Value::as_str));
        }
    }
    targets
}

/// Checks one scope (`StartAt` + `States`) and, recursively, the branches of its `Parallel` states.
fn check_scope(
    scope: &Value,
    label: &str,
    names: &mut BTreeMap<String, usize>,
    out: &mut Vec<String>,
) {
    let Some(states) = scope.get("States").and_then(Value::as_object) else {
        out.push(format!("{label}: no `States` object"));
        return;
    };
    let start = scope.get("StartAt").and_then(Value::as_str).unwrap_or("");
    if !states.contains_key(start) {
        out.push(format!("{label}: `StartAt` `{start}` is not a state here"));
        return;
    }
    for (name, state) in states {
        *names.entry(name.clone()).or_default() += 1;
        check_state(name, state, states, names, out);
    }
    // Reachability from StartAt, inside this scope.
    let mut seen: BTreeSet<&str> = BTreeSet::new();
    let mut todo = vec![start];
    while let Some(name) = todo.pop() {
        if seen.insert(name) {
            if let Some(state) = states.get(name) {
                todo.extend(targets(state));
            }
        }
    }
    for name in states.keys() {
        if !seen.contains(name.as_str()) {
            out.push(format!("{label}: state `{name}` is unreachable"));
        }
    }
}

fn check_state(
    name: &str,
    state: &Value,
    scope: &Map<String, Value>,
    names: &mut BTreeMap<String, usize>,
    out: &mut Vec<String>,
) {
    for target in targets(state) {
        if !scope.contains_key(target) {
            out.push(format!(
                "`{name}` goes to `{target}`, which is not a state of its scope"
            ));
        }
    }
    let kind = state.get("Type").and_then(Value::as_str).unwrap_or("");
    let has_next = state.get("Next").is_some();
    let ends = state.get("End") == Some(&Value::Bool(true));
    match kind {
        "Task" | "Pass" | "Parallel" => {
            if has_next == ends {
                out.push(format!("`{name}` needs exactly one of `Next` and `End`"));
            }
        }
        "Choice" => {
            let rules = state.get("Choices").and_then(Value::as_array);
            if has_next || state.get("End").is_some() || rules.is_none_or(Vec::is_empty) {
                out.push(format!("Choice `{name}` needs rules and no `Next` / `End`"));
            }
        }
        "Succeed" | "Fail" => {
            if has_next || state.get("End").is_some() {
                out.push(format!("terminal `{name}` has a `Next` or `End`"));
            }
        }
        other => out.push(format!("`{name}` has unexpected type `{other}`")),
    }
    if let Some(catchers) = state.get("Catch").and_then(Value::as_array) {
        for (i, catcher) in catchers.iter().enumerate() {
            let errors = catcher.get("ErrorEquals").and_then(Value::as_array);
            let Some(errors) = errors.filter(|e| !e.is_empty()) else {
                out.push(format!("`{name}`: catcher {i} has no `ErrorEquals`"));
                continue;
            };
            if errors.iter().any(|e| e == "States.ALL")
                && (errors.len() != 1 || i + 1 != catchers.len())
            {
                out.push(format!(
                    "`{name}`: `States.ALL` must be alone in the last catcher"
                ));
            }
        }
    }
    if let Some(timeout) = state.get("TimeoutSeconds") {
        if timeout.as_u64().is_none_or(|t| t == 0) {
            out.push(format!(
                "`{name}`: TimeoutSeconds {timeout} is not a positive integer"
            ));
        }
    }
    if kind == "Task" {
        let resource = state.get("Resource").and_then(Value::as_str).unwrap_or("");
        if resource == INVOKE || resource == INVOKE_WAIT {
            if state.get("Retry") != Some(&expected_retry()) {
                out.push(format!(
                    "`{name}`: Lambda invocation without the Lambda retry"
                ));
            }
            let params = &state["Parameters"];
            if !params["FunctionName"].is_string() || !params["Payload"].is_object() {
                out.push(format!(
                    "`{name}`: needs `FunctionName` and a `Payload` object"
                ));
            }
        } else {
            out.push(format!("`{name}`: unexpected resource `{resource}`"));
        }
    }
    if kind == "Parallel" {
        let branches = state.get("Branches").and_then(Value::as_array);
        match branches {
            Some(branches) if !branches.is_empty() => {
                for (i, branch) in branches.iter().enumerate() {
                    check_scope(branch, &format!("`{name}` branch {i}"), names, out);
                }
            }
            _ => out.push(format!("Parallel `{name}` has no branches")),
        }
        if state.get("ResultPath").and_then(Value::as_str)
            != Some(pipewright_core::asl::GROUP_RESULT)
        {
            out.push(format!(
                "Parallel `{name}` would replace the execution's input with its branches' output"
            ));
        }
    }
}

fn expected_retry() -> Value {
    json!([{
        "ErrorEquals": [
            "Lambda.ServiceException",
            "Lambda.AWSLambdaException",
            "Lambda.SdkClientException",
            "Lambda.TooManyRequestsException"
        ],
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2
    }])
}

/// The payload of a task state (`Null` for other states).
fn payload(state: &Value) -> &Value {
    &state["Parameters"]["Payload"]
}

/// The name of the single top-level task whose payload matches `op` and `stage`.
fn find_task<'a>(
    states: &'a Map<String, Value>,
    op: &str,
    stage: Option<&str>,
    outcome: Option<&str>,
    out: &mut Vec<String>,
) -> Option<&'a str> {
    let found: Vec<&str> = states
        .iter()
        .filter(|(_, s)| {
            let p = payload(s);
            p["op"] == op
                && stage.is_none_or(|stage| p["stage"] == stage)
                && outcome.is_none_or(|outcome| p["outcome"] == outcome)
        })
        .map(|(name, _)| name.as_str())
        .collect();
    if found.len() != 1 {
        out.push(format!(
            "expected one `{op}` task for stage {stage:?} / outcome {outcome:?}, found {found:?}"
        ));
        return None;
    }
    Some(found[0])
}

fn check_engine_contract(p: &PipelineDeclaration, asl: &Value, out: &mut Vec<String>) {
    let states = asl["States"].as_object().expect("checked");
    check_failure_paths(p, states, out);
    let Some(succeeded) = find_task(states, "finishExecution", None, Some("Succeeded"), out) else {
        return;
    };
    if states[succeeded]["Next"]
        .as_str()
        .map(|done| &states[done]["Type"])
        != Some(&json!("Succeed"))
    {
        out.push("`Succeeded` does not end in a Succeed state".into());
    }
    let mut enters = Vec::new();
    for stage in &p.stages {
        let Some(enter) = find_task(states, "enterStage", Some(&stage.name), None, out) else {
            return;
        };
        enters.push(enter);
    }
    if p.stages.is_empty() {
        if asl["StartAt"] != succeeded {
            out.push("a pipeline without stages should start at `Succeeded`".into());
        }
        return;
    }

    // The start choice: one rule per stage, default the first stage.
    let start = &states[asl["StartAt"].as_str().expect("checked")];
    if start["Type"] != "Choice" || start["Default"] != enters[0] {
        out.push("the start state is not a Choice defaulting to the first stage".into());
    }
    let rules = start["Choices"].as_array().cloned().unwrap_or_default();
    for (stage, enter) in p.stages.iter().zip(&enters) {
        let expected = json!({
            "And": [
                {"Variable": "$.startStage", "IsPresent": true},
                {"Variable": "$.startStage", "StringEquals": stage.name},
            ],
            "Next": enter,
        });
        if !rules.contains(&expected) {
            out.push(format!(
                "the start choice cannot start at stage `{}`",
                stage.name
            ));
        }
    }
    if rules.len() != p.stages.len() {
        out.push("the start choice has a rule per stage".into());
    }

    let mut runs: BTreeMap<(String, String), usize> = BTreeMap::new();
    for (i, stage) in p.stages.iter().enumerate() {
        let s = &stage.name;
        let Some(failed) = find_task(states, "leaveStage", Some(s), Some("Failed"), out) else {
            return;
        };
        let Some(leave) = find_task(states, "leaveStage", Some(s), Some("Succeeded"), out) else {
            return;
        };
        for task in [failed, leave] {
            if payload(&states[task])["run.$"] != "$$.Execution.Id" {
                out.push(format!("`{task}` does not name the run that leaves"));
            }
        }
        let fail_state = &states[states[failed]["Next"].as_str().unwrap_or("")];
        if fail_state["Type"] != "Fail" || fail_state["Error"] != "Pipewright.StageFailed" {
            out.push(format!("`{failed}` does not end in the Fail state"));
        }
        let enter = &states[enters[i]];
        let catch_targets: Vec<(&Value, &Value)> = enter["Catch"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| {
                (
                    &c["ErrorEquals"],
                    &states[c["Next"].as_str().unwrap_or("")]["Type"],
                )
            })
            .collect();
        let expected_catches = [
            (json!(["States.Timeout"]), json!("Task")),
            (json!(["Pipewright.Superseded"]), json!("Succeed")),
            (json!(["Pipewright.Stopped"]), json!("Succeed")),
            (json!(["Pipewright.Finished"]), json!("Succeed")),
            (json!(["Pipewright.Skipped"]), json!("Task")),
            (json!(["States.ALL"]), json!("Task")),
        ];
        let catches_ok = catch_targets.len() == 6
            && catch_targets
                .iter()
                .zip(&expected_catches)
                .all(|((e, t), (ee, et))| *e == ee && *t == et)
            && enter["Catch"][0]["Next"] == "Abort"
            && enter["Catch"][4]["Next"] == leave
            && enter["Catch"][5]["Next"] == failed;
        // The wait is bounded: a lost callback cannot hold an execution for ever.
        let bounded = enter["TimeoutSeconds"].as_u64().is_some_and(|t| {
            (pipewright_core::asl::TRANSITION_WAIT_SECONDS
                ..=pipewright_core::asl::RUN_LIMIT_SECONDS)
                .contains(&t)
        });
        if !catches_ok
            || !bounded
            || enter["Resource"] != INVOKE_WAIT
            || enter["ResultPath"] != pipewright_core::asl::DISCARD_RESULT
        {
            out.push(format!(
                "`{}` is not the enter task engine.md describes",
                enters[i]
            ));
        }
        if payload(enter)["taskToken.$"] != "$$.Task.Token" {
            out.push(format!("`{}` does not pass its task token", enters[i]));
        }

        // Follow the success path: groups, then leave.
        let mut expected_orders: Vec<u32> = stage.actions.iter().map(|a| a.run_order()).collect();
        expected_orders.sort_unstable();
        expected_orders.dedup();
        let mut seen_orders = Vec::new();
        let mut at = enter["Next"].as_str().unwrap_or("");
        let mut k = 0;
        while states[at]["Type"] == "Parallel" {
            k += 1;
            let parallel = &states[at];
            let mut orders = BTreeSet::new();
            for branch in parallel["Branches"].as_array().into_iter().flatten() {
                let tasks: Vec<&Value> = branch["States"]
                    .as_object()
                    .into_iter()
                    .flat_map(|m| m.values())
                    .filter(|st| st["Type"] == "Task")
                    .collect();
                if tasks.len() != 1 {
                    out.push(format!("a branch of `{at}` has {} tasks", tasks.len()));
                    continue;
                }
                let task = tasks[0];
                let body = payload(task);
                let action_name = body["action"].as_str().unwrap_or("");
                let declared = stage.actions.iter().find(|a| a.name == action_name);
                if body["op"] != "runAction"
                    || body["stage"] != *s
                    || body["group"] != k
                    || body["taskToken.$"] != "$$.Task.Token"
                    || task["Resource"] != INVOKE_WAIT
                {
                    out.push(format!(
                        "the action task of `{action_name}` in `{at}` is malformed"
                    ));
                }
                let Some(declared) = declared else {
                    out.push(format!(
                        "`{at}` runs `{action_name}`, not an action of stage `{s}`"
                    ));
                    continue;
                };
                if body["runOrder"] != declared.run_order() {
                    out.push(format!("`{action_name}` runs in the wrong group"));
                }
                orders.insert(declared.run_order());
                let minutes = declared.timeout_in_minutes.unwrap_or_else(|| {
                    lookup(&declared.action_type_id).map_or(60, |spec| spec.timeout.default_minutes)
                });
                if task["TimeoutSeconds"] != u64::from(minutes) * 60 {
                    out.push(format!(
                        "`{action_name}` times out after {} s, not {minutes} min",
                        task["TimeoutSeconds"]
                    ));
                }
                // The catch ends the branch normally.
                let catch_next = task["Catch"][0]["Next"].as_str().unwrap_or("");
                let pass = &branch["States"][catch_next];
                if task["Catch"][0]["ErrorEquals"] != json!(["States.ALL"])
                    || pass["Type"] != "Pass"
                    || pass["End"] != true
                    || task["End"] != true
                {
                    out.push(format!(
                        "`{action_name}`'s failure does not end its branch normally"
                    ));
                }
                // The branch ends with `{}` or what failed, never the whole state (the group's
                // result would grow with every group).
                if task["OutputPath"] != pipewright_core::asl::DISCARD_RESULT
                    || pass["Parameters"]
                        != json!({"failedAction": action_name, "error.$": "$.error"})
                {
                    out.push(format!(
                        "`{action_name}`'s branch does not end with its result or its error"
                    ));
                }
                *runs.entry((s.clone(), action_name.to_owned())).or_default() += 1;
            }
            if orders.len() != 1 {
                out.push(format!("`{at}` mixes run orders {orders:?}"));
            }
            seen_orders.extend(orders);
            let check = parallel["Next"].as_str().unwrap_or("");
            let body = payload(&states[check]);
            if body["op"] != "checkGroup"
                || body["stage"] != *s
                || body["group"] != k
                || body["branches.$"] != pipewright_core::asl::GROUP_RESULT
            {
                out.push(format!("`{check}` is not the check of group {k} of `{s}`"));
            }
            if states[check]["ResultPath"] != "$.check"
                || states[check]["ResultSelector"] != json!({"failed.$": "$.Payload.failed"})
            {
                out.push(format!("`{check}` does not put `failed` in `$.check`"));
            }
            let outcome = &states[states[check]["Next"].as_str().unwrap_or("")];
            let rule =
                json!([{"Variable": "$.check.failed", "BooleanEquals": true, "Next": failed}]);
            if outcome["Type"] != "Choice" || outcome["Choices"] != rule {
                out.push(format!("the outcome of `{check}` does not fail the stage"));
            }
            at = outcome["Default"].as_str().unwrap_or("");
        }
        if at != leave {
            out.push(format!(
                "stage `{s}`: after its groups comes `{at}`, not `{leave}`"
            ));
        }
        if seen_orders != expected_orders {
            out.push(format!(
                "stage `{s}` runs groups {seen_orders:?}, expected ascending {expected_orders:?}"
            ));
        }
        let after = enters.get(i + 1).copied().unwrap_or(succeeded);
        if states[leave]["Next"] != after {
            out.push(format!(
                "`{leave}` goes to `{}`, not `{after}`",
                states[leave]["Next"]
            ));
        }
    }
    let expected: BTreeMap<(String, String), usize> = p
        .actions()
        .map(|(s, _, a)| ((p.stages[s].name.clone(), a.name.clone()), 1))
        .collect();
    if runs != expected {
        out.push(format!(
            "actions should each run in exactly one branch: ran {runs:?}, declared {expected:?}"
        ));
    }
}

/// Every failure has a path (the crash-proof engine's rule): each top-level `Task` and
/// `Parallel` state catches `States.ALL`, and only the `Abort` task (which the others lead to,
/// directly or through a stage's leave task) has no catcher: it records the failure, and its
/// own failure ends the run.
fn check_failure_paths(
    p: &PipelineDeclaration,
    states: &serde_json::Map<String, Value>,
    out: &mut Vec<String>,
) {
    if p.stages.is_empty() {
        return;
    }
    let abort = states
        .iter()
        .find(|(_, s)| s["Parameters"]["Payload"]["op"] == "abortExecution");
    let Some((abort_name, abort_state)) = abort else {
        out.push("no `abortExecution` task".into());
        return;
    };
    if abort_state["Parameters"]["Payload"]["error.$"] != "$.error" {
        out.push(format!("`{abort_name}` does not pass the caught error on"));
    }
    let ends_failed = abort_state["Next"]
        .as_str()
        .and_then(|next| states.get(next))
        .is_some_and(|s| s["Type"] == "Fail");
    if !ends_failed {
        out.push(format!("`{abort_name}` does not end in a Fail state"));
    }
    for (name, state) in states {
        let kind = state["Type"].as_str().unwrap_or("");
        if !matches!(kind, "Task" | "Parallel") || name == abort_name {
            continue;
        }
        let catches_all = state["Catch"].as_array().is_some_and(|c| {
            c.iter()
                .any(|c| c["ErrorEquals"] == json!(["States.ALL"]) && c["ResultPath"] == "$.error")
        });
        if !catches_all {
            out.push(format!(
                "`{name}`: a {kind} state without a `States.ALL` catcher (a failure would leave \
                 the execution InProgress and its stage locked)"
            ));
        }
    }
}
