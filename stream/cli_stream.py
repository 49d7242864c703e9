"""Stream subcommands of `sleepstream`: up, replay, replay-eval, ble and edf-live."""

from __future__ import annotations

import asyncio
import contextlib
import os
import tempfile
import time
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Literal

import typer

if TYPE_CHECKING:
    from ingestors.replay import ReplayNight
    from stream.settings import StreamSettings

__all__ = ["register"]

Dataset = Literal["sleep-accel", "slpdb", "edf"]


def _speed(text: str) -> float | None:
    t = text.strip().lower().removesuffix("x")
    if t in ("afap", "max", "fast"):
        return None
    if t in ("realtime", "real-time", "live"):
        return 1.0
    try:
        value = float(t)
    except ValueError:
        value = -1.0
    if not value > 0:
        msg = f"--speed must be 'afap', 'realtime' or a factor like 10 or 10x; got {text!r}"
        raise typer.BadParameter(msg)
    return value


def _list(text: str | None) -> tuple[str, ...] | None:
    """``"A, B"`` -> ``("A", "B")``; None stays None."""
    return tuple(s.strip() for s in text.split(",") if s.strip()) if text else None


def _crop(text: str) -> float | None:
    """``--crop``: minutes of wake kept around the sleep period, or ``none``."""
    if text.strip().lower() in ("none", "off", "no"):
        return None
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not value >= 0:
        msg = f"--crop must be minutes >= 0 (30 = sleep period +- 30 min) or 'none'; got {text!r}"
        raise typer.BadParameter(msg)
    return value


def _nights(dataset: str, path: Path, subjects: str | None, *, eeg: str | None = None,
            crop: str = "30", timezone: str | None = None) -> tuple[ReplayNight, ...]:
    from ingestors.replay import psg_nights, sleep_accel_nights, slpdb_nights

    chosen = _list(subjects)
    if dataset == "sleep-accel":
        return sleep_accel_nights(path, chosen)
    if dataset == "slpdb":
        return slpdb_nights(path, chosen)
    if dataset == "edf":
        return psg_nights(path, chosen, eeg=_list(eeg), crop_min=_crop(crop),
                          time_zone=timezone)
    msg = f"dataset must be 'sleep-accel', 'slpdb' or 'edf'; got {dataset!r}"
    raise typer.BadParameter(msg)


def _fail(err: Exception) -> typer.Exit:
    typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
    return typer.Exit(code=2)


def _settings(broker: str | None, **overrides: object) -> StreamSettings:
    """The environment's settings with the options given on the command line."""
    from stream.settings import StreamSettings

    given = {k: v for k, v in {"broker": broker or None, **overrides}.items() if v is not None}
    return StreamSettings(**given)  # type: ignore[arg-type]


#: Options of the live ingestors' spool (see README, "Broker outages").
SpoolDir = Annotated[Path | None, typer.Option(
    help="Folder of the spools: one SQLite file per session holding what the broker has not "
    "acknowledged yet (default: SLEEPSTREAM_SPOOL_DIR, else "
    "$XDG_STATE_HOME/sleepstream/spool or ~/.local/state/sleepstream/spool). Spools left "
    "there by earlier runs are sent too.")]
SpoolMaxMb = Annotated[float | None, typer.Option(
    help="Most MB one session's spool holds while the broker is unreachable before the "
    "ingestor stops (default: SLEEPSTREAM_SPOOL_MAX_MB, 512 = 24 h of 6 EEG channels at "
    "256 Hz).")]


def _quiet_kafka_client() -> None:
    """Keep aiokafka's per-retry connection errors off the terminal during an outage.

    The status line shows the broker state and backlog, and the ingestor logs the outage
    once; aiokafka would log every reconnection attempt (about ten a second).
    """
    import logging

    logging.getLogger("aiokafka").setLevel(logging.CRITICAL)


