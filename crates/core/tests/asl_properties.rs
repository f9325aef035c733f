//! Property tests of the ASL compiler: for random valid pipelines, with
//! stage and action names drawn from a pool of awkward ones (too long,
//! clashing with the names of a stage's own states or with index forms),
//! the definition passes every structural check of `support::asl`.

mod support;

use std::collections::BTreeSet;

use pipewright_core::asl::{compile, state_machine_name, AslTargets};
use pipewright_core::PipelineDeclaration;
use proptest::prelude::*;
use support::generate::{build, pipeline_plan};

/// Stage names that read like other states' names, or are too long.
fn stage_pool() -> Vec<String> {
    let mut pool: Vec<String> = [
        "Build",
        "Build.Group1",
        "S1",
        "S2",
        "S3",
        "S1.A1",
        "a.b",
        "Enter",
        "Stage1.Act1_0",
    ]
    .map(str::to_owned)
    .to_vec();
    pool.push("L".repeat(100));
    pool.push("M".repeat(70));
    pool.push("N".repeat(62));
    pool
}

/// Action names that read like a stage's own states, index forms, each
/// other's `.Failed`, or are too long.
fn action_pool() -> Vec<String> {
    let mut pool: Vec<String> = [
        "Enter",
        "Leave",
        "Failed",
        "Group1",
        "Group1.Check",
        "Group2.Outcome",
        "A1",
        "A2",
        "X",
        "X.Failed",
        "Enter.Failed",
        "Src0",
        "Group1.Src0",
    ]
    .map(str::to_owned)
    .to_vec();
    pool.push("a".repeat(73));
    pool.push("b".repeat(100));
    pool
}

/// Renames stages and actions from the pools (keeping names unique where
/// CodePipeline requires it) and sets some timeouts.
fn rename(
    mut p: PipelineDeclaration,
    stage_picks: &[Option<usize>],
    action_picks: &ActionPicks,
) -> PipelineDeclaration {
    let stages = stage_pool();
    let actions = action_pool();
    let mut stage_names: BTreeSet<String> = p.stages.iter().map(|s| s.name.clone()).collect();
    for (i, stage) in p.stages.iter_mut().enumerate() {
        if let Some(pick) = stage_picks.get(i).copied().flatten() {
            let name = &stages[pick % stages.len()];
            if stage_names.insert(name.clone()) {
                stage.name = name.clone();
            }
        }
        let mut action_names: BTreeSet<String> =
            stage.actions.iter().map(|a| a.name.clone()).collect();
        let picks = action_picks.get(i).map(Vec::as_slice).unwrap_or_default();
        for (j, action) in stage.actions.iter_mut().enumerate() {
            let Some((pick, timeout)) = picks.get(j) else {
                continue;
            };
            if let Some(pick) = pick {
                let name = &actions[pick % actions.len()];
                if action_names.insert(name.clone()) {
                    action.name = name.clone();
                }
            }
            if timeout.is_some() {
                action.timeout_in_minutes = *timeout;
            }
        }
    }
    p
}

fn targets() -> AslTargets {
    AslTargets {
        orchestrator_arn: "arn:aws:lambda:eu-west-1:111122223333:function:orchestrator".into(),
        action_arn: "arn:aws:lambda:eu-west-1:111122223333:function:action".into(),
        approval_arn: "arn:aws:lambda:eu-west-1:111122223333:function:approval".into(),
        action_timeout_cap_seconds: None,
    }
}

/// Per action: an optional pick from [`action_pool`] and an optional timeout.
type ActionPicks = Vec<Vec<(Option<usize>, Option<u32>)>>;

/// Per stage, an optional pick from [`stage_pool`]; per action, see [`ActionPicks`].
fn picks() -> impl Strategy<Value = (Vec<Option<usize>>, ActionPicks)> {
    (
        prop::collection::vec(prop::option::of(0usize..100), 6),
        prop::collection::vec(
            prop::collection::vec(
                (prop::option::of(0usize..100), prop::option::of(5u32..=600)),
                5,
            ),
            6,
        ),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn generated_pipelines_compile_to_sound_definitions(plan in pipeline_plan()) {
        let p = build(plan);
        let asl = compile(&p, &targets());
        let problems = support::asl::problems(&p, &asl);
        prop_assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn awkward_names_still_give_sound_definitions(
        plan in pipeline_plan(),
        (stage_picks, action_picks) in picks(),
    ) {
        let p = rename(build(plan), &stage_picks, &action_picks);
        let asl = compile(&p, &targets());
        let problems = support::asl::problems(&p, &asl);
        prop_assert!(problems.is_empty(), "{}\n{:#}", problems.join("\n"), asl);
        prop_assert_eq!(&asl, &compile(&p, &targets()));
    }

    #[test]
    fn state_machine_names_fit_and_differ(
        a in "[A-Za-z0-9.@_-]{1,100}",
        b in "[A-Za-z0-9.@_-]{1,100}",
        version in 1u32..,
    ) {
        let name = state_machine_name(&a, version);
        prop_assert!(name.len() <= 80, "{}", name);
        prop_assert!(name.starts_with("pipewright-"), "{}", name);
        let version_suffix = format!("-v{version}");
        prop_assert!(name.ends_with(&version_suffix), "{}", name);
        prop_assert!(
            name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'),
            "{}",
            name
        );
        prop_assert_eq!(&name, &state_machine_name(&a, version));
        if a != b {
            prop_assert_ne!(name, state_machine_name(&b, version));
        }
    }
}
