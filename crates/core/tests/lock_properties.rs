//! The stage-lock protocol under random interleavings: first the pure decision
//! ([`StageLock::arrive`] / [`StageLock::release`]) on one stage, then the engine driving a
//! three-stage pipeline over in-memory ports, as many executions arrive, leave and fail in
//! random order. The invariants are those written in `crates/core/src/locks.rs`.

mod support;

use std::collections::{BTreeMap, BTreeSet};

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::engine::ExecutionIds;
use pipewright_core::execution::PipelineExecutionStatus;
use pipewright_core::locks::{Effect, StageLock, Waiter};
use proptest::prelude::*;
use serde_json::json;
use support::World;

#[derive(Debug, Clone)]
enum Op {
    /// A new execution arrives.
    Arrive,
    /// The execution in the stage leaves it.
    Leave,
    /// The `n`th execution still waiting stops waiting (it was stopped).
    Withdraw(usize),
    /// The `n`th execution still waiting arrives again (a retried task).
    Repeat(usize),
    /// DisableStageTransition.
    Disable,
    /// EnableStageTransition.
    Enable,
}

fn ops() -> impl Strategy<Value = Vec<Op>> {
    prop::collection::vec(
        prop_oneof![
            4 => Just(Op::Arrive),
            3 => Just(Op::Leave),
            1 => (0usize..4).prop_map(Op::Withdraw),
            1 => (0usize..4).prop_map(Op::Repeat),
            1 => Just(Op::Disable),
            1 => Just(Op::Enable),
        ],
        1..60,
    )
}

fn modes() -> impl Strategy<Value = ExecutionMode> {
    prop_oneof![Just(ExecutionMode::Superseded), Just(ExecutionMode::Queued)]
}

/// What the pure model saw happen.
#[derive(Default)]
struct Seen {
    inside: Option<String>,
    entered: Vec<String>,
    superseded: BTreeSet<String>,
    withdrawn: BTreeSet<String>,
    refused: BTreeSet<String>,
    arrived: Vec<String>,
}

impl Seen {
    fn apply(&mut self, effects: &[Effect], mode: ExecutionMode) -> Result<(), TestCaseError> {
        for e in effects {
            match e {
                Effect::Enter {
                    pipeline_execution_id: id,
                    ..
                } => {
                    if self.inside.as_deref() == Some(id.as_str()) {
                        continue; // the holder's repeated arrival
                    }
                    prop_assert!(
                        self.inside.is_none(),
                        "{id} entered while {:?} was inside",
                        self.inside
                    );
                    prop_assert!(!self.superseded.contains(id));
                    prop_assert!(!self.entered.contains(id), "{id} entered twice");
                    self.inside = Some(id.clone());
                    self.entered.push(id.clone());
                }
                Effect::Supersede {
                    pipeline_execution_id: id,
                    by,
                    ..
                } => {
                    prop_assert_eq!(
                        mode,
                        ExecutionMode::Superseded,
                        "only SUPERSEDED supersedes"
                    );
                    prop_assert!(
                        self.inside.as_deref() != Some(id.as_str()),
                        "{id} superseded inside the stage"
                    );
                    prop_assert!(
                        !self.entered.contains(id),
                        "{id} superseded after it entered"
                    );
                    prop_assert!(self.superseded.insert(id.clone()), "{id} superseded twice");
                    prop_assert_ne!(id, by);
                }
                Effect::Refuse {
                    pipeline_execution_id: id,
                    ..
                } => {
                    prop_assert_ne!(mode, ExecutionMode::Superseded, "SUPERSEDED never queues");
                    prop_assert!(!self.entered.contains(id), "{id} refused after it entered");
                    prop_assert!(self.refused.insert(id.clone()), "{id} refused twice");
                }
            }
        }
        Ok(())
    }
}