def replay_cmd(
    dataset: Annotated[str, typer.Argument(help="sleep-accel, slpdb or edf (PSG recordings "
                                           "with their hypnograms).")],
    path: Annotated[Path, typer.Argument(help="The dataset folder.")],
    speed: Annotated[str, typer.Option(help="afap, realtime, or a factor (60 = 60x).")] = "afap",
    subjects: Annotated[str | None, typer.Option(help="Comma-separated subjects (edf: nights, "
                                                 "or the start of their names).")] = None,
    anchor: Annotated[str, typer.Option(help="now: sessions start now; original: keep "
                                        "the recorded clock.")] = "now",
    broker: Annotated[str | None, typer.Option(help="kafka://host:port (default: "
                                               "SLEEPSTREAM_BROKER).")] = None,
    eeg: Annotated[str | None, typer.Option(help="edf: EEG channels to send, by label "
                                            "(e.g. Fpz-Cz,Pz-Oz or C3-M2); default every "
                                            "EEG channel at >= 100 Hz.")] = None,
    crop: Annotated[str | None, typer.Option(help="edf: minutes of wake kept before the first "
                                             "and after the last sleep epoch, or 'none' for "
                                             "the whole scored recording; default 30, the "
                                             "sleep period +- 30 min that the psg models "
                                             "were trained and evaluated on.")] = None,
    timezone: Annotated[str | None, typer.Option("--timezone", help="edf: IANA zone of the "
                                                 "recorders' clock (default Europe/Amsterdam "
                                                 "for Sleep-EDF, UTC for NSRR).")] = None,
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Read and report the nights "
                                          "(channels sent and not sent), send nothing.")] = False,
) -> None:
    """Replay a dataset onto the broker, one session per night, all nights in parallel.

    edf: a folder of PSG recordings with their hypnograms (Sleep-EDF *-PSG.edf with
    *-Hypnogram.edf, NSRR .edf with -nsrr.xml). Their EEG channels are sent as recorded
    (compact, lossless); EOG, EMG and ECG are read and listed but not sent: no model uses
    them yet. While the broker is unreachable the replay waits and then sends on in order;
    it keeps what waits in memory (no spool: the dataset is the durable copy, so an
    interrupted replay is simply run again, and the worker drops what it already had).
    """
    from ingestors.replay import ReplayError, describe_night, run_replay

    if anchor not in ("now", "original"):
        msg = "--anchor must be 'now' or 'original'"
        raise typer.BadParameter(msg)
    if dataset != "edf" and (eeg, crop, timezone) != (None, None, None):
        msg = "--eeg, --crop and --timezone are options of the edf replay"
        raise typer.BadParameter(msg)
    _quiet_kafka_client()
    try:
        nights = _nights(dataset, path, subjects, eeg=eeg, crop=crop or "30",
                         timezone=timezone)
        if dataset == "edf":
            typer.echo("\n".join(describe_night(n) for n in nights))
        if dry_run:
            return
        report = run_replay(nights, _settings(broker), speed=_speed(speed),
                            anchor=anchor)  # type: ignore[arg-type]
    except (ValueError, FileNotFoundError, ReplayError) as err:
        raise _fail(err) from None
    typer.echo(report.summary())


