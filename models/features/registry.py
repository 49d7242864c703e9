"""The ordered feature registry: names, definitions, parameters and the feature versions.

Every model family receives one ordered tuple of per-epoch feature columns
(:data:`FAMILY_FEATURES`), built from named groups (:data:`FEATURE_GROUPS`, as sleepecg's
``_FEATURE_GROUPS``); a family of :data:`PER_CHANNEL_FAMILIES` (``psg``) receives that tuple
once per channel of a variable channel set. All parameters that change a feature's value live
here as well (the psg family's also in :mod:`models.features.eeg_spec`, which defines the EEG
measures its features are made from), and each family has its own version
(:data:`FEATURE_VERSIONS`): a change to a definition is a change to this file, and the
versions of the families it touches are bumped with it (:data:`FAMILY_PARAMETER_PREFIXES`
says which constants belong to which family). Model cards record their family's version; the
runtime refuses a model whose card does not match what the stream computes, so a new or
changed family leaves the other families' shipped models valid.

Window names give the window length in seconds ending at the close of the epoch
(``600s`` = the 10 min before the epoch end); ``epoch`` is the closing epoch itself.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from typing import Any, Final, Literal

from models.features import eeg_spec

__all__ = [
    "FAMILIES",
    "FAMILY_FEATURES",
    "FAMILY_GROUPS",
    "FAMILY_PARAMETER_PREFIXES",
    "FEATURE_DESCRIPTIONS",
    "FEATURE_GROUPS",
    "FEATURE_VERSIONS",
    "PER_CHANNEL_FAMILIES",
    "Family",
    "feature_names",
    "feature_spec",
    "feature_version",
    "is_parameter",
    "spec_digest",
]

Family = Literal["wearable", "cardio", "psg"]
FAMILIES: Final[tuple[Family, ...]] = ("wearable", "cardio", "psg")

#: Each family's feature version: changes whenever one of its names, their order, or a
#: parameter of its features changes (a test pins it with :func:`spec_digest`).
FEATURE_VERSIONS: Final[dict[str, str]] = {"wearable": "4", "cardio": "4", "psg": "1"}

#: Families whose feature rows come per channel, shape (n_channels, n_features), for a set
#: of channels of any size, montage and order.
PER_CHANNEL_FAMILIES: Final[frozenset[str]] = frozenset({"psg"})

#: The constants of this module that shape each family's features, by name prefix (a test
#: checks that every constant belongs to a family). The psg family also depends on every
#: constant of :mod:`models.features.eeg_spec`.
FAMILY_PARAMETER_PREFIXES: Final[dict[str, tuple[str, ...]]] = {
    "wearable": ("HR_", "NIGHT_HIST_", "NIGHT_SCALE_", "ACT_", "COUNT_"),
    "cardio": ("RR_", "PNN_", "SPEC_", "LF_", "HF_", "VLF_", "NIGHT_REL_", "NIGHT_HIST_",
               "NIGHT_SCALE_"),
    "psg": ("PSG_",),
}

# --- heart rate (watch / strap bpm samples at irregular times) ------------------------------
HR_WINDOWS_S: Final[tuple[float, ...]] = (60.0, 150.0, 300.0, 600.0, 1800.0, 3600.0)
HR_EXPECTED_PERIOD_S: Final[float] = 5.0  # Apple Watch in Sleep-Accel: median step 5 s
HR_MAX_PAIR_GAP_S: Final[float] = 15.0  # successive differences only across steps <= this
HR_VALID_BPM: Final[tuple[float, float]] = (25.0, 250.0)  # outside: treated as missing
NIGHT_HIST_LO_BPM: Final[float] = 20.0  # night histogram: 1-bpm bins centred on 20..250
NIGHT_HIST_BINS: Final[int] = 231
NIGHT_SCALE_FLOOR_BPM: Final[float] = 3.0  # robust night std never below this

# --- activity counts (15-s counts, given or computed from raw acceleration) -----------------
# plus the closing epoch; the 30- and 60-min windows (as for heart rate) carry the slow
# trends that separate deep sleep and REM, which the causal net's 12.5-min context cannot see
ACT_WINDOWS_S: Final[tuple[float, ...]] = (150.0, 300.0, 600.0, 1800.0, 3600.0)
COUNT_PERIOD_S: Final[float] = 15.0

# --- the count algorithm (see models.features.counts) ---------------------------------------
COUNT_FS_HZ: Final[int] = 50
COUNT_BAND_HZ: Final[tuple[float, float]] = (3.0, 11.0)
COUNT_FILTER_ORDER: Final[int] = 5
COUNT_N_BINS: Final[int] = 128
COUNT_RANGE_G: Final[float] = 5.0
COUNT_OFFSET: Final[float] = 18.0
COUNT_SCALE: Final[float] = 3.07
COUNT_MAX_GAP_S: Final[float] = 1.0
COUNT_MAX_ABS_G: Final[float] = 100.0  # beyond: not a measurement (sensors saturate at 8-16 g)
COUNT_MIN_POINTS_PER_SECOND: Final[int] = 25
COUNT_MIN_VALID_SECONDS: Final[int] = 10

# --- RR intervals / HRV ---------------------------------------------------------------------
RR_WINDOWS_S: Final[tuple[float, ...]] = (60.0, 150.0, 300.0)
RR_VALID_S: Final[tuple[float, float]] = (0.3, 2.0)
RR_MAX_REL_DEV: Final[float] = 0.2  # vs the median of the last RR_MEDIAN_BEATS NN intervals
RR_MEDIAN_BEATS: Final[int] = 11
RR_CONTIGUOUS_TOL_S: Final[float] = 0.25
PNN_THRESHOLD_S: Final[float] = 0.05
SPEC_WINDOW_S: Final[float] = 300.0
SPEC_FS_HZ: Final[float] = 4.0
LF_BAND_HZ: Final[tuple[float, float]] = (0.04, 0.15)
HF_BAND_HZ: Final[tuple[float, float]] = (0.15, 0.40)
SPEC_MIN_COVERAGE: Final[float] = 0.5
# slow heart-rate variability: spread of beat HR over long windows and of 30-s mean HR across
# epochs (wake and REM move the heart rate over minutes; stable NREM does not)
RR_SLOW_WINDOWS_S: Final[tuple[float, ...]] = (300.0, 600.0, 1800.0, 3600.0)
RR_EPOCH_WINDOWS_S: Final[tuple[float, ...]] = (150.0, 300.0, 600.0)
# breathing, read from the 300-s tachogram spectrum (respiratory sinus arrhythmia)
VLF_BAND_HZ: Final[tuple[float, float]] = (0.01, 0.04)
# night-relative RR features (models.features.night): each HRV column against its own night so
# far, as the offline nets do with the whole night; only epochs whose NN coverage in the last
# NIGHT_REL_COVERAGE_WINDOW_S is at least NIGHT_REL_MIN_COVERAGE count
NIGHT_REL_COVERAGE_WINDOW_S: Final[float] = 60.0
NIGHT_REL_MIN_COVERAGE: Final[float] = 0.5
NIGHT_REL_MIN_EPOCHS: Final[int] = 2
NIGHT_REL_VAR_FLOOR: Final[float] = 1.0e-6
NIGHT_REL_CLIP: Final[float] = 6.0

# --- EEG spectra (psg family): what models.features.psg derives from the EEG measures -----
# The measures per channel and epoch (band power densities in uV^2/Hz, the variance and the
# variance of the first difference in uV^2) are defined in models.features.eeg_spec.
#: Added to a band power density before a logarithm or a ratio: below the noise of EEG
#: amplifiers (about 0.01 uV^2/Hz), so that a flat, disconnected channel stays finite.
PSG_POWER_FLOOR_UV2_HZ: Final[float] = 1.0e-3
#: Added to the variance (uV^2) before its logarithm and in the Hjorth mobility's denominator.
PSG_VAR_FLOOR_UV2: Final[float] = 1.0e-2
#: Band ratios ``(name, numerator bands, denominator bands)``: ln of the summed band powers
#: (density x band width) of the numerator over the denominator's.
PSG_RATIOS: Final[tuple[tuple[str, tuple[str, ...], tuple[str, ...]], ...]] = (
    ("theta_alpha", ("theta",), ("alpha",)),
    ("delta_beta", ("delta",), ("beta",)),
    ("slow_fast", ("delta", "theta"), ("alpha", "beta")),
)
# night-relative EEG features: each feature of a channel against that channel's night so far
# (running mean and variance over the epochs it had measures in; models.features.night)
PSG_NIGHT_MIN_EPOCHS: Final[int] = 2
PSG_NIGHT_VAR_FLOOR: Final[float] = 1.0e-2  # in the features' units: ln-powers, mobility
PSG_NIGHT_CLIP: Final[float] = 6.0


def _label(window_s: float) -> str:
    return f"{window_s:g}s"


def _hr_names() -> tuple[str, ...]:
    names: list[str] = []
    for w in map(_label, HR_WINDOWS_S):
        names += [f"hr_level_{w}", f"hr_std_{w}", f"hr_sdiff_{w}", f"hr_slope_{w}", f"hr_cov_{w}"]
    return (*names, "hr_cov_epoch")


def _activity_names() -> tuple[str, ...]:
    names: list[str] = []
    for w in ("epoch", *map(_label, ACT_WINDOWS_S)):
        names += [f"act_log_mean_{w}", f"act_log_max_{w}", f"act_frac_active_{w}", f"act_cov_{w}"]
    return (*names, "act_log_min_since_move")


def _rr_slow_names() -> tuple[str, ...]:
    names = [f"rr_hrstd_{w}" for w in map(_label, RR_SLOW_WINDOWS_S)]
    names += [f"rr_ephrstd_{w}" for w in map(_label, RR_EPOCH_WINDOWS_S)]
    names += [f"rr_ephrdiff_{w}" for w in map(_label, RR_EPOCH_WINDOWS_S)]
    return tuple(names)


def _rr_time_names() -> tuple[str, ...]:
    names: list[str] = []
    for w in map(_label, RR_WINDOWS_S):
        names += [f"rr_hr_{w}", f"rr_sdnn_{w}", f"rr_rmssd_{w}", f"rr_pnn50_{w}", f"rr_cov_{w}"]
    return tuple(names)


_SPEC = _label(SPEC_WINDOW_S)
_HRV_FREQ = (f"rr_lf_{_SPEC}", f"rr_hf_{_SPEC}", f"rr_lfhf_{_SPEC}")
_HRV_RESP = (f"rr_vlf_{_SPEC}", f"rr_hfnu_{_SPEC}", f"rr_hfpeak_{_SPEC}", f"rr_hfent_{_SPEC}")

#: The RR columns made night-relative (every RR feature but the coverages), in order.
NIGHT_REL_BASE: Final[tuple[str, ...]] = tuple(
    n for n in (*_rr_time_names(), *_HRV_FREQ, *_rr_slow_names(), *_HRV_RESP)
    if not n.startswith("rr_cov_")
)

_EEG_BANDS = tuple(eeg_spec.EEG_BANDS_HZ)


def _eeg_names() -> tuple[str, ...]:
    names = [f"eeg_log_{b}" for b in _EEG_BANDS] + [f"eeg_rel_{b}" for b in _EEG_BANDS]
    names += ["eeg_log_var", "eeg_mobility", *(f"eeg_{r[0]}" for r in PSG_RATIOS)]
    return (*names, "eeg_band_entropy")


#: Ordered feature groups; a family's columns are the concatenation of its groups.
FEATURE_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "heart_rate": _hr_names(),
    "activity": _activity_names(),
    "hrv_time": _rr_time_names(),
    "hrv_freq": _HRV_FREQ,
    "hrv_slow": _rr_slow_names(),
    "hrv_resp": _HRV_RESP,
    "hrv_night": tuple(f"rel_{n}" for n in NIGHT_REL_BASE),
    "clock": ("clock_hours", "clock_tod_sin", "clock_tod_cos", "clock_known"),
    "eeg_spectrum": _eeg_names(),
    "eeg_night": tuple(f"night_{n}" for n in _eeg_names()),
}

#: The groups of each family, in column order.
FAMILY_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "wearable": ("heart_rate", "activity", "clock"),
    "cardio": ("hrv_time", "hrv_freq", "hrv_slow", "hrv_resp", "hrv_night", "clock"),
    "psg": ("eeg_spectrum", "eeg_night"),
}

#: The ordered column names each family's models receive.
FAMILY_FEATURES: Final[dict[str, tuple[str, ...]]] = {
    family: tuple(name for group in groups for name in FEATURE_GROUPS[group])
    for family, groups in FAMILY_GROUPS.items()
}


def _describe() -> dict[str, str]:
    d: dict[str, str] = {}
    for w in map(_label, HR_WINDOWS_S):
        d[f"hr_level_{w}"] = f"(mean HR in {w} - night median) / night scale"
        d[f"hr_std_{w}"] = f"std of HR samples in {w} / night scale"
        d[f"hr_sdiff_{w}"] = f"RMS of successive HR differences (steps <= 15 s) in {w} / scale"
        d[f"hr_slope_{w}"] = f"least-squares HR slope in {w}, bpm/min / night scale"
        d[f"hr_cov_{w}"] = f"HR samples in {w} / expected (one per 5 s), capped at 1"
    d["hr_cov_epoch"] = "HR samples in the closing epoch / expected, capped at 1"
    for w in ("epoch", *map(_label, ACT_WINDOWS_S)):
        d[f"act_log_mean_{w}"] = f"log1p(mean 15-s activity count in {w})"
        d[f"act_log_max_{w}"] = f"log1p(max 15-s activity count in {w})"
        d[f"act_frac_active_{w}"] = f"fraction of 15-s counts > 0 in {w}"
        d[f"act_cov_{w}"] = f"15-s counts in {w} / expected, capped at 1"
    d["act_log_min_since_move"] = "log1p(minutes since the last count > 0, or the first count)"
    for w in map(_label, RR_WINDOWS_S):
        d[f"rr_hr_{w}"] = f"(60 / mean NN in {w} - night median HR) / night scale"
        d[f"rr_sdnn_{w}"] = f"log1p(SDNN in ms, ddof=1) of NN intervals in {w}"
        d[f"rr_rmssd_{w}"] = f"log1p(RMSSD in ms) of successive NN differences in {w}"
        d[f"rr_pnn50_{w}"] = f"fraction of successive NN differences > 50 ms in {w}"
        d[f"rr_cov_{w}"] = f"sum of valid NN intervals in {w} / {w}, capped at 1"
    d[f"rr_lf_{_SPEC}"] = "log1p(LF power 0.04-0.15 Hz, ms^2) of the 4-Hz NN tachogram, 300 s"
    d[f"rr_hf_{_SPEC}"] = "log1p(HF power 0.15-0.40 Hz, ms^2) of the 4-Hz NN tachogram, 300 s"
    d[f"rr_lfhf_{_SPEC}"] = "ln((LF + 1 ms^2) / (HF + 1 ms^2))"
    for w in map(_label, RR_SLOW_WINDOWS_S):
        d[f"rr_hrstd_{w}"] = f"std of beat HR (60 / NN) in {w} / night scale"
    for w in map(_label, RR_EPOCH_WINDOWS_S):
        d[f"rr_ephrstd_{w}"] = f"std of the epochs' mean HR over the epochs in {w} / night scale"
        d[f"rr_ephrdiff_{w}"] = (
            f"mean |change| of mean HR between adjacent epochs ending in {w} / night scale")
    d[f"rr_vlf_{_SPEC}"] = "log1p(VLF power 0.01-0.04 Hz, ms^2) of the 300-s tachogram"
    d[f"rr_hfnu_{_SPEC}"] = "ln((HF + 1 ms^2) / (VLF + LF + HF + 1 ms^2))"
    d[f"rr_hfpeak_{_SPEC}"] = "frequency (Hz) of the largest HF bin: the breathing rate"
    d[f"rr_hfent_{_SPEC}"] = "entropy of the HF spectrum / ln(number of HF bins), 0..1"
    for n in NIGHT_REL_BASE:
        d[f"rel_{n}"] = (
            f"({n} - its mean over the night so far) / its std, epochs with "
            f"rr_cov_{_label(NIGHT_REL_COVERAGE_WINDOW_S)} >= {NIGHT_REL_MIN_COVERAGE:g} only; "
            f"0 below that coverage or before {NIGHT_REL_MIN_EPOCHS} such epochs, "
            f"clipped to +-{NIGHT_REL_CLIP:g}")
    _describe_eeg(d)
    d["clock_hours"] = "hours from the session start to the epoch start"
    d["clock_tod_sin"] = "sin(2 pi local time of day / 24 h) at the epoch start; 0 if unknown"
    d["clock_tod_cos"] = "cos(2 pi local time of day / 24 h) at the epoch start; 0 if unknown"
    d["clock_known"] = "1 if the session start is a real clock time, 0 if nominal"
    return d


def _describe_eeg(d: dict[str, str]) -> None:
    power = f"(P_band + {PSG_POWER_FLOOR_UV2_HZ:g} uV^2/Hz) x band width"
    for b in _EEG_BANDS:
        lo, hi = eeg_spec.EEG_BANDS_HZ[b]
        d[f"eeg_log_{b}"] = (f"ln(P_{b} + {PSG_POWER_FLOOR_UV2_HZ:g}), P_{b} the mean Welch "
                             f"density over {lo:g}-{hi:g} Hz in uV^2/Hz")
        d[f"eeg_rel_{b}"] = f"ln of the {b} band's share of the summed band powers, {power}"
    d["eeg_log_var"] = f"ln(variance of the epoch in uV^2 + {PSG_VAR_FLOOR_UV2:g})"
    d["eeg_mobility"] = (f"Hjorth mobility sqrt(var(diff(x)) / (var(x) + {PSG_VAR_FLOOR_UV2:g})),"
                         f" x at {eeg_spec.EEG_FS_HZ} Hz")
    for name, num, den in PSG_RATIOS:
        d[f"eeg_{name}"] = f"ln({' + '.join(num)} power / {' + '.join(den)} power), {power}"
    d["eeg_band_entropy"] = ("entropy of the band shares of the summed band powers / "
                             f"ln({len(_EEG_BANDS)}), 0..1")
    for n in _eeg_names():
        d[f"night_{n}"] = (
            f"({n} - its mean over the channel's night so far) / its std (+ variance floor "
            f"{PSG_NIGHT_VAR_FLOOR:g}), epochs with measures only; 0 for an epoch without "
            f"them or before {PSG_NIGHT_MIN_EPOCHS} such epochs, clipped to "
            f"+-{PSG_NIGHT_CLIP:g}")


#: One-line definition of every feature.
FEATURE_DESCRIPTIONS: Final[dict[str, str]] = _describe()


def _check_family(family: str) -> None:
    if family not in FAMILY_FEATURES:
        msg = (
            f"feature family must be one of {sorted(FAMILY_FEATURES)}; got {family!r}. "
            "Pick the family of the model you want to feed."
        )
        raise ValueError(msg)


def feature_names(family: str) -> tuple[str, ...]:
    """Ordered feature column names of a model family.

    Parameters
    ----------
    family : {"wearable", "cardio", "psg"}
        The model family.

    Returns
    -------
    tuple of str
        Column names, in the order of the feature rows (for ``psg``: of each channel's row).

    Raises
    ------
    ValueError
        If ``family`` is not a known family.
    """
    _check_family(family)
    return FAMILY_FEATURES[family]


def feature_version(family: str) -> str:
    """The feature version of a family (:data:`FEATURE_VERSIONS`); ``ValueError`` if unknown."""
    _check_family(family)
    return FEATURE_VERSIONS[family]


def _jsonable(value: Any) -> Any:
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Mapping):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def is_parameter(name: str, value: Any) -> bool:
    """Whether a public module constant shapes feature values (and so enters a digest)."""
    return (name.isupper() and not name.startswith("_") and name != "FAMILIES"
            and isinstance(value, int | float | tuple))


def _parameters(family: str) -> dict[str, Any]:
    prefixes = FAMILY_PARAMETER_PREFIXES[family]
    params = {name: _jsonable(value) for name, value in globals().items()
              if is_parameter(name, value) and name.startswith(prefixes)}
    if family == "psg":
        params |= {f"eeg_spec.{name}": _jsonable(value) for name, value in vars(eeg_spec).items()
                   if name.isupper() and isinstance(value, int | float | tuple | Mapping)}
    return params


def feature_spec(family: str, epoch_s: float = 30.0) -> dict[str, Any]:
    """JSON-able description of what a family's features are, for a model card.

    Parameters
    ----------
    family : {"wearable", "cardio", "psg"}
        The model family.
    epoch_s : float
        Epoch length in seconds the features were computed with.

    Returns
    -------
    dict
        ``version``, ``family``, ``epoch_s``, ``names`` (ordered), ``per_channel`` (the
        names repeat for every channel of a channel set) and ``parameters`` (every
        constant that shapes one of the family's feature values).
    """
    return {
        "version": feature_version(family),
        "family": family,
        "epoch_s": float(epoch_s),
        "names": list(feature_names(family)),
        "per_channel": family in PER_CHANNEL_FAMILIES,
        "parameters": _parameters(family),
    }


def spec_digest(family: str) -> str:
    """SHA-256 (hex, first 16 characters) of a family's names, layout and parameters.

    A test pins each family's digest next to its version in :data:`FEATURE_VERSIONS`, so a
    change to a name or a parameter that forgets to bump that family's version fails the
    test suite, and a change to one family leaves the others' digests alone.
    """
    spec = feature_spec(family)
    del spec["version"]
    text = json.dumps(spec, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
