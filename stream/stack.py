"""The whole stream on one machine: an embedded Kafka-compatible broker and worker processes.

Used by ``sleepstream up`` and ``sleepstream replay-eval`` when no broker is configured,
by the end-to-end tests and by the benchmarks. The broker is ``noida-db`` (installed from
PyPI with the ``stream`` extra; Kafka protocol with correct offsets, idempotent producer
and transactions); the worker is the real thing, ``faust -A stream.app worker``, started
as a subprocess with its settings in the environment, so it can be killed and restarted.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

from stream.settings import StreamSettings

__all__ = [
    "EmbeddedBroker",
    "LocalStack",
    "StackError",
    "WorkerProcess",
    "free_port",
    "wait_for_port",
]

READY_LINE = "[^Worker]: Ready"


class StackError(RuntimeError):
    """A broker or worker process did not start, or died."""


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for_port(port: int, timeout_s: float, proc: subprocess.Popen[bytes] | None = None,
                  what: str = "server", log: Path | None = None) -> None:
    """Wait until something accepts TCP connections on 127.0.0.1:``port``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            msg = f"{what} exited with code {proc.returncode} while starting{_tail(log)}"
            raise StackError(msg)
        with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 0.5):
            return
        time.sleep(0.1)
    msg = f"{what} did not listen on 127.0.0.1:{port} within {timeout_s:.0f} s{_tail(log)}"
    raise StackError(msg)


def _tail(log: Path | None, lines: int = 15) -> str:
    if log is None or not log.exists():
        return ""
    text = log.read_text(errors="replace").splitlines()[-lines:]
    return f"; last lines of {log}:\n" + "\n".join(text)


def _binary(name: str, hint: str) -> str:
    here = Path(sys.executable).parent / name
    if here.exists():
        return str(here)
    found = shutil.which(name)
    if found is None:
        msg = f"`{name}` not found next to {sys.executable} or on PATH; {hint}"
        raise StackError(msg)
    return found


def _die_with_parent() -> None:  # pragma: no cover - runs in the child
    # PR_SET_PDEATHSIG fires when the *thread* that started the child exits: start
    # brokers and workers from a long-lived thread (not from a thread pool)
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _stop(proc: subprocess.Popen[bytes] | None, timeout_s: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout_s)


def _noida_binary() -> str:
    """The broker executable itself.

    The ``noida-db`` console script is a Python wrapper that runs the bundled binary in a
    child process and does not pass signals on, so stopping the wrapper would leave the
    broker running; the binary is started directly instead.
    """
    try:
        from importlib.resources import files

        path = Path(str(files("noida_db").joinpath("noida-db")))
    except ModuleNotFoundError:
        path = Path()
    if path.is_file():
        if not os.access(path, os.X_OK):
            path.chmod(path.stat().st_mode | 0o111)
        return str(path)
    return _binary("noida-db", "install the stream extra: pip install 'sleepstream[stream]'")


@dataclass
class EmbeddedBroker:
    """``noida-db`` serving the Kafka protocol on 127.0.0.1.

    Parameters
    ----------
    data_dir : Path
        Where the broker keeps its log (survives restarts of the worker).
    port : int, optional
        Kafka port (default: a free one).
    """

    data_dir: Path
    port: int = 0
    start_timeout_s: float = 60.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)

    @property
    def url(self) -> str:
        """Faust broker URL."""
        return f"kafka://127.0.0.1:{self.port}"

    @property
    def bootstrap(self) -> str:
        """Bootstrap servers for aiokafka clients."""
        return f"127.0.0.1:{self.port}"

    @property
    def log_path(self) -> Path:
        """The broker's output."""
        return self.data_dir / "broker.log"

    def start(self) -> EmbeddedBroker:
        """Start the broker and wait until it accepts connections."""
        self.port = self.port or free_port()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        exe = _noida_binary()
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [exe, "start", "--data-dir", str(self.data_dir / "noida"), "--host",
                 "127.0.0.1", "--only", "kafka", "--kafka-port", str(self.port)],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                preexec_fn=_die_with_parent,
            )
        wait_for_port(self.port, self.start_timeout_s, self.proc, "noida-db", self.log_path)
        return self

    def stop(self) -> None:
        """Stop the broker (SIGTERM, as a service manager would).

        :meth:`start` brings it back on the same port with the same data: clients see an
        outage for as long as it stays stopped.
        """
        _stop(self.proc)

    def restart(self, down_s: float = 0.0) -> EmbeddedBroker:
        """Stop the broker, keep it down ``down_s`` seconds, and start it again.

        Same port and data folder, so the topics, offsets and committed positions are
        kept. Call it from the thread that started the broker (see
        :func:`_die_with_parent`); to do other work during the outage, call :meth:`stop`
        and :meth:`start` instead.
        """
        if down_s < 0:
            msg = f"down_s must be >= 0 seconds; got {down_s}"
            raise ValueError(msg)
        self.stop()
        time.sleep(down_s)
        return self.start()

    def __enter__(self) -> EmbeddedBroker:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass
class WorkerProcess:
    """``faust -A stream.app worker`` in a subprocess, configured by environment.

    Parameters
    ----------
    env : mapping
        ``SLEEPSTREAM_*`` settings (added to this process's environment).
    log_path : Path
        Where the worker's output goes (appended across restarts).
    cwd : Path, optional
        Working directory (the repository root when run from a checkout).
    """

    env: Mapping[str, str]
    log_path: Path
    cwd: Path | None = None
    start_timeout_s: float = 120.0
    proc: subprocess.Popen[bytes] | None = field(default=None, init=False, repr=False)
    starts: int = field(default=0, init=False)

    def start(self) -> WorkerProcess:
        """Start the worker and wait until Faust reports it ready."""
        exe = _binary("faust", "install the stream extra: pip install 'sleepstream[stream]'")
        env = {**os.environ, **self.env}
        root = str(Path(__file__).resolve().parents[1])
        env["PYTHONPATH"] = os.pathsep.join(p for p in (root, env.get("PYTHONPATH")) if p)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(
                [exe, "-A", "stream.app", "worker", "-l", "info", "--without-web"
                 if env.get("SLEEPSTREAM_WEB_ENABLED", "true").lower() in ("0", "false")
                 else "--with-web"],
                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
                cwd=str(self.cwd) if self.cwd else None, preexec_fn=_die_with_parent,
            )
        self.starts += 1
        deadline = time.monotonic() + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                msg = (f"worker exited with code {self.proc.returncode} while starting"
                       f"{_tail(self.log_path, 40)}")
                raise StackError(msg)
            with self.log_path.open("rb") as f:
                f.seek(offset)
                if READY_LINE.encode() in f.read():
                    return self
            time.sleep(0.2)
        msg = f"worker not ready within {self.start_timeout_s:.0f} s{_tail(self.log_path, 40)}"
        raise StackError(msg)

    @property
    def alive(self) -> bool:
        """Whether the process runs."""
        return self.proc is not None and self.proc.poll() is None

    def kill(self) -> None:
        """``kill -9``: no shutdown, no final commit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(15)

    def stop(self) -> None:
        """Graceful stop (SIGTERM, then SIGKILL)."""
        _stop(self.proc, 30.0)

    def __enter__(self) -> WorkerProcess:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


@dataclass
class LocalStack:
    """An embedded broker and one worker sharing a folder (what ``sleepstream up`` runs).

    Parameters
    ----------
    root : Path
        Folder of the broker's log, the worker's Faust data and both processes' output.
    partitions : int
        Partitions of every topic.
    env : mapping, optional
        More ``SLEEPSTREAM_*`` settings for the worker (sink, web port, ...).
    """

    root: Path
    partitions: int = 4
    env: Mapping[str, str] = field(default_factory=dict)
    broker: EmbeddedBroker = field(init=False)
    worker: WorkerProcess = field(init=False)

    def __post_init__(self) -> None:
        self.broker = EmbeddedBroker(self.root / "broker")
        self.worker = WorkerProcess({}, self.root / "worker.log")

    def settings(self) -> StreamSettings:
        """Settings of clients of this stack (replays, collectors)."""
        return StreamSettings(broker=self.broker.url, partitions=self.partitions)

    def start(self) -> LocalStack:
        """Start the broker, then the worker."""
        self.broker.start()
        self.worker.env = {
            "SLEEPSTREAM_BROKER": self.broker.url,
            "SLEEPSTREAM_PARTITIONS": str(self.partitions),
            "SLEEPSTREAM_DATA_DIR": str(self.root / "worker"),
            "SLEEPSTREAM_INSTANCE_ID": "local-0",
            **self.env,
        }
        try:
            self.worker.start()
        except BaseException:
            self.broker.stop()
            raise
        return self

    def stop(self) -> None:
        """Stop the worker, then the broker."""
        try:
            self.worker.stop()
        finally:
            self.broker.stop()

    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, t: type[BaseException] | None, e: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()