fn check(lock: &StageLock, seen: &Seen, mode: ExecutionMode) -> Result<(), TestCaseError> {
    prop_assert_eq!(&lock.holder, &seen.inside);
    if lock.holder.is_none() && lock.disabled.is_none() {
        prop_assert!(
            lock.waiting.is_empty(),
            "waiters in front of a free, open stage: {lock:?}"
        );
    }
    if mode == ExecutionMode::Superseded {
        prop_assert!(lock.waiting.len() <= 1, "{lock:?}");
    }
    prop_assert!(lock.waiting.len() <= pipewright_core::locks::MAX_WAITING);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn one_stage_keeps_its_invariants(ops in ops(), mode in modes()) {
        let mut lock = StageLock::default();
        let mut seen = Seen::default();
        let mut n = 0;
        for op in ops {
            let waiting: Vec<String> = lock.waiting.iter().map(|w| w.pipeline_execution_id.clone()).collect();
            let (next, effects) = match op {
                Op::Arrive => {
                    n += 1;
                    let id = format!("e{n:03}");
                    seen.arrived.push(id.clone());
                    lock.arrive(Waiter { pipeline_execution_id: id, task_token: format!("t{n}"), started: n as f64, arrived: n as f64, parallel: false }, mode)
                }
                Op::Leave => match seen.inside.take() {
                    Some(id) => lock.release(&id),
                    None => continue,
                },
                Op::Withdraw(i) => match waiting.get(i) {
                    Some(id) => { seen.withdrawn.insert(id.clone()); lock.release(id) }
                    None => continue,
                },
                Op::Repeat(i) => match waiting.get(i).and_then(|id| lock.waiter(id)) {
                    Some(w) => { let mut w = w.clone(); w.task_token.push('+'); lock.arrive(w, mode) }
                    None => continue,
                },
                Op::Disable => lock.disable("freeze", "ops", 0.0),
                Op::Enable => lock.enable("ops", 0.0),
            };
            seen.apply(&effects, mode)?;
            // Every supersession is kept in the lock until the engine has carried it out.
            for e in &effects {
                if let Effect::Supersede { pipeline_execution_id: id, .. } = e {
                    prop_assert!(next.superseded.iter().any(|s| &s.pipeline_execution_id == id));
                }
            }
            lock = next;
            for id in seen.superseded.iter() {
                lock = lock.superseded_done(id).0;
            }
            check(&lock, &seen, mode)?;
        }
        // The transition opens and everyone inside leaves: nobody is left waiting.
        let (next, effects) = lock.enable("ops", 0.0);
        seen.apply(&effects, mode)?;
        lock = next;
        check(&lock, &seen, mode)?;
        while let Some(id) = seen.inside.take() {
            let (next, effects) = lock.release(&id);
            seen.apply(&effects, mode)?;
            lock = next;
            check(&lock, &seen, mode)?;
        }
        prop_assert!(lock.is_idle(), "{lock:?}");
        // Every arrival ended exactly once: entered, superseded or withdrawn.
        for id in &seen.arrived {
            let ends = usize::from(seen.entered.contains(id))
                + usize::from(seen.superseded.contains(id))
                + usize::from(seen.withdrawn.contains(id) && !seen.entered.contains(id));
            prop_assert_eq!(ends, 1, "{} ended {} times", id, ends);
        }
        if mode == ExecutionMode::Queued {
            let expected: Vec<&String> = seen.arrived.iter().filter(|id| !seen.withdrawn.contains(*id) || seen.entered.contains(*id)).collect();
            let got: Vec<&String> = seen.entered.iter().collect();
            prop_assert_eq!(got, expected, "QUEUED enters in arrival order");
        }
    }
}

// ------------------------------------------------------------------ the engine, three stages

const STAGES: [&str; 3] = ["Source", "Build", "Deploy"];

/// Where an execution is, as its state machine would see it.
#[derive(Debug, Clone, PartialEq)]
enum At {
    /// Its `enterStage` task for stage `i` waits with this token.
    Waiting(usize, String),
    /// In stage `i`.
    Inside(usize),
    /// Ended (finished, failed or superseded).
    Ended,
}

#[derive(Debug, Clone)]
enum Step {
    Start,
    /// The `n`th execution inside a stage finishes it (succeeds, or fails when `fail`).
    Finish(usize, bool),
}

fn steps() -> impl Strategy<Value = Vec<Step>> {
    prop::collection::vec(
        prop_oneof![
            2 => Just(Step::Start),
            5 => (0usize..6, prop::bool::weighted(0.15)).prop_map(|(n, f)| Step::Finish(n, f)),
        ],
        1..40,
    )
}

struct Run {
    world: World,
    at: BTreeMap<String, At>,
    tokens: usize,
    /// Per stage: executions in the order they arrived / entered.
    arrived: [Vec<String>; 3],
    entered: [Vec<String>; 3],
    mode: ExecutionMode,
}

impl Run {
    fn ids(id: &str) -> ExecutionIds {
        ExecutionIds {
            pipeline_name: "locked".into(),
            pipeline_version: 1,
            pipeline_execution_id: id.into(),
        }
    }

    async fn arrive(&mut self, id: &str, stage: usize) {
        self.tokens += 1;
        let token = format!("enter-{}", self.tokens);
        self.arrived[stage].push(id.to_string());
        self.at
            .insert(id.to_string(), At::Waiting(stage, token.clone()));
        self.world
            .engine()
            .enter_stage(&Self::ids(id), STAGES[stage], &token, self.tokens as f64)
            .await
            .unwrap();
        self.observe();
    }

    /// Read the task answers: waiting executions whose token was answered entered or ended.
    fn observe(&mut self) {
        let answers = self.world.tasks.answers.lock().unwrap().clone();
        for (id, at) in self.at.iter_mut() {
            if let At::Waiting(stage, token) = at.clone() {
                match answers.get(&token) {
                    Some(Ok(_)) => {
                        *at = At::Inside(stage);
                        self.entered[stage].push(id.clone());
                    }
                    Some(Err(e)) => {
                        assert_eq!(e, "Pipewright.Superseded", "{id}");
                        *at = At::Ended;
                    }
                    None => {}
                }
            }
        }
    }

