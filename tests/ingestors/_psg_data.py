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

#: Band power densities (uV^2/Hz; delta, theta, alpha, beta, gamma as in
#: models/features/eeg_spec.py) per stage of a frontal (Fpz-Cz) and a parieto-occipital
#: (Pz-Oz) channel: the medians over the expert-scored epochs of the real Sleep-EDF night
#: SC4001E0 (tests/data/sleep-edf/eeg-spectral-features/SC4001E0.npz). Wake is alpha-rich
#: at the back, N3 delta-dominated, REM low and mixed.
STAGE_PSD_UV2_HZ = {
    Stage.W: ((99.3, 9.29, 1.62, 0.79, 0.82), (5.37, 1.44, 0.96, 0.27, 0.22)),
    Stage.N1: ((14.4, 4.65, 1.08, 0.19, 0.04), (7.67, 3.10, 1.24, 0.09, 0.02)),
    Stage.N2: ((52.0, 5.80, 1.46, 0.21, 0.03), (19.1, 2.86, 0.68, 0.08, 0.02)),
    Stage.N3: ((201.0, 9.55, 1.91, 0.16, 0.02), (70.2, 4.80, 0.71, 0.06, 0.02)),
    Stage.REM: ((12.3, 3.56, 0.89, 0.14, 0.04), (6.73, 2.36, 1.22, 0.07, 0.02)),
}
_UNSCORED_PSD = STAGE_PSD_UV2_HZ[Stage.W]


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


def stage_eeg(stages: np.ndarray, fs_hz: float, seed: int = 0,
              gain: float = 1.0) -> np.ndarray:
    """EEG in uV whose epoch ``k`` (30 s) has the spectrum of stage ``stages[k]``.

    Gaussian noise shaped per epoch to the band power densities of
    :data:`STAGE_PSD_UV2_HZ` (flat within each band, the delta density below 0.5 Hz, the
    gamma density above 30 Hz); even seeds give the frontal channel's spectra, odd seeds the
    parieto-occipital one's. Each epoch's level varies by about 15 % and each band's by 10 %,
    so no two epochs are alike. Unscored and movement epochs get the wake spectra. ``gain``
    scales the whole channel (montages differ).
    """
    rng = np.random.default_rng(seed)
    n_per = round(30 * fs_hz)
    f = np.fft.rfftfreq(n_per, 1.0 / fs_hz)
    band = np.searchsorted(np.array([4.0, 8.0, 13.0, 30.0]), f, side="left")
    parts = []
    for stage in stages:
        psd = np.asarray(STAGE_PSD_UV2_HZ.get(Stage(stage), _UNSCORED_PSD)[seed % 2])
        psd = psd * np.exp(rng.normal(0.0, 0.1, 5) + rng.normal(0.0, 0.15))
        shape = np.sqrt(psd[band] * fs_hz / 2.0)  # unit-variance noise: density 2 / fs
        parts.append(np.fft.irfft(np.fft.rfft(rng.normal(size=n_per)) * shape, n_per))
    return gain * np.concatenate(parts)


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
