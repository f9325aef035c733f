"""Run the sample pipeline on the local stack and print every state change as it happens.

Reads the endpoints from .pipewright/local.env (written by `pipewright local up`). Creates the
source and site buckets, uploads infra/sample-app as app.zip, creates (or updates) the sample
pipeline through the control plane with boto3 (subscribing an SQS queue to the pipeline's
EventBridge events first), follows the execution creating it started (or starts one when the
pipeline existed) and prints the events until it ends. When the approval
before Deploy waits, it prints the approval notice (as the emulator recorded it on SNS), opens
the approve link (a confirmation page: nothing is decided yet) and presses its button, as an
approver would from the email.
"""
import io
import json
import os
import pathlib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile

import boto3

ROOT = pathlib.Path(__file__).resolve().parent.parent
env = dict(
    line.split("=", 1)
    for line in (ROOT / ".pipewright" / "local.env").read_text().splitlines()
    if "=" in line and not line.startswith("#")
)
os.environ.update({k: v for k, v in env.items() if k.startswith("AWS_")})
endpoint, api = env["AWS_ENDPOINT_URL"], env["PIPEWRIGHT_ENDPOINT"]

s3 = boto3.client("s3", endpoint_url=endpoint)
sqs = boto3.client("sqs", endpoint_url=endpoint)
events = boto3.client("events", endpoint_url=endpoint)
codepipeline = boto3.client("codepipeline", endpoint_url=api)

declaration = json.loads((ROOT / "infra/pipelines/sample.json").read_text())["pipeline"]
name = declaration["name"]
source = declaration["stages"][0]["actions"][0]["configuration"]
site = declaration["variables"][0]["defaultValue"]

for bucket in (source["S3Bucket"], site):
    try:
        s3.create_bucket(Bucket=bucket)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
s3.put_bucket_versioning(Bucket=source["S3Bucket"], VersioningConfiguration={"Status": "Enabled"})
archive = io.BytesIO()
with zipfile.ZipFile(archive, "w") as z:
    for path in sorted((ROOT / "infra/sample-app").rglob("*")):
        if path.is_file():
            z.write(path, path.relative_to(ROOT / "infra/sample-app"))
put = s3.put_object(Bucket=source["S3Bucket"], Key=source["S3ObjectKey"], Body=archive.getvalue())
print(f"source: s3://{source['S3Bucket']}/{source['S3ObjectKey']} version {put.get('VersionId')}")

# Subscribed before the pipeline is created: creating it runs it (as in CodePipeline).
queue = sqs.create_queue(QueueName="pipewright-sample-events")["QueueUrl"]
queue_arn = sqs.get_queue_attributes(QueueUrl=queue, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
events.put_rule(Name="pipewright-sample-events", EventPattern=json.dumps({"source": ["pipewright"], "detail": {"pipeline": [name]}}))
events.put_targets(Rule="pipewright-sample-events", Targets=[{"Id": "queue", "Arn": queue_arn}])
sqs.purge_queue(QueueUrl=queue)

try:
    codepipeline.create_pipeline(pipeline=declaration)
    print(f"pipeline {name}: created")
    created = True
except codepipeline.exceptions.PipelineNameInUseException:
    current = codepipeline.get_pipeline(name=name)["pipeline"]
    declaration["version"] = current["version"]
    codepipeline.update_pipeline(pipeline=declaration)
    print(f"pipeline {name}: updated")
    created = False



def approval_notice(execution_id):
    """The approval notice of the execution, from the emulator's record of SNS messages."""
    with urllib.request.urlopen(f"{endpoint}/_fakecloud/sns/messages") as response:
        messages = json.load(response)["messages"]
    for m in messages:
        try:
            structure = json.loads(m["message"])
            notice = json.loads(structure["default"])
        except (ValueError, KeyError, TypeError):
            continue
        if notice.get("approval", {}).get("pipelineExecutionId") == execution_id:
            return m, structure, notice
    return None


def http(url, form=None):
    data = urllib.parse.urlencode(form).encode() if form is not None else None
    try:
        with urllib.request.urlopen(urllib.request.Request(url, data=data)) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def approve_by_link(execution_id):
    found = None
    for _ in range(100):
        found = approval_notice(execution_id)
        if found:
            break
        time.sleep(0.2)
    if not found:
        sys.exit("the approval notice never arrived")
    message, structure, notice = found
    print(f"\n--- approval notice on {message['topicArn']}\nSubject: {message['subject']}\n")
    print("    " + structure["email"].strip().replace("\n", "\n    "))
    link = notice["approval"]["approveLink"]
    status, page = http(link)
    print(f"\nGET the approve link -> HTTP {status}: a confirmation page; nothing is decided yet")
    token = urllib.parse.parse_qs(urllib.parse.urlparse(link).query)["t"][0]
    base = link.split("?", 1)[0]
    status, page = http(base, {"t": token, "summary": "approved from the sample run"})
    print(f"POST its button      -> HTTP {status}: {'Approved' if 'Approved' in page else page[:200]}")
    status, _ = http(base, {"t": token, "summary": "twice?"})
    print(f"POST it again        -> HTTP {status}: a link works once\n---\n")


def started_by_creation():
    """The execution CreatePipeline started (None when the stack runs with
    --no-start-on-create)."""
    for summary in codepipeline.list_pipeline_executions(pipelineName=name)["pipelineExecutionSummaries"]:
        if summary.get("trigger", {}).get("triggerType") == "CreatePipeline":
            return summary["pipelineExecutionId"]
    return None


execution = started_by_creation() if created else None
if execution:
    print(f"execution {execution} started by CreatePipeline\n")
else:
    execution = codepipeline.start_pipeline_execution(name=name)["pipelineExecutionId"]
    print(f"execution {execution} started\n")
started, final = time.time(), None
deadline = started + 300
while time.time() < deadline:
    for message in sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", []):
        sqs.delete_message(QueueUrl=queue, ReceiptHandle=message["ReceiptHandle"])
        event = json.loads(message["Body"])
        detail = event["detail"]
        if detail.get("execution-id") != execution:
            continue
        kind = event["detail-type"].split()[1].lower()
        where = ".".join(x for x in (detail.get("stage"), detail.get("action")) if x) or name
        extra = (detail.get("execution-result") or {}).get("external-execution-summary", "")
        print(f"{time.time() - started:6.1f}s  {kind:8} {where:22} {detail['state']:10} {extra}")
        if kind == "action" and detail.get("type", {}).get("category") == "Approval" and detail["state"] == "STARTED":
            approve_by_link(execution)
    status = codepipeline.get_pipeline_execution(pipelineName=name, pipelineExecutionId=execution)["pipelineExecution"]
    if status["status"] != "InProgress" and final is None:
        final = status
        deadline = time.time() + 3  # drain the last events
if final is None:
    sys.exit(f"execution {execution} did not finish in time")
print(f"\nexecution {execution}: {final['status']} {final.get('statusSummary', '')}")
if final["status"] != "Succeeded":
    sys.exit(1)
page = s3.get_object(Bucket=site, Key="dist/index.html")["Body"].read().decode()
print(f"deployed: s3://{site}/dist/index.html -> {page.strip()}")
