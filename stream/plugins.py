"""Command groups that other parts of the distribution add to ``sleepstream``.

A part that the stream must not import (``training``) declares its Typer app in the
``sleepstream.commands`` entry point group (``pyproject.toml``); :func:`add_plugin_commands`
finds the group with :mod:`importlib.metadata` and adds each app under its entry point
name. Entry points are package metadata: they exist once the package is installed (an
editable install too) and change only when it is installed again.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points
from typing import Annotated, Final

import typer

__all__ = ["ENTRY_POINT_GROUP", "INSTALL_HINTS", "add_plugin_commands"]

ENTRY_POINT_GROUP: Final = "sleepstream.commands"

#: Command groups a complete installation has, and how to get each.
INSTALL_HINTS: Final = {
    "train": "pip install 'sleepstream[train]' 'torch==2.13.0' (torch pinned in the same "
    "command, or pip resolves a multi-GB CUDA build)",
}


def _unavailable(name: str, reason: str) -> typer.Typer:
    """A stand-in group: whatever follows ``sleepstream <name>``, say why and how to fix it."""
    hint = INSTALL_HINTS.get(name, "reinstall sleepstream")
    message = f"`sleepstream {name}` is not available: {reason}. Install it with: {hint}."
    stand_in = typer.Typer(help=f"Not available here: {message}", invoke_without_command=True)

    @stand_in.callback(context_settings={"allow_extra_args": True,
                                         "ignore_unknown_options": True})
    def _explain(args: Annotated[list[str] | None, typer.Argument(hidden=True)] = None) -> None:
        typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2)

    return stand_in


def _load(ep: EntryPoint) -> typer.Typer:
    try:
        loaded = ep.load()
    except ImportError as err:  # a broken or partial install: say so, keep the CLI usable
        return _unavailable(ep.name, f"its module {ep.value} does not import ({err})")
    if not isinstance(loaded, typer.Typer):
        msg = (f"entry point {ep.name} = {ep.value} in group {ENTRY_POINT_GROUP!r} must be a "
               f"typer.Typer; got {type(loaded).__name__}")
        raise TypeError(msg)
    return loaded


def add_plugin_commands(app: typer.Typer) -> list[str]:
    """Add every ``sleepstream.commands`` entry point to ``app``; return the names added.

    A group of :data:`INSTALL_HINTS` with no entry point (the package's metadata predates
    it, or the part is not installed) gets a stand-in that says how to install it.
    """
    names = []
    for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
        if ep.name in names:  # the same distribution seen twice on sys.path
            continue
        app.add_typer(_load(ep), name=ep.name)
        names.append(ep.name)
    for name in INSTALL_HINTS.keys() - set(names):
        app.add_typer(_unavailable(name, "this installation does not declare it"), name=name)
    return names
