"""Every AWS API call that reaches moto in this process, whoever made it (boto3, pyarrow's C++ S3 client,
pyiceberg, the JVM's S3A and Glue clients), as the IAM action and resource AWS would authorize: recorded at
moto's own authorization point, which every request passes, and checked against an IAM policy document."""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from emr_world import REGION
from moto.core.authorization import ActionAuthenticatorMixin

ACCOUNT = "123456789012"  # moto's
SCOPE = re.compile(r"Credential=[^/]+/\d+/([^/]+)/([^/]+)/")


@dataclass(frozen=True)
class Call:
    action: str  # service:Operation, as IAM names it
    resource: str  # the ARN IAM would check
    prefix: str | None = None  # s3:ListBucket's s3:prefix


def _glue_resource(body: dict) -> str:
    database = body.get("DatabaseName") or (body.get("DatabaseInput") or {}).get("Name") or body.get("Name")
    table = body.get("TableName") or (body.get("TableInput") or {}).get("Name")
    if body.get("DatabaseName") and body.get("Name") and not table:
        table = body["Name"]  # GetTable, DeleteTable: DatabaseName and Name
    if table:
        return f"arn:aws:glue:{REGION}:{ACCOUNT}:table/{database}/{table}"
    if database:
        return f"arn:aws:glue:{REGION}:{ACCOUNT}:database/{database}"
    return f"arn:aws:glue:{REGION}:{ACCOUNT}:catalog"


# moto's names of S3 operations that IAM authorizes under another action
S3_AS_IAM = {"HeadBucket": "ListBucket", "HeadObject": "GetObject", "ListObjectsV2": "ListBucket"}
DELETED_KEY = re.compile(r"<Key>([^<]+)</Key>")
# pyarrow's S3 client probes this bucket (a name nobody can own): AWS answers it without asking IAM
PROBE_BUCKET = "arn:aws:s3:::%24extremelyunlikelytoexist%24"


def _calls(response: object, resource: str) -> list[Call]:
    authorization = response.headers.get("Authorization", "")  # type: ignore[attr-defined]
    scope = SCOPE.search(authorization)
    service = scope.group(2) if scope else "unknown"
    operation = response._get_action()  # type: ignore[attr-defined]
    if service == "s3":
        operation = S3_AS_IAM.get(operation, operation)
        if resource == PROBE_BUCKET:
            return []
        if operation == "DeleteObject" and "/" not in resource.split(":::", 1)[1]:  # DeleteObjects: each key
            body = response.body if isinstance(response.body, str) else response.body.decode()  # type: ignore[attr-defined]
            return [Call("s3:DeleteObject", f"{resource}/{key}") for key in DELETED_KEY.findall(body)]
        query = getattr(response, "querystring", {}) or {}
        prefix = query.get("prefix", [None])[0] if operation == "ListBucket" else None
        return [Call(f"s3:{operation}", resource, prefix)]
    if service == "glue":
        try:
            body = json.loads(response.body or "{}")  # type: ignore[attr-defined]
        except ValueError:
            body = {}
        return [Call(f"glue:{operation}", _glue_resource(body))]
    if service == "elasticmapreduce":
        try:
            body = json.loads(response.body or "{}")  # type: ignore[attr-defined]
        except ValueError:
            body = {}
        clusters = body.get("JobFlowIds") or [body.get("ClusterId") or body.get("JobFlowId") or ""]
        arns = [f"arn:aws:elasticmapreduce:{REGION}:{ACCOUNT}:cluster/{c}" if c else "*" for c in clusters]
        return [Call(f"{service}:{operation}", arn) for arn in arns]
    if service == "emr-serverless":
        path = response.path.split("?")[0].rstrip("/")  # type: ignore[attr-defined]
        path = path.removesuffix("/dashboard").removesuffix("/start").removesuffix("/stop")
        return [Call(f"{service}:{operation}", f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:{path}")]
    return [Call(f"{service}:{operation}", resource)]


@contextmanager
def recording_aws_calls() -> Iterator[list[Call]]:
    """The calls made while inside, in order."""
    calls: list[Call] = []
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    def recorded(self, iam_request_cls: type, resource: str = "*") -> None:
        calls.extend(_calls(self, resource))
        original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = recorded  # type: ignore[method-assign]
    try:
        yield calls
    finally:
        ActionAuthenticatorMixin._authenticate_and_authorize_action = original  # type: ignore[method-assign]


def _matches(patterns: str | list[str], value: str) -> bool:
    listed = [patterns] if isinstance(patterns, str) else patterns
    return any(fnmatch.fnmatchcase(value.lower(), pattern.lower()) for pattern in listed)


def allows(policy: dict, call: Call) -> bool:
    """Whether an Allow statement of `policy` names the call's action and resource, and its s3:prefix condition
    (StringLikeIfExists: a request without a prefix passes, as IAM evaluates it) holds."""
    for statement in policy["Statement"]:
        if statement["Effect"] != "Allow" or not _matches(statement["Action"], call.action):
            continue
        if not _matches(statement["Resource"], call.resource):
            continue
        prefixes = statement.get("Condition", {}).get("StringLikeIfExists", {}).get("s3:prefix")
        if prefixes is not None and call.prefix is not None and not _matches(prefixes, call.prefix):
            continue
        return True
    return False


# Allowed without a call of their own: IAM checks them when the call on the right passes a role or creates a
# tagged resource.
IMPLIED = {
    "iam:PassRole": {"elasticmapreduce:RunJobFlow", "emr-serverless:StartJobRun"},
    "emr-serverless:TagResource": {"emr-serverless:CreateApplication", "emr-serverless:StartJobRun"},
}


def actions_of(policy: dict) -> set[str]:
    return {a for s in policy["Statement"] for a in ([s["Action"]] if isinstance(s["Action"], str) else s["Action"])}


def policy_problems(policy: dict, calls: list[Call], services: tuple[str, ...] = ()) -> list[str]:
    """Both ways: each call (of `services`, when given) the policy does not allow, and each action it allows
    that no call made (nor implies)."""
    checked = [c for c in calls if not services or c.action.split(":")[0] in services]
    refused = sorted({f"{c.action} on {c.resource}" for c in checked if not allows(policy, c)})
    called = {c.action for c in calls}
    unused = sorted(a for a in actions_of(policy) if a not in called and not IMPLIED.get(a, set()) & called)
    return [f"called, not allowed: {r}" for r in refused] + [f"allowed, never called: {a}" for a in unused]
