//! The ASL compiler: one Step Functions state machine per pipeline version.
//!
//! [`compile`] turns a [`PipelineDeclaration`] into the Amazon States Language
//! definition described in `docs/engine.md`; [`machine_name`] names the
//! state machine (the pipeline, its version and a hash of the definition). The definition only sequences the work: every decision
//! (stage locks, execution modes, results) is taken by the two functions of
//! [`AslTargets`], which the definition calls with small JSON payloads.
//!
//! The shape, per stage `S`:
//!
//! ```text
//! Start ─($.startStage, default: first stage)─► S.Enter
//! S.Enter ──► S.Group1 ──► S.Group1.Check ──► S.Group1.Outcome ──► S.Group2 … ──► S.Leave
//!    │        (Parallel: per action                    │ $.check.failed       │
//!    │         S.A ─(States.ALL)─► S.A.Failed)         ▼                      ▼
//!    ├─ States.ALL ───────────────────────────────► S.Failed ──► Failed   next stage's Enter,
//!    ├─ Pipewright.Superseded ──► Superseded                              or Succeeded ──► Done
//!    └─ Pipewright.Stopped ─────► Stopped
//!
//! S.Group<k>, S.Group<k>.Check, S.Leave, S.Failed, Succeeded ─(States.ALL)─► Abort ──► Aborted
//! ```
//!
//! Every top-level task and `Parallel` catches `States.ALL`: a failure the definition has no
//! other path for goes to `Abort`, whose orchestrator task ([`crate::abort`]) ends the
//! execution Failed and releases its stages.
//!
//! State names are readable (`Build.Enter`, `Build.Group1`, `Build.Compile`)
//! when they fit Step Functions' 80 characters and are unique in the whole
//! definition; otherwise a stage's states use the index form `S<i>.Enter`,
//! `S<i>.Group<k>`, ... and an action's states `S<i>.A<j>` and
//! `S<i>.A<j>.Failed` (`i`, `j`, `k` 1-based). Each task carries a `Comment`
//! naming its stage and action, so index forms stay readable in the console.
//!
//! ```
//! use pipewright_core::asl::{compile, state_machine_name, AslTargets};
//! use pipewright_core::parse_pipeline;
//!
//! let pipeline = parse_pipeline(r#"{
//!   "name": "demo", "version": 2,
//!   "roleArn": "arn:aws:iam::123456789012:role/demo",
//!   "artifactStore": {"type": "S3", "location": "demo-artifacts"},
//!   "stages": [
//!     {"name": "Source", "actions": [{
//!       "name": "Fetch",
//!       "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
//!       "configuration": {"S3Bucket": "demo-src", "S3ObjectKey": "app.zip"},
//!       "outputArtifacts": [{"name": "App"}]
//!     }]}
//!   ]
//! }"#).expect("well-formed");
//! let targets = AslTargets {
//!     orchestrator_arn: "arn:aws:lambda:us-east-1:123456789012:function:orchestrator".into(),
//!     action_arn: "arn:aws:lambda:us-east-1:123456789012:function:action".into(),
//!     approval_arn: "arn:aws:lambda:us-east-1:123456789012:function:approval".into(),
//!     action_timeout_cap_seconds: None,
//! };
//! let asl = compile(&pipeline, &targets);
//! assert_eq!(asl["StartAt"], "Start");
//! assert_eq!(asl["States"]["Source.Enter"]["Next"], "Source.Group1");
//! let fetch = &asl["States"]["Source.Group1"]["Branches"][0]["States"]["Source.Fetch"];
//! assert_eq!(fetch["TimeoutSeconds"], 3600);
//! assert_eq!(state_machine_name("demo", 2), "pipewright-demo-v2");
//! ```

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{json, Map, Value};

use crate::declaration::{ActionDeclaration, PipelineDeclaration, StageDeclaration};
use crate::providers::lookup;

/// The Lambda functions a compiled definition invokes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AslTargets {
    /// The `orchestrator` function: enter / check / leave stages, finish executions.
    pub orchestrator_arn: String,
    /// The `action` function: runs one action through its provider.
    pub action_arn: String,
    /// The `approval` function: starts manual approvals (sends the notice with its links).
    pub approval_arn: String,
    /// The longest `TimeoutSeconds` any action gets (`ActionTimeoutCapSeconds`; `None`: the
    /// declared timeouts as they are). For local runs and tests, so that an approval nobody
    /// answers does not wait 7 days.
    pub action_timeout_cap_seconds: Option<u64>,
}

/// Where a task's own result goes when the state must pass its input on unchanged. Standard ASL
/// would say `"ResultPath": null`; the local emulator (fakecloud 0.51) treats a JSON null there
/// as `$` and replaces the input, so the result is parked in a scratch field instead, which means
/// the same on AWS.
pub const DISCARD_RESULT: &str = "$.lastResult";

/// The longest state machine or state name Step Functions accepts.
pub const MAX_NAME_LENGTH: usize = 80;

/// The error an `enterStage` token is failed with when a newer execution
/// supersedes this one while it waits in front of the stage.
pub const SUPERSEDED_ERROR: &str = "Pipewright.Superseded";

/// The error a token is failed with when the execution is stopped.
pub const STOPPED_ERROR: &str = "Pipewright.Stopped";

/// The error an `enterStage` token is failed with when a `beforeEntry` condition skips the
/// stage: the state machine goes to the stage's leave task, then on.
pub const SKIPPED_ERROR: &str = "Pipewright.Skipped";

/// The error an `enterStage` token is failed with when a `beforeEntry` condition fails the
/// stage (caught by `States.ALL`: the stage fails).
pub const CONDITION_FAILED_ERROR: &str = "Pipewright.ConditionFailed";

/// The error an `enterStage` token is failed with when the execution has no more stages to run
/// (a rollback execution after its stage): the orchestrator has recorded it as succeeded.
pub const FINISHED_ERROR: &str = "Pipewright.Finished";

/// The error the definition's final `Fail` state ends a failed execution with.
pub const STAGE_FAILED_ERROR: &str = "Pipewright.StageFailed";

/// The payload `op` of the orchestrator's stage-enter call (answered through its task token).
pub const OP_ENTER_STAGE: &str = "enterStage";
/// The payload `op` of the action function's call (answered through its task token).
pub const OP_RUN_ACTION: &str = "runAction";
/// The payload `op` of the action function's run of a stage's work rules (`Commands`,
/// `CodeBuild` rules of its `onSuccess` / `onFailure` conditions), answered through its task
/// token with what each found ([`crate::engine::work_rules`]).
pub const OP_RUN_RULES: &str = "runRules";
/// The payload `op` of the orchestrator's beforeEntry check once the stage's work rules ran
/// (returns `{"refused": bool}`).
pub const OP_CHECK_ENTRY: &str = "checkEntry";
/// Where a `runRules` task puts what the work rules found, for the leave task after it.
pub const RULES_RESULT: &str = "$.rules";
/// How long a `runRules` task may take: the action function's 15 minutes, and a minute more.
pub const RULES_TIMEOUT_SECONDS: u64 = 960;
/// The payload `op` of the orchestrator's end-of-group check (returns `{"failed": bool}`).
pub const OP_CHECK_GROUP: &str = "checkGroup";
/// The payload `op` of the orchestrator's stage-leave call (`outcome`: `Succeeded` / `Failed`).
pub const OP_LEAVE_STAGE: &str = "leaveStage";
/// The payload `op` of the orchestrator's final call after the last stage.
pub const OP_FINISH_EXECUTION: &str = "finishExecution";
/// The payload `op` of the orchestrator's cleanup after a task failed in a way the definition
/// does not otherwise handle (`error`: the caught `{Error, Cause}`).
pub const OP_ABORT_EXECUTION: &str = "abortExecution";

