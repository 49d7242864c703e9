"""Put a reference and a predicted hypnogram of the same night on one epoch grid."""

from __future__ import annotations

from datetime import timedelta
from typing import NamedTuple

from ingestors.types import Hypnogram

__all__ = ["AlignedNight", "align_pair", "crop"]

#: Largest start offset, in epochs, still taken as lying on the epoch grid (float noise).
_GRID_TOLERANCE = 1e-6


class AlignedNight(NamedTuple):
    """Two hypnograms cropped to their common span: same start, epoch length and length.

    ``note`` says what was cropped, or is ``None`` when both already covered the same span.
    """

    reference: Hypnogram
    predicted: Hypnogram
    note: str | None


def crop(hyp: Hypnogram, first: int, stop: int) -> Hypnogram:
    """Epochs ``first`` to ``stop - 1`` of ``hyp`` as a new Hypnogram with a shifted start."""
    return Hypnogram(
        stages=hyp.stages[first:stop],
        start=hyp.start + timedelta(seconds=first * hyp.epoch_s),
        epoch_s=hyp.epoch_s,
        codes=hyp.codes[first:stop] if hyp.codes else (),
        subject=hyp.subject,
        source=hyp.source,
        start_is_nominal=hyp.start_is_nominal,
    )


def _offset_epochs(reference: Hypnogram, predicted: Hypnogram, name: str) -> int:
    """Start of ``predicted`` in epochs after the start of ``reference``, checked."""
    if abs(reference.epoch_s - predicted.epoch_s) > 1e-9:
        msg = (
            f"{name}: reference and predicted epoch lengths differ ({reference.epoch_s} s vs "
            f"{predicted.epoch_s} s). Re-score or resample one side to the other's epoch length."
        )
        raise ValueError(msg)
    if reference.start_is_nominal != predicted.start_is_nominal:
        msg = (
            f"{name}: one hypnogram has a real clock start and the other a nominal one "
            f"(reference start_is_nominal={reference.start_is_nominal}, predicted "
            f"start_is_nominal={predicted.start_is_nominal}), so they cannot be aligned by "
            "time. Give both the same start (the prediction should copy the recording's)."
        )
        raise ValueError(msg)
    shift = (predicted.start - reference.start).total_seconds() / reference.epoch_s
    if abs(shift - round(shift)) > _GRID_TOLERANCE:
        msg = (
            f"{name}: predicted starts {shift * reference.epoch_s:+.3f} s from the reference, "
            f"which is not a whole number of {reference.epoch_s:g}-s epochs. Score both on "
            "the same epoch grid (same recording start)."
        )
        raise ValueError(msg)
    return round(shift)


def align_pair(reference: Hypnogram, predicted: Hypnogram, name: str = "night") -> AlignedNight:
    """Crop two hypnograms of one night to the epochs both cover.

    Parameters
    ----------
    reference, predicted : Hypnogram
        The two scorings; same ``epoch_s``, starts a whole number of epochs apart, and
        both either real clock starts or both nominal.
    name : str
        Night id used in messages.

    Returns
    -------
    AlignedNight
        The cropped pair and a note when epochs outside the overlap were dropped.

    Raises
    ------
    ValueError
        If the epoch lengths differ, the starts are off the epoch grid or of different
        kinds, or the two do not overlap at all.
    """
    shift = _offset_epochs(reference, predicted, name)
    n_ref, n_pred = len(reference), len(predicted)
    first, stop = max(0, shift), min(n_ref, shift + n_pred)  # in reference epochs
    if stop <= first:
        msg = (
            f"{name}: reference ({reference.start.isoformat()} to {reference.end.isoformat()}) "
            f"and predicted ({predicted.start.isoformat()} to {predicted.end.isoformat()}) do "
            "not overlap. Check that both belong to the same night and recording."
        )
        raise ValueError(msg)
    ref = crop(reference, first, stop)
    pred = crop(predicted, first - shift, stop - shift)
    if len(ref) == n_ref and len(pred) == n_pred:
        return AlignedNight(ref, pred, None)
    note = (
        f"{name}: compared only the {stop - first} epochs both cover "
        f"({ref.start.isoformat()} to {ref.end.isoformat()}); dropped {n_ref - len(ref)} "
        f"reference and {n_pred - len(pred)} predicted epochs outside the overlap"
    )
    return AlignedNight(ref, pred, note)
