"""Talking to a running `dagster dev` the way the UI does: its GraphQL API."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import requests
from servers import free_port, running, wait_for

ROOT = Path(__file__).resolve().parents[1]

LOCATIONS = """
{ workspaceOrError { ... on Workspace { locationEntries {
    name loadStatus
    locationOrLoadError { __typename ... on RepositoryLocation { repositories { name jobs { name } } } }
} } } }
"""


def base_url(port: int) -> str:
    return f"http://127.0.0.1:{port}"


def graphql_client(port: int) -> Callable[..., dict]:
    url = f"{base_url(port)}/graphql"

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


def local_env(folder: Path, root: Path, postgres_url: str, pg_schema: str) -> dict[str, str]:
    """The environment of a `dagster dev` on a folder root: its instance, state and PostgreSQL schema."""
    return {
        **os.environ,
        "DAGSTER_HOME": str(folder / "dagster"),
        "TEEM_ROOT": str(root),
        "TEEM_HOME": str(folder / "teem"),
        "TEEM_POSTGRES_URL": postgres_url,
        "TEEM_PG_SCHEMA": pg_schema,
    }


@contextlib.contextmanager
def dagster_dev(
    env: dict[str, str], folder: Path, port: int | None = None
) -> Iterator[tuple[Callable[..., dict], dict]]:
    """`dagster dev` on the project's workspace with `env` (its DAGSTER_HOME created), until the code location
    has loaded; yields the GraphQL client and the location."""
    os.makedirs(env["DAGSTER_HOME"], exist_ok=True)
    port = port or free_port()
    dagster = str(Path(sys.executable).parent / "dagster")
    command = [dagster, "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)]
    graphql = graphql_client(port)
    with running(command, env, str(ROOT), str(folder / "dagster-dev.log")):
        yield graphql, loaded_location(graphql)