/// The error the definition's `Aborted` state ends an aborted execution with.
pub const ABORTED_ERROR: &str = "Pipewright.Aborted";

/// The first state: a `Choice` on `$.startStage`.
const START: &str = "Start";
/// Before [`START`] in a definition with work rules: `$.rules` starts empty, so every leave
/// task that reads it finds it.
const INIT: &str = "Init";
/// The task recording a successful execution.
const SUCCEEDED: &str = "Succeeded";
/// The `Succeed` state after [`SUCCEEDED`].
const DONE: &str = "Done";
/// The `Succeed` state of a superseded execution.
const SUPERSEDED: &str = "Superseded";
/// The `Succeed` state of a stopped execution.
const STOPPED: &str = "Stopped";
/// The `Fail` state of a failed execution.
const FAILED: &str = "Failed";
/// The cleanup task every task's unhandled failure is caught into.
const ABORT: &str = "Abort";
/// The `Fail` state after [`ABORT`].
const ABORTED: &str = "Aborted";

/// Where a group's `Parallel` puts what its branches ended with (read by the group check).
pub const GROUP_RESULT: &str = "$.group";

/// The `Resource` of a request-response Lambda invocation.
const LAMBDA_INVOKE: &str = "arn:aws:states:::lambda:invoke";
/// The `Resource` of a Lambda invocation answered through a task token.
const LAMBDA_INVOKE_WAIT: &str = "arn:aws:states:::lambda:invoke.waitForTaskToken";

/// The Lambda service errors every invocation retries.
const RETRIED_LAMBDA_ERRORS: [&str; 4] = [
    "Lambda.ServiceException",
    "Lambda.AWSLambdaException",
    "Lambda.SdkClientException",
    "Lambda.TooManyRequestsException",
];

/// How long an execution may wait at a disabled inbound transition: CodePipeline does not resume
/// an execution whose transition stayed disabled more than 30 days.
pub const TRANSITION_WAIT_SECONDS: u64 = 30 * 24 * 3600;

/// The longest a Standard workflow runs (one year): no wait is longer.
pub const RUN_LIMIT_SECONDS: u64 = 365 * 24 * 3600;

/// The timeout of an action whose type Pipewright does not know (CodePipeline's 1 hour).
const UNKNOWN_TYPE_TIMEOUT_MINUTES: u32 = 60;

/// The pipeline-and-version part of a state machine's name: `pipewright-<pipeline>-v<version>`
/// ([`machine_name`] adds the definition's hash).
///
/// Step Functions names are at most 80 characters; Pipewright also keeps
/// them to `[A-Za-z0-9_-]` so that CloudWatch logging works. A pipeline name
/// that does not fit (too long, or holding `.` or `@`) is shortened and
/// cleaned (`.` and `@` become `-`), and a stable 8-hex-digit FNV-1a hash of
/// the full pipeline name is added before the version, so two pipelines never
/// share a state machine: `pipewright-<cleaned prefix>-<hash>-v<version>`.
///
/// ```
/// use pipewright_core::asl::state_machine_name;
///
/// assert_eq!(state_machine_name("app", 3), "pipewright-app-v3");
/// let long = state_machine_name(&"x".repeat(100), 12);
/// assert_eq!(long.len(), 80);
/// assert!(long.starts_with("pipewright-xxx") && long.ends_with("-v12"));
/// assert_ne!(state_machine_name("my.app", 1), state_machine_name("my-app", 1));
/// ```
pub fn state_machine_name(pipeline: &str, version: u32) -> String {
    name_within(pipeline, version, MAX_NAME_LENGTH)
}

/// The ARN of run `run` (its execution name) of the state machine `machine` (an ARN), as Step
/// Functions forms it: known before the run starts, so it is recorded before it starts.
pub fn run_arn(machine: &str, run: &str) -> String {
    format!(
        "{}:{run}",
        machine.replacen(":stateMachine:", ":execution:", 1)
    )
}

/// The name of the state machine running `definition` (compiled from version `version` of
/// `pipeline`): [`state_machine_name`], then `-` and 8 hex digits of a hash of the definition,
/// still at most 80 characters. The definition names the stack's own functions, so two stacks
/// in one account never share a machine, and a pipeline deleted and created again under the
/// same name with other stages gets a machine of its own instead of running the old one.
///
/// ```
/// use pipewright_core::asl::{machine_name, state_machine_name};
/// use serde_json::json;
///
/// let a = machine_name("app", 3, &json!({"StartAt": "A"}));
/// assert!(a.starts_with("pipewright-app-v3-") && a.len() == "pipewright-app-v3-".len() + 8);
/// assert_eq!(a, machine_name("app", 3, &json!({"StartAt": "A"})));
/// assert_ne!(a, machine_name("app", 3, &json!({"StartAt": "B"})));
/// assert!(machine_name(&"x".repeat(100), 12, &json!({})).len() <= 80);
/// ```
pub fn machine_name(pipeline: &str, version: u32, definition: &Value) -> String {
    let hash = format!("-{:08x}", fnv1a_32(definition.to_string().as_bytes()));
    format!(
        "{}{hash}",
        name_within(pipeline, version, MAX_NAME_LENGTH - hash.len())
    )
}

/// [`state_machine_name`] in at most `max_len` characters.
fn name_within(pipeline: &str, version: u32, max_len: usize) -> String {
    const PREFIX: &str = "pipewright-";
    let plain = format!("{PREFIX}{pipeline}-v{version}");
    let clean = pipeline.chars().all(name_char);
    if clean && plain.len() <= max_len {
        return plain;
    }
    let suffix = format!("-{:08x}-v{version}", fnv1a_32(pipeline.as_bytes()));
    let room = max_len - PREFIX.len() - suffix.len();
    let cleaned: String = pipeline
        .chars()
        .map(|c| if name_char(c) { c } else { '-' })
        .take(room)
        .collect();
    format!("{PREFIX}{cleaned}{suffix}")
}

/// The characters a state machine name keeps: `[A-Za-z0-9_-]`.
fn name_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '-' || c == '_'
}

/// 32-bit FNV-1a: small, stable across platforms and releases.
fn fnv1a_32(bytes: &[u8]) -> u32 {
    bytes.iter().fold(0x811c_9dc5_u32, |hash, &byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    })
}

