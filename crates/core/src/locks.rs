//! Stage locks: how executions share a stage under the pipeline's execution mode, as a pure
//! decision over the lock's recorded state.
//!
//! One lock per pipeline stage (the DynamoDB item `PIPELINE#<name>` / `LOCK#<stage>`, replaced
//! only by a conditional write on its `version`). An execution *arrives* in front of a stage
//! (its `enterStage` task, whose task token is parked in the lock while it waits) and *releases*
//! the stage when it leaves it (success or failure), when it is stopped, or when it ends.
//!
//! - `SUPERSEDED`: the stage holds one execution; at most one waits in front of it. A newer
//!   execution arriving replaces the waiting one, which ends `Superseded`; if the one arriving is
//!   the older of the two, it is the one superseded. An execution inside the stage is never
//!   superseded. On release, the waiting execution enters.
//! - `QUEUED`: the stage holds one execution; the others wait in arrival order and enter one by
//!   one; none is superseded.
//! - `PARALLEL`: executions do not hold the stage; they enter at once.
//!
//! A disabled inbound transition (DisableStageTransition) holds every arriving execution in
//! front of the stage, whatever the mode (in `SUPERSEDED` mode the waiter can be superseded as
//! usual); the execution inside finishes; enabling the transition lets the waiters go on
//! (`PARALLEL` waiters all at once, the others one at a time as the stage frees).
//!
//! Invariants (checked by the property tests in `tests/lock_properties.rs`):
//! 1. at most one execution holds the stage;
//! 2. no execution waits while the stage is free and its transition enabled (a free stage
//!    admits at once);
//! 3. `SUPERSEDED`: at most one waiter, and only waiters are ever superseded;
//! 4. `QUEUED`: executions enter in arrival order, and none is superseded;
//! 5. each arrival ends exactly once as entered, superseded or refused (a repeated arrival of
//!    the same execution only refreshes its task token);
//! 6. at most [`MAX_WAITING`] executions wait: one arriving at a full queue is refused.
//!
//! Executions keep the mode they started with (UpdatePipeline changes it for new executions
//! only): the mode of the *arriving* execution decides how it queues, and a `PARALLEL` waiter
//! (held by a disabled transition) is marked so that it never takes the stage as holder.
//! An UpdatePipeline that changes the stages cancels executions of the older structure as their
//! turn comes (the engine's admission, not this decision, checks that): the turn passes on as if
//! they had stopped.

use serde::{Deserialize, Serialize};
use serde_with::skip_serializing_none;

use crate::declaration::ExecutionMode;

/// An execution waiting in front of the stage.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Waiter {
    /// The pipeline execution.
    pub pipeline_execution_id: String,
    /// Its `enterStage` task token: answered when it enters, failed when it is superseded.
    pub task_token: String,
    /// When the execution started (seconds since the epoch): the newer of two waiters wins.
    pub started: f64,
    /// When it arrived in front of the stage.
    pub arrived: f64,
    /// It runs in `PARALLEL` mode (it waits only for a disabled transition).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub parallel: bool,
}

/// A waiter superseded by a newer execution.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Superseded {
    /// The superseded execution.
    pub pipeline_execution_id: String,
    /// Its `enterStage` task token, to fail.
    pub task_token: String,
    /// The newer execution that took its place.
    pub by: String,
}

/// A disabled inbound transition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Disabled {
    /// Why (DisableStageTransition's `reason`).
    pub reason: String,
    /// Who disabled it.
    pub by: String,
    /// When, seconds since the epoch.
    pub at: f64,
}

