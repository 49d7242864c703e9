"""Small real recordings shipped with the package.

They let the demo and the stream run out of the box. See ``ATTRIBUTION.md`` in this
folder for their origin and licence.
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SAMPLE_NIGHT", "SAMPLES_DIR", "sleep_accel_sample"]

SAMPLES_DIR = Path(__file__).resolve().parent

#: Subject id of the bundled Sleep-Accel night (cropped heart rate, counts and PSG labels).
SAMPLE_NIGHT = "8692923"


def sleep_accel_sample() -> Path:
    """Folder holding the bundled Sleep-Accel night in the authors' cropped layout."""
    return SAMPLES_DIR / "sleep-accel"