/// Compiles a (valid) pipeline declaration into its Amazon States Language
/// definition, exactly as `docs/engine.md` lays it out.
///
/// The output is deterministic: the same declaration and targets always give
/// the same JSON value. The comment names the pipeline and its version (1
/// when the declaration has none).
pub fn compile(p: &PipelineDeclaration, targets: &AslTargets) -> Value {
    let names = StateNames::assign(p);
    let mut states = Map::new();
    let mut start_at = match names.stages.first() {
        Some(first) => {
            states.insert(START.into(), start_choice(p, &names, &first.enter));
            START
        }
        // Not a valid pipeline; still a valid definition.
        None => SUCCEEDED,
    };
    let work =
        |stage: &StageDeclaration, kind| !crate::conditions::work_rules_of(stage, kind).is_empty();
    if p.stages.iter().any(|s| {
        work(s, crate::conditions::ConditionKind::BeforeEntry)
            || work(s, crate::conditions::ConditionKind::OnSuccess)
            || work(s, crate::conditions::ConditionKind::OnFailure)
    }) {
        states.insert(
            INIT.into(),
            json!({
                "Type": "Pass",
                "Comment": "No work rule has run yet.",
                "Result": {},
                "ResultPath": RULES_RESULT,
                "Next": start_at,
            }),
        );
        start_at = INIT;
    }

    for (i, stage) in p.stages.iter().enumerate() {
        let stage_names = &names.stages[i];
        let after = names
            .stages
            .get(i + 1)
            .map_or(SUCCEEDED, |next| next.enter.as_str());
        let groups = action_groups(stage);
        let on_success = work(stage, crate::conditions::ConditionKind::OnSuccess);
        let on_failure = work(stage, crate::conditions::ConditionKind::OnFailure);
        // A stage with work rules runs them in a task of their own before it leaves.
        let succeed_to = if on_success {
            &stage_names.rules_on_success
        } else {
            &stage_names.leave
        };
        let fail_to = if on_failure {
            &stage_names.rules_on_failure
        } else {
            &stage_names.failed
        };
        let first_step = stage_names
            .groups
            .first()
            .map_or(succeed_to, |group| &group.parallel);
        let before_entry = work(stage, crate::conditions::ConditionKind::BeforeEntry);
        let entered = if before_entry {
            &stage_names.rules_before_entry
        } else {
            first_step
        };
        // An entry refused (or an Enter that failed) fails the stage without onFailure's work
        // rules: a stage whose beforeEntry condition failed checks no onFailure condition.
        states.insert(
            stage_names.enter.clone(),
            enter_state(stage, stage_names, entered, &stage_names.failed, targets),
        );
        if before_entry {
            states.insert(
                stage_names.rules_before_entry.clone(),
                rules_state(
                    stage,
                    crate::conditions::ConditionKind::BeforeEntry,
                    &stage_names.check_entry,
                    targets,
                ),
            );
            states.insert(
                stage_names.check_entry.clone(),
                check_entry_state(stage, &stage_names.entry_outcome, targets),
            );
            states.insert(
                stage_names.entry_outcome.clone(),
                json!({
                    "Type": "Choice",
                    "Comment": format!(
                        "Stage {}: fail the stage when its beforeEntry condition refused the execution.",
                        stage.name
                    ),
                    "Choices": [{
                        "Variable": "$.entry.refused",
                        "BooleanEquals": true,
                        "Next": stage_names.failed,
                    }],
                    "Default": first_step,
                }),
            );
        }
        for (k, (run_order, members)) in groups.iter().enumerate() {
            let group_names = &stage_names.groups[k];
            let next_step = stage_names
                .groups
                .get(k + 1)
                .map_or(succeed_to, |next| &next.parallel);
            states.insert(
                group_names.parallel.clone(),
                group_parallel(stage, stage_names, k, *run_order, members, targets),
            );
            states.insert(
                group_names.check.clone(),
                group_check(stage, group_names, k, targets),
            );
            states.insert(
                group_names.outcome.clone(),
                group_outcome(stage, fail_to, next_step),
            );
        }
        states.insert(
            stage_names.leave.clone(),
            leave_state(stage, after, on_success, targets),
        );
        states.insert(
            stage_names.failed.clone(),
            stage_failed_state(stage, on_failure, targets),
        );
        if on_success {
            states.insert(
                stage_names.rules_on_success.clone(),
                rules_state(
                    stage,
                    crate::conditions::ConditionKind::OnSuccess,
                    &stage_names.leave,
                    targets,
                ),
            );
        }
        if on_failure {
            states.insert(
                stage_names.rules_on_failure.clone(),
                rules_state(
                    stage,
                    crate::conditions::ConditionKind::OnFailure,
                    &stage_names.failed,
                    targets,
                ),
            );
        }
    }

    let has_stages = !p.stages.is_empty();
    states.insert(SUCCEEDED.into(), succeeded_state(targets, has_stages));
    states.insert(DONE.into(), done_state());
    if has_stages {
        states.insert(SUPERSEDED.into(), superseded_state());
        states.insert(STOPPED.into(), stopped_state());
        states.insert(FAILED.into(), failed_state());
        states.insert(ABORT.into(), abort_state(targets));
        states.insert(ABORTED.into(), aborted_state());
    }

    json!({
        "Comment": format!(
            "Pipewright pipeline {} version {}: {} stage(s), {} execution mode.",
            p.name,
            p.version.unwrap_or(1),
            p.stages.len(),
            p.execution_mode()
        ),
        "StartAt": start_at,
        "States": states,
    })
}

// ---------------------------------------------------------------------------
// State names
// ---------------------------------------------------------------------------

/// The names of one action group's states.
#[derive(Debug, Clone)]
struct GroupNames {
    /// `S.Group<k>` (Parallel).
    parallel: String,
    /// `S.Group<k>.Check` (Task).
    check: String,
    /// `S.Group<k>.Outcome` (Choice).
    outcome: String,
}

/// The names of one action's states (inside its branch).
#[derive(Debug, Clone)]
struct ActionNames {
    /// `S.<action>` (Task).
    task: String,
    /// `S.<action>.Failed` (Pass).
    failed: String,
}

/// The names of one stage's states.
#[derive(Debug, Clone)]
struct StageNames {
    /// `S.Enter`.
    enter: String,
    /// One per action group, in ascending runOrder.
    groups: Vec<GroupNames>,
    /// `S.Leave`.
    leave: String,
    /// `S.Failed`.
    failed: String,
    /// `S.RulesBeforeEntry`, `S.CheckEntry`, `S.EntryOutcome`: the work rules of `beforeEntry`
    /// after `S.Enter`, the check of its conditions, and where it leads (when it has any).
    rules_before_entry: String,
    check_entry: String,
    entry_outcome: String,
    /// `S.RulesOnSuccess`: the work rules of `onSuccess`, before `S.Leave` (when it has any).
    rules_on_success: String,
    /// `S.RulesOnFailure`: the work rules of `onFailure`, before `S.Failed` (when it has any).
    rules_on_failure: String,
    /// One per action, in declaration order.
    actions: Vec<ActionNames>,
}

/// Every state name of a definition, unique and at most 80 characters.
#[derive(Debug, Clone)]
struct StateNames {
    stages: Vec<StageNames>,
}

impl StageNames {
    /// `<prefix>.Enter`, `<prefix>.Group<k>`, ... for a stage of `group_count` groups
    /// (actions named separately).
    fn with_prefix(prefix: &str, group_count: usize) -> StageNames {
        StageNames {
            enter: format!("{prefix}.Enter"),
            groups: (1..=group_count)
                .map(|k| GroupNames {
                    parallel: format!("{prefix}.Group{k}"),
                    check: format!("{prefix}.Group{k}.Check"),
                    outcome: format!("{prefix}.Group{k}.Outcome"),
                })
                .collect(),
            leave: format!("{prefix}.Leave"),
            failed: format!("{prefix}.Failed"),
            rules_before_entry: format!("{prefix}.RulesBeforeEntry"),
            check_entry: format!("{prefix}.CheckEntry"),
            entry_outcome: format!("{prefix}.EntryOutcome"),
            rules_on_success: format!("{prefix}.RulesOnSuccess"),
            rules_on_failure: format!("{prefix}.RulesOnFailure"),
            actions: Vec::new(),
        }
    }

