"""The InfluxDB sinks: the 2.x write API through influxdb-client, and 1.x line protocol.

Both build their points with :mod:`stream.sinks.points` and inherit batching, retries and
back-pressure from :class:`~stream.sinks.base.BatchingSink`.
"""

from __future__ import annotations

import asyncio
import base64
import json
import logging
from typing import Any, Final, Unpack

import aiohttp
from influxdb_client import Point
from influxdb_client.client.influxdb_client_async import InfluxDBClientAsync
from influxdb_client.client.write_api_async import WriteApiAsync
from influxdb_client.rest import ApiException

from stream.sinks.base import BatchingSink, SinkOptions
from stream.sinks.errors import RetryableWriteError, check_status, error_text

__all__ = ["InfluxV1Sink", "InfluxV2Sink"]

log = logging.getLogger(__name__)

#: Failures of the connection itself (refused, reset, timed out): always worth a retry.
_TRANSIENT: Final = (aiohttp.ClientError, asyncio.TimeoutError, OSError)


def _check_url(url: str) -> str:
    if not url.startswith(("http://", "https://")):
        msg = f"the database URL must start with http:// or https://; got {url!r}"
        raise ValueError(msg)
    return url.rstrip("/")


class InfluxV2Sink(BatchingSink):
    """Write points through influxdb-client's async write API (``/api/v2/write``).

    For InfluxDB 2.x/3.x and anything that accepts the 2.x write API (VictoriaMetrics).

    Parameters
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:8086``.
    token, org, bucket : str
        Credentials and destination; an empty token sends no Authorization header.
    **options
        Batching and retry options of :class:`~stream.sinks.base.BatchingSink`.
    """

    def __init__(
        self, url: str, token: str, org: str, bucket: str, **options: Unpack[SinkOptions]
    ) -> None:
        super().__init__(**options)
        self.url = _check_url(url)
        if not bucket:
            msg = "InfluxV2Sink needs a bucket name; got ''"
            raise ValueError(msg)
        self.org, self.bucket = org, bucket
        self._token = token
        self._client: InfluxDBClientAsync | None = None
        self._write_api: WriteApiAsync | None = None

    @property
    def target(self) -> str:
        """URL and bucket."""
        return f"{self.url} bucket {self.bucket!r}"

    def __repr__(self) -> str:
        return f"InfluxV2Sink({self.url!r}, org={self.org!r}, bucket={self.bucket!r})"

    def _api(self) -> WriteApiAsync:
        if self._write_api is None:  # the async client must be created inside the loop
            self._client = InfluxDBClientAsync(
                url=self.url, token=self._token, org=self.org,
                timeout=int(self.timeout_s * 1000),
            )
            self._write_api = self._client.write_api()
        return self._write_api

    async def _send(self, points: list[Point]) -> None:
        try:
            await self._api().write(bucket=self.bucket, record=points)
        except ApiException as exc:
            if not exc.status:  # the client could not build the request: a bug, not data
                raise
            headers: Any = getattr(exc, "headers", None)  # case-insensitive multidict or None
            retry_after = headers.get("Retry-After") if headers else None
            check_status(exc.status, error_text(exc.body) or str(exc.reason), retry_after)
        except _TRANSIENT as exc:
            msg = f"cannot reach the database: {exc!r}"
            raise RetryableWriteError(msg) from exc

    async def _close_transport(self) -> None:
        if self._client is not None:
            await self._client.close()
            self._client = self._write_api = None


class InfluxV1Sink(BatchingSink):
    """Post line protocol to InfluxDB 1.x ``/write``, creating the database on first use.

    Parameters
    ----------
    url : str
        Base URL, e.g. ``http://127.0.0.1:8086``.
    database : str
        Database name; ``CREATE DATABASE`` (idempotent) is sent before the first write.
    username, password : str, optional
        HTTP basic auth when the server has ``auth-enabled``.
    retention_policy : str, optional
        Retention policy to write into (it must exist); None: the database's default.
    **options
        Batching and retry options of :class:`~stream.sinks.base.BatchingSink`.
    """

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        retention_policy: str | None = None,
        **options: Unpack[SinkOptions],
    ) -> None:
        super().__init__(**options)
        self.url = _check_url(url)
        if not database:
            msg = "InfluxV1Sink needs a database name; got ''"
            raise ValueError(msg)
        self.database, self.retention_policy = database, retention_policy
        self._headers = {"Authorization": _basic_auth(username, password or "")} if username else {}
        self._session: aiohttp.ClientSession | None = None
        self._database_ready = False

    @property
    def target(self) -> str:
        """URL and database."""
        return f"{self.url} database {self.database!r}"

    def __repr__(self) -> str:
        return f"InfluxV1Sink({self.url!r}, database={self.database!r})"

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # created inside the running loop, as aiohttp wants
            self._session = aiohttp.ClientSession(
                headers=self._headers, timeout=aiohttp.ClientTimeout(total=self.timeout_s)
            )
        return self._session

    async def _post(
        self, path: str, params: dict[str, str], data: bytes
    ) -> tuple[int, str, str | None]:
        try:
            async with self._http().post(self.url + path, params=params, data=data) as resp:
                return resp.status, await resp.text(), resp.headers.get("Retry-After")
        except _TRANSIENT as exc:
            msg = f"cannot reach the database: {exc!r}"
            raise RetryableWriteError(msg) from exc

    async def _create_database(self) -> None:
        name = self.database.replace("\\", "\\\\").replace('"', '\\"')
        query = f'CREATE DATABASE "{name}"'
        status, text, retry_after = await self._post("/query", {"q": query}, b"")
        if status == 429 or status >= 500:
            check_status(status, error_text(text), retry_after)
        problem = error_text(text) if status >= 300 else _statement_error(text)
        if problem:  # e.g. a write-only user: the write itself will say if the db is missing
            log.warning(
                "%s: CREATE DATABASE failed (HTTP %d): %s; writing anyway", self.target,
                status, problem,
            )
        self._database_ready = True

    async def _send(self, points: list[Point]) -> None:
        if not self._database_ready:
            await self._create_database()
        params = {"db": self.database, "precision": "ns"}
        if self.retention_policy:
            params["rp"] = self.retention_policy
        body = "\n".join(p.to_line_protocol() for p in points).encode()
        status, text, retry_after = await self._post("/write", params, body)
        check_status(status, error_text(text), retry_after)

    async def _close_transport(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None


def _basic_auth(username: str, password: str) -> str:
    """HTTP basic auth header value (aiohttp 3.14 deprecates its BasicAuth helper)."""
    return "Basic " + base64.b64encode(f"{username}:{password}".encode()).decode("ascii")


def _statement_error(text: str) -> str:
    """The error of the first statement of a 1.x ``/query`` answer, or ''."""
    try:
        results = json.loads(text).get("results") or [{}]
    except (ValueError, AttributeError):
        return text.strip()[:300]
    return str(results[0].get("error", "")) if isinstance(results[0], dict) else ""
