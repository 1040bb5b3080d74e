"""A boto3 client of one service: its own endpoint (AWS_ENDPOINT_URL_<SERVICE>) before the all-services one
(AWS_ENDPOINT_URL), and the region when one is set; credentials only from AWS's default chain."""

from __future__ import annotations

from typing import Any

import boto3


def aws_client(service: str, region: str | None, own_endpoint: str | None, every_endpoint: str | None) -> Any:
    endpoint = own_endpoint or every_endpoint
    options = {k: v for k, v in (("region_name", region), ("endpoint_url", endpoint)) if v}
    return boto3.client(service, **options)