    /// The stage's own state names (not its actions').
    fn own(&self) -> Vec<&str> {
        let mut names = vec![self.enter.as_str()];
        for group in &self.groups {
            names.extend([
                group.parallel.as_str(),
                group.check.as_str(),
                group.outcome.as_str(),
            ]);
        }
        names.extend([
            self.leave.as_str(),
            self.failed.as_str(),
            self.rules_before_entry.as_str(),
            self.check_entry.as_str(),
            self.entry_outcome.as_str(),
            self.rules_on_success.as_str(),
            self.rules_on_failure.as_str(),
        ]);
        names
    }
}

impl ActionNames {
    /// `<prefix>` and `<prefix>.Failed`.
    fn with_prefix(prefix: String) -> ActionNames {
        ActionNames {
            failed: format!("{prefix}.Failed"),
            task: prefix,
        }
    }

    /// Both names.
    fn own(&self) -> Vec<&str> {
        vec![self.task.as_str(), self.failed.as_str()]
    }
}

/// What [`StateNames::assign`] picks from: the readable names of a set of
/// states named together (a stage's own states, or an action's two) and
/// their index forms.
struct Candidates<T> {
    readable: T,
    fallback: T,
}

impl StateNames {
    /// Names every state of `p`.
    ///
    /// Sets of states are named in priority order: every stage's own states
    /// first, then every action's. A set keeps its readable names when each
    /// fits in 80 characters, none is taken yet, and none is the index form
    /// of another state; otherwise it takes its index forms. Index forms are
    /// distinct from each other by construction and readable names never take
    /// one, so all names end up unique.
    fn assign(p: &PipelineDeclaration) -> StateNames {
        let stages: Vec<Candidates<StageNames>> = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                let group_count = action_groups(stage).len();
                Candidates {
                    readable: StageNames::with_prefix(&stage.name, group_count),
                    fallback: StageNames::with_prefix(&format!("S{}", i + 1), group_count),
                }
            })
            .collect();
        let actions: Vec<Vec<Candidates<ActionNames>>> = p
            .stages
            .iter()
            .enumerate()
            .map(|(i, stage)| {
                (stage.actions.iter().enumerate())
                    .map(|(j, action)| Candidates {
                        readable: ActionNames::with_prefix(format!(
                            "{}.{}",
                            stage.name, action.name
                        )),
                        fallback: ActionNames::with_prefix(format!("S{}.A{}", i + 1, j + 1)),
                    })
                    .collect()
            })
            .collect();

        let reserved: BTreeSet<String> = stages
            .iter()
            .flat_map(|c| c.fallback.own())
            .chain(actions.iter().flatten().flat_map(|c| c.fallback.own()))
            .map(str::to_owned)
            .collect();
        let mut taken: BTreeSet<String> = [
            START, SUCCEEDED, DONE, SUPERSEDED, STOPPED, FAILED, ABORT, ABORTED,
        ]
        .into_iter()
        .map(str::to_owned)
        .collect();
        // Whether `readable` may be used, given its index forms `fallback`.
        let mut usable = |readable: Vec<&str>, fallback: Vec<&str>| -> bool {
            let ok = readable.iter().zip(&fallback).all(|(r, f)| {
                r.chars().count() <= MAX_NAME_LENGTH
                    && !taken.contains(*r)
                    && (r == f || !reserved.contains(*r))
            });
            let chosen = if ok { readable } else { fallback };
            taken.extend(chosen.into_iter().map(str::to_owned));
            ok
        };

        let mut named: Vec<StageNames> = stages
            .into_iter()
            .map(|c| {
                if usable(c.readable.own(), c.fallback.own()) {
                    c.readable
                } else {
                    c.fallback
                }
            })
            .collect();
        for (stage, candidates) in named.iter_mut().zip(actions) {
            stage.actions = candidates
                .into_iter()
                .map(|c| {
                    if usable(c.readable.own(), c.fallback.own()) {
                        c.readable
                    } else {
                        c.fallback
                    }
                })
                .collect();
        }
        StateNames { stages: named }
    }
}

// ---------------------------------------------------------------------------
// Action groups
// ---------------------------------------------------------------------------

/// The stage's action groups: each distinct runOrder, ascending, with the
/// indices of its actions in declaration order.
fn action_groups(stage: &StageDeclaration) -> Vec<(u32, Vec<usize>)> {
    let mut groups: BTreeMap<u32, Vec<usize>> = BTreeMap::new();
    for (j, action) in stage.actions.iter().enumerate() {
        groups.entry(action.run_order()).or_default().push(j);
    }
    groups.into_iter().collect()
}

/// A timeout an action's configuration sets: an ECS action's `DeploymentTimeout` (minutes).
fn configured_timeout_minutes(action: &ActionDeclaration) -> Option<u32> {
    let id = &action.action_type_id;
    if id.category == crate::declaration::ActionCategory::Deploy && id.provider == "ECS" {
        return action
            .configuration()
            .get("DeploymentTimeout")
            .and_then(|v| crate::ecs::deployment_timeout_minutes(v));
    }
    None
}

/// The action's timeout in seconds: its `timeoutInMinutes`, else what its configuration says
/// (ECS `DeploymentTimeout`), else its type's default; at most
/// `cap` (at least 1 second).
pub(crate) fn timeout_seconds(action: &ActionDeclaration, cap: Option<u64>) -> u64 {
    let minutes = action
        .timeout_in_minutes
        .or_else(|| configured_timeout_minutes(action))
        .unwrap_or_else(|| {
            lookup(&action.action_type_id).map_or(UNKNOWN_TYPE_TIMEOUT_MINUTES, |spec| {
                spec.timeout.default_minutes
            })
        });
    let seconds = u64::from(minutes) * 60;
    cap.map_or(seconds, |cap| seconds.min(cap.max(1)))
}

// ---------------------------------------------------------------------------
// Building blocks
// ---------------------------------------------------------------------------

/// `op` plus the execution's identifiers, taken from the state input.
fn payload(op: &str) -> Map<String, Value> {
    let mut payload = Map::new();
    payload.insert("op".into(), op.into());
    payload.insert("pipelineName.$".into(), "$.pipelineName".into());
    payload.insert("pipelineVersion.$".into(), "$.pipelineVersion".into());
    payload.insert(
        "pipelineExecutionId.$".into(),
        "$.pipelineExecutionId".into(),
    );
    payload
}

/// The `{Error, Cause}` a `Catch` hands on, for a person: the error name and the cause (a Lambda
/// function's `errorMessage` when the cause is its error JSON), e.g. `Lambda.Unknown: Runtime
/// exited with error: signal: killed`.
pub fn caught_error_reason(error: &Value) -> String {
    let name = error
        .get("Error")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .unwrap_or("an unknown error");
    let cause = error.get("Cause").and_then(Value::as_str).unwrap_or("");
    let cause = serde_json::from_str::<Value>(cause)
        .ok()
        .and_then(|c| c.get("errorMessage")?.as_str().map(str::to_string))
        .unwrap_or_else(|| cause.to_string());
    if cause.trim().is_empty() {
        name.to_string()
    } else {
        format!("{name}: {}", cause.trim())
    }
}

/// Adds the task token to a payload (for `.waitForTaskToken` invocations).
fn with_token(mut payload: Map<String, Value>) -> Map<String, Value> {
    payload.insert("taskToken.$".into(), "$$.Task.Token".into());
    payload
}

/// The retry policy of every Lambda invocation.
fn lambda_retry() -> Value {
    json!([{
        "ErrorEquals": RETRIED_LAMBDA_ERRORS,
        "IntervalSeconds": 1,
        "MaxAttempts": 3,
        "BackoffRate": 2,
    }])
}