def ble_cmd(
    address: Annotated[str, typer.Option(help="Bluetooth address of the strap or watch "
                                         "(AA:BB:CC:DD:EE:FF; a UUID on macOS).")],
    subject: Annotated[str, typer.Option(help="Subject id (the message key).")],
    session: Annotated[str | None, typer.Option(help="Session id (default: "
                                                "ble-<subject>-<UTC start>).")] = None,
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone of the subject's "
                                          "clock, e.g. Europe/Amsterdam.")] = "UTC",
    span: Annotated[float, typer.Option(help="Send the samples every this many "
                                        "seconds.")] = 5.0,
    broker: Annotated[str | None, typer.Option(help="kafka://host:port (default: "
                                               "SLEEPSTREAM_BROKER).")] = None,
    spool_dir: SpoolDir = None,
    spool_max_mb: SpoolMaxMb = None,
) -> None:
    """Stream a BLE heart-rate strap or watch (Heart Rate Service 0x180D) live until Ctrl-C.

    With RR intervals the session is staged by the cardio models, else by the wearable
    models from heart rate. A dropped link is re-established. Chunks are spooled on disk
    before they are sent: while the broker is unreachable the strap is read on and the
    backlog is sent once it is back; run the same --session again after a crash and the
    session resumes. Ctrl-C ends the session and waits for the broker; a second Ctrl-C
    leaves the rest in the spool.
    """
    from datetime import UTC, datetime

    from ingestors._signals import Abandoned
    from ingestors.base import SendError, SpoolError
    from ingestors.ble import BleakLink, BleError, run_ble

    session_id = session or f"ble-{subject}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    typer.echo(f"session {session_id}: connecting to {address} (Ctrl-C ends the session)")
    _quiet_kafka_client()
    try:
        settings = _settings(broker, spool_dir=spool_dir, spool_max_mb=spool_max_mb)
        report = run_ble(BleakLink(address), subject, session_id, settings,
                         time_zone=timezone, span_s=span)
    except (BleError, SendError, SpoolError, Abandoned, ValueError, ImportError) as err:
        raise _fail(err) from None
    typer.echo(report.summary())


def edf_live_cmd(
    path: Annotated[Path, typer.Argument(help="The EDF/EDF+ file being recorded.")],
    subject: Annotated[str, typer.Option(help="Subject id (the message key).")],
    timezone: Annotated[str, typer.Option("--timezone", help="IANA zone of the recorder's "
                                          "clock, e.g. Europe/Amsterdam (EDF stores local "
                                          "time without a zone).")],
    session: Annotated[str | None, typer.Option(help="Session id (default: "
                                                "edf-<subject>-<UTC now>).")] = None,
    hr: Annotated[str | None, typer.Option("--hr", help="Heart rate channel (bpm).")] = None,
    ecg: Annotated[str | None, typer.Option("--ecg", help="ECG channel: RR intervals from "
                                            "its R peaks (cardio models).")] = None,
    acc: Annotated[str | None, typer.Option("--acc", help="Acceleration channels X,Y,Z (g, "
                                            "mg or m/s^2).")] = None,
    eeg: Annotated[str | None, typer.Option("--eeg", help="EEG channels CH,CH (V, mV or uV, "
                                            ">= 100 Hz): a psg session. Default when no "
                                            "other channel is named: every EEG channel "
                                            "recognised by label.")] = None,
    poll: Annotated[float, typer.Option(help="Seconds between looks at the file.")] = 1.0,
    idle: Annotated[float, typer.Option(help="End the session once the file has not grown "
                                        "for this many seconds.")] = 60.0,
    live: Annotated[bool | None, typer.Option("--live/--no-live", help="The session's live "
                                              "flag (default: live when the file is "
                                              "current).")] = None,
    broker: Annotated[str | None, typer.Option(help="kafka://host:port (default: "
                                               "SLEEPSTREAM_BROKER).")] = None,
    spool_dir: SpoolDir = None,
    spool_max_mb: SpoolMaxMb = None,
) -> None:
    """Stream an EDF/EDF+ file that is still being recorded, as a live session.

    Reads each data record once it is complete. EEG channels give a psg session (their
    samples sent as recorded; EOG, EMG, ECG and the rest listed, not sent: one session per
    subject at a time); an ECG channel gives RR intervals (cardio models); heart rate
    and/or acceleration give a wearable session. Without --eeg, --ecg, --hr or --acc the
    channels are recognised by label, EEG first. Chunks are spooled on disk before they
    are sent: while the broker is unreachable the file is followed on and the backlog is
    sent once it is back; run the same --session again after a crash and the session
    resumes where the spool says. The session ends when the file stops growing for --idle
    seconds, or on Ctrl-C (a second Ctrl-C stops waiting for the broker).
    """
    from datetime import UTC, datetime

    from ingestors._signals import Abandoned
    from ingestors.base import SendError, SpoolError
    from ingestors.live_edf import run_edf_live

    axes = [a.strip() for a in acc.split(",")] if acc else None
    session_id = session or f"edf-{subject}-{datetime.now(UTC):%Y%m%dT%H%M%SZ}"
    typer.echo(f"session {session_id}: following {path} (Ctrl-C ends the session)")
    _quiet_kafka_client()
    try:
        settings = _settings(broker, spool_dir=spool_dir, spool_max_mb=spool_max_mb)
        report = run_edf_live(path, subject, session_id, settings,
                              time_zone=timezone, hr=hr, ecg=ecg, acc=axes,
                              eeg=_list(eeg), poll_s=poll, idle_s=idle, live=live)
    except (SendError, SpoolError, Abandoned, ValueError, FileNotFoundError) as err:
        raise _fail(err) from None
    typer.echo(report.summary())


