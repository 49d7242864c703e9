"""Reading deploy/compose.yaml, deploy/.env.example and deploy/worker.Dockerfile as Compose does.

Compose interpolates ``${VAR}``, ``${VAR:-default}``, ``${VAR-default}``, ``${VAR:?error}``,
``${VAR?error}`` and ``$$`` in every string value; YAML anchors and ``<<`` merge keys are
resolved by the YAML loader.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
COMPOSE = DEPLOY / "compose.yaml"
ENV_EXAMPLE = DEPLOY / ".env.example"
DOCKERFILE = DEPLOY / "worker.Dockerfile"

_VAR = re.compile(
    r"\$(?:(?P<escaped>\$)"
    r"|\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}"
    r"|(?P<bare>[A-Za-z_][A-Za-z0-9_]*))"
)


def interpolate(text: str, env: Mapping[str, str]) -> str:
    """``text`` with its variables replaced from ``env`` as Compose would."""

    def one(m: re.Match[str]) -> str:
        if m["escaped"]:
            return "$"
        name = m["name"] or m["bare"]
        value, op = env.get(name), m["op"]
        missing = value is None or (op is not None and op.startswith(":") and value == "")
        if op in (":-", "-"):
            return m["arg"] if missing else str(value)
        if op in (":?", "?") and missing:
            raise KeyError(f"{name} is required: {m['arg']}")
        return value or ""

    return _VAR.sub(one, text)


def variables(text: str) -> set[str]:
    """Names of the variables ``text`` interpolates (``$$`` is no variable)."""
    return {m["name"] or m["bare"] for m in _VAR.finditer(text) if not m["escaped"]}


def defaults(text: str) -> dict[str, str]:
    """``{name: default}`` of the ``${name:-default}`` forms in ``text``."""
    return {m["name"]: m["arg"] for m in _VAR.finditer(text) if m["op"] in (":-", "-")}


def walk(node: Any, fn: Callable[[str], Any]) -> Any:
    """``node`` with ``fn`` applied to every string value (mapping keys are kept)."""
    if isinstance(node, dict):
        return {k: walk(v, fn) for k, v in node.items()}
    if isinstance(node, list):
        return [walk(v, fn) for v in node]
    return fn(node) if isinstance(node, str) else node


def strings(node: Any) -> Iterator[str]:
    """Every string value in ``node``."""
    if isinstance(node, dict):
        for v in node.values():
            yield from strings(v)
    elif isinstance(node, list):
        for v in node:
            yield from strings(v)
    elif isinstance(node, str):
        yield node


def raw_compose() -> dict[str, Any]:
    """compose.yaml as written (anchors merged, nothing interpolated)."""
    data = yaml.safe_load(COMPOSE.read_text(encoding="utf-8"))
    assert isinstance(data, dict)
    return data


def compose(env: Mapping[str, str] | None = None) -> dict[str, Any]:
    """compose.yaml interpolated with ``env`` (default: no variable set)."""
    return walk(raw_compose(), lambda s: interpolate(s, env or {}))


def env_example() -> dict[str, str]:
    """The ``NAME=value`` lines of .env.example (quotes removed)."""
    out: dict[str, str] = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        name, sep, value = line.partition("=")
        assert sep, f".env.example: not NAME=value: {line!r}"
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        out[name.strip()] = value
    return out


def environment(service: Mapping[str, Any]) -> dict[str, str]:
    """A service's ``environment`` as a mapping of strings."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def dockerfile_instructions() -> list[tuple[str, str]]:
    """``(INSTRUCTION, arguments)`` of worker.Dockerfile, continuation lines joined."""
    joined, out = "", []
    for line in DOCKERFILE.read_text(encoding="utf-8").splitlines():
        if line.lstrip().startswith("#") and not joined:
            continue
        joined += line.rstrip().removesuffix("\\") + " "
        if not line.rstrip().endswith("\\"):
            if joined.strip():
                word, _, rest = joined.strip().partition(" ")
                out.append((word.upper(), rest.strip()))
            joined = ""
    return out


def dockerfile_env() -> dict[str, str]:
    """The ``ENV NAME=value ...`` settings of the final stage."""
    out: dict[str, str] = {}
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            out = {}
        elif word == "ENV":
            for part in re.findall(r"(\w+)=(\S+)", rest):
                out[part[0]] = part[1]
    return out


def exec_form(arguments: str) -> list[str]:
    """The JSON array of an ENTRYPOINT or CMD in exec form."""
    value = json.loads(arguments)
    assert isinstance(value, list), f"not the exec form: {arguments}"
    return [str(v) for v in value]
