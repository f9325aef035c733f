//! Who produces what, and when: the point in an execution at which each
//! action runs or each stage condition is checked, the first producer of
//! every artifact and namespace, and why a producer's output is not
//! available to a reader.

use std::cmp::Ordering;
use std::collections::HashMap;

use super::action_path;
use crate::declaration::{ActionDeclaration, PipelineDeclaration};

/// A point in a pipeline execution: a stage and a slot inside it. Slot 0 is
/// the stage's entry, `runOrder + 1` an action group, `u64::MAX` its exit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) struct When {
    stage: usize,
    slot: u64,
}

impl When {
    pub(super) fn action(stage: usize, action: &ActionDeclaration) -> When {
        When {
            stage,
            slot: u64::from(action.run_order()) + 1,
        }
    }

    pub(super) fn stage_entry(stage: usize) -> When {
        When { stage, slot: 0 }
    }

    pub(super) fn stage_exit(stage: usize) -> When {
        When {
            stage,
            slot: u64::MAX,
        }
    }
}

/// An action that produces an artifact or declares a namespace.
#[derive(Debug, Clone, Copy)]
pub(super) struct Producer<'a> {
    pub(super) stage: usize,
    pub(super) action: usize,
    name: &'a str,
    run_order: u32,
    when: When,
}

impl Producer<'_> {
    /// "`Build` (stages[1].actions[0])".
    pub(super) fn describe(&self) -> String {
        format!("`{}` ({})", self.name, action_path(self.stage, self.action))
    }
}

/// Who reads an artifact or a variable: an action, or a stage condition.
#[derive(Debug, Clone, Copy)]
pub(super) struct Consumer {
    pub(super) when: When,
    /// The reading action's (stage, action) indices; `None` for a condition.
    pub(super) action: Option<(usize, usize)>,
}

/// Why a producer's output is not available to a consumer.
pub(super) fn unavailable_because(producer: &Producer, consumer: &Consumer) -> Option<String> {
    if consumer.action == Some((producer.stage, producer.action)) {
        return Some("this same action".to_owned());
    }
    match producer.when.cmp(&consumer.when) {
        Ordering::Less => None,
        Ordering::Equal => Some(format!(
            "{}, which runs in the same action group (runOrder {}); it must run in an earlier stage or at a lower runOrder",
            producer.describe(),
            producer.run_order
        )),
        Ordering::Greater => Some(if consumer.action.is_some() {
            format!("{}, which runs after this action", producer.describe())
        } else {
            format!(
                "{}, which has not run when this condition is checked",
                producer.describe()
            )
        }),
    }
}

/// The first producer of every output artifact and of every namespace.
pub(super) struct Index<'a> {
    pub(super) artifacts: HashMap<&'a str, Producer<'a>>,
    pub(super) namespaces: HashMap<&'a str, Producer<'a>>,
}

impl<'a> Index<'a> {
    pub(super) fn build(pipeline: &'a PipelineDeclaration) -> Index<'a> {
        let mut artifacts = HashMap::new();
        let mut namespaces = HashMap::new();
        for (s, a, action) in pipeline.actions() {
            let producer = Producer {
                stage: s,
                action: a,
                name: &action.name,
                run_order: action.run_order(),
                when: When::action(s, action),
            };
            for output in action.output_artifacts() {
                artifacts.entry(output.name.as_str()).or_insert(producer);
            }
            if let Some(ns) = &action.namespace {
                namespaces.entry(ns.as_str()).or_insert(producer);
            }
        }
        Index {
            artifacts,
            namespaces,
        }
    }
}