    fn check(&self) -> Result<(), TestCaseError> {
        for (stage, name) in STAGES.iter().enumerate() {
            let inside = self
                .at
                .values()
                .filter(|a| **a == At::Inside(stage))
                .count();
            let waiting = self
                .at
                .values()
                .filter(|a| matches!(a, At::Waiting(s, _) if *s == stage))
                .count();
            prop_assert!(inside <= 1, "{inside} executions inside {}", name);
            prop_assert!(
                inside == 1 || waiting == 0,
                "{waiting} wait in front of a free {}",
                name
            );
            if self.mode == ExecutionMode::Superseded {
                prop_assert!(waiting <= 1, "{waiting} wait in front of {}", name);
            }
        }
        Ok(())
    }
}

async fn run_engine(steps: Vec<Step>, mode: ExecutionMode) -> Result<(), TestCaseError> {
    let world = World::with_pipeline(support::three_stages("locked", mode)).await;
    let mut run = Run {
        world,
        at: BTreeMap::new(),
        tokens: 0,
        arrived: Default::default(),
        entered: Default::default(),
        mode,
    };
    let mut started = 0;
    let finish = |run: &mut Run, n: usize, fail: bool| {
        let inside: Vec<(String, usize)> = run
            .at
            .iter()
            .filter_map(|(id, a)| match a {
                At::Inside(s) => Some((id.clone(), *s)),
                _ => None,
            })
            .collect();
        inside
            .get(n % inside.len().max(1))
            .cloned()
            .map(|x| (x, fail))
    };
    let mut i = 0;
    let total = steps.len();
    let mut steps = steps.into_iter();
    loop {
        let step = match steps.next() {
            Some(s) => s,
            // Then drain: everyone inside finishes until nobody is left.
            None => Step::Finish(0, false),
        };
        i += 1;
        match step {
            Step::Start => {
                started += 1;
                let id = format!("00000000-0000-4000-8000-{started:012}");
                let engine = run.world.engine();
                engine
                    .start_execution(pipewright_core::engine::StartRequest {
                        pipeline_name: "locked".into(),
                        pipeline_execution_id: id.clone(),
                        trigger: pipewright_core::execution::ExecutionTrigger {
                            trigger_type:
                                pipewright_core::events::TriggerType::StartPipelineExecution,
                            trigger_detail: "test".into(),
                        },
                        variables: vec![],
                        source_revisions: vec![],
                        idempotency_key: None,
                        now: i as f64,
                    })
                    .await
                    .unwrap();
                drop(engine);
                run.arrive(&id, 0).await;
            }
            Step::Finish(n, fail) => {
                let Some(((id, stage), fail)) = finish(&mut run, n, fail) else {
                    if i > total {
                        break;
                    }
                    continue;
                };
                run.at.insert(id.clone(), At::Ended);
                run.world
                    .engine()
                    .leave_stage(&Run::ids(&id), STAGES[stage], !fail, 1000.0 + i as f64)
                    .await
                    .unwrap();
                run.observe();
                if !fail && stage + 1 < STAGES.len() {
                    run.arrive(&id, stage + 1).await;
                }
            }
        }
        run.check()?;
        prop_assert!(i < total + 500, "the run does not drain");
    }
    // Nobody is left waiting, and the records agree with what the state machines saw.
    for (id, at) in &run.at {
        prop_assert_eq!(at, &At::Ended, "{} is stuck", id);
        let status = run.world.snapshot(id).await.execution.status;
        prop_assert!(
            matches!(
                status,
                PipelineExecutionStatus::Superseded
                    | PipelineExecutionStatus::Failed
                    | PipelineExecutionStatus::InProgress
            ),
            "{id}: {status:?}"
        );
    }
    for (stage, name) in STAGES.iter().enumerate() {
        if mode != ExecutionMode::Superseded {
            prop_assert_eq!(
                &run.entered[stage],
                &run.arrived[stage],
                "{} enters in arrival order",
                name
            );
        }
        let superseded = run.arrived[stage].len() - run.entered[stage].len();
        if mode == ExecutionMode::Superseded {
            // Whoever entered did so in arrival order too (overtaking happens only among waiters).
            let mut order = run.arrived[stage].clone();
            order.retain(|id| run.entered[stage].contains(id));
            prop_assert_eq!(&run.entered[stage], &order);
        } else {
            prop_assert_eq!(superseded, 0);
        }
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn the_engine_keeps_the_invariants_across_three_stages(steps in steps(), mode in prop_oneof![Just(ExecutionMode::Superseded), Just(ExecutionMode::Queued), Just(ExecutionMode::Parallel)]) {
        let rt = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
        if mode == ExecutionMode::Parallel {
            // No lock: every arrival enters at once.
            rt.block_on(async {
                let world = World::with_pipeline(support::three_stages("locked", mode)).await;
                let engine = world.engine();
                for n in 0..steps.len().min(5) {
                    let id = format!("00000000-0000-4000-8000-{n:012}");
                    world.run_source(&engine, "locked", &id, "v").await;
                    engine.enter_stage(&Run::ids(&id), "Build", &format!("t{n}"), 20.0).await.unwrap();
                    prop_assert_eq!(world.answer(&format!("t{n}")), Some(Ok(json!({}))));
                }
                Ok(())
            })?;
        } else {
            rt.block_on(run_engine(steps, mode))?;
        }
    }
}
