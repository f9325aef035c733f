//! An action's record fits its DynamoDB item (400 KB) whatever the action printed or exported:
//! JSON escaping grows a control character sixfold, so a 64 KB log tail alone could pass the
//! limit and fail the write. Over in-memory ports, through `complete_action`.

mod support;

use pipewright_core::declaration::ExecutionMode;
use pipewright_core::execution::{ActionExecution, ActionExecutionStatus, MAX_RECORD_BYTES};
use support::{three_stages, World};

const A: &str = "aaaaaaaa-0000-4000-8000-000000000001";

fn size(record: &ActionExecution) -> usize {
    serde_json::to_string(record).unwrap().len()
}

async fn complete(outcome: pipewright_core::engine::ActionOutcome) -> ActionExecution {
    let world = World::with_pipeline(three_stages("limits", ExecutionMode::Queued)).await;
    world.in_build("limits", A).await;
    let run = world
        .snapshot(A)
        .await
        .latest_action("Build", "Build")
        .unwrap()
        .clone();
    world
        .engine()
        .complete_action(&run, outcome, 30.0)
        .await
        .unwrap();
    world
        .snapshot(A)
        .await
        .latest_action("Build", "Build")
        .unwrap()
        .clone()
}

#[tokio::test]
async fn a_log_of_control_characters_is_cut_to_fit_and_keeps_its_end() {
    let mut outcome = support::success();
    let mut tail = "\u{1}".repeat(200_000);
    tail.push_str("the last line\n");
    outcome.log_tail = Some(tail);
    let record = complete(outcome).await;
    assert_eq!(record.status, ActionExecutionStatus::Succeeded);
    assert!(size(&record) <= MAX_RECORD_BYTES, "{}", size(&record));
    let kept = record.log_tail.unwrap();
    assert!(kept.ends_with("the last line\n"));
    assert!(
        kept.len() > 10_000,
        "only what does not fit is cut: {}",
        kept.len()
    );
}

#[tokio::test]
async fn output_variables_too_big_to_record_fail_the_action_and_say_so() {
    let mut outcome = support::success();
    outcome.log_tail = Some("done\n".into());
    outcome.output_variables = [("BLOB".to_string(), "\u{1}".repeat(100_000))].into();
    let record = complete(outcome).await;
    assert!(size(&record) <= MAX_RECORD_BYTES, "{}", size(&record));
    assert_eq!(record.status, ActionExecutionStatus::Failed);
    assert!(record.output.output_variables.is_empty());
    let message = record
        .output
        .execution_result
        .error_details
        .unwrap()
        .message;
    assert!(message.contains("output variables"), "{message}");
    assert!(message.contains(&MAX_RECORD_BYTES.to_string()), "{message}");
}

#[tokio::test]
async fn a_record_that_fits_is_kept_as_it_is() {
    let mut outcome = support::success();
    outcome.log_tail = Some("\u{1}".repeat(8 * 1024));
    outcome.output_variables = [("BUILD_ID".to_string(), "42".to_string())].into();
    let record = complete(outcome.clone()).await;
    assert_eq!(record.status, ActionExecutionStatus::Succeeded);
    assert_eq!(record.log_tail, outcome.log_tail);
    assert_eq!(record.output.output_variables, outcome.output_variables);
}

/// A recorded, completed action to vary.
fn recorded() -> &'static ActionExecution {
    static RECORD: std::sync::OnceLock<ActionExecution> = std::sync::OnceLock::new();
    RECORD.get_or_init(|| {
        tokio::runtime::Runtime::new()
            .unwrap()
            .block_on(complete(support::success()))
    })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig::with_cases(64))]

    /// Whatever the tail, message and variables hold, the record fits; what fitted is untouched.
    #[test]
    fn every_record_fits(
        tail in proptest::string::string_regex("[\\x00-\\x1f\"\\\\a-zé😀]{0,2000}").unwrap(),
        repeat in 0usize..400,
        variable in proptest::string::string_regex("[\\x00-\\x1fa]{0,200}").unwrap(),
        times in 0usize..700,
    ) {
        let mut record = recorded().clone();
        record.log_tail = Some(tail.repeat(repeat));
        record.output.output_variables = [("V".to_string(), variable.repeat(times))].into();
        let before = record.clone();
        record.fit(MAX_RECORD_BYTES);
        proptest::prop_assert!(size(&record) <= MAX_RECORD_BYTES, "{}", size(&record));
        if size(&before) <= MAX_RECORD_BYTES {
            proptest::prop_assert_eq!(&record, &before);
        } else if record.status == ActionExecutionStatus::Succeeded {
            proptest::prop_assert_eq!(&record.output, &before.output);
            let kept = record.log_tail.as_deref().unwrap_or_default();
            proptest::prop_assert!(before.log_tail.as_deref().unwrap_or_default().ends_with(kept));
        }
    }
}