/// A stage's lock, as recorded.
#[skip_serializing_none]
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StageLock {
    /// The execution in the stage.
    #[serde(default)]
    pub holder: Option<String>,
    /// The `enterStage` task token the holder was given the stage with: kept so that an
    /// admission that failed after the lock was written (the token never answered) can be done
    /// again by whoever reads the lock next ([`StageLock::pending_entry`]).
    #[serde(default)]
    pub holder_token: Option<String>,
    /// Executions waiting in front of it, first to enter first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waiting: Vec<Waiter>,
    /// Set while the stage's inbound transition is disabled.
    #[serde(default)]
    pub disabled: Option<Disabled>,
    /// Waiters superseded whose supersession (their execution ended `Superseded`, their token
    /// failed) is not known to be done: kept until it is ([`StageLock::superseded_done`]), so a
    /// supersession that failed midway is done again by whoever reads the lock next.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub superseded: Vec<Superseded>,
    /// The last time the transition was enabled or disabled, and by whom.
    #[serde(default)]
    pub last_changed: Option<(String, f64)>,
}

/// What must happen after a lock change is recorded.
#[derive(Debug, Clone, PartialEq)]
pub enum Effect {
    /// The execution enters the stage: answer its token.
    Enter {
        /// The execution.
        pipeline_execution_id: String,
        /// Its `enterStage` task token.
        task_token: String,
    },
    /// The execution ends `Superseded` by `by`: fail its token.
    Supersede {
        /// The execution.
        pipeline_execution_id: String,
        /// Its `enterStage` task token.
        task_token: String,
        /// The newer execution that took its place.
        by: String,
    },
    /// The queue in front of the stage is full ([`MAX_WAITING`]): the arriving execution ends
    /// `Failed` and its token is failed; the lock is unchanged.
    Refuse {
        /// The execution.
        pipeline_execution_id: String,
        /// Its `enterStage` task token.
        task_token: String,
    },
}

/// The most executions that wait in front of one stage (`QUEUED` executions, and any waiting
/// for a disabled transition). Each parks its task token in the lock item, which DynamoDB caps at
/// 400 KB: 100 waiters of Step Functions' longest tokens (2 KB) stay far below. An execution
/// arriving at a full queue fails ([`Effect::Refuse`]).
pub const MAX_WAITING: usize = 100;

impl StageLock {
    /// True when no execution holds or waits for the stage.
    pub fn is_idle(&self) -> bool {
        self.holder.is_none() && self.waiting.is_empty() && self.superseded.is_empty()
    }

    /// `arrival` comes to the stage under `mode`: the new lock and what to do.
    pub fn arrive(&self, mut arrival: Waiter, mode: ExecutionMode) -> (StageLock, Vec<Effect>) {
        let mut next = self.clone();
        let id = arrival.pipeline_execution_id.clone();
        arrival.parallel = mode == ExecutionMode::Parallel;
        if arrival.parallel && next.disabled.is_none() {
            if let Some(w) = next
                .waiting
                .iter()
                .position(|w| w.pipeline_execution_id == id)
            {
                next.waiting.remove(w);
            }
            return (
                next,
                vec![Effect::Enter {
                    pipeline_execution_id: id,
                    task_token: arrival.task_token,
                }],
            );
        }
        // The same execution again (a retried task): it holds the stage, or refreshes its token.
        if next.holder.as_deref() == Some(id.as_str()) {
            next.holder_token = Some(arrival.task_token.clone());
            return (
                next,
                vec![Effect::Enter {
                    pipeline_execution_id: id,
                    task_token: arrival.task_token,
                }],
            );
        }
        if let Some(w) = next
            .waiting
            .iter_mut()
            .find(|w| w.pipeline_execution_id == id)
        {
            w.task_token = arrival.task_token;
            return (next, Vec::new());
        }
        if next.holder.is_none() && next.waiting.is_empty() && next.disabled.is_none() {
            next.holder = Some(id.clone());
            next.holder_token = Some(arrival.task_token.clone());
            return (
                next,
                vec![Effect::Enter {
                    pipeline_execution_id: id,
                    task_token: arrival.task_token,
                }],
            );
        }
        match mode {
            ExecutionMode::Queued | ExecutionMode::Parallel
                if next.waiting.len() >= MAX_WAITING =>
            {
                (
                    self.clone(),
                    vec![Effect::Refuse {
                        pipeline_execution_id: id,
                        task_token: arrival.task_token,
                    }],
                )
            }
            ExecutionMode::Queued | ExecutionMode::Parallel => {
                next.waiting.push(arrival);
                (next, Vec::new())
            }
            ExecutionMode::Superseded => {
                let mut effects = Vec::new();
                // Keep the newest of the waiters and the arrival; supersede the others.
                let mut candidates = std::mem::take(&mut next.waiting);
                candidates.push(arrival);
                let newest = candidates
                    .iter()
                    .enumerate()
                    .max_by(|(i, a), (j, b)| {
                        a.started
                            .total_cmp(&b.started)
                            .then(a.arrived.total_cmp(&b.arrived))
                            .then(i.cmp(j))
                    })
                    .map(|(i, _)| i)
                    .unwrap_or(0);
                let keep = candidates.remove(newest);
                for w in candidates {
                    next.superseded.push(Superseded {
                        pipeline_execution_id: w.pipeline_execution_id.clone(),
                        task_token: w.task_token.clone(),
                        by: keep.pipeline_execution_id.clone(),
                    });
                    effects.push(Effect::Supersede {
                        pipeline_execution_id: w.pipeline_execution_id,
                        task_token: w.task_token,
                        by: keep.pipeline_execution_id.clone(),
                    });
                }
                next.waiting = vec![keep];
                (next, effects)
            }
        }
    }

