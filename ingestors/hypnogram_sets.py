"""Load sets of hypnograms for evaluation and pair them by night.

A set is one hypnogram file or a folder of them, in any format the readers know: EDF+
(Sleep-EDF), NSRR XML, CSV/TSV (ours and BIDS-like), Sleep-Accel label files
(``*_labeled_sleep.txt``, ``*_cleaned_psg.out``) and SLPDB stage annotations (``*.an``).
Nights are keyed by file name with the format's suffix removed, so that
``SC4001E0-Hypnogram.edf`` and ``SC4001E0.csv`` pair up.
"""

from __future__ import annotations

from collections.abc import Callable
from os import PathLike
from pathlib import Path

from ingestors import sleep_accel, slpdb
from ingestors.errors import DataFormatError
from ingestors.hypnogram_io import read_hypnogram
from ingestors.types import Hypnogram

__all__ = ["load_hypnograms", "night_key"]

# Longest first: the first matching suffix is removed to form the night key.
_SUFFIXES = (
    "_labeled_sleep.txt", "_cleaned_psg.out", "-Hypnogram.edf", "_hypnogram.edf",
    "_stages.tsv", "_hypnogram.csv", "_hypnogram.tsv", ".edf", ".xml", ".csv", ".tsv", ".txt",
    ".an",
)


def night_key(path: Path) -> str:
    """The night a hypnogram file belongs to: its name minus the format's suffix.

    Sleep-EDF scorer letters are dropped too (``SC4001EC`` -> ``SC4001E``), because the
    hypnogram and PSG files of one night differ only there.
    """
    name = path.name
    for suffix in _SUFFIXES:
        if name.lower().endswith(suffix.lower()):
            name = name[: -len(suffix)]
            break
    if name.startswith("SC4") and len(name) == 8:
        name = name[:7]
    return name


def _read_slpdb(path: Path) -> Hypnogram:
    header = path.with_suffix(".hea")
    start = slpdb.read_header(header).start if header.is_file() else None
    return slpdb.read_annotations(path, start=start, record=path.stem).hypnogram


def _reader(path: Path) -> Callable[[Path], Hypnogram]:
    name = path.name.lower()
    if name.endswith("_labeled_sleep.txt"):
        return sleep_accel.read_labels
    if name.endswith("_cleaned_psg.out"):
        return sleep_accel.read_cropped_psg
    if name.endswith(".an"):
        return _read_slpdb
    return read_hypnogram


def _is_hypnogram_file(path: Path) -> bool:
    name = path.name.lower()
    if name.endswith(".json") or name.startswith("."):
        return False
    return name.endswith(tuple(s.lower() for s in _SUFFIXES))


def load_hypnograms(path: str | PathLike[str]) -> dict[str, Hypnogram]:
    """Read one hypnogram file or every hypnogram file of a folder (not recursive).

    Parameters
    ----------
    path : str or path-like
        A file or a folder.

    Returns
    -------
    dict of str to Hypnogram
        Keyed by :func:`night_key`, sorted by key.

    Raises
    ------
    FileNotFoundError
        If ``path`` does not exist.
    DataFormatError
        If a folder holds no hypnogram file, two files map to the same night, or a file
        cannot be read (the reader's error names the file and line).
    """
    p = Path(path)
    if not p.exists():
        msg = f"{p}: no such file or folder; pass a hypnogram file or a folder of them"
        raise FileNotFoundError(msg)
    files = [p] if p.is_file() else sorted(f for f in p.iterdir() if f.is_file()
                                           and _is_hypnogram_file(f))
    if not files:
        raise DataFormatError(
            p, "no hypnogram files in this folder",
            expected="files ending in " + ", ".join(_SUFFIXES),
            fix="Point at the folder that holds the hypnograms themselves.",
        )
    out: dict[str, Hypnogram] = {}
    origin: dict[str, Path] = {}
    for f in files:
        key = night_key(f)
        if key in out:
            raise DataFormatError(
                f, f"night {key!r} is also given by {origin[key].name}",
                fix="Keep one hypnogram per night in the folder.",
            )
        out[key] = _reader(f)(f)
        origin[key] = f
    return dict(sorted(out.items()))
