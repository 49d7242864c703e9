"""The ordered feature registry: names, definitions, parameters and the feature version.

Every model family receives one ordered tuple of per-epoch feature columns
(:data:`FAMILY_FEATURES`), built from named groups (:data:`FEATURE_GROUPS`, as sleepecg's
``_FEATURE_GROUPS``). All parameters that change a feature's value live here as well, next to
:data:`FEATURE_VERSION`, so that a change to any definition is a change to this file: bump the
version with it. Model cards record the version and :func:`feature_spec`; the runtime refuses a
model whose card does not match what the stream computes.

Window names give the window length in seconds ending at the close of the epoch
(``600s`` = the 10 min before the epoch end); ``epoch`` is the closing epoch itself.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any, Final, Literal

__all__ = [
    "FAMILIES",
    "FAMILY_FEATURES",
    "FAMILY_GROUPS",
    "FEATURE_DESCRIPTIONS",
    "FEATURE_GROUPS",
    "FEATURE_VERSION",
    "Family",
    "feature_names",
    "feature_spec",
    "spec_digest",
]

#: Changes whenever any feature definition, parameter or order changes.
FEATURE_VERSION: Final[str] = "4"

Family = Literal["wearable", "cardio"]
FAMILIES: Final[tuple[Family, ...]] = ("wearable", "cardio")

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
}

#: The groups of each family, in column order.
FAMILY_GROUPS: Final[dict[str, tuple[str, ...]]] = {
    "wearable": ("heart_rate", "activity", "clock"),
    "cardio": ("hrv_time", "hrv_freq", "hrv_slow", "hrv_resp", "hrv_night", "clock"),
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
    d["clock_hours"] = "hours from the session start to the epoch start"
    d["clock_tod_sin"] = "sin(2 pi local time of day / 24 h) at the epoch start; 0 if unknown"
    d["clock_tod_cos"] = "cos(2 pi local time of day / 24 h) at the epoch start; 0 if unknown"
    d["clock_known"] = "1 if the session start is a real clock time, 0 if nominal"
    return d


#: One-line definition of every feature.
FEATURE_DESCRIPTIONS: Final[dict[str, str]] = _describe()


def feature_names(family: str) -> tuple[str, ...]:
    """Ordered feature column names of a model family.

    Parameters
    ----------
    family : {"wearable", "cardio"}
        The model family.

    Returns
    -------
    tuple of str
        Column names, in the order of the feature rows.

    Raises
    ------
    ValueError
        If ``family`` is not a known family.
    """
    if family not in FAMILY_FEATURES:
        msg = (
            f"feature family must be one of {sorted(FAMILY_FEATURES)}; got {family!r}. "
            "Pick the family of the model you want to feed."
        )
        raise ValueError(msg)
    return FAMILY_FEATURES[family]


def _parameters() -> dict[str, Any]:
    return {
        name: list(value) if isinstance(value, tuple) else value
        for name, value in globals().items()
        if name.isupper() and isinstance(value, int | float | tuple) and name != "FAMILIES"
    }


def feature_spec(family: str, epoch_s: float = 30.0) -> dict[str, Any]:
    """JSON-able description of what a family's features are, for a model card.

    Parameters
    ----------
    family : {"wearable", "cardio"}
        The model family.
    epoch_s : float
        Epoch length in seconds the features were computed with.

    Returns
    -------
    dict
        ``version``, ``family``, ``epoch_s``, ``names`` (ordered) and ``parameters``
        (every constant of this module that shapes a feature value).
    """
    return {
        "version": FEATURE_VERSION,
        "family": family,
        "epoch_s": float(epoch_s),
        "names": list(feature_names(family)),
        "parameters": _parameters(),
    }


def spec_digest() -> str:
    """SHA-256 (hex, first 16 characters) of every family's names and all parameters.

    A test pins this digest next to :data:`FEATURE_VERSION`, so a change to a name or a
    parameter that forgets to bump the version fails the test suite.
    """
    payload = {"families": FAMILY_FEATURES, "parameters": _parameters()}
    text = json.dumps(payload, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]
