"""``push`` through grafana-client against a stand-in Grafana HTTP API on loopback.

No Grafana binary is available to the tests, so a small HTTP server answers the four
endpoints ``push`` uses the way Grafana documents them and records every request.
"""

from __future__ import annotations

import base64
import json
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from typer.testing import CliRunner

from dashboards.cli import PACKAGE_DIR, dashboards_app, push
from dashboards.generate import DASHBOARDS
from dashboards.influxql import DATASOURCE_UID


@dataclass
class FakeGrafana:
    """State of the stand-in: folders, data sources, saved dashboards, requests seen."""

    url: str = ""
    folders: set[str] = field(default_factory=set)
    datasources: set[str] = field(default_factory=set)
    dashboards: dict[str, dict[str, Any]] = field(default_factory=dict)
    requests: list[tuple[str, str, str | None]] = field(default_factory=list)


def _handler(state: FakeGrafana) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
            pass

        def _answer(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _refused(self) -> bool:
            if self.headers.get("Authorization") == "Bearer bad":
                self._answer(401, {"message": "invalid API key"})
                return True
            return False

        def do_GET(self) -> None:
            state.requests.append(("GET", self.path, self.headers.get("Authorization")))
            if self._refused():
                return
            kind, _, uid = self.path.removeprefix("/api/").partition("/")
            known = {"folders": state.folders, "datasources": state.datasources}.get(kind, set())
            uid = uid.removeprefix("uid/")
            self._answer(200, {"uid": uid}) if uid in known else self._answer(
                404, {"message": "not found"})

        def do_POST(self) -> None:
            state.requests.append(("POST", self.path, self.headers.get("Authorization")))
            if self._refused():
                return
            body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            if self.path == "/api/folders":
                state.folders.add(body["uid"])
                self._answer(200, {"uid": body["uid"], "title": body["title"]})
            elif self.path == "/api/dashboards/db":
                if body["folderUid"] not in state.folders:
                    self._answer(400, {"message": "folder not found"})
                    return
                uid = body["dashboard"]["uid"]
                state.dashboards[uid] = body
                self._answer(200, {"status": "success", "uid": uid, "url": f"/d/{uid}/x"})
            else:
                self._answer(404, {"message": "not found"})

    return Handler


@pytest.fixture
def grafana() -> Iterator[FakeGrafana]:
    state = FakeGrafana()
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()
    thread.join()


def test_push_creates_the_folder_and_overwrites_every_dashboard(grafana: FakeGrafana) -> None:
    result = push(grafana.url, "secret-token")
    assert result.urls == [f"/d/{uid}/x" for uid in sorted(DASHBOARDS)]
    assert result.datasource_found is False
    assert grafana.folders == {"sleepstream"}
    for uid, body in grafana.dashboards.items():
        committed = json.loads((PACKAGE_DIR / "json" / f"{uid}.json").read_text())
        assert body["dashboard"] == committed
        assert body["overwrite"] is True and body["folderUid"] == "sleepstream"
    assert {auth for *_, auth in grafana.requests} == {"Bearer secret-token"}

    grafana.datasources.add(DATASOURCE_UID)
    assert push(grafana.url, "secret-token").datasource_found is True
    assert [r[1] for r in grafana.requests].count("/api/folders") == 1  # created once


def test_push_command_reads_url_and_basic_auth_from_the_environment(
    grafana: FakeGrafana,
) -> None:
    grafana.datasources.add(DATASOURCE_UID)
    env = {"GRAFANA_URL": grafana.url, "GRAFANA_USER": "admin", "GRAFANA_PASSWORD": "pw",
           "GRAFANA_TOKEN": ""}
    result = CliRunner().invoke(dashboards_app, ["push"], env=env)
    assert result.exit_code == 0, result.output
    assert result.output.count("pushed ") == len(DASHBOARDS)
    basic = "Basic " + base64.b64encode(b"admin:pw").decode()
    assert {auth for *_, auth in grafana.requests} == {basic}


def test_push_command_fails_cleanly_when_grafana_refuses(grafana: FakeGrafana) -> None:
    result = CliRunner().invoke(dashboards_app, ["push", "--url", grafana.url, "--token", "bad"],
                                env={"GRAFANA_USER": ""})
    assert result.exit_code == 2
    assert "error:" in result.output and "Unauthorized" in result.output
    assert grafana.dashboards == {}