def _embedded_or_configured(stack: ExitStack, broker: str | None, root: Path,
                            env: dict[str, str]) -> StreamSettings:
    """The configured broker, or an embedded broker and worker started in ``root``."""
    from stream.stack import LocalStack

    if broker or os.environ.get("SLEEPSTREAM_BROKER"):
        return _settings(broker)
    local = stack.enter_context(LocalStack(root, env=env))
    typer.echo(f"embedded broker {local.broker.url}; worker log {local.worker.log_path}")
    return local.settings()


def replay_eval_cmd(
    dataset: Annotated[str, typer.Argument(help="sleep-accel or slpdb.")],
    path: Annotated[Path, typer.Argument(help="The dataset folder.")],
    out: Annotated[Path, typer.Option(help="Where the results go.")] = Path("runs/stream-eval"),
    subjects: Annotated[str | None, typer.Option(help="Comma-separated subjects.")] = None,
    broker: Annotated[str | None, typer.Option(help="Use this broker and its running "
                                               "worker instead of embedded ones.")] = None,
    timeout: Annotated[float, typer.Option(help="Seconds to wait for all events.")] = 900.0,
) -> None:
    """Replay a dataset through the broker and worker and score the stage events.

    Without a configured broker (--broker or SLEEPSTREAM_BROKER) an embedded broker and
    worker are started. Checks every epoch against the batch predictions of the same
    models and scores causal and offline events against the labels (κ etc.).
    """
    from ingestors.errors import DataFormatError
    from stream.replay_eval import run_and_evaluate

    try:
        nights = _nights(dataset, path, subjects)
    except (DataFormatError, FileNotFoundError) as err:
        raise _fail(err) from None
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sleepstream-") as tmp:
        settings = _embedded_or_configured(stack, broker, Path(tmp), {
            "SLEEPSTREAM_WEB_ENABLED": "false", "SLEEPSTREAM_END_WAIT_S": "2"})
        result = run_and_evaluate(dataset, nights, settings, timeout_s=timeout)
    paths = result.write(out)
    typer.echo(result.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in paths))
    if not (result.complete and result.parity_ok):
        raise typer.Exit(code=1)


def up_cmd(
    data: Annotated[Path | None, typer.Option(help="A Sleep-Accel folder (default: the "
                                              "bundled night).")] = None,
    subjects: Annotated[str | None, typer.Option(help="Comma-separated subjects.")] = None,
    speed: Annotated[str, typer.Option(help="afap, realtime, or a factor.")] = "120",
    out: Annotated[Path, typer.Option(help="Where the hypnograms go.")] = Path("runs/up"),
    port: Annotated[int, typer.Option(help="Worker web port (127.0.0.1).")] = 6066,
    stay: Annotated[bool, typer.Option(help="Keep the stack and the live page running "
                                       "after the night, until Ctrl-C.")] = False,
) -> None:
    """Run the whole stream on this machine: broker, worker, replay, live stages.

    Starts an embedded Kafka-compatible broker and the Faust worker, prints the address of
    the live page, replays the bundled Sleep-Accel night (or --data) as a live device
    would, prints each stage as the worker emits it, then the offline revision and the
    night summary, and draws the hypnograms.
    """
    from ingestors.samples import sleep_accel_sample

    folder = data or sleep_accel_sample()
    nights = _nights("sleep-accel", folder, subjects)
    with ExitStack() as stack, tempfile.TemporaryDirectory(prefix="sleepstream-") as tmp:
        settings = _embedded_or_configured(stack, None, Path(tmp), {
            "SLEEPSTREAM_WEB_PORT": str(port), "SLEEPSTREAM_END_WAIT_S": "2"})
        typer.echo(f"live page: http://127.0.0.1:{port}/live/ (open it to watch the night "
                   "fill in)")
        asyncio.run(_live(nights, settings, _speed(speed), out))
        if stay:
            typer.echo(f"still serving http://127.0.0.1:{port}/live/ -- Ctrl-C to stop")
            with contextlib.suppress(KeyboardInterrupt):
                while True:
                    time.sleep(3600)


