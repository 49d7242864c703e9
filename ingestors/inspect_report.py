"""Terminal rendering of an :class:`~ingestors.inspect.Inventory` (rich tables)."""

from __future__ import annotations

from rich.console import Console
from rich.table import Table

from ingestors.inspect import Inventory, SubjectSummary

__all__ = ["render_inventory"]


def _hours(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds / 3600:.2f} h"


_SHORT_STREAM = {
    "heart_rate": "HR", "heart_rate_in_night": "HR in night", "counts": "counts",
    "motion": "motion", "steps": "steps", "beats": "beats", "events": "events",
    "features": "feature rows",
}


def _streams(s: SubjectSummary) -> str:
    parts = [f"{_SHORT_STREAM.get(k, k)} {v:,}" for k, v in s.samples.items()]
    if s.channels:
        rates = sorted({c.sfreq_hz for c in s.channels})
        parts.append(f"{len(s.channels)} ch @ " + "/".join(f"{r:g}" for r in rates) + " Hz")
    return ", ".join(parts)


def _subject_table(inv: Inventory, codes: list[str]) -> Table:
    table = Table(title=f"{inv.path}  ({inv.kind})", show_lines=False, header_style="bold")
    table.add_column("subject")
    if inv.n_groups != len(inv.subjects):
        table.add_column("person")
    table.add_column("duration", justify="right")
    table.add_column("samples / channels")
    table.add_column("epochs", justify="right")
    for code in codes:
        table.add_column(code, justify="right")
    table.add_column("problems", justify="right")
    for s in inv.subjects:
        streams = _streams(s)
        row = [s.subject]
        if inv.n_groups != len(inv.subjects):
            row.append(s.group)
        row += [_hours(s.duration_s), streams, f"{s.n_epochs:,}"]
        row += [f"{s.label_counts.get(c, 0):,}" for c in codes]
        row.append(str(len(s.problems)) if s.problems else "")
        table.add_row(*row)
    totals = inv.label_totals()
    foot = ["total"] + ([""] if inv.n_groups != len(inv.subjects) else [])
    foot += [_hours(sum(s.duration_s or 0.0 for s in inv.subjects)), "", f"{inv.n_epochs:,}"]
    foot += [f"{totals.get(c, 0):,}" for c in codes]
    foot.append(str(sum(len(s.problems) for s in inv.subjects)))
    table.add_section()
    table.add_row(*foot, style="bold")
    return table


def _unit(inv: Inventory) -> str:
    if inv.kind == "slpdb":
        return "records"
    if inv.kind.startswith("sleep-accel"):
        return "subjects"
    if inv.subjects and all(s.n_epochs and not s.channels for s in inv.subjects):
        return "hypnograms"
    return "files"


def render_inventory(inv: Inventory, console: Console | None = None, *, problems: int = 50) -> None:
    """Print the inventory: a summary line, a per-subject table and the problems found.

    Parameters
    ----------
    inv : Inventory
        What :func:`ingestors.inspect.inspect_path` returned.
    console : rich.console.Console, optional
        Where to print (default: standard output).
    problems : int
        At most this many problem lines are printed; the rest are counted.
    """
    out = console or Console(width=None if Console().is_terminal else 200)
    n = len(inv.subjects)
    people = f" from {inv.n_groups} subjects" if inv.n_groups != n else ""
    unit = _unit(inv)
    out.print(
        f"[bold]{inv.kind}[/bold]: {n} {unit}{people}, {inv.n_epochs:,} labelled epochs"
    )
    codes = list(inv.label_totals())
    out.print(_subject_table(inv, codes))
    lines = [f"{s.subject}: {p}" for s in inv.subjects for p in s.problems]
    if not lines:
        out.print("No problems found.")
        return
    out.print(f"[bold]Problems found ({len(lines)}):[/bold]")
    for line in lines[:problems]:
        out.print(f"  - {line}", highlight=False, soft_wrap=True)
    if len(lines) > problems:
        out.print(f"  ... and {len(lines) - problems} more (use --json for all)")