/// A `Task` invoking `function` with `payload` (retry included).
fn lambda_task(
    resource: &str,
    comment: String,
    function: &str,
    payload: Map<String, Value>,
) -> Map<String, Value> {
    let mut task = Map::new();
    task.insert("Type".into(), "Task".into());
    task.insert("Comment".into(), comment.into());
    task.insert("Resource".into(), resource.into());
    task.insert(
        "Parameters".into(),
        json!({"FunctionName": function, "Payload": payload}),
    );
    task.insert("Retry".into(), lambda_retry());
    task
}

/// A `Catch` entry; the error goes to `$.error` so the state input (the
/// execution's identifiers) survives for the handler.
fn catch(error: &str, next: &str) -> Value {
    json!({"ErrorEquals": [error], "ResultPath": "$.error", "Next": next})
}

// ---------------------------------------------------------------------------
// One function per kind of state
// ---------------------------------------------------------------------------

/// `Start`: jumps to `$.startStage`'s enter state when given, else the first stage.
fn start_choice(p: &PipelineDeclaration, names: &StateNames, first_enter: &str) -> Value {
    let choices: Vec<Value> = p
        .stages
        .iter()
        .zip(&names.stages)
        .map(|(stage, stage_names)| {
            json!({
                "And": [
                    {"Variable": "$.startStage", "IsPresent": true},
                    {"Variable": "$.startStage", "StringEquals": stage.name},
                ],
                "Next": stage_names.enter,
            })
        })
        .collect();
    json!({
        "Type": "Choice",
        "Comment": "Start at $.startStage (a stage retry) when given, else at the first stage.",
        "Choices": choices,
        "Default": first_enter,
    })
}

/// `S.Enter`: asks the orchestrator for the stage; the token is answered when
/// the execution holds it (at once, or after waiting per the execution mode).
/// How long `S.Enter` waits for its callback: the longest an execution may legitimately wait in
/// front of `stage` — [`TRANSITION_WAIT_SECONDS`] at a disabled transition, plus the time the
/// [`MAX_WAITING`](crate::locks::MAX_WAITING) executions that may queue ahead of it can hold the
/// stage (each group's longest action timeout, summed) — capped at [`RUN_LIMIT_SECONDS`]. Past
/// it the wait was lost (a callback nothing will send): the `States.Timeout` goes to `Abort`,
/// which ends the execution Failed and takes it out of the stage's queue.
pub fn enter_timeout_seconds(stage: &StageDeclaration, cap: Option<u64>) -> u64 {
    let stage_longest: u64 = action_groups(stage)
        .iter()
        .map(|(_, members)| {
            members
                .iter()
                .map(|&j| timeout_seconds(&stage.actions[j], cap))
                .max()
                .unwrap_or(0)
        })
        .sum();
    let queue = (crate::locks::MAX_WAITING as u64).saturating_mul(stage_longest);
    TRANSITION_WAIT_SECONDS
        .saturating_add(queue)
        .min(RUN_LIMIT_SECONDS)
}

fn enter_state(
    stage: &StageDeclaration,
    names: &StageNames,
    next: &str,
    fail_to: &str,
    targets: &AslTargets,
) -> Value {
    let mut body = payload(OP_ENTER_STAGE);
    body.insert("stage".into(), stage.name.clone().into());
    let mut task = lambda_task(
        LAMBDA_INVOKE_WAIT,
        format!(
            "Enter stage {}: wait until the execution holds it.",
            stage.name
        ),
        &targets.orchestrator_arn,
        with_token(body),
    );
    task.insert(
        "TimeoutSeconds".into(),
        enter_timeout_seconds(stage, targets.action_timeout_cap_seconds).into(),
    );
    task.insert("ResultPath".into(), DISCARD_RESULT.into());
    task.insert(
        "Catch".into(),
        json!([
            catch("States.Timeout", ABORT),
            catch(SUPERSEDED_ERROR, SUPERSEDED),
            catch(STOPPED_ERROR, STOPPED),
            catch(FINISHED_ERROR, DONE),
            catch(SKIPPED_ERROR, &names.leave),
            catch("States.ALL", fail_to),
        ]),
    );
    task.insert("Next".into(), next.into());
    Value::Object(task)
}

/// `S.Group<k>`: a `Parallel` state with one branch per action of the group.
fn group_parallel(
    stage: &StageDeclaration,
    names: &StageNames,
    k: usize,
    run_order: u32,
    members: &[usize],
    targets: &AslTargets,
) -> Value {
    let group = k + 1;
    let branches: Vec<Value> = members
        .iter()
        .map(|&j| {
            action_branch(
                stage,
                &stage.actions[j],
                &names.actions[j],
                run_order,
                group,
                targets,
            )
        })
        .collect();
    json!({
        "Type": "Parallel",
        "Comment": format!(
            "Stage {}, action group {group} (runOrder {run_order}): {} action(s).",
            stage.name,
            members.len()
        ),
        "Branches": branches,
        // What each branch ended with: `{}` for a task that reported, `{failedAction, error}`
        // for one that failed or timed out (its `Pass`), for the group check to record.
        "ResultPath": GROUP_RESULT,
        "Catch": [catch("States.ALL", ABORT)],
        "Next": names.groups[k].check,
    })
}

/// One branch of a group: the action's task and the `Pass` state its
/// failure is caught into, so the sibling actions finish.
fn action_branch(
    stage: &StageDeclaration,
    action: &ActionDeclaration,
    names: &ActionNames,
    run_order: u32,
    group: usize,
    targets: &AslTargets,
) -> Value {
    let mut body = payload(OP_RUN_ACTION);
    body.insert("stage".into(), stage.name.clone().into());
    body.insert("action".into(), action.name.clone().into());
    body.insert("runOrder".into(), run_order.into());
    body.insert("group".into(), group.into());
    let id = &action.action_type_id;
    // Manual approvals are started by the approval function (it alone holds the link key).
    let function = if id.category == crate::declaration::ActionCategory::Approval {
        &targets.approval_arn
    } else {
        &targets.action_arn
    };
    let mut task = lambda_task(
        LAMBDA_INVOKE_WAIT,
        format!(
            "Stage {}, action {} ({}/{}/{} version {}), runOrder {run_order}.",
            stage.name, action.name, id.category, id.owner, id.provider, id.version
        ),
        function,
        with_token(body),
    );
    task.insert(
        "TimeoutSeconds".into(),
        timeout_seconds(action, targets.action_timeout_cap_seconds).into(),
    );
    task.insert("ResultPath".into(), DISCARD_RESULT.into());
    // The branch's output is the callback's (`{}`), not the whole state: the group's result
    // stays small however many groups ran before.
    task.insert("OutputPath".into(), DISCARD_RESULT.into());
    task.insert("Catch".into(), json!([catch("States.ALL", &names.failed)]));
    task.insert("End".into(), true.into());

    let failed = json!({
        "Type": "Pass",
        "Comment": format!(
            "Action {} failed or timed out; the group check records it.",
            action.name
        ),
        "Parameters": {"failedAction": action.name, "error.$": "$.error"},
        "End": true,
    });
    let mut states = Map::new();
    states.insert(names.task.clone(), Value::Object(task));
    states.insert(names.failed.clone(), failed);
    json!({"StartAt": names.task, "States": states})
}

