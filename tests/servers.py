"""Real database servers for the tests, started and stopped by fixtures (a pytest plugin).

* ``victoria_metrics`` (session): Debian's ``victoria-metrics``, which accepts the InfluxDB
  2.x write API (``/api/v2/write``); read points back with :meth:`VictoriaMetrics.export`.
* ``influxdb_v1`` (session): Debian's ``influxd`` 1.x (``/write`` + InfluxQL ``/query``);
  query with :meth:`InfluxDB1.query`.
* ``influxdb_v1_restartable`` (function): the same ``influxd``, for tests that stop and
  start it (an outage); it is running again after the test whatever happened.

Both bind 127.0.0.1 on free ports and keep their data in pytest's temporary directory. A
missing binary skips the tests with a one-line reason, or fails them when the environment
variable ``CI`` is set (then ``.ci/setup`` was not run). Servers die with the test process
(``PR_SET_PDEATHSIG`` on Linux), so even a killed pytest leaves nothing listening.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from stream.stack import free_port

__all__ = [
    "InfluxDB1",
    "ServerProcess",
    "VictoriaMetrics",
    "free_port",
    "influxdb_v1",
    "influxdb_v1_restartable",
    "require_binary",
    "victoria_metrics",
]

START_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0


def require_binary(name: str) -> str:
    """Path of ``name``; skip (or fail under ``CI``) with a one-line reason when missing."""
    path = shutil.which(name)
    if path is None:
        reason = f"{name} not installed (apt-get install {_APT[name]}; .ci/setup does it)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}: run .ci/setup before the tests in CI", pytrace=False)
        pytest.skip(reason)
    return path


_APT = {"victoria-metrics": "victoria-metrics", "influxd": "influxdb", "chromium": "chromium"}


_LIBC = ctypes.CDLL(None) if sys.platform == "linux" else None


def _die_with_parent() -> None:
    """Runs in the child between fork and exec: SIGTERM it when the starting thread ends."""
    if _LIBC is not None:
        _LIBC.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


def http(
    method: str, url: str, data: bytes | None = None, timeout_s: float = 10.0
) -> tuple[int, bytes]:
    """Status and body of one request (HTTP errors are answers, not exceptions)."""
    req = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(req, timeout=timeout_s) as resp:
            return int(resp.status), resp.read()
    except urllib.error.HTTPError as err:
        with err:
            return int(err.code), err.read()


class ServerProcess:
    """A server binary run as a child process, with a health URL to wait for."""

    def __init__(
        self, name: str, make_argv: Callable[[], list[str]], port: int, health_path: str,
        workdir: Path,
    ) -> None:
        self.name, self.port, self.workdir = name, port, workdir
        self._make_argv, self._health_path = make_argv, health_path
        self.log_path = workdir / f"{name}.log"
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """Base URL of the HTTP API."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        """Whether the process is alive."""
        return self._proc is not None and self._proc.poll() is None

    def start(self) -> None:
        """Start the process and wait until its health URL answers.

        Call it from the main thread: the server is stopped when the thread that started
        it ends (``PR_SET_PDEATHSIG``).
        """
        if self.running:
            return
        argv = self._make_argv()
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                cwd=self.workdir, preexec_fn=_die_with_parent,
            )
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                break
            with contextlib.suppress(OSError):
                if http("GET", self.url + self._health_path, timeout_s=1)[0] < 300:
                    return
            time.sleep(0.05)
        self.stop()
        pytest.fail(
            f"{self.name} did not answer {self._health_path} within {START_TIMEOUT_S} s "
            f"({' '.join(argv)}); log tail:\n{self.log_tail()}", pytrace=False,
        )

    def stop(self) -> None:
        """Terminate the process; kill it when it does not exit in time."""
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT_S)

    def log_tail(self, n: int = 30) -> str:
        """Last ``n`` lines of the server's log."""
        with contextlib.suppress(OSError):
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-n:])
        return "(no log)"


