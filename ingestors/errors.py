"""Errors and warnings of the readers: every message names the file, where, what and how to fix.

Readers never let a bare traceback from deep inside numpy or pyedflib reach the user:
they catch it and raise :class:`DataFormatError` with the file, the line or field, what
was expected, what was found and a remedy.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

__all__ = ["DataFormatError", "DataQualityWarning", "format_problem"]


def format_problem(
    path: str | PathLike[str],
    problem: str,
    *,
    line: int | None = None,
    field: str | None = None,
    expected: str | None = None,
    got: object = None,
    fix: str | None = None,
) -> str:
    """Build the one-line message used by :class:`DataFormatError` and warnings."""
    where = str(Path(path))
    if line is not None:
        where += f", line {line}"
    if field is not None:
        where += f", field {field!r}"
    parts = [f"{where}: {problem}"]
    if expected is not None:
        parts.append(f"expected {expected}")
    if got is not None:
        text = repr(got)
        parts.append(f"got {text[:120] + '...' if len(text) > 120 else text}")
    msg = "; ".join(parts) + "."
    if fix:
        msg += f" {fix}"
    return msg


class DataFormatError(ValueError):
    """An input file that cannot be read as the format it claims to be.

    Attributes
    ----------
    path : pathlib.Path
        The file (or folder) at fault.
    line : int or None
        1-based line number, for text files.
    field : str or None
        The column, header field, channel or annotation at fault.
    """

    def __init__(
        self,
        path: str | PathLike[str],
        problem: str,
        *,
        line: int | None = None,
        field: str | None = None,
        expected: str | None = None,
        got: object = None,
        fix: str | None = None,
    ) -> None:
        self.path = Path(path)
        self.line = line
        self.field = field
        super().__init__(
            format_problem(
                path, problem, line=line, field=field, expected=expected, got=got, fix=fix
            )
        )


class DataQualityWarning(UserWarning):
    """Usable but odd input (duplicates, gaps, repeated exports); the reader repaired it."""
