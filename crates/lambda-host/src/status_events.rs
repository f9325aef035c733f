//! `gateway --status-events`: Step Functions' status events, which fakecloud does not send.
//!
//! On AWS, every execution of a standard state machine that ends puts a "Step Functions
//! Execution Status Change" event on the account's default bus; Pipewright's Step Functions
//! actions complete on it. fakecloud emits none, so a gateway started with `--status-events`
//! polls the emulator's Step Functions (once a second) and puts that event, in AWS's shape, for
//! each execution that ended since it started. Only state machines not named `pipewright-`
//! (the engine's own runs are reconciled by the sweep locally, as before).
//!
//! The same for CloudFormation's "CloudFormation Stack Status Change" events, which
//! CloudFormation actions complete on: every stack whose status, or the time it last changed,
//! differs from the last poll and that rests (not `*_IN_PROGRESS`) is announced.
//!
//! And for CodeBuild's "CodeBuild Build State Change" events, which CodeBuild actions complete
//! on: every build that ended since the gateway started is announced once; and CodeDeploy's
//! "CodeDeploy Deployment State-change Notification" events, likewise for deployments; and
//! ECS's "ECS Deployment State Change" events: a service deployment is announced completed once
//! it is the primary one with every desired task running and no task of another deployment left
//! (fakecloud leaves `rolloutState` at `IN_PROGRESS`), failed when its `rolloutState` says so.

use std::collections::HashSet;
use std::time::{Duration, SystemTime};

use serde_json::{json, Value};

use std::collections::HashMap;

use super::gateway::{emulator_authorization, xml_text, Utc};

/// How often the emulator is asked.
const POLL: Duration = Duration::from_secs(1);
/// The engine's own state machines.
const ENGINE_PREFIX: &str = "pipewright-";
const ACCOUNT_ID: &str = "123456789012";

/// Poll in a thread of its own for as long as the process lives.
pub fn spawn(emulator: String, region: String) {
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(10)))
            .http_status_as_error(false)
            .build()
            .into();
        let poller = Poller {
            agent,
            emulator,
            region,
        };
        // What had ended before this process started is history, not news.
        let mut seen: HashSet<String> = poller
            .ended()
            .map(|ended| ended.into_iter().map(|e| e.arn).collect())
            .unwrap_or_default();
        let mut stacks: HashMap<String, StackSummary> = poller
            .stacks()
            .map(|all| all.into_iter().map(|s| (s.id.clone(), s)).collect())
            .unwrap_or_default();
        let mut builds_ended: HashSet<String> = poller
            .ended_builds(&HashSet::new())
            .map(|ended| ended.into_iter().filter_map(|b| build_id(&b)).collect())
            .unwrap_or_default();
        let mut deployments_ended: HashSet<String> = poller
            .ended_deployments(&HashSet::new())
            .map(|ended| {
                ended
                    .into_iter()
                    .filter_map(|d| deployment_id(&d))
                    .collect()
            })
            .unwrap_or_default();
        let mut services_settled: HashSet<String> = poller
            .settled_service_deployments()
            .map(|all| all.into_iter().map(|(id, _, _)| id).collect())
            .unwrap_or_default();
        loop {
            std::thread::sleep(POLL);
            announce_new(
                &mut services_settled,
                "ECS",
                poller
                    .settled_service_deployments()
                    .map(|all| all.into_iter().map(|d| (d.0.clone(), d)).collect()),
                |(id, name, service_arn)| poller.announce_service_deployment(id, name, service_arn),
            );
            let deployments = poller.ended_deployments(&deployments_ended).map(|ended| {
                ended
                    .into_iter()
                    .filter_map(|d| Some((deployment_id(&d)?, d)))
                    .collect()
            });
            announce_new(&mut deployments_ended, "CodeDeploy", deployments, |d| {
                poller.announce_deployment(d)
            });
            let builds = poller.ended_builds(&builds_ended).map(|ended| {
                ended
                    .into_iter()
                    .filter_map(|b| Some((build_id(&b)?, b)))
                    .collect()
            });
            announce_new(&mut builds_ended, "CodeBuild", builds, |b| {
                poller.announce_build(b)
            });
            match poller.stacks() {
                Ok(all) => {
                    for stack in all {
                        if stacks.get(&stack.id) == Some(&stack) {
                            continue;
                        }
                        if at_rest(&stack.status) {
                            if let Err(e) = poller.announce_stack(&stack) {
                                super::gateway::log(&format!(
                                    "status event of stack {} not sent: {e}",
                                    stack.id
                                ));
                                continue;
                            }
                        }
                        stacks.insert(stack.id.clone(), stack);
                    }
                }
                Err(e) => super::gateway::log(&format!("polling CloudFormation: {e}")),
            }
            announce_new(
                &mut seen,
                "Step Functions",
                poller
                    .ended()
                    .map(|ended| ended.into_iter().map(|e| (e.arn.clone(), e)).collect()),
                |execution| poller.announce(execution),
            );
        }
    });
}