class VictoriaMetrics(ServerProcess):
    """VictoriaMetrics single-node: writes through ``/api/v2/write``, reads by export."""

    def force_flush(self) -> None:
        """Make every point received so far visible to queries (else ~1-2 s later)."""
        status, body = http("GET", self.url + "/internal/force_flush")
        assert status < 300, body

    def export(self, match: str) -> list[dict[str, Any]]:
        """Every series matching the selector ``match``, all time, as export JSON lines.

        Each line is ``{"metric": {"__name__": "<measurement>_<field>", <tags>...},
        "values": [...], "timestamps": [<ms>...]}``.
        """
        self.force_flush()
        query = urllib.parse.urlencode({"match[]": match, "start": "0"})
        status, body = http("GET", f"{self.url}/api/v1/export?{query}")
        assert status == 200, body
        return [json.loads(line) for line in body.splitlines() if line.strip()]


class InfluxDB1(ServerProcess):
    """InfluxDB 1.x: line protocol on ``/write``, InfluxQL on ``/query``."""

    def query(self, q: str, db: str | None = None, epoch: str = "ns") -> list[dict[str, Any]]:
        """The ``series`` of the first statement's result (``[]`` when there is none)."""
        params = {"q": q, "epoch": epoch} | ({"db": db} if db else {})
        status, body = http("POST", f"{self.url}/query?{urllib.parse.urlencode(params)}")
        assert status == 200, body
        result = json.loads(body)["results"][0]
        assert "error" not in result, result["error"]
        return list(result.get("series", []))


def _vm_argv(binary: str, port: int, data: Path) -> list[str]:
    return [
        binary, f"-httpListenAddr=127.0.0.1:{port}", f"-storageDataPath={data}",
        # keep points of any age: the default retention (1 month) silently drops old nights
        "-retentionPeriod=100y",
        "-search.latencyOffset=0s",  # recent points are visible at once
        "-search.disableCache",  # no stale cached answers between writes and reads
        # identical series + timestamp keep one sample (InfluxDB's overwrite, roughly):
        # without it a rewritten point is exported twice
        "-dedup.minScrapeInterval=1ms",
    ]


def _influxd_config(path: Path, http_port: int, rpc_port: int) -> Path:
    root = path.parent
    conf = f"""\
reporting-enabled = false
bind-address = "127.0.0.1:{rpc_port}"
[meta]
  dir = "{root / "meta"}"
  logging-enabled = false
[data]
  dir = "{root / "data"}"
  wal-dir = "{root / "wal"}"
  query-log-enabled = false
[monitor]
  store-enabled = false
[http]
  bind-address = "127.0.0.1:{http_port}"
  log-enabled = false
  pprof-enabled = false
[ifql]
  enabled = false
[continuous_queries]
  enabled = false
[subscriber]
  enabled = false
[logging]
  level = "warn"
  suppress-logo = true
"""
    path.write_text(conf)
    return path


@pytest.fixture(scope="session")
def victoria_metrics(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VictoriaMetrics]:
    """A VictoriaMetrics server on a free 127.0.0.1 port, for the whole session."""
    binary = require_binary("victoria-metrics")
    work = tmp_path_factory.mktemp("victoria-metrics")
    port = free_port()
    server = VictoriaMetrics(
        "victoria-metrics", lambda: _vm_argv(binary, port, work / "data"), port, "/health", work
    )
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def influxdb_v1(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InfluxDB1]:
    """An ``influxd`` 1.x on free 127.0.0.1 ports (HTTP and RPC), for the whole session."""
    binary = require_binary("influxd")
    work = tmp_path_factory.mktemp("influxd")
    port, rpc = free_port(), free_port()
    conf = _influxd_config(work / "influxdb.conf", port, rpc)
    server = InfluxDB1("influxd", lambda: [binary, "-config", str(conf)], port, "/ping", work)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def influxdb_v1_restartable(influxdb_v1: InfluxDB1) -> Iterator[InfluxDB1]:
    """The session's ``influxd``, which the test may ``stop()`` and ``start()`` (same port
    and data); it is running again when the test ends."""
    yield influxdb_v1
    influxdb_v1.start()
