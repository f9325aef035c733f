"""Engine bench on the local stack: a 5-stage pipeline of no-op actions.

Prints, per execution and as a median: the time from StartPipelineExecution to Succeeded (the
execution's own start and last-update times), the Step Functions state transitions, and the AWS
API calls the emulator handled for the execution, by service and action (read from its log, with
nothing else running: the bench does not poll while an execution runs).
"""
import collections
import io
import json
import os
import pathlib
import re
import statistics
import sys
import time
import zipfile

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
STATE = ROOT / ".pipewright"
env = dict(l.split("=", 1) for l in (STATE / "local.env").read_text().splitlines() if "=" in l)
os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
endpoint, api = env["AWS_ENDPOINT_URL"], env["PIPEWRIGHT_ENDPOINT"]
RUNS = int(sys.argv[1]) if len(sys.argv) > 1 else 5

s3 = boto3.client("s3", endpoint_url=endpoint)
sfn = boto3.client("stepfunctions", endpoint_url=endpoint)
codepipeline = boto3.client("codepipeline", endpoint_url=api)

# Named under the sample role's pipelines and buckets (pipewright-sample*), which `pipewright local
# up` makes.
name, bucket = "pipewright-sample-bench-noop", "pipewright-sample-bench-source"
try:
    s3.create_bucket(Bucket=bucket)
except s3.exceptions.BucketAlreadyOwnedByYou:
    pass
archive = io.BytesIO()
with zipfile.ZipFile(archive, "w") as z:
    z.writestr("README.md", "bench\n")
s3.put_object(Bucket=bucket, Key="src.zip", Body=archive.getvalue())

noop = lambda stage: {
    "name": stage,
    "actions": [{
        "name": "Noop",
        "actionTypeId": {"category": "Compute", "owner": "AWS", "provider": "Commands", "version": "1"},
        "commands": ["true"],
        "inputArtifacts": [{"name": "Src"}],
    }],
}
pipeline = {
    "name": name,
    # The sample role `pipewright local up` makes (a pipeline role must be assumable by the
    # action function, under the stack's PipelineRolePath: docs/security.md).
    "roleArn": "arn:aws:iam::123456789012:role/pipewright/pipewright-sample",
    "artifactStore": {"type": "S3", "location": env["PIPEWRIGHT_ARTIFACT_BUCKET_NAME"]},
    "pipelineType": "V2",
    "stages": [
        {"name": "Source", "actions": [{
            "name": "Source",
            "actionTypeId": {"category": "Source", "owner": "AWS", "provider": "S3", "version": "1"},
            "configuration": {"S3Bucket": bucket, "S3ObjectKey": "src.zip", "PollForSourceChanges": "false"},
            "outputArtifacts": [{"name": "Src"}],
        }]},
        noop("Two"), noop("Three"), noop("Four"), noop("Five"),
    ],
}
try:
    codepipeline.create_pipeline(pipeline=pipeline)
except codepipeline.exceptions.PipelineNameInUseException:
    # An earlier run's declaration: bench this one.
    pipeline["version"] = codepipeline.get_pipeline(name=name)["pipeline"]["version"]
    codepipeline.update_pipeline(pipeline=pipeline)

log = STATE / "fakecloud.log"
request = re.compile(r"handling request service=(\w+) action=(\w*)")
# fakecloud delivers schedule-only rules once per event put on their bus: each delivery of the
# sweep schedule is one orchestrator invocation and one PutItem (its rate limit), not the
# execution's work. They are counted apart.
sweep = re.compile(r'payload=\{"sweep": \{\}\}')
# The local gateway's status-event poller (fakecloud sends no Step Functions, CloudFormation,
# CodeBuild, CodeDeploy or ECS events; crates/lambda-host/src/status_events.rs) lists those
# services once a second, whatever runs: not the execution's work, and not made on AWS.
POLLER = {"ecs:ListClusters", "ecs:ListServices", "ecs:DescribeServices",
          "codedeploy:ListDeployments", "codedeploy:BatchGetDeployments",
          "codebuild:ListBuilds", "codebuild:BatchGetBuilds", "cloudformation:ListStacks",
          "states:ListStateMachines", "states:ListExecutions"}

def calls_since(offset):
    with open(log, "rb") as f:
        f.seek(offset)
        text = re.sub(r"\x1b\[[0-9;]*m", "", f.read().decode(errors="replace"))
    calls = collections.Counter(f"{s}:{a or '(REST)'}" for s, a in request.findall(text))
    sweeps = len(sweep.findall(text))
    calls["dynamodb:PutItem"] -= sweeps
    polled = sum(calls.pop(key, 0) for key in list(calls) if key in POLLER)
    return calls, sweeps, polled

latencies, transitions, totals = [], [], []
for run in range(RUNS):
    offset = log.stat().st_size
    execution = codepipeline.start_pipeline_execution(name=name)["pipelineExecutionId"]
    time.sleep(8)  # no polling while it runs: every call in the log window is the execution's own
    calls, sweeps, polled = calls_since(offset)
    summary = next(
        e for e in codepipeline.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]
        if e["pipelineExecutionId"] == execution
    )
    if summary["status"] != "Succeeded":
        sys.exit(f"execution {execution} is {summary['status']} after 8 s: {summary.get('statusSummary')}")
    seconds = (summary["lastUpdateTime"] - summary["startTime"]).total_seconds()
    # Machines are named pipewright-<pipeline>-v<version>-<hash of the definition>.
    version = summary.get("pipelineVersion") or codepipeline.get_pipeline(name=name)["pipeline"]["version"]
    machine = next(
        m["stateMachineArn"] for m in sfn.list_state_machines()["stateMachines"]
        if m["name"].startswith(f"pipewright-{name}-v{version}-")
    )
    arn = f"{machine.replace(':stateMachine:', ':execution:', 1)}:{execution}"
    history = sfn.get_execution_history(executionArn=arn, maxResults=1000)["events"]
    entered = sum(1 for e in history if e["type"].endswith("StateEntered"))
    latencies.append(seconds)
    transitions.append(entered)
    totals.append(sum(calls.values()))
    print(f"run {run + 1}: {seconds:5.2f} s start->Succeeded, {entered} state transitions, "
          f"{sum(calls.values())} API calls (besides {sweeps} sweep schedule deliveries and "
          f"{polled} calls of the local status-event poller)")
    if run == 0:
        for key, n in sorted(calls.items(), key=lambda kv: -kv[1]):
            print(f"         {n:4}  {key}")

print(f"\n5-stage no-op pipeline, {RUNS} runs: median {statistics.median(latencies):.2f} s start->Succeeded "
      f"(min {min(latencies):.2f}, max {max(latencies):.2f}); "
      f"{statistics.median(transitions):.0f} state transitions; {statistics.median(totals):.0f} AWS API calls per execution")