    /// `pipeline_execution_id` leaves the stage, or stops waiting for it (stopped, ended):
    /// the next waiter enters. Releasing an execution the lock does not know changes nothing.
    pub fn release(&self, pipeline_execution_id: &str) -> (StageLock, Vec<Effect>) {
        let mut next = self.clone();
        if next.holder.as_deref() == Some(pipeline_execution_id) {
            next.holder = None;
            next.holder_token = None;
        } else {
            next.waiting
                .retain(|w| w.pipeline_execution_id != pipeline_execution_id);
        }
        let effects = next.admit_waiters();
        (next, effects)
    }

    /// Disable the inbound transition: arrivals wait from now on; the execution inside (if any)
    /// goes on.
    pub fn disable(&self, reason: &str, by: &str, at: f64) -> (StageLock, Vec<Effect>) {
        let mut next = self.clone();
        next.disabled = Some(Disabled {
            reason: reason.to_string(),
            by: by.to_string(),
            at,
        });
        next.last_changed = Some((by.to_string(), at));
        (next, Vec::new())
    }

    /// Enable the inbound transition: the waiters go on as the mode allows.
    pub fn enable(&self, by: &str, at: f64) -> (StageLock, Vec<Effect>) {
        let mut next = self.clone();
        if next.disabled.take().is_some() {
            next.last_changed = Some((by.to_string(), at));
        }
        let effects = next.admit_waiters();
        (next, effects)
    }

    /// While the transition is enabled: every `PARALLEL` waiter enters, then the first other
    /// waiter takes the stage if it is free.
    fn admit_waiters(&mut self) -> Vec<Effect> {
        let mut effects = Vec::new();
        if self.disabled.is_some() {
            return effects;
        }
        let (parallel, queued): (Vec<Waiter>, Vec<Waiter>) = std::mem::take(&mut self.waiting)
            .into_iter()
            .partition(|w| w.parallel);
        self.waiting = queued;
        for w in parallel {
            effects.push(Effect::Enter {
                pipeline_execution_id: w.pipeline_execution_id,
                task_token: w.task_token,
            });
        }
        if self.holder.is_none() && !self.waiting.is_empty() {
            let first = self.waiting.remove(0);
            self.holder = Some(first.pipeline_execution_id.clone());
            self.holder_token = Some(first.task_token.clone());
            effects.push(Effect::Enter {
                pipeline_execution_id: first.pipeline_execution_id,
                task_token: first.task_token,
            });
        }
        effects
    }

    /// The supersession of `pipeline_execution_id` is done: forget it.
    pub fn superseded_done(&self, pipeline_execution_id: &str) -> (StageLock, Vec<Effect>) {
        let mut next = self.clone();
        next.superseded
            .retain(|s| s.pipeline_execution_id != pipeline_execution_id);
        (next, Vec::new())
    }

