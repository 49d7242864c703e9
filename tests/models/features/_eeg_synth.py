"""Generated EEG with known content, exact at any sampling rate (sums of cosines)."""

from __future__ import annotations

import numpy as np


def multisine(t_s: np.ndarray, freqs_hz: np.ndarray, amps_uv: np.ndarray,
              phases: np.ndarray) -> np.ndarray:
    """``sum_i amps[i] cos(2 pi freqs[i] t + phases[i])`` at times ``t_s`` (uV)."""
    out = np.zeros(t_s.size)
    for a in range(0, t_s.size, 20_000):  # blocks keep the (n_t, n_f) product small
        tt = t_s[a:a + 20_000, None]
        out[a:a + 20_000] = np.cos(2 * np.pi * freqs_hz * tt + phases) @ amps_uv
    return out


def noise_components(seed: int, slope: float, rms_uv: float, f_max_hz: float = 49.9,
                     step_hz: float = 0.05) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cosines every ``step_hz`` up to ``f_max_hz``: density ``~ 1 / f**slope``, random phases.

    The density is flat (``slope`` 0), 1/f (1) or 1/f^2 (2); the amplitudes are scaled to an
    RMS of ``rms_uv``.
    """
    rng = np.random.default_rng(seed)
    f = np.arange(step_hz, f_max_hz, step_hz)
    amps = f ** (-slope / 2.0)
    amps *= rms_uv / np.sqrt(np.sum(amps**2) / 2.0)
    return f, amps, rng.uniform(0, 2 * np.pi, f.size)


def stage_eeg(stage: str, fs_hz: float, duration_s: float, seed: int = 0,
              t0_s: float = 0.0) -> np.ndarray:
    """Caricature EEG (uV) of wake (10-Hz alpha) or N3 (1-2 Hz delta) over 1/f background."""
    f, a, p = noise_components(seed, 1.0, 8.0)
    rng = np.random.default_rng(seed + 1)
    if stage == "W":
        extra_f, extra_a = np.array([9.6, 10.0, 10.4]), np.array([12.0, 20.0, 12.0])
    elif stage == "N3":
        extra_f, extra_a = np.array([0.8, 1.2, 1.6, 2.0]), np.array([40.0, 50.0, 40.0, 30.0])
    else:
        msg = f"stage must be 'W' or 'N3'; got {stage!r}"
        raise ValueError(msg)
    f = np.concatenate([f, extra_f])
    a = np.concatenate([a, extra_a])
    p = np.concatenate([p, rng.uniform(0, 2 * np.pi, extra_f.size)])
    t = t0_s + np.arange(round(duration_s * fs_hz)) / fs_hz
    return multisine(t, f, a, p)
