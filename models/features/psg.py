"""psg features: what the EEG nets read per channel and epoch, made from the EEG measures.

The input of every epoch is, for each channel of a session's channel set, the seven measures
of :mod:`models.features.eeg_spec` (band power densities ``p_delta`` .. ``p_gamma`` in
uV^2/Hz, the variance ``var`` and the variance of the first difference ``var_diff`` in
uV^2), as the raw-EEG front-end computes them or as the Sleep-EDF training data hold them.
A channel-epoch whose measures hold a NaN, an infinity or a negative value has no measures (a
gap, an epoch the front-end masked) and is not *present*: its features are 0 and the nets
mask it.

Per present channel-epoch, :func:`spectral_features` gives the ``eeg_spectrum`` group of
the registry: log band power densities, the log share of each band in the summed band powers
(density x band width; these and the ratios, the entropy and the Hjorth mobility do not
change with the amplifier's gain), the log variance, the Hjorth mobility, band ratios and the
entropy of the band shares. :class:`PsgFeatures` adds the ``eeg_night`` group: each of those
relative to the same channel's night so far (running mean and variance from the session
start, :class:`~models.features.night.NightRelative` with the ``PSG_NIGHT_*`` constants),
which removes most of what the montage, the electrode impedance and the person add to the
levels. Everything is causal: row ``k`` depends on the measures of epochs ``0..k`` only.

:func:`psg_features` (training) feeds a whole night through :meth:`PsgFeatures.step`, the
same code the stream runs epoch by epoch, so both give bit-identical rows; the state
round-trips exactly through :meth:`~PsgFeatures.to_state` / :meth:`~PsgFeatures.from_state`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import ArrayLike, NDArray

from models.features import eeg_spec
from models.features import registry as reg
from models.features.night import NightRelative

__all__ = ["N_MEASURES", "PsgFeatures", "PsgRows", "psg_features", "spectral_features"]

F64 = NDArray[np.float64]
F32 = NDArray[np.float32]

#: Measures per channel and epoch (``eeg_spec.EEG_MEASURES``).
N_MEASURES = len(eeg_spec.EEG_MEASURES)
_BANDS = tuple(eeg_spec.EEG_BANDS_HZ)
_WIDTHS_HZ = np.array([hi - lo for lo, hi in eeg_spec.EEG_BANDS_HZ.values()])
_RATIO_INDEX = tuple(
    ([_BANDS.index(b) for b in num], [_BANDS.index(b) for b in den])
    for _, num, den in reg.PSG_RATIOS
)
_N_SPECTRUM = len(reg.FEATURE_GROUPS["eeg_spectrum"])
_STATE_VERSION = 1


class PsgRows(NamedTuple):
    """Feature rows of a channel set and which channels had measures.

    Attributes
    ----------
    features : ndarray of float32, shape (..., n_channels, n_features)
        The psg family's features of each channel (registry order); 0 where not present.
    present : ndarray of bool, shape (..., n_channels)
        True where the channel had measures in the epoch.
    """

    features: F32
    present: NDArray[np.bool_]


def spectral_features(measures: ArrayLike) -> F64:
    """The ``eeg_spectrum`` features of channel-epochs with measures.

    Parameters
    ----------
    measures : array-like of float, shape (..., 7)
        ``p_delta .. p_gamma`` (uV^2/Hz), ``var``, ``var_diff`` (uV^2), all finite and >= 0.

    Returns
    -------
    ndarray of float64, shape (..., 16)
        In the order of ``FEATURE_GROUPS["eeg_spectrum"]`` (definitions in
        ``FEATURE_DESCRIPTIONS``).
    """
    m = np.asarray(measures, dtype=np.float64)
    if m.shape[-1:] != (N_MEASURES,):
        msg = f"EEG measures must have shape (..., {N_MEASURES}); got {m.shape}"
        raise ValueError(msg)
    density = m[..., :5] + reg.PSG_POWER_FLOOR_UV2_HZ
    power = density * _WIDTHS_HZ
    log_share = np.log(power / power.sum(axis=-1, keepdims=True))
    var = m[..., 5] + reg.PSG_VAR_FLOOR_UV2
    ratios = [np.log(power[..., num].sum(axis=-1) / power[..., den].sum(axis=-1))
              for num, den in _RATIO_INDEX]
    entropy = -(np.exp(log_share) * log_share).sum(axis=-1) / np.log(len(_BANDS))
    return np.concatenate([
        np.log(density), log_share,
        np.stack([np.log(var), np.sqrt(m[..., 6] / var), *ratios, entropy], axis=-1),
    ], axis=-1)


def _present(m: F64) -> NDArray[np.bool_]:
    with np.errstate(invalid="ignore"):
        return np.all(np.isfinite(m) & (m >= 0.0), axis=-1)


class PsgFeatures:
    """One session's causal psg features, fed the EEG measures of one epoch at a time.

    Parameters
    ----------
    channels : sequence of str
        Labels of the session's EEG channels (any montage, at least one, unique), in the
        order of the measures' channel axis. They name the channels of the state.
    """

    def __init__(self, channels: Sequence[str]) -> None:
        labels = tuple(str(c) for c in channels)
        if not labels or len(set(labels)) != len(labels):
            msg = (f"PsgFeatures needs one or more EEG channels with unique labels; got "
                   f"{list(labels)}")
            raise ValueError(msg)
        self.channels = labels
        self.n_closed = 0
        self._night = [NightRelative(_N_SPECTRUM, "psg") for _ in labels]

    @property
    def n_channels(self) -> int:
        """Number of channels."""
        return len(self.channels)

    @property
    def n_features(self) -> int:
        """Features per channel."""
        return len(reg.feature_names("psg"))

    def step(self, measures: ArrayLike) -> PsgRows:
        """Close the next epoch: its measures in, its feature rows out.

        Parameters
        ----------
        measures : array-like of float, shape (n_channels, 7)
            The epoch's measures of each channel (:mod:`~models.features.eeg_spec` units);
            a row holding NaN, infinity or a negative value means no measures.

        Returns
        -------
        PsgRows
            ``features`` (n_channels, n_features) float32 and ``present`` (n_channels,).
        """
        m = np.asarray(measures, dtype=np.float64)
        if m.shape != (self.n_channels, N_MEASURES):
            msg = (f"EEG measures of one epoch must have shape ({self.n_channels}, "
                   f"{N_MEASURES}) for channels {list(self.channels)}; got {m.shape}")
            raise ValueError(msg)
        present = _present(m)
        out = np.zeros((self.n_channels, 2 * _N_SPECTRUM))
        if present.any():
            spec = spectral_features(m[present])
            for row, c in enumerate(np.flatnonzero(present)):
                out[c, :_N_SPECTRUM] = spec[row]
                out[c, _N_SPECTRUM:] = self._night[c].step(spec[row], 1.0)
        self.n_closed += 1
        return PsgRows(out.astype(np.float32), present)

    def to_state(self) -> dict[str, Any]:
        """JSON-able state (exact)."""
        return {
            "state_version": _STATE_VERSION,
            "feature_version": reg.feature_version("psg"),
            "channels": list(self.channels),
            "n_closed": self.n_closed,
            "night": [n.to_state() for n in self._night],
        }

    @classmethod
    def from_state(cls, state: dict[str, Any]) -> PsgFeatures:
        """Rebuild from :meth:`to_state` output.

        Raises
        ------
        ValueError
            If the state was written by another feature version or layout, or is corrupt.
        """
        for key, expected in (("state_version", _STATE_VERSION),
                              ("feature_version", reg.feature_version("psg"))):
            if state.get(key) != expected:
                msg = (f"psg feature state has {key} {state.get(key)!r}, this code writes "
                       f"{expected!r}; start the session's features afresh")
                raise ValueError(msg)
        new = cls(state["channels"])
        if len(state["night"]) != new.n_channels:
            msg = (f"psg feature state has {len(state['night'])} night statistics for "
                   f"{new.n_channels} channels; the state is corrupt")
            raise ValueError(msg)
        new.n_closed = int(state["n_closed"])
        new._night = [NightRelative.from_state(s, "psg") for s in state["night"]]
        return new


def psg_features(measures: ArrayLike, channels: Sequence[str] | None = None) -> PsgRows:
    """Feature rows of a whole session, exactly as :class:`PsgFeatures` gives them live.

    Parameters
    ----------
    measures : array-like of float, shape (n_epochs, n_channels, 7)
        Every epoch's measures from the session start, NaN where a channel has none.
    channels : sequence of str, optional
        Channel labels; default ``ch0``, ``ch1``, ...

    Returns
    -------
    PsgRows
        ``features`` (n_epochs, n_channels, n_features) and ``present`` (n_epochs, n_channels).
    """
    m = np.asarray(measures, dtype=np.float64)
    if m.ndim != 3 or m.shape[2] != N_MEASURES:
        msg = (f"EEG measures of a session must have shape (n_epochs, n_channels, "
               f"{N_MEASURES}); got {m.shape}")
        raise ValueError(msg)
    state = PsgFeatures(channels if channels is not None else
                        [f"ch{i}" for i in range(m.shape[1])])
    feats = np.zeros((m.shape[0], state.n_channels, state.n_features), dtype=np.float32)
    present = np.zeros((m.shape[0], state.n_channels), dtype=bool)
    for e in range(m.shape[0]):
        feats[e], present[e] = state.step(m[e])
    return PsgRows(feats, present)