/// `S.Group<k>.Check`: asks the orchestrator whether the group failed; the
/// answer lands in `$.check.failed`.
fn group_check(
    stage: &StageDeclaration,
    names: &GroupNames,
    k: usize,
    targets: &AslTargets,
) -> Value {
    let group = k + 1;
    let mut body = payload(OP_CHECK_GROUP);
    body.insert("stage".into(), stage.name.clone().into());
    body.insert("group".into(), group.into());
    body.insert("branches.$".into(), GROUP_RESULT.into());
    let mut task = lambda_task(
        LAMBDA_INVOKE,
        format!(
            "Stage {}: record timeouts and whether action group {group} failed.",
            stage.name
        ),
        &targets.orchestrator_arn,
        body,
    );
    task.insert(
        "ResultSelector".into(),
        json!({"failed.$": "$.Payload.failed"}),
    );
    task.insert("ResultPath".into(), "$.check".into());
    task.insert("Catch".into(), json!([catch("States.ALL", ABORT)]));
    task.insert("Next".into(), names.outcome.clone().into());
    Value::Object(task)
}

/// `S.Group<k>.Outcome`: to `S.Failed` when the group failed, else onwards.
fn group_outcome(stage: &StageDeclaration, fail_to: &str, next: &str) -> Value {
    json!({
        "Type": "Choice",
        "Comment": format!("Stage {}: fail the stage when the group failed.", stage.name),
        "Choices": [{
            "Variable": "$.check.failed",
            "BooleanEquals": true,
            "Next": fail_to,
        }],
        "Default": next,
    })
}

/// `S.Leave`: the stage succeeded; hand it over and go on.
fn leave_state(stage: &StageDeclaration, next: &str, work: bool, targets: &AslTargets) -> Value {
    let mut task = leave_task(stage, "Succeeded", work, targets);
    task.insert("Next".into(), next.into());
    Value::Object(task)
}

/// `S.Failed`: the stage failed; hand it over and fail the execution.
fn stage_failed_state(stage: &StageDeclaration, work: bool, targets: &AslTargets) -> Value {
    let mut task = leave_task(stage, "Failed", work, targets);
    task.insert("Next".into(), FAILED.into());
    Value::Object(task)
}

/// The `leaveStage` invocation shared by [`leave_state`] and [`stage_failed_state`]; with
/// `work`, it passes on what the stage's work rules found (`$.rules`).
fn leave_task(
    stage: &StageDeclaration,
    outcome: &str,
    work: bool,
    targets: &AslTargets,
) -> Map<String, Value> {
    let mut body = payload(OP_LEAVE_STAGE);
    body.insert("stage".into(), stage.name.clone().into());
    body.insert("outcome".into(), outcome.into());
    if work {
        body.insert("workRules.$".into(), RULES_RESULT.into());
    }
    // Which run leaves: a repeat from a run an automatic retry replaced changes nothing.
    body.insert("run.$".into(), "$$.Execution.Id".into());
    let mut task = lambda_task(
        LAMBDA_INVOKE,
        format!("Leave stage {} ({outcome}).", stage.name),
        &targets.orchestrator_arn,
        body,
    );
    task.insert("ResultPath".into(), DISCARD_RESULT.into());
    task.insert("Catch".into(), json!([catch("States.ALL", ABORT)]));
    task
}

/// `S.RulesOnSuccess` / `S.RulesOnFailure`: the action function runs the work rules of the
/// stage's `kind` conditions and answers with what each found (into `$.rules`); then the leave
/// task checks the conditions. When the task fails or times out, the leave task goes on without
/// those results, and each such rule fails saying it did not finish.
fn rules_state(
    stage: &StageDeclaration,
    kind: crate::conditions::ConditionKind,
    next: &str,
    targets: &AslTargets,
) -> Value {
    let mut body = payload(OP_RUN_RULES);
    body.insert("stage".into(), stage.name.clone().into());
    body.insert("kind".into(), json!(kind));
    // Which run asks: a run a retry replaced runs nothing.
    body.insert("run.$".into(), "$$.Execution.Id".into());
    let mut task = lambda_task(
        LAMBDA_INVOKE_WAIT,
        format!(
            "Stage {}: run the Commands and CodeBuild rules of its {} conditions.",
            stage.name,
            match kind {
                crate::conditions::ConditionKind::BeforeEntry => "beforeEntry",
                crate::conditions::ConditionKind::OnFailure => "onFailure",
                crate::conditions::ConditionKind::OnSuccess => "onSuccess",
            }
        ),
        &targets.action_arn,
        with_token(body),
    );
    let timeout = targets
        .action_timeout_cap_seconds
        .map_or(RULES_TIMEOUT_SECONDS, |cap| {
            RULES_TIMEOUT_SECONDS.min(cap.max(1))
        });
    task.insert("TimeoutSeconds".into(), timeout.into());
    task.insert("ResultPath".into(), RULES_RESULT.into());
    task.insert(
        "Catch".into(),
        json!([{"ErrorEquals": ["States.ALL"], "ResultPath": DISCARD_RESULT, "Next": next}]),
    );
    task.insert("Next".into(), next.into());
    Value::Object(task)
}

/// `S.CheckEntry`: the orchestrator checks the stage's beforeEntry conditions with what its
/// work rules found; `{"refused": bool}` goes to `$.entry`.
fn check_entry_state(stage: &StageDeclaration, next: &str, targets: &AslTargets) -> Value {
    let mut body = payload(OP_CHECK_ENTRY);
    body.insert("stage".into(), stage.name.clone().into());
    body.insert("workRules.$".into(), RULES_RESULT.into());
    let mut task = lambda_task(
        LAMBDA_INVOKE,
        format!(
            "Stage {}: check its beforeEntry conditions, now that their Commands and CodeBuild rules ran.",
            stage.name
        ),
        &targets.orchestrator_arn,
        body,
    );
    task.insert(
        "ResultSelector".into(),
        json!({"refused.$": "$.Payload.refused"}),
    );
    task.insert("ResultPath".into(), "$.entry".into());
    task.insert("Catch".into(), json!([catch("States.ALL", ABORT)]));
    task.insert("Next".into(), next.into());
    Value::Object(task)
}

/// `Succeeded`: records the execution's success (its failure is caught into `Abort` when the
/// definition has one: a pipeline with stages).
fn succeeded_state(targets: &AslTargets, abortable: bool) -> Value {
    let mut body = payload(OP_FINISH_EXECUTION);
    body.insert("outcome".into(), "Succeeded".into());
    let mut task = lambda_task(
        LAMBDA_INVOKE,
        "Every stage succeeded: record the execution as Succeeded.".to_owned(),
        &targets.orchestrator_arn,
        body,
    );
    task.insert("ResultPath".into(), DISCARD_RESULT.into());
    if abortable {
        task.insert("Catch".into(), json!([catch("States.ALL", ABORT)]));
    }
    task.insert("Next".into(), DONE.into());
    Value::Object(task)
}

/// `Abort`: a task failed in a way the definition does not otherwise handle (a function error
/// or timeout in a check, leave or finish task, a failed `Parallel`): the orchestrator records
/// the execution as Failed with the error, and releases every stage it holds or waits for.
fn abort_state(targets: &AslTargets) -> Value {
    let mut body = payload(OP_ABORT_EXECUTION);
    body.insert("error.$".into(), "$.error".into());
    // Which run aborts: a stale run (one a stage retry replaced) changes nothing.
    body.insert("run.$".into(), "$$.Execution.Id".into());
    let mut task = lambda_task(
        LAMBDA_INVOKE,
        "A task failed: record the execution as Failed and release its stages.".to_owned(),
        &targets.orchestrator_arn,
        body,
    );
    task.insert("ResultPath".into(), DISCARD_RESULT.into());
    task.insert("Next".into(), ABORTED.into());
    Value::Object(task)
}

