//! DeletePipeline with an engine: the pipeline leaves nothing behind that a pipeline created
//! later under the same name could inherit, and nothing that keeps running.
//!
//! 1. Every execution still `InProgress` or `Stopping` ends (through the abort path,
//!    [`Engine::abort_execution`]): running actions and stages end `Failed` with their events,
//!    their task tokens are failed, the execution ends `Failed` saying the pipeline was deleted,
//!    and it leaves every stage lock.
//! 2. The state machine of every version is deleted (Step Functions ends a run still going at
//!    its next transition; its execution has ended already).
//! 3. The pipeline's items in the executions table go: stage locks (with a disabled
//!    transition), latest-execution pointers, the execution list and poll state; a pipeline
//!    created later under the name starts with none of them. The execution records themselves
//!    stay until they expire, out of every listing.
//! 4. The declaration and its versions are deleted.
//!
//! Each step is repeatable: a DeletePipeline that failed midway is completed by the next one
//! (the declaration goes last, so the pipeline is still there to delete again).

use crate::engine::{Engine, EngineError, ExecutionIds};
use crate::execution::PipelineExecutionStatus;

/// How many of a pipeline's executions, newest first, a deletion looks at for ones still running
/// (running executions are recent: older ones ended or were superseded long ago).
pub const EXECUTIONS_LOOKED_AT: usize = 1_000;

impl Engine<'_> {
    /// Delete pipeline `name` and everything it runs (see the module docs). `Ok(false)` when
    /// there is no such pipeline.
    pub async fn delete_pipeline(&self, name: &str, now: f64) -> Result<bool, EngineError> {
        let Some(current) = self.pipelines.get(name, None).await? else {
            return Ok(false);
        };
        // 1. End what runs.
        let reason = format!("pipeline {name} was deleted");
        let summary = format!(
            "Pipeline {name} was deleted while this execution ran: its running actions and stages \
             were ended and its stages released."
        );
        let mut token: Option<String> = None;
        let mut looked_at = 0;
        while looked_at < EXECUTIONS_LOOKED_AT {
            let page = self
                .executions
                .list_executions(name, token.as_deref(), 100)
                .await?;
            looked_at += page.items.len();
            for execution in &page.items {
                if !matches!(
                    execution.status,
                    PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
                ) {
                    continue;
                }
                let ids = ExecutionIds {
                    pipeline_name: name.to_string(),
                    pipeline_version: execution.pipeline_version,
                    pipeline_execution_id: execution.pipeline_execution_id.clone(),
                };
                match self
                    .end_execution_as(&ids, &reason, &summary, None, now)
                    .await
                {
                    Ok(()) | Err(EngineError::ExecutionNotFound(_)) => {}
                    Err(e) => return Err(e),
                }
            }
            match page.next_token {
                Some(next) => token = Some(next),
                None => break,
            }
        }
        // 2. Its state machines, one per version that ran (or could have).
        for version in 1..=current.version() {
            self.delete_version_machine(name, version, true).await?;
        }
        // 3. What the executions table keeps about the pipeline as a whole.
        self.executions.forget_pipeline(name).await?;
        // 4. The declaration.
        Ok(self.pipelines.delete(name).await?)
    }
}
