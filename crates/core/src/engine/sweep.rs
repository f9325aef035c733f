//! The engine's side of the periodic sweep ([`crate::sweep`] says what it repairs and why).

use crate::engine::{Engine, EngineError};
use crate::execution::PipelineExecutionStatus;
use crate::sweep::*;

impl Engine<'_> {
    /// A scheduled sweep (`{"sweep": {}}`): [`Engine::sweep`], unless another one was claimed
    /// less than [`SWEEP_INTERVAL_SECONDS`] ago. `{"sweep": {"now": true}}` always sweeps.
    pub async fn scheduled_sweep(&self, now: f64, force: bool) -> Result<Swept, EngineError> {
        self.scheduled_sweep_of(now, force, None).await
    }

    /// [`Engine::scheduled_sweep`], of pipeline `only` alone when given
    /// (`{"sweep": {"now": true, "pipeline": NAME}}`).
    pub async fn scheduled_sweep_of(
        &self,
        now: f64,
        force: bool,
        only: Option<&str>,
    ) -> Result<Swept, EngineError> {
        if !force
            && !self
                .executions
                .claim_sweep(now, SWEEP_INTERVAL_SECONDS)
                .await?
        {
            return Ok(Swept {
                skipped: true,
                ..Default::default()
            });
        }
        self.sweep_pipelines(now, only).await
    }

    /// One sweep over every pipeline's recent executions (see the module docs).
    pub async fn sweep(&self, now: f64) -> Result<Swept, EngineError> {
        self.sweep_pipelines(now, None).await
    }

    /// [`Engine::sweep`] of every pipeline, or of pipeline `only`.
    async fn sweep_pipelines(&self, now: f64, only: Option<&str>) -> Result<Swept, EngineError> {
        let mut swept = Swept::default();
        let mut asked = 0;
        let began = std::time::Instant::now();
        let pipelines = match only {
            Some(name) => self.pipelines.get(name, None).await?.into_iter().collect(),
            None => crate::store::all_pipelines(self.pipelines).await?,
        };
        let seed = (now * 1000.0) as u64;
        let order: Vec<usize> = crate::sweep::sweep_order(pipelines.len(), seed).collect();
        for (visited, index) in order.into_iter().enumerate() {
            if began.elapsed().as_secs_f64() > SWEEP_BUDGET_SECONDS {
                swept.unswept = pipelines.len() - visited;
                break;
            }
            let pipeline = &pipelines[index];
            let name = &pipeline.declaration.name;
            for stage in &pipeline.declaration.stages {
                if let Err(e) = self.sweep_lock(name, &stage.name, now).await {
                    swept
                        .problems
                        .push(format!("{name}/{}: the stage lock: {e}", stage.name));
                }
            }
            let page = self
                .executions
                .list_executions(name, None, SWEEP_EXECUTIONS_PER_PIPELINE)
                .await?;
            let idle = idle_old_versions(pipeline.version(), &page.items);
            for version in idle {
                match self.delete_version_machine(name, version, false).await {
                    Ok(Some(machine)) => swept.machines_deleted.push(machine),
                    Ok(None) => {}
                    Err(e) => swept
                        .problems
                        .push(format!("{name} version {version}: its state machine: {e}")),
                }
            }
            for execution in page.items {
                if !matches!(
                    execution.status,
                    PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
                ) {
                    continue;
                }
                swept.in_progress += 1;
                let id = execution.pipeline_execution_id.clone();
                let Some(run) = execution.state_machine_execution_arn.clone() else {
                    if now - execution.start_time >= LAUNCH_GRACE_SECONDS {
                        match self.resume_launch(&id).await {
                            Ok(()) => swept.resumed.push(id),
                            Err(e) => swept.problems.push(format!("{id}: resuming: {e}")),
                        }
                    }
                    continue;
                };
                if asked >= MAX_RUNS_PER_SWEEP {
                    continue;
                }
                asked += 1;
                let status = match self.machines.run_status(&run).await {
                    Ok(status) => status,
                    Err(e) => {
                        swept.problems.push(format!("{id}: {e}"));
                        continue;
                    }
                };
                let Some(ended) = ended_run(&execution, &run, status) else {
                    continue;
                };
                match self.reconcile_run(&ended, now).await {
                    Ok(true) => swept.reconciled.push(id),
                    Ok(false) => {}
                    Err(e) => swept.problems.push(format!("{id}: reconciling: {e}")),
                }
            }
        }
        Ok(swept)
    }
}

impl Engine<'_> {
    /// Delete the state machine of version `version` of pipeline `name` (unless it has a run
    /// still going, when not `even_running`); its name, or `None` when nothing was deleted (it runs, it is gone already, or the
    /// engine cannot name it: no targets configured, or the version's declaration is gone).
    pub(crate) async fn delete_version_machine(
        &self,
        name: &str,
        version: u32,
        even_running: bool,
    ) -> Result<Option<String>, EngineError> {
        let Some(targets) = &self.config.targets else {
            return Ok(None);
        };
        let Some(record) = self.pipelines.get(name, Some(version)).await? else {
            return Ok(None);
        };
        let definition = crate::asl::compile(&record.declaration, targets);
        let machine = crate::asl::machine_name(name, version, &definition);
        // Step Functions ends a deleted machine's runs at their next transition: the sweep never
        // deletes one that still runs (an execution older than the ones read, a retry just
        // started); DeletePipeline does (it has ended the executions).
        if !even_running {
            match self
                .machines
                .has_running(&machine)
                .await
                .map_err(EngineError::StateMachine)?
            {
                None | Some(true) => return Ok(None),
                Some(false) => {}
            }
        }
        self.machines
            .delete(&machine)
            .await
            .map_err(EngineError::StateMachine)?;
        Ok(Some(machine))
    }

    /// The lock of `stage`: a holder that was given the stage but never told is admitted again,
    /// and executions that ended while holding or waiting for it give it up.
    async fn sweep_lock(&self, pipeline: &str, stage: &str, now: f64) -> Result<(), EngineError> {
        let (lock, _) = self.executions.stage_lock(pipeline, stage).await?;
        let mut gone = Vec::new();
        for waiter in &lock.waiting {
            let ended = match self
                .executions
                .snapshot(&waiter.pipeline_execution_id)
                .await?
            {
                Some(s) => !matches!(
                    s.execution.status,
                    PipelineExecutionStatus::InProgress | PipelineExecutionStatus::Stopping
                ),
                None => true,
            };
            if ended {
                gone.push(waiter.pipeline_execution_id.clone());
            }
        }
        for id in gone {
            let effects = self
                .update_lock(pipeline, stage, |lock| lock.release(&id))
                .await?;
            self.apply_lock_effects(pipeline, stage, effects, None, now)
                .await?;
        }
        let (lock, _) = self.executions.stage_lock(pipeline, stage).await?;
        self.redrive_lock(pipeline, stage, &lock, now).await
    }
}