/// `Aborted`: the end of an execution a task failure ended.
fn aborted_state() -> Value {
    json!({
        "Type": "Fail",
        "Comment": "A task failed; the orchestrator has recorded the execution as Failed.",
        "Error": ABORTED_ERROR,
        "Cause": "A task of the pipeline's state machine failed; see the execution's statusSummary.",
    })
}

/// `Done`: the end of a successful execution.
fn done_state() -> Value {
    json!({"Type": "Succeed", "Comment": "The pipeline execution succeeded."})
}

/// `Superseded`: a newer execution took this one's place (recorded by the orchestrator).
fn superseded_state() -> Value {
    json!({
        "Type": "Succeed",
        "Comment": "A newer execution superseded this one while it waited for a stage.",
    })
}

/// `Stopped`: the execution was stopped (recorded by the orchestrator).
fn stopped_state() -> Value {
    json!({
        "Type": "Succeed",
        "Comment": "The execution was stopped.",
    })
}

/// `Failed`: a stage failed.
fn failed_state() -> Value {
    json!({
        "Type": "Fail",
        "Comment": "A stage failed; the orchestrator has recorded the execution as Failed.",
        "Error": STAGE_FAILED_ERROR,
        "Cause": "A stage of the pipeline failed.",
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::declaration::{ActionCategory, ActionOwner, ActionTypeId};
    use crate::parse_pipeline;

    fn targets() -> AslTargets {
        AslTargets {
            orchestrator_arn: "arn:aws:lambda:us-east-1:123456789012:function:o".into(),
            action_arn: "arn:aws:lambda:us-east-1:123456789012:function:a".into(),
            approval_arn: "arn:aws:lambda:us-east-1:123456789012:function:ap".into(),
            action_timeout_cap_seconds: None,
        }
    }

    #[test]
    fn fnv1a_matches_the_reference_vectors() {
        assert_eq!(fnv1a_32(b""), 0x811c_9dc5);
        assert_eq!(fnv1a_32(b"a"), 0xe40c_292c);
        assert_eq!(fnv1a_32(b"foobar"), 0xbf9c_f968);
    }

    #[test]
    fn state_machine_names() {
        assert_eq!(state_machine_name("app", 1), "pipewright-app-v1");
        // Exactly 80 characters stays plain; one more is shortened and hashed.
        let fits = "f".repeat(66);
        assert_eq!(
            state_machine_name(&fits, 1),
            format!("pipewright-{fits}-v1")
        );
        let over = "f".repeat(67);
        let name = state_machine_name(&over, 1);
        assert_eq!(name.len(), 80);
        assert_eq!(
            name,
            format!(
                "pipewright-{}-{:08x}-v1",
                "f".repeat(57),
                fnv1a_32(over.as_bytes())
            )
        );
        // `.` and `@` are replaced, and the hash keeps names apart.
        let dotted = state_machine_name("my.app@prod", 7);
        assert_eq!(
            dotted,
            format!("pipewright-my-app-prod-{:08x}-v7", fnv1a_32(b"my.app@prod"))
        );
        assert_ne!(dotted, state_machine_name("my-app-prod", 7));
        assert_eq!(
            state_machine_name("x", u32::MAX),
            "pipewright-x-v4294967295"
        );
        assert!(state_machine_name(&"y".repeat(100), u32::MAX).len() <= 80);
    }

    #[test]
    fn timeouts_come_from_the_action_or_its_type() {
        let text = r#"{"name": "t", "roleArn": "r",
          "artifactStore": {"type": "S3", "location": "b"},
          "stages": [{"name": "S", "actions": [
            {"name": "Approve", "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
            {"name": "Quick", "timeoutInMinutes": 10, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}
          ]}]}"#;
        let p = parse_pipeline(text).expect("parses");
        assert_eq!(
            timeout_seconds(&p.stages[0].actions[0], None),
            7 * 24 * 3600
        );
        assert_eq!(timeout_seconds(&p.stages[0].actions[0], Some(30)), 30);
        assert_eq!(timeout_seconds(&p.stages[0].actions[1], Some(3600)), 600);
        assert_eq!(timeout_seconds(&p.stages[0].actions[1], None), 600);
        let mut unknown = p.stages[0].actions[0].clone();
        unknown.action_type_id = ActionTypeId {
            category: ActionCategory::Build,
            owner: ActionOwner::Custom,
            provider: "Jenkins".into(),
            version: "1".into(),
        };
        assert_eq!(timeout_seconds(&unknown, None), 3600);
        // An ECS deployment waits its DeploymentTimeout, unless timeoutInMinutes says otherwise.
        let ecs = |config: &str, timeout: &str| {
            parse_pipeline(&format!(
                r#"{{"name": "t", "roleArn": "r", "artifactStore": {{"type": "S3", "location": "b"}},
                  "stages": [{{"name": "S", "actions": [{{"name": "Svc", {timeout}
                    "actionTypeId": {{"category": "Deploy", "owner": "AWS", "provider": "ECS", "version": "1"}},
                    "configuration": {{"ClusterName": "c", "ServiceName": "s"{config}}}}}]}}]}}"#
            ))
            .expect("parses")
            .stages[0]
                .actions[0]
                .clone()
        };
        assert_eq!(timeout_seconds(&ecs("", ""), None), 3600);
        assert_eq!(
            timeout_seconds(&ecs(r#", "DeploymentTimeout": "15""#, ""), None),
            900
        );
        assert_eq!(
            timeout_seconds(
                &ecs(
                    r#", "DeploymentTimeout": "15""#,
                    r#""timeoutInMinutes": 5,"#
                ),
                None
            ),
            300
        );
    }

    #[test]
    fn enter_waits_as_long_as_a_transition_and_a_full_queue_may_hold_it() {
        let text = r#"{"name": "t", "roleArn": "r",
          "artifactStore": {"type": "S3", "location": "b"},
          "stages": [{"name": "S", "actions": [
            {"name": "A", "runOrder": 1, "timeoutInMinutes": 10, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
            {"name": "B", "runOrder": 1, "timeoutInMinutes": 20, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
            {"name": "C", "runOrder": 2, "timeoutInMinutes": 5, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}
          ]}, {"name": "Long", "actions": [
            {"name": "Wait", "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}
          ]}]}"#;
        let p = parse_pipeline(text).expect("parses");
        // Groups: max(10, 20) + 5 minutes = 1,500 s a stage; 100 may wait ahead.
        let expected = TRANSITION_WAIT_SECONDS + 100 * 1_500;
        assert_eq!(enter_timeout_seconds(&p.stages[0], None), expected);
        // A cap on action timeouts shortens the queue's share, never the transition's.
        assert_eq!(
            enter_timeout_seconds(&p.stages[0], Some(60)),
            TRANSITION_WAIT_SECONDS + 100 * 120
        );
        // Seven-day approvals: a full queue would outlast a run; the run's year is the limit.
        assert_eq!(enter_timeout_seconds(&p.stages[1], None), RUN_LIMIT_SECONDS);
        let asl = compile(&p, &targets());
        let enter = &asl["States"]["S.Enter"];
        assert_eq!(enter["TimeoutSeconds"], expected);
        assert_eq!(enter["Catch"][0]["ErrorEquals"][0], "States.Timeout");
        assert_eq!(enter["Catch"][0]["Next"], "Abort");
    }

    #[test]
    fn groups_follow_run_order_not_declaration_order() {
        let text = r#"{"name": "t", "roleArn": "r",
          "artifactStore": {"type": "S3", "location": "b"},
          "stages": [{"name": "S", "actions": [
            {"name": "Late", "runOrder": 5, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
            {"name": "Early", "runOrder": 2, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}},
            {"name": "AlsoLate", "runOrder": 5, "actionTypeId":
              {"category": "Approval", "owner": "AWS", "provider": "Manual", "version": "1"}}
          ]}]}"#;
        let p = parse_pipeline(text).expect("parses");
        assert_eq!(
            action_groups(&p.stages[0]),
            vec![(2, vec![1]), (5, vec![0, 2])]
        );
        let asl = compile(&p, &targets());
        let states = &asl["States"];
        assert_eq!(states["S.Enter"]["Next"], "S.Group1");
        let early = &states["S.Group1"]["Branches"][0]["States"]["S.Early"];
        assert_eq!(early["Parameters"]["Payload"]["runOrder"], 2);
        assert_eq!(early["Parameters"]["Payload"]["group"], 1);
        let late = &states["S.Group2"]["Branches"];
        assert_eq!(late[0]["StartAt"], "S.Late");
        assert_eq!(late[1]["StartAt"], "S.AlsoLate");
        assert_eq!(
            states["S.Group2.Check"]["Parameters"]["Payload"]["group"],
            2
        );
        assert_eq!(states["S.Group2.Outcome"]["Default"], "S.Leave");
    }

    #[test]
    fn degenerate_declarations_still_compile() {
        // Not valid pipelines, but compile must not panic on them.
        let text = r#"{"name": "t", "roleArn": "r",
          "artifactStore": {"type": "S3", "location": "b"},
          "stages": [{"name": "Empty", "actions": []}]}"#;
        let mut p = parse_pipeline(text).expect("parses");
        let asl = compile(&p, &targets());
        assert_eq!(asl["States"]["Empty.Enter"]["Next"], "Empty.Leave");
        assert_eq!(asl["States"]["Empty.Leave"]["Next"], "Succeeded");

        p.stages.clear();
        let asl = compile(&p, &targets());
        assert_eq!(asl["StartAt"], "Succeeded");
        let names: Vec<&String> = asl["States"].as_object().expect("states").keys().collect();
        assert_eq!(names, ["Done", "Succeeded"]);
    }

    #[test]
    fn work_rules_run_in_a_task_of_their_own_before_the_stage_leaves() {
        let text = r#"{"name": "t", "roleArn": "r", "pipelineType": "V2",
          "artifactStore": {"type": "S3", "location": "b"},
          "stages": [
            {"name": "Src", "actions": [{"name": "Get", "actionTypeId":
              {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
              "configuration": {"S3Bucket": "b", "S3ObjectKey": "k"},
              "outputArtifacts": [{"name": "Out"}]}]},
            {"name": "Ship", "actions": [{"name": "Go", "actionTypeId":
              {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
              "commands": ["true"], "inputArtifacts": [{"name": "Out"}]}],
             "onSuccess": {"conditions": [{"result": "FAIL", "rules": [{"name": "Smoke",
               "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
               "commands": ["curl -f https://example.com"], "inputArtifacts": [{"name": "Out"}]}]}]},
             "beforeEntry": {"conditions": [{"result": "FAIL", "rules": [{"name": "Ready",
               "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "Commands", "version": "1"},
               "commands": ["true"], "inputArtifacts": [{"name": "Out"}]}]}]},
             "onFailure": {"result": "ROLLBACK", "conditions": [{"rules": [{"name": "Tests",
               "ruleTypeId": {"category": "Rule", "owner": "AWS", "provider": "CodeBuild", "version": "1"},
               "configuration": {"ProjectName": "tests"}}]}]}}
          ]}"#;
        let p = parse_pipeline(text).expect("parses");
        let asl = compile(&p, &targets());
        let states = &asl["States"];
        // `$.rules` exists before any leave reads it.
        assert_eq!(asl["StartAt"], INIT);
        assert_eq!(states[INIT]["ResultPath"], RULES_RESULT);
        assert_eq!(states[INIT]["Next"], START);
        // Success: the group's outcome goes to the rules task, then to the leave task, which
        // reads what the rules found.
        assert_eq!(
            states["Ship.Group1.Outcome"]["Default"],
            "Ship.RulesOnSuccess"
        );
        let rules = &states["Ship.RulesOnSuccess"];
        assert_eq!(rules["Resource"], LAMBDA_INVOKE_WAIT);
        assert_eq!(rules["Parameters"]["FunctionName"], targets().action_arn);
        assert_eq!(rules["Parameters"]["Payload"]["op"], OP_RUN_RULES);
        assert_eq!(rules["Parameters"]["Payload"]["kind"], "ON_SUCCESS");
        assert_eq!(rules["ResultPath"], RULES_RESULT);
        assert_eq!(rules["Next"], "Ship.Leave");
        assert_eq!(rules["Catch"][0]["Next"], "Ship.Leave");
        assert_eq!(
            states["Ship.Leave"]["Parameters"]["Payload"]["workRules.$"],
            RULES_RESULT
        );
        // Failure: through the onFailure rules to the failed stage's leave task.
        assert_eq!(
            states["Ship.Group1.Outcome"]["Choices"][0]["Next"],
            "Ship.RulesOnFailure"
        );
        assert_eq!(
            states["Ship.RulesOnFailure"]["Parameters"]["Payload"]["kind"],
            "ON_FAILURE"
        );
        assert_eq!(states["Ship.RulesOnFailure"]["Next"], "Ship.Failed");
        // A refused or failed entry fails the stage without onFailure's work rules (a stage its
        // beforeEntry condition failed checks no onFailure condition).
        let enter_catches = states["Ship.Enter"]["Catch"].as_array().unwrap();
        assert_eq!(enter_catches.last().unwrap()["Next"], "Ship.Failed");
        // Entry: the work rules of beforeEntry run once the execution holds the stage, then
        // the orchestrator checks the conditions; a refusal fails the stage.
        assert_eq!(states["Ship.Enter"]["Next"], "Ship.RulesBeforeEntry");
        assert_eq!(
            states["Ship.RulesBeforeEntry"]["Parameters"]["Payload"]["kind"],
            "BEFORE_ENTRY"
        );
        assert_eq!(states["Ship.RulesBeforeEntry"]["Next"], "Ship.CheckEntry");
        let check = &states["Ship.CheckEntry"];
        assert_eq!(check["Parameters"]["Payload"]["op"], OP_CHECK_ENTRY);
        assert_eq!(check["Parameters"]["Payload"]["workRules.$"], RULES_RESULT);
        assert_eq!(check["Next"], "Ship.EntryOutcome");
        assert_eq!(
            states["Ship.EntryOutcome"]["Choices"][0]["Next"],
            "Ship.Failed"
        );
        assert_eq!(states["Ship.EntryOutcome"]["Default"], "Ship.Group1");
        // A skipped stage leaves without running them.
        assert!(enter_catches
            .iter()
            .any(|c| c["ErrorEquals"][0] == SKIPPED_ERROR && c["Next"] == "Ship.Leave"));
        // The stage without work rules is as before.
        assert_eq!(states["Src.Group1.Outcome"]["Default"], "Src.Leave");
        assert!(states.get("Src.RulesOnSuccess").is_none());
        assert!(states["Src.Leave"]["Parameters"]["Payload"]
            .get("workRules.$")
            .is_none());
    }
}
