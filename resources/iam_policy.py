"""`teem iam-policy`: the least-privilege IAM policy documents of a deployment, from its settings. The Dagster
role (the webserver, daemon and run workers) runs Spark in its own process under `auto`, and exports from the
tables, so it holds the data statements too; the cluster's role (EMR's instance profile, or EMR Serverless's
execution role) holds the data statements and the archive. Every action here is one the pipeline calls
(tests/test_emr.py and tests/test_emr_serverless.py record them at moto and check both ways)."""

from __future__ import annotations

from typing import Any

from resources.emr import EmrResource
from resources.emr_serverless import EmrServerlessResource
from teem_assets.unload.location import split_s3

VERSION = "2012-10-17"
# What the stages and the Dagster side do to the root's objects and folders (S3A, pyarrow, pyiceberg, boto3).
OBJECT_ACTIONS = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
# Iceberg's Glue catalog (pyiceberg and Iceberg's Java GlueCatalog): the two databases and their tables.
GLUE_ACTIONS = ["glue:GetDatabase", "glue:CreateDatabase", "glue:GetTable", "glue:CreateTable", "glue:UpdateTable"]
# One run's cluster (resources/emr_cluster.py) and the ended-run sensors (jobs/ended_run_clusters.py).
EMR_CLUSTER_ACTIONS = ["elasticmapreduce:AddJobFlowSteps", "elasticmapreduce:DescribeCluster",
                       "elasticmapreduce:DescribeStep", "elasticmapreduce:ListInstanceGroups",
                       "elasticmapreduce:TerminateJobFlows"]  # fmt: skip
EMR_ACCOUNT_ACTIONS = ["elasticmapreduce:RunJobFlow", "elasticmapreduce:ListClusters",
                       "elasticmapreduce:ListReleaseLabels"]  # fmt: skip
SERVERLESS_ACTIONS = ["emr-serverless:ListApplications", "emr-serverless:CreateApplication",
                      "emr-serverless:TagResource", "emr-serverless:StartJobRun",
                      "emr-serverless:GetJobRun", "emr-serverless:GetDashboardForJobRun",
                      "emr-serverless:ListJobRuns", "emr-serverless:CancelJobRun"]  # fmt: skip


def _s3_object(uri: str) -> str:
    bucket, key = split_s3(uri)
    return f"arn:aws:s3:::{bucket}/{key}"


def _statement(sid: str, actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Sid": sid, "Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def data_statements(root: str, databases: list[str], region: str, account: str) -> list[dict[str, Any]]:
    """The root's objects, its listing (only under its prefix) and the Glue catalog of its two databases."""
    bucket, prefix = split_s3(root)
    prefix = prefix.strip("/")
    glue = f"arn:aws:glue:{region}:{account}"
    catalog = [f"{glue}:catalog"]
    catalog += [f"{glue}:database/{d}" for d in databases] + [f"{glue}:table/{d}/*" for d in databases]
    return [
        _statement("TeemRootObjects", OBJECT_ACTIONS, [f"arn:aws:s3:::{bucket}/{prefix}/*"]),
        _statement(
            "TeemRootListing",
            ["s3:ListBucket"],
            [f"arn:aws:s3:::{bucket}"],
            # IfExists: HeadBucket, which S3A and pyarrow call, has no prefix and is authorized as ListBucket
            Condition={"StringLikeIfExists": {"s3:prefix": [f"{prefix}/*", prefix]}},
        ),
        _statement("TeemCatalog", GLUE_ACTIONS, catalog),
    ]


def _roles(account: str, names: list[str]) -> list[str]:
    return [name if name.startswith("arn:") else f"arn:aws:iam::{account}:role/{name}" for name in names]


def _outside(root: str, log_uri: str | None) -> str | None:
    """A log URI set apart from the root, as an ARN pattern of its objects."""
    if not log_uri or log_uri.rstrip("/").startswith(root.rstrip("/") + "/"):
        return None
    return f"{_s3_object(log_uri.rstrip('/') + '/')}*"


def emr_statements(emr: EmrResource, region: str, account: str) -> list[dict[str, Any]]:
    archive = [_s3_object(u) for u in (str(emr.archive_uri), emr.digest_uri(), emr.bootstrap_script_uri())]
    return [
        _statement("TeemEmrAccount", EMR_ACCOUNT_ACTIONS, ["*"]),
        _statement(
            "TeemEmrRunClusters", EMR_CLUSTER_ACTIONS, [f"arn:aws:elasticmapreduce:{region}:{account}:cluster/*"]
        ),
        # exactly the two roles a cluster is started with
        _statement("TeemEmrPassRoles", ["iam:PassRole"], _roles(account, [emr.service_role, emr.instance_profile])),
        _statement("TeemEmrArchive", ["s3:GetObject"], archive),
    ]


def serverless_statements(serverless: EmrServerlessResource, region: str, account: str) -> list[dict[str, Any]]:
    archive = [_s3_object(u) for u in (str(serverless.archive_uri), serverless.entry_point_uri())]
    return [
        _statement(
            "TeemEmrServerless", SERVERLESS_ACTIONS, [f"arn:aws:emr-serverless:{region}:{account}:/applications*"]
        ),
        _statement("TeemEmrServerlessPassRole", ["iam:PassRole"], [str(serverless.execution_role_arn)]),
        _statement("TeemEmrServerlessArchive", ["s3:GetObject"], archive),
    ]


def policies(
    place: str,
    root: str,
    databases: list[str],
    emr: EmrResource,
    serverless: EmrServerlessResource,
    region: str,
    account: str,
) -> dict[str, Any]:
    """The documents for Spark at `place` (emr or emr-serverless): the Dagster role's, the cluster's role's,
    and what the network needs."""
    data = data_statements(root, databases, region, account)
    logs = _outside(root, serverless.log_uri if place == "emr-serverless" else emr.log_uri)
    # a log URI apart from the root: the cluster writes there, the Dagster side reads a failed driver's stderr
    read_logs = [_statement("TeemLogs", ["s3:GetObject"], [logs])] if logs else []
    write_logs = [_statement("TeemLogs", ["s3:PutObject"], [logs])] if logs else []
    if place == "emr-serverless":
        remote = serverless_statements(serverless, region, account)
        archive = remote[-1]
        return {
            "dagster_role": {"Version": VERSION, "Statement": [*data, *remote, *read_logs]},
            "execution_role": {"Version": VERSION, "Statement": [*data, archive, *write_logs]},
        }
    remote = emr_statements(emr, region, account)
    archive = remote[-1]
    return {
        "dagster_role": {"Version": VERSION, "Statement": [*data, *remote, *read_logs]},
        "instance_profile_role": {"Version": VERSION, "Statement": [*data, archive, *write_logs]},
        "network": {
            "subnet": emr.subnet_id,
            "tags": {"for-use-with-amazon-emr-managed-policies": "true"},
            "note": "the v2 managed policies act only on a subnet and security groups with this tag",
        },
    }
