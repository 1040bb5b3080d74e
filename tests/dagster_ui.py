"""Talking to a running `dagster dev` the way the UI does: its GraphQL API."""

from __future__ import annotations

from collections.abc import Callable

import requests
from servers import wait_for

LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on RepositoryLocation { repositories { name jobs { name } } } }
} } } }
"""


def graphql_client(port: int) -> Callable[..., dict]:
    url = f"http://127.0.0.1:{port}/graphql"

    def graphql(query: str, **variables: object) -> dict:
        answer = requests.post(url, json={"query": query, "variables": variables}, timeout=30)
        answer.raise_for_status()
        return answer.json()["data"]

    return graphql


def loaded_location(graphql: Callable[..., dict], timeout: float = 180) -> dict:
    """The code location once `dagster dev` has loaded it."""

    def loaded() -> dict | None:
        entries = graphql(LOCATIONS)["workspaceOrError"]["locationEntries"]
        return entries[0] if entries and entries[0]["loadStatus"] == "LOADED" else None

    return wait_for(loaded, timeout, "the code location to load")
