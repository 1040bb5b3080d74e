"""PostgreSQL connection URLs read without ever showing their password: the server they name, and the URL with
its user and password percent-encoded for psycopg2."""

from __future__ import annotations

from urllib.parse import quote, unquote, urlparse


class PostgresSettingError(ValueError):
    """A connection URL that cannot be read; the message quotes no part of its password."""


def encoded_url(url: str) -> str:
    """A postgresql:// URL with its user and password percent-encoded. A password written as it is, with `/`,
    `#`, `?` or `@` in it, is read up to the last `@` before the host: such a URL means the same to a person,
    and psycopg2 would otherwise take part of the password for the host, path or fragment."""
    scheme, separator, rest = url.partition("://")
    if not separator:
        return url  # a key=value connection string: psycopg2 reads it as it is
    if scheme not in ("postgresql", "postgres"):
        raise PostgresSettingError("TEEM_POSTGRES_URL is not a postgresql://user:password@host:port/database URL")
    if "@" not in rest:
        return url
    credentials, _, location = rest.rpartition("@")
    user, colon, password = credentials.partition(":")
    encoded = quote(unquote(user), safe="") + (":" + quote(unquote(password), safe="") if colon else "")
    return f"{scheme}://{encoded}@{location}"


def server_of(dsn: str) -> str:
    """host:port/database of a connection URL or key=value string: never its user or password."""
    if "://" in dsn:
        parsed = urlparse(encoded_url(dsn))
        host = parsed.hostname or dict(p.split("=", 1) for p in parsed.query.split("&") if "=" in p).get("host")
        return f"{host}:{parsed.port or 5432}/{parsed.path.lstrip('/')}"
    import psycopg2.extensions  # here: the settings import this module on a cluster node, which has no psycopg2

    parts = psycopg2.extensions.parse_dsn(dsn)
    return f"{parts.get('host')}:{parts.get('port', 5432)}/{parts.get('dbname')}"