    /// The holder and the token it was given the stage with, when both are known: its
    /// admission may still be pending (the engine checks the holder's records).
    pub fn pending_entry(&self) -> Option<(&str, &str)> {
        Some((self.holder.as_deref()?, self.holder_token.as_deref()?))
    }

    /// The waiter `pipeline_execution_id`, if it waits.
    pub fn waiter(&self, pipeline_execution_id: &str) -> Option<&Waiter> {
        self.waiting
            .iter()
            .find(|w| w.pipeline_execution_id == pipeline_execution_id)
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_full_queue_refuses_the_next_arrival_and_stays_as_it_was() {
        let waiter = |n: usize| Waiter {
            pipeline_execution_id: format!("e{n}"),
            task_token: format!("t{n}"),
            started: n as f64,
            arrived: n as f64,
            parallel: false,
        };
        let mut lock = StageLock {
            holder: Some("e0".into()),
            ..Default::default()
        };
        for n in 1..=MAX_WAITING {
            let (next, effects) = lock.arrive(waiter(n), ExecutionMode::Queued);
            assert!(effects.is_empty());
            lock = next;
        }
        assert_eq!(lock.waiting.len(), MAX_WAITING);
        let (next, effects) = lock.arrive(waiter(MAX_WAITING + 1), ExecutionMode::Queued);
        assert_eq!(next, lock);
        assert_eq!(
            effects,
            [Effect::Refuse {
                pipeline_execution_id: format!("e{}", MAX_WAITING + 1),
                task_token: format!("t{}", MAX_WAITING + 1),
            }]
        );
        // A waiter already in the queue only refreshes its token, full or not.
        let mut again = waiter(1);
        again.task_token = "t1+".into();
        let (next, effects) = lock.arrive(again, ExecutionMode::Queued);
        assert!(effects.is_empty());
        assert_eq!(next.waiting[0].task_token, "t1+");
        // Once one enters, there is room again.
        let (freed, _) = lock.release("e0");
        let (_, effects) = freed.arrive(waiter(MAX_WAITING + 1), ExecutionMode::Queued);
        assert!(effects.is_empty());
    }

    use super::*;

    fn w(id: &str, started: f64) -> Waiter {
        Waiter {
            pipeline_execution_id: id.into(),
            task_token: format!("t-{id}"),
            started,
            arrived: started,
            parallel: false,
        }
    }

    fn entered(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Enter {
                    pipeline_execution_id,
                    ..
                } => Some(pipeline_execution_id.as_str()),
                _ => None,
            })
            .collect()
    }

    fn superseded(effects: &[Effect]) -> Vec<&str> {
        effects
            .iter()
            .filter_map(|e| match e {
                Effect::Supersede {
                    pipeline_execution_id,
                    ..
                } => Some(pipeline_execution_id.as_str()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn a_free_stage_admits_at_once() {
        let (lock, fx) = StageLock::default().arrive(w("a", 1.0), ExecutionMode::Superseded);
        assert_eq!(lock.holder.as_deref(), Some("a"));
        assert_eq!(entered(&fx), ["a"]);
    }

    #[test]
    fn superseded_keeps_only_the_newest_waiter_and_never_the_holder() {
        let m = ExecutionMode::Superseded;
        let (lock, _) = StageLock::default().arrive(w("a", 1.0), m);
        let (lock, fx) = lock.arrive(w("b", 2.0), m);
        assert!(fx.is_empty());
        let (lock, fx) = lock.arrive(w("c", 3.0), m);
        assert_eq!(superseded(&fx), ["b"]);
        assert_eq!(lock.holder.as_deref(), Some("a"));
        assert_eq!(lock.waiting.len(), 1);
        // An older execution arriving late is the one superseded.
        let (lock, fx) = lock.arrive(w("old", 0.5), m);
        assert_eq!(superseded(&fx), ["old"]);
        assert_eq!(lock.waiting[0].pipeline_execution_id, "c");
        let (lock, fx) = lock.release("a");
        assert_eq!(entered(&fx), ["c"]);
        assert_eq!(lock.holder.as_deref(), Some("c"));
        assert!(lock.waiting.is_empty());
    }

    #[test]
    fn queued_admits_in_arrival_order() {
        let m = ExecutionMode::Queued;
        let mut lock = StageLock::default();
        for (i, id) in ["a", "b", "c"].iter().enumerate() {
            let (next, fx) = lock.arrive(w(id, i as f64), m);
            assert!(superseded(&fx).is_empty());
            lock = next;
        }
        let (lock, fx) = lock.release("a");
        assert_eq!(entered(&fx), ["b"]);
        let (lock, fx) = lock.release("b");
        assert_eq!(entered(&fx), ["c"]);
        let (lock, fx) = lock.release("c");
        assert!(fx.is_empty());
        assert!(lock.is_idle());
    }

    #[test]
    fn a_repeated_arrival_refreshes_the_token_and_a_stray_release_changes_nothing() {
        let m = ExecutionMode::Queued;
        let (lock, _) = StageLock::default().arrive(w("a", 1.0), m);
        let (lock, _) = lock.arrive(w("b", 2.0), m);
        let mut again = w("b", 2.0);
        again.task_token = "t-b2".into();
        let (lock, fx) = lock.arrive(again, m);
        assert!(fx.is_empty());
        assert_eq!(lock.waiting.len(), 1);
        assert_eq!(lock.waiting[0].task_token, "t-b2");
        let (same, fx) = lock.release("nobody");
        assert_eq!(same, lock);
        assert!(fx.is_empty());
        // The holder arriving again enters again (its new token is answered).
        let (same, fx) = lock.arrive(w("a", 1.0), m);
        assert_eq!(same, lock);
        assert_eq!(entered(&fx), ["a"]);
    }

    #[test]
    fn a_disabled_transition_holds_arrivals_until_it_is_enabled() {
        let m = ExecutionMode::Superseded;
        let (lock, _) = StageLock::default().arrive(w("a", 1.0), m);
        let (lock, _) = lock.disable("freeze", "ops", 2.0);
        let (lock, fx) = lock.release("a");
        assert!(fx.is_empty());
        let (lock, fx) = lock.arrive(w("b", 3.0), m);
        assert!(fx.is_empty(), "{fx:?}");
        let (lock, fx) = lock.arrive(w("c", 4.0), m);
        assert_eq!(superseded(&fx), ["b"]);
        let (lock, fx) = lock.enable("ops", 5.0);
        assert_eq!(entered(&fx), ["c"]);
        assert_eq!(lock.holder.as_deref(), Some("c"));
        assert_eq!(lock.last_changed, Some(("ops".into(), 5.0)));
        // PARALLEL executions wait for the transition too, then all go.
        let (lock, _) = StageLock::default().disable("freeze", "ops", 1.0);
        let (lock, fx) = lock.arrive(w("p", 1.0), ExecutionMode::Parallel);
        assert!(fx.is_empty());
        let (lock, _) = lock.arrive(w("q", 2.0), ExecutionMode::Parallel);
        let (lock, fx) = lock.enable("ops", 3.0);
        assert_eq!(entered(&fx), ["p", "q"]);
        assert!(lock.is_idle());
        let (_, fx) = lock.arrive(w("r", 4.0), ExecutionMode::Parallel);
        assert_eq!(entered(&fx), ["r"]);
    }

    #[test]
    fn a_waiter_that_stops_waiting_leaves_the_queue() {
        let m = ExecutionMode::Queued;
        let (lock, _) = StageLock::default().arrive(w("a", 1.0), m);
        let (lock, _) = lock.arrive(w("b", 2.0), m);
        let (lock, _) = lock.arrive(w("c", 3.0), m);
        let (lock, fx) = lock.release("b");
        assert!(fx.is_empty());
        let (_, fx) = lock.release("a");
        assert_eq!(entered(&fx), ["c"]);
    }
}
