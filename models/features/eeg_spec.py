"""What the EEG front-end measures per channel and 30-s epoch, and how (the psg family's input).

These are the measures of the Sleep-EDF spectral data the psg models are trained on
(``shared/data/sleep-edf/eeg-spectral-features``, README section 6): the signal at
:data:`EEG_FS_HZ`, Welch's periodogram of each epoch (Hann windows of
:data:`WELCH_NPERSEG` samples, :data:`WELCH_NOVERLAP` overlap, mean removed per segment,
one-sided density) averaged over the bins ``low <= f <= high`` of each band, the variance
of the epoch and the variance of its first difference. The front-end
(:mod:`models.features.eeg`) computes them from raw EEG; training reads them from the data.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Final

__all__ = [
    "EEG_BANDS_HZ",
    "EEG_EPOCH_SAMPLES",
    "EEG_FS_HZ",
    "EEG_MEASURES",
    "EEG_MEASURE_UNITS",
    "EEG_MIN_FS_HZ",
    "WELCH_NOVERLAP",
    "WELCH_NPERSEG",
]

#: Rate the measures are computed at; other rates >= EEG_MIN_FS_HZ are resampled to it.
EEG_FS_HZ: Final[int] = 100
#: Lowest input rate accepted: below it the gamma band (30-50 Hz) is not in the signal.
EEG_MIN_FS_HZ: Final[float] = 100.0
#: Samples of one 30-s epoch at EEG_FS_HZ.
EEG_EPOCH_SAMPLES: Final[int] = 30 * EEG_FS_HZ
WELCH_NPERSEG: Final[int] = 256
WELCH_NOVERLAP: Final[int] = 128
#: Band edges in Hz, both inclusive (the bins with low <= f <= high are averaged).
EEG_BANDS_HZ: Final = MappingProxyType({
    "delta": (0.5, 4.0), "theta": (4.0, 8.0), "alpha": (8.0, 13.0), "beta": (13.0, 30.0),
    "gamma": (30.0, 50.0),
})
#: The measures per channel and epoch, in this order.
EEG_MEASURES: Final[tuple[str, ...]] = (
    "p_delta", "p_theta", "p_alpha", "p_beta", "p_gamma", "var", "var_diff",
)
#: Their units: band powers are mean spectral densities, the variances of the signal in uV.
EEG_MEASURE_UNITS: Final[tuple[str, ...]] = ("uV^2/Hz",) * 5 + ("uV^2", "uV^2")
