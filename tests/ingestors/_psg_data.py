"""PSG recordings for the ingest tests: EDF files of known digital samples, with hypnograms.

* :func:`write_psg` writes an EDF(+) file with pyedflib from digital (int16) samples and
  each channel's calibration, so that the tests know exactly which samples must arrive.
* :func:`stage_eeg` generates EEG whose stage is known per 30-s epoch: alpha-dominated
  wake, N1 with slowed alpha and theta, N2 with theta (no spindles or K-complexes),
  delta-dominated N3, low-amplitude mixed-frequency REM, over a 1/f background (white noise
  shaped in the frequency domain, so that hours at 256 Hz take a moment).
* :func:`sleep_edf_hypnogram` and :func:`nsrr_xml` write the two hypnogram formats the PSG
  replay pairs recordings with.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pyedflib

from ingestors.hypnogram_io import write_edf_annotations
from ingestors.types import Hypnogram
from models.stages import Stage

#: Extra components per stage: frequencies (Hz) and amplitudes (uV) over the background.
_STAGE_WAVES = {
    Stage.W: ((9.5, 10.0, 10.5, 20.0), (15.0, 25.0, 15.0, 3.0)),
    Stage.N1: ((5.0, 6.0, 8.5), (10.0, 10.0, 6.0)),
    Stage.N2: ((4.5, 5.5, 6.5, 1.5), (12.0, 14.0, 10.0, 10.0)),
    Stage.N3: ((0.8, 1.2, 1.6, 2.0), (45.0, 55.0, 45.0, 30.0)),
    Stage.REM: ((3.0, 5.0, 7.0, 18.0), (4.0, 4.0, 4.0, 2.0)),
}
#: Background RMS per stage (uV): REM is low-amplitude.
_BACKGROUND_RMS = {Stage.W: 8.0, Stage.N1: 8.0, Stage.N2: 10.0, Stage.N3: 12.0,
                   Stage.REM: 5.0}


@dataclass(frozen=True)
class Channel:
    """One signal to write: label, rate, unit, digital samples and the calibration."""

    label: str
    fs_hz: float
    unit: str
    digital: np.ndarray  # int16 (or int32 within 24 bits for BDF)
    physical_min: float = -500.0
    physical_max: float = 500.0
    digital_min: int = -32768
    digital_max: int = 32767

    @property
    def gain(self) -> float:
        return (self.physical_max - self.physical_min) / (self.digital_max - self.digital_min)

    @property
    def offset(self) -> float:
        return self.physical_max / self.gain - self.digital_max

    def physical(self) -> np.ndarray:
        """The physical values an EDF reader decodes (edflib's formula)."""
        return self.gain * (self.offset + self.digital.astype(np.float64))


def digitise(uv: np.ndarray, label: str, fs_hz: float, unit: str = "uV",
             span: float = 500.0) -> Channel:
    """A channel of ``uv`` (in ``unit``) quantised to int16 over ``[-span, span]``."""
    ch = Channel(label, fs_hz, unit, np.zeros(0, dtype=np.int16), -span, span)
    digital = np.clip(np.rint(uv / ch.gain - ch.offset), -32768, 32767).astype(np.int16)
    return Channel(label, fs_hz, unit, digital, -span, span)


def write_psg(path: Path, channels: list[Channel], start: datetime,
              file_type: int = pyedflib.FILETYPE_EDFPLUS) -> Path:
    """Write the channels' digital samples into an EDF(+) file with 1-s data records."""
    writer = pyedflib.EdfWriter(str(path), len(channels), file_type=file_type)
    try:
        writer.setSignalHeaders([{
            "label": c.label, "dimension": c.unit, "sample_frequency": c.fs_hz,
            "physical_min": c.physical_min, "physical_max": c.physical_max,
            "digital_min": c.digital_min, "digital_max": c.digital_max, "transducer": "",
            "prefilter": ""} for c in channels])
        writer.setStartdatetime(start)
        writer.writeSamples([c.digital.astype(np.int32) for c in channels], digital=True)
    finally:
        writer.close()
    return path


def read_back(path: Path) -> dict[str, Channel]:
    """The channels of a written file as pyedflib reads them (digital values and header)."""
    with pyedflib.EdfReader(str(path)) as reader:
        out = {}
        for i, label in enumerate(reader.getSignalLabels()):
            h = reader.getSignalHeader(i)
            out[label] = Channel(label, reader.getSampleFrequency(i), h["dimension"],
                                 reader.readSignal(i, digital=True).astype(np.int32),
                                 h["physical_min"], h["physical_max"], h["digital_min"],
                                 h["digital_max"])
        return out


def background(n: int, fs_hz: float, seed: int) -> np.ndarray:
    """1/f noise of unit RMS up to 45 Hz: white noise shaped in the frequency domain."""
    rng = np.random.default_rng(seed)
    spec = np.fft.rfft(rng.normal(size=n))
    f = np.fft.rfftfreq(n, 1.0 / fs_hz)
    shape = np.where((f >= 0.3) & (f <= 45.0), 1.0 / np.sqrt(np.maximum(f, 0.3)), 0.0)
    x = np.fft.irfft(spec * shape, n)
    return x / np.std(x)


def stage_eeg(stages: np.ndarray, fs_hz: float, seed: int = 0) -> np.ndarray:
    """EEG in uV whose epoch ``k`` (30 s) looks like stage ``stages[k]``."""
    n_per = round(30 * fs_hz)
    t = np.arange(stages.size * n_per) / fs_hz
    rng = np.random.default_rng(seed + 1)
    rms = np.repeat([_BACKGROUND_RMS.get(Stage(s), 8.0) for s in stages], n_per)
    out = background(t.size, fs_hz, seed) * rms
    for stage, (freqs, amps) in _STAGE_WAVES.items():
        mask = np.repeat(stages == stage, n_per)
        for f, a in zip(freqs, amps, strict=True):
            out[mask] += a * np.cos(2 * np.pi * f * t[mask] + rng.uniform(0, 2 * np.pi))
    return out


def sleep_edf_hypnogram(path: Path, stages: np.ndarray, start: datetime,
                        subject: str = "SC4001E") -> Path:
    """A Sleep-EDF style EDF+ hypnogram of ``stages`` (30-s epochs) from ``start``."""
    zone = ZoneInfo("Europe/Amsterdam")
    hyp = Hypnogram(np.asarray(stages, dtype=np.int8), start.replace(tzinfo=zone),
                    subject=subject)
    return write_edf_annotations(hyp, path, tz=zone)


_NSRR_NAMES = {Stage.W: "Wake|0", Stage.N1: "Stage 1 sleep|1", Stage.N2: "Stage 2 sleep|2",
               Stage.N3: "Stage 3 sleep|3", Stage.REM: "REM sleep|5",
               Stage.UNSCORED: "Unscored|9"}


def nsrr_xml(path: Path, stages: np.ndarray, onset_s: float = 0.0,
             epoch_s: float = 30.0) -> Path:
    """An NSRR ``<PSGAnnotation>`` file of ``stages`` from ``onset_s`` after the EDF start."""
    events = "".join(
        f"<ScoredEvent><EventType>Stages|Stages</EventType><EventConcept>"
        f"{_NSRR_NAMES[Stage(s)]}</EventConcept><Start>{onset_s + epoch_s * k:g}</Start>"
        f"<Duration>{epoch_s:g}</Duration></ScoredEvent>" for k, s in enumerate(stages))
    path.write_text(
        '<?xml version="1.0" encoding="UTF-8" standalone="no"?>\n<PSGAnnotation>'
        f"<SoftwareVersion>Compumedics</SoftwareVersion><EpochLength>{epoch_s:g}</EpochLength>"
        "<ScoredEvents><ScoredEvent><EventType/><EventConcept>Recording Start Time"
        "</EventConcept><Start>0</Start><Duration>36000</Duration><ClockTime>00.00.00 "
        f"22.00.00</ClockTime></ScoredEvent>{events}</ScoredEvents></PSGAnnotation>\n")
    return path


def night_stages(n_wake: int, n_sleep: int, n_after: int) -> np.ndarray:
    """Wake, then a sleep period cycling N1, N2, N3, N2, REM, then wake."""
    cycle = [Stage.N1, Stage.N2, Stage.N2, Stage.N3, Stage.N3, Stage.N2, Stage.REM, Stage.REM]
    sleep = [cycle[k % len(cycle)] for k in range(n_sleep)]
    return np.array([Stage.W] * n_wake + sleep + [Stage.W] * n_after, dtype=np.int8)