async def _live(nights: tuple[ReplayNight, ...], settings: StreamSettings,
                speed: float | None, out: Path) -> None:
    from rich.console import Console

    from ingestors.replay import replay
    from stream.collect import OutputCollector

    console = Console()
    collector = OutputCollector(settings)
    await collector.start()
    expected = {(n.subject_id, n.session_id): n.n_epochs for n in nights}
    task = asyncio.create_task(replay(nights, settings, speed=speed, anchor="now",
                                      progress=False))
    shown = 0
    colours = {"W": "yellow", "light": "cyan", "deep": "blue", "REM": "magenta"}
    try:
        while not collector.complete(expected):
            await collector.poll(0.5)
            fresh = sorted(
                (ev for (_, _, kind), evs in collector.events.items() if kind == "causal"
                 for ev in evs.values()), key=lambda e: (e.epoch_start_utc, e.subject_id))
            for ev in fresh[shown:]:
                t = timedelta(seconds=ev.epoch_index * 30)
                console.print(f"{ev.subject_id:>10} +{t}  epoch {ev.epoch_index:>4}  "
                              f"[{colours[ev.stage]}]{ev.stage:<5}[/] p={ev.confidence:.2f}"
                              f"  latency {ev.latency_s * 1000:.0f} ms")
            shown = len(fresh)
            if task.done() and task.exception() is not None:
                raise task.exception()  # type: ignore[misc]
        await task
    finally:
        await collector.stop()
    _night_report(nights, collector, out, console)


def _night_report(nights: tuple[ReplayNight, ...], collector: object, out: Path,
                  console: object) -> None:
    import matplotlib.pyplot as plt
    import numpy as np

    from models.evaluation.plots import plot_hypnogram
    from models.stages import class_stages
    from stream.collect import OutputCollector

    assert isinstance(collector, OutputCollector)
    out.mkdir(parents=True, exist_ok=True)
    names = ("W", "light", "deep", "REM")
    for night in nights:
        key = (night.subject_id, night.session_id)
        summary = collector.summaries[(*key, "offline")]
        typer.echo(
            f"{night.subject_id}: TST {summary.tst_min:.0f} min, sleep efficiency "
            f"{summary.se_pct or 0:.0f} %, WASO {summary.waso_min:.0f} min, sleep onset "
            f"{summary.sol_min if summary.sol_min is not None else float('nan'):.0f} min"
        )
        for kind in ("causal", "offline"):
            evs = collector.events[(*key, kind)]
            p = np.array([[evs[k].probabilities[c] for c in names] for k in sorted(evs)])
            path = out / f"{night.subject_id}-{kind}.png"
            fig = plot_hypnogram(class_stages(p.argmax(1), 4), probabilities=p,
                                 reference=night.labels, stage_set=4,
                                 title=f"{night.subject_id} {kind} (stream)", path=path)
            plt.close(fig)
            typer.echo(f"  {kind} hypnogram: {path}")


def register(app: typer.Typer) -> None:
    """Add the stream commands to the ``sleepstream`` app."""
    app.command("up")(up_cmd)
    app.command("replay")(replay_cmd)
    app.command("replay-eval")(replay_eval_cmd)
    app.command("ble")(ble_cmd)
    app.command("edf-live")(edf_live_cmd)
