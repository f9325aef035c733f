//! The CodePipeline-shaped events written with each record (pipeline, stage and action state
//! changes).

use std::collections::BTreeMap;

use crate::events::{
    self, ActionState, ArtifactRef, EventEntry, ExecutionRef, PipelineState, StageState,
};
use crate::execution::{ActionExecution, ArtifactDetail, PipelineExecution, StageExecution};

use super::Engine;

impl Engine<'_> {
    fn execution_ref(&self, execution: &PipelineExecution, attempt: u32) -> ExecutionRef {
        ExecutionRef {
            pipeline_arn: events::pipeline_arn(
                &self.config.region,
                &self.config.account_id,
                &execution.pipeline_name,
            ),
            pipeline: execution.pipeline_name.clone(),
            pipeline_version: execution.pipeline_version,
            execution_id: execution.pipeline_execution_id.clone(),
            attempt,
        }
    }

    pub(crate) fn pipeline_event(
        &self,
        execution: &PipelineExecution,
        state: PipelineState,
    ) -> EventEntry {
        events::pipeline_event(&events::PipelineEventInput {
            execution: self.execution_ref(execution, 1),
            state,
            start_time: Some(events::format_time_millis(execution.start_time)),
            trigger: Some(events::ExecutionTrigger {
                trigger_type: execution.trigger.trigger_type,
                trigger_detail: Some(execution.trigger.trigger_detail.clone())
                    .filter(|d| !d.is_empty()),
                git: BTreeMap::new(),
            }),
            stop_comments: execution
                .stop_reason
                .clone()
                .filter(|_| matches!(state, PipelineState::Stopping | PipelineState::Stopped)),
        })
        .at(execution.last_update_time)
    }

    pub(crate) fn stage_event(
        &self,
        execution: &PipelineExecution,
        stage: &StageExecution,
        state: StageState,
    ) -> EventEntry {
        events::stage_event(&events::StageEventInput {
            execution: self.execution_ref(execution, stage.attempt),
            stage: stage.stage_name.clone(),
            state,
            start_time: Some(events::format_time_millis(execution.start_time)),
            // A retried attempt began when it was retried.
            last_retry_time: stage
                .retry_trigger
                .is_some()
                .then(|| events::format_time_millis(stage.start_time)),
        })
        .at(stage.last_update_time)
    }

    pub(crate) fn action_event(
        &self,
        execution: &PipelineExecution,
        action: &ActionExecution,
        state: ActionState,
    ) -> EventEntry {
        let refs = |details: &[ArtifactDetail]| {
            details
                .iter()
                .map(|d| ArtifactRef {
                    name: d.name.clone(),
                    bucket: d.s3_location.bucket.clone(),
                    key: d.s3_location.key.clone(),
                })
                .collect()
        };
        let result = &action.output.execution_result;
        let ended = state != ActionState::Started;
        events::action_event(&events::ActionEventInput {
            execution: self.execution_ref(execution, action.attempt),
            stage: action.stage_name.clone(),
            action: action.action_name.clone(),
            action_execution_id: action.action_execution_id.clone(),
            state,
            region: action
                .input
                .region
                .clone()
                .unwrap_or_else(|| self.config.region.clone()),
            action_type: action.input.action_type_id.clone(),
            start_time: Some(events::format_time_millis(action.start_time)),
            input_artifacts: if ended {
                Vec::new()
            } else {
                refs(&action.input.input_artifacts)
            },
            output_artifacts: if state == ActionState::Succeeded {
                refs(&action.output.output_artifacts)
            } else {
                Vec::new()
            },
            result: ended.then(|| events::ExecutionResult {
                external_execution_url: result.external_execution_url.clone(),
                external_execution_summary: result
                    .external_execution_summary
                    .clone()
                    .or_else(|| result.error_details.as_ref().map(|e| e.message.clone())),
                external_execution_id: result.external_execution_id.clone(),
                error_code: result.error_details.as_ref().map(|e| e.code.to_string()),
            }),
        })
        .at(action.last_update_time)
    }
}
