//! Property tests: randomly generated valid pipelines validate, survive JSON
//! and YAML round trips, and losing an artifact's producer is always reported
//! at the consumer's exact path.

mod support;

use pipewright_core::{parse_pipeline, to_json_pretty, validate, PipelineDeclaration};
use proptest::prelude::*;
use support::generate::{build, pipeline_plan};

fn problem_lines(p: &PipelineDeclaration) -> Vec<String> {
    match validate(p) {
        Ok(()) => Vec::new(),
        Err(problems) => problems.iter().map(ToString::to_string).collect(),
    }
}

proptest! {
    #[test]
    fn generated_pipelines_are_valid(plan in pipeline_plan()) {
        let p = build(plan);
        prop_assert_eq!(problem_lines(&p), Vec::<String>::new());
    }

    #[test]
    fn generated_pipelines_survive_a_json_round_trip(plan in pipeline_plan()) {
        let p = build(plan);
        let again = parse_pipeline(&to_json_pretty(&p)).expect("reparses");
        prop_assert_eq!(&again, &p);
        prop_assert!(validate(&again).is_ok());
    }

    #[test]
    fn generated_pipelines_survive_a_yaml_round_trip(plan in pipeline_plan()) {
        let p = build(plan);
        let yaml = serde_yaml::to_string(&p).expect("yaml");
        let again = parse_pipeline(&yaml).expect("reparses");
        prop_assert_eq!(&again, &p);
    }

    #[test]
    fn removing_a_producer_is_reported_at_the_consumer(
        plan in pipeline_plan(),
        which in any::<prop::sample::Index>(),
    ) {
        let mut p = build(plan);
        // Every (stage, action, input index, artifact) consumption.
        let consumptions: Vec<(usize, usize, usize, String)> = p
            .actions()
            .flat_map(|(s, a, action)| {
                action
                    .input_artifacts()
                    .iter()
                    .enumerate()
                    .map(move |(i, input)| (s, a, i, input.name.clone()))
            })
            .collect();
        prop_assume!(!consumptions.is_empty());
        let (s, a, i, artifact) = consumptions[which.index(consumptions.len())].clone();
        let (ps, pa) = p
            .actions()
            .find(|(_, _, action)| action.output_artifacts().iter().any(|o| o.name == artifact))
            .map(|(ps, pa, _)| (ps, pa))
            .expect("every consumed artifact has a producer");
        p.stages[ps].actions.remove(pa);
        // The consumer shifts left when its producer sat before it in the same stage.
        let a = if ps == s && pa < a { a - 1 } else { a };
        let path = format!("stages[{s}].actions[{a}].inputArtifacts[{i}].name");
        let expected = format!("{path}: artifact `{artifact}` is not produced by any action");
        let lines = problem_lines(&p);
        prop_assert!(lines.contains(&expected), "{expected} not in {lines:#?}");
    }
}
