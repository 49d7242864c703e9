"""Real headless Chromium for the tests, driven through the Chrome DevTools Protocol.

:class:`HeadlessChromium` starts Debian's ``chromium`` with a fresh profile folder and
``--remote-debugging-port=0``, reads the port Chromium chose from the profile's
``DevToolsActivePort`` file and talks to the page over aiohttp's websocket client (no
playwright, no selenium). Every wait has a time limit and a message that says what did not
happen; :meth:`HeadlessChromium.close` always kills the browser and removes the profile.
A missing binary skips the tests, or fails them under ``CI``
(:func:`tests.servers.require_binary`).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp

from tests.servers import require_binary

__all__ = ["CHROMIUM_FLAGS", "CdpError", "HeadlessChromium"]

#: The flags every test browser starts with (plus a fresh --user-data-dir).
CHROMIUM_FLAGS = (
    "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync",
)
START_TIMEOUT_S = 45.0
CALL_TIMEOUT_S = 30.0


class CdpError(RuntimeError):
    """Chromium did not start, a DevTools call failed, or a wait ran out of time."""


class HeadlessChromium:
    """One headless Chromium with one page (use ``async with``).

    Parameters
    ----------
    log_path : Path
        Where Chromium's output goes (kept after the browser is gone).
    window : tuple of int
        Window size in CSS pixels.
    """

    def __init__(self, log_path: Path, window: tuple[int, int] = (1400, 1000)) -> None:
        self.log_path, self.window = log_path, window
        self.exceptions: list[str] = []
        self._proc: subprocess.Popen[bytes] | None = None
        self._profile: Path | None = None
        self._http: aiohttp.ClientSession | None = None
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._next_id = 0

    async def __aenter__(self) -> HeadlessChromium:
        try:
            await self.start()
        except BaseException:
            await self.close()
            raise
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def start(self) -> None:
        """Start the browser and connect to its page."""
        exe = require_binary("chromium")
        self._profile = Path(tempfile.mkdtemp(prefix="sleepstream-chromium-"))
        argv = [exe, *CHROMIUM_FLAGS, f"--user-data-dir={self._profile}",
                "--remote-debugging-port=0", f"--window-size={self.window[0]},{self.window[1]}",
                "about:blank"]
        with self.log_path.open("ab") as log:
            self._proc = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT,
                                          stdin=subprocess.DEVNULL, start_new_session=True)
        port = await self._devtools_port()
        self._http = aiohttp.ClientSession()
        page = await self._page_target(port)
        self._ws = await self._http.ws_connect(page["webSocketDebuggerUrl"], max_msg_size=0)
        await self.call("Page.enable")
        await self.call("Runtime.enable")
        await self.call("Emulation.setDeviceMetricsOverride", width=self.window[0],
                        height=self.window[1], deviceScaleFactor=1, mobile=False)

    async def _devtools_port(self) -> int:
        assert self._proc is not None and self._profile is not None
        marker = self._profile / "DevToolsActivePort"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                code = self._proc.returncode
                msg = f"chromium exited with code {code} while starting{self._tail()}"
                raise CdpError(msg)
            with contextlib.suppress(OSError, ValueError, IndexError):
                return int(marker.read_text().splitlines()[0])
            await asyncio.sleep(0.1)
        msg = f"chromium wrote no {marker.name} within {START_TIMEOUT_S:.0f} s{self._tail()}"
        raise CdpError(msg)

    async def _page_target(self, port: int) -> dict[str, Any]:
        assert self._http is not None
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            with contextlib.suppress(aiohttp.ClientError):
                async with self._http.get(f"{base}/json/list") as resp:
                    pages = [t for t in await resp.json() if t.get("type") == "page"]
                if pages:
                    return pages[0]
                async with self._http.put(f"{base}/json/new?about:blank") as resp:
                    return await resp.json()
            await asyncio.sleep(0.2)
        msg = f"chromium's DevTools on port {port} listed no page within {START_TIMEOUT_S:.0f} s"
        raise CdpError(msg)

    def _tail(self, lines: int = 20) -> str:
        with contextlib.suppress(OSError):
            text = self.log_path.read_text(errors="replace").splitlines()[-lines:]
            return f"; chromium log {self.log_path}:\n" + "\n".join(text)
        return ""

    async def call(self, method: str, timeout_s: float = CALL_TIMEOUT_S, **params: Any) -> Any:
        """Send one DevTools command and return its result (events meanwhile are noted)."""
        if self._ws is None:
            msg = f"{method}: not connected (call start() first)"
            raise CdpError(msg)
        self._next_id += 1
        mine = self._next_id
        await self._ws.send_str(json.dumps({"id": mine, "method": method, "params": params}))
        deadline = time.monotonic() + timeout_s
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                msg = f"DevTools {method} got no answer within {timeout_s:.0f} s"
                raise CdpError(msg)
            try:
                raw = await self._ws.receive(timeout=left)
            except TimeoutError:
                continue
            if raw.type != aiohttp.WSMsgType.TEXT:
                msg = f"DevTools connection closed during {method} ({raw.type!r}){self._tail()}"
                raise CdpError(msg)
            data = json.loads(raw.data)
            if data.get("method") == "Runtime.exceptionThrown":
                details = data["params"]["exceptionDetails"]
                self.exceptions.append(str(details.get("exception", {}).get(
                    "description", details.get("text"))))
            if data.get("id") != mine:
                continue
            if "error" in data:
                msg = f"DevTools {method} failed: {data['error']}"
                raise CdpError(msg)
            return data.get("result", {})

    async def goto(self, url: str) -> None:
        """Open ``url`` in the page."""
        result = await self.call("Page.navigate", url=url)
        if result.get("errorText"):
            msg = f"cannot open {url}: {result['errorText']}"
            raise CdpError(msg)
        await self.wait_for("document.readyState === 'complete' && location.href !== "
                            "'about:blank'", f"{url} loaded", CALL_TIMEOUT_S)

    async def evaluate(self, expression: str) -> Any:
        """The value of a JavaScript expression in the page (JSON-able values)."""
        result = await self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                                 awaitPromise=True)
        if "exceptionDetails" in result:
            msg = f"page script failed: {expression!r}: {result['exceptionDetails']}"
            raise CdpError(msg)
        return result["result"].get("value")

    async def wait_for(self, expression: str, what: str, timeout_s: float,
                       every_s: float = 0.25) -> Any:
        """Poll ``expression`` until it is truthy; its value, or :class:`CdpError` naming
        ``what`` and the last value seen."""
        deadline = time.monotonic() + timeout_s
        value: Any = None
        while time.monotonic() < deadline:
            try:
                value = await self.evaluate(expression)
            except CdpError as err:  # e.g. the document is still being replaced
                value = f"script error: {err}"
            else:
                if value:
                    return value
            await asyncio.sleep(every_s)
        msg = f"the page did not show {what} within {timeout_s:.0f} s (last value {value!r})"
        raise CdpError(msg)

    async def screenshot(self, path: Path) -> Path:
        """Save a PNG of the whole page (beyond the window when it is taller)."""
        metrics = await self.call("Page.getLayoutMetrics")
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(self.window[0], int(size["width"])),
                "height": max(self.window[1], int(size["height"])), "scale": 1}
        shot = await self.call("Page.captureScreenshot", format="png", clip=clip,
                               captureBeyondViewport=True)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(base64.b64decode(shot["data"]))
        return path

    async def close(self) -> None:
        """Disconnect, kill the browser (its whole process group) and delete the profile."""
        if self._ws is not None:
            with contextlib.suppress(Exception):
                await self._ws.close()
            self._ws = None
        if self._http is not None:
            await self._http.close()
            self._http = None
        proc, self._proc = self._proc, None
        if proc is not None and proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # its own group (start_new_session)
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(10)
        if self._profile is not None:
            shutil.rmtree(self._profile, ignore_errors=True)
            self._profile = None