/// Announce each work item of one poll (`polled`: its id and itself) that `announced` does not
/// hold yet, remembering those whose event went out; a failed send is logged and tried again at
/// the next poll. `service` names the poll in the log.
fn announce_new<T>(
    announced: &mut HashSet<String>,
    service: &str,
    polled: Result<Vec<(String, T)>, String>,
    send: impl Fn(&T) -> Result<(), String>,
) {
    let items = match polled {
        Ok(items) => items,
        Err(e) => return super::gateway::log(&format!("polling {service}: {e}")),
    };
    for (id, item) in items {
        if announced.contains(&id) {
            continue;
        }
        match send(&item) {
            Ok(()) => {
                announced.insert(id);
            }
            Err(e) => super::gateway::log(&format!("{service} event of {id} not sent: {e}")),
        }
    }
}

/// An execution that ended.
struct Ended {
    arn: String,
    machine: String,
}

struct Poller {
    agent: ureq::Agent,
    emulator: String,
    region: String,
}

impl Poller {
    /// A JSON call to the emulator's `service` (`states`, `events`) with target `target`.
    fn call(&self, service: &str, target: &str, body: &Value) -> Result<Value, String> {
        let now = Utc::from(SystemTime::now());
        let authorization = emulator_authorization(
            &now,
            &self.region,
            service,
            "content-type;host;x-amz-date;x-amz-target",
        );
        let content_type = if service == "states" {
            "application/x-amz-json-1.0"
        } else {
            "application/x-amz-json-1.1"
        };
        let mut response = self
            .agent
            .post(&format!("{}/", self.emulator))
            .header("Content-Type", content_type)
            .header("X-Amz-Target", target)
            .header("X-Amz-Date", now.amz_date())
            .header("Authorization", authorization)
            .send(body.to_string().as_bytes())
            .map_err(|e| format!("{target}: {e}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("{target}: {e}"))?;
        if status != 200 {
            return Err(format!("{target}: HTTP {status}: {text}"));
        }
        serde_json::from_str(&text).map_err(|e| format!("{target}: {e}"))
    }

    /// Every ended execution of every state machine that is not the engine's.
    fn ended(&self) -> Result<Vec<Ended>, String> {
        let machines = self.call(
            "states",
            "AWSStepFunctions.ListStateMachines",
            &json!({"maxResults": 1000}),
        )?;
        let mut out = Vec::new();
        for machine in machines["stateMachines"].as_array().into_iter().flatten() {
            let (Some(arn), Some(name)) = (
                machine["stateMachineArn"].as_str(),
                machine["name"].as_str(),
            ) else {
                continue;
            };
            if name.starts_with(ENGINE_PREFIX) {
                continue;
            }
            let executions = self.call(
                "states",
                "AWSStepFunctions.ListExecutions",
                &json!({"stateMachineArn": arn, "maxResults": 1000}),
            )?;
            for execution in executions["executions"].as_array().into_iter().flatten() {
                let status = execution["status"].as_str().unwrap_or("RUNNING");
                if status == "RUNNING" || status == "PENDING_REDRIVE" {
                    continue;
                }
                if let Some(execution_arn) = execution["executionArn"].as_str() {
                    out.push(Ended {
                        arn: execution_arn.to_string(),
                        machine: arn.to_string(),
                    });
                }
            }
        }
        Ok(out)
    }

    /// Put an event of AWS service `source` about `resource` on the default bus.
    fn put_event(
        &self,
        source: &str,
        detail_type: &str,
        detail: &Value,
        resource: &str,
    ) -> Result<(), String> {
        let answer = self.call(
            "events",
            "AWSEvents.PutEvents",
            &json!({"Entries": [{
                "Source": source,
                "DetailType": detail_type,
                "Detail": detail.to_string(),
                "Resources": [resource],
            }]}),
        )?;
        if answer["FailedEntryCount"].as_u64().unwrap_or(0) > 0 {
            return Err(format!("PutEvents refused it: {answer}"));
        }
        Ok(())
    }

    /// Put the execution's status event on the default bus.
    fn announce(&self, execution: &Ended) -> Result<(), String> {
        let described = self.call(
            "states",
            "AWSStepFunctions.DescribeExecution",
            &json!({"executionArn": execution.arn}),
        )?;
        let text = |k: &str| described.get(k).cloned().unwrap_or(Value::Null);
        let detail = json!({
            "executionArn": execution.arn,
            "stateMachineArn": execution.machine,
            "name": text("name"),
            "status": text("status"),
            "startDate": text("startDate"),
            "stopDate": text("stopDate"),
            "input": text("input"),
            "output": text("output"),
            "error": text("error"),
            "cause": text("cause"),
        });
        self.put_event(
            "aws.states",
            "Step Functions Execution Status Change",
            &detail,
            &execution.arn,
        )?;
        super::gateway::log(&format!(
            "sent the status event of {} ({}) for account {ACCOUNT_ID}",
            execution.arn,
            detail["status"].as_str().unwrap_or("?")
        ));
        Ok(())
    }
}

impl Poller {
    /// The builds that ended, other than those in `known` (ListBuilds' newest page, then
    /// BatchGetBuilds of the rest).
    fn ended_builds(&self, known: &HashSet<String>) -> Result<Vec<Value>, String> {
        let listed = self.call(
            "codebuild",
            "CodeBuild_20161006.ListBuilds",
            &json!({"sortOrder": "DESCENDING"}),
        )?;
        let ids: Vec<&str> = listed["ids"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|id| !known.contains(*id))
            .take(100)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let builds = self.call(
            "codebuild",
            "CodeBuild_20161006.BatchGetBuilds",
            &json!({ "ids": ids }),
        )?;
        Ok(builds["builds"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|b| !matches!(b["buildStatus"].as_str(), None | Some("IN_PROGRESS")))
            .cloned()
            .collect())
    }

    /// Put a build's state event on the default bus, in CodeBuild's shape.
    fn announce_build(&self, build: &Value) -> Result<(), String> {
        let arn = build["arn"].as_str().unwrap_or_default();
        let detail = json!({
            "build-status": build["buildStatus"],
            "project-name": build["projectName"],
            "build-id": arn,
            "current-phase": build["currentPhase"],
            "current-phase-context": "[]",
            "version": "1",
            "additional-information": {
                "build-complete": true,
                "initiator": build["initiator"],
                "build-start-time": build["startTime"],
                "source": build["source"],
                "source-version": build["sourceVersion"],
                "artifact": build["artifacts"],
                "environment": build["environment"],
                "logs": build["logs"],
                "phases": build["phases"],
                "timeout-in-minutes": build["timeoutInMinutes"],
            },
        });
        self.put_event(
            "aws.codebuild",
            "CodeBuild Build State Change",
            &detail,
            arn,
        )?;
        super::gateway::log(&format!(
            "sent the state event of build {} ({})",
            build["id"].as_str().unwrap_or("?"),
            build["buildStatus"].as_str().unwrap_or("?")
        ));
        Ok(())
    }
}

impl Poller {
    /// The deployments that ended, other than those in `known` (ListDeployments, then
    /// BatchGetDeployments of the rest; fakecloud moves a deployment on as it is read).
    fn ended_deployments(&self, known: &HashSet<String>) -> Result<Vec<Value>, String> {
        let listed = self.call(
            "codedeploy",
            "CodeDeploy_20141006.ListDeployments",
            &json!({}),
        )?;
        let ids: Vec<&str> = listed["deployments"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .filter(|id| !known.contains(*id))
            .take(25)
            .collect();
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let got = self.call(
            "codedeploy",
            "CodeDeploy_20141006.BatchGetDeployments",
            &json!({ "deploymentIds": ids }),
        )?;
        Ok(got["deploymentsInfo"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|d| {
                matches!(
                    d["status"].as_str(),
                    Some("Succeeded" | "Failed" | "Stopped")
                )
            })
            .cloned()
            .collect())
    }

    /// Put a deployment's state event on the default bus, in CodeDeploy's shape.
    fn announce_deployment(&self, deployment: &Value) -> Result<(), String> {
        let id = deployment["deploymentId"].as_str().unwrap_or_default();
        let state = match deployment["status"].as_str() {
            Some("Succeeded") => "SUCCESS",
            Some("Stopped") => "STOP",
            _ => "FAILURE",
        };
        let application = deployment["applicationName"].as_str().unwrap_or_default();
        let detail = json!({
            "account": ACCOUNT_ID,
            "region": self.region,
            "deploymentId": id,
            "instanceGroupId": deployment["deploymentGroupName"],
            "deploymentGroup": deployment["deploymentGroupName"],
            "application": application,
            "state": state,
        });
        let resource = format!(
            "arn:aws:codedeploy:{}:{ACCOUNT_ID}:application:{application}",
            self.region
        );
        self.put_event(
            "aws.codedeploy",
            "CodeDeploy Deployment State-change Notification",
            &detail,
            &resource,
        )?;
        super::gateway::log(&format!(
            "sent the state event of deployment {id} ({state})"
        ));
        Ok(())
    }
}

impl Poller {
    /// Every service deployment that completed or failed: (id, event name, service ARN).
    fn settled_service_deployments(&self) -> Result<Vec<(String, &'static str, String)>, String> {
        const TARGET: &str = "AmazonEC2ContainerServiceV20141113";
        let clusters = self.call("ecs", &format!("{TARGET}.ListClusters"), &json!({}))?;
        let mut out = Vec::new();
        for cluster in clusters["clusterArns"].as_array().into_iter().flatten() {
            let Some(cluster) = cluster.as_str() else {
                continue;
            };
            let services = self.call(
                "ecs",
                &format!("{TARGET}.ListServices"),
                &json!({"cluster": cluster, "maxResults": 100}),
            )?;
            let arns: Vec<&Value> = services["serviceArns"]
                .as_array()
                .into_iter()
                .flatten()
                .collect();
            for chunk in arns.chunks(10) {
                let described = self.call(
                    "ecs",
                    &format!("{TARGET}.DescribeServices"),
                    &json!({"cluster": cluster, "services": chunk}),
                )?;
                for service in described["services"].as_array().into_iter().flatten() {
                    let arn = service["serviceArn"].as_str().unwrap_or_default();
                    let deployments = service["deployments"]
                        .as_array()
                        .cloned()
                        .unwrap_or_default();
                    for d in &deployments {
                        let id = d["id"].as_str().unwrap_or_default().to_string();
                        let others_drained = deployments
                            .iter()
                            .filter(|o| o["id"] != d["id"])
                            .all(|o| o["runningCount"].as_i64().unwrap_or(0) == 0);
                        let event = if d["rolloutState"] == "FAILED" {
                            Some("SERVICE_DEPLOYMENT_FAILED")
                        } else if d["status"] == "PRIMARY"
                            && d["runningCount"] == d["desiredCount"]
                            && others_drained
                        {
                            Some("SERVICE_DEPLOYMENT_COMPLETED")
                        } else {
                            None
                        };
                        if let Some(event) = event.filter(|_| !id.is_empty()) {
                            out.push((id, event, arn.to_string()));
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// Put a service deployment's event on the default bus, in ECS's shape.
    fn announce_service_deployment(
        &self,
        id: &str,
        name: &str,
        service_arn: &str,
    ) -> Result<(), String> {
        let detail = json!({
            "eventType": if name == "SERVICE_DEPLOYMENT_FAILED" { "ERROR" } else { "INFO" },
            "eventName": name,
            "deploymentId": id,
            "updatedAt": Utc::from(SystemTime::now()).iso8601_millis(),
            "reason": format!("ECS deployment {id} {}.", if name == "SERVICE_DEPLOYMENT_FAILED" { "failed" } else { "completed" }),
        });
        self.put_event(
            "aws.ecs",
            "ECS Deployment State Change",
            &detail,
            service_arn,
        )?;
        super::gateway::log(&format!(
            "sent the event of service deployment {id} ({name})"
        ));
        Ok(())
    }
}

/// A deployment's id.
fn deployment_id(deployment: &Value) -> Option<String> {
    deployment["deploymentId"].as_str().map(str::to_string)
}

/// A build's id.
fn build_id(build: &Value) -> Option<String> {
    build["id"].as_str().map(str::to_string)
}

/// A stack as ListStacks shows it: id, status, reason, and when it last changed.
#[derive(Debug, Clone, PartialEq, Eq)]
struct StackSummary {
    id: String,
    status: String,
    reason: String,
    changed: String,
}

impl Poller {
    /// Every stack the emulator knows (deleted ones too, as ListStacks lists them).
    fn stacks(&self) -> Result<Vec<StackSummary>, String> {
        let now = Utc::from(SystemTime::now());
        let authorization = emulator_authorization(
            &now,
            &self.region,
            "cloudformation",
            "content-type;host;x-amz-date",
        );
        let mut response = self
            .agent
            .post(&format!("{}/", self.emulator))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .header("X-Amz-Date", now.amz_date())
            .header("Authorization", authorization)
            .send("Action=ListStacks&Version=2010-05-15".as_bytes())
            .map_err(|e| format!("ListStacks: {e}"))?;
        let status = response.status().as_u16();
        let xml = response
            .body_mut()
            .read_to_string()
            .map_err(|e| format!("ListStacks: {e}"))?;
        if status != 200 {
            return Err(format!("ListStacks: HTTP {status}: {xml}"));
        }
        Ok(xml
            .split("<member>")
            .skip(1)
            .filter_map(|member| {
                let text = |name: &str| xml_text(member, name).unwrap_or_default();
                let id = xml_text(member, "StackId")?;
                Some(StackSummary {
                    id,
                    status: text("StackStatus"),
                    reason: text("StackStatusReason"),
                    changed: format!(
                        "{}|{}|{}",
                        text("CreationTime"),
                        text("LastUpdatedTime"),
                        text("DeletionTime")
                    ),
                })
            })
            .collect())
    }

    /// Put a stack's status event on the default bus.
    fn announce_stack(&self, stack: &StackSummary) -> Result<(), String> {
        let detail = json!({
            "stack-id": stack.id,
            "status-details": {"status": stack.status, "status-reason": stack.reason},
        });
        self.put_event(
            "aws.cloudformation",
            "CloudFormation Stack Status Change",
            &detail,
            &stack.id,
        )?;
        super::gateway::log(&format!(
            "sent the status event of stack {} ({})",
            stack.id, stack.status
        ));
        Ok(())
    }
}

/// Whether a stack status is one a stack rests in (not `*_IN_PROGRESS`).
fn at_rest(status: &str) -> bool {
    !status.ends_with("_IN_PROGRESS") && !status.is_empty()
}
