"""``sleepstream dashboards``: regenerate the committed dashboards, push them to a Grafana.

:func:`build` writes the dashboard JSON and the provisioning files (see
:mod:`dashboards.generate`); :func:`push` uploads the committed JSON through Grafana's HTTP
API with ``grafana-client``, for a Grafana that does not load them from files.
:data:`dashboards_app` wraps both as Typer commands. The Grafana SDK and client are
imported lazily, so the main CLI starts without the ``dashboards`` extra.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, NamedTuple
from urllib.parse import urlsplit, urlunsplit

import typer

__all__ = ["PACKAGE_DIR", "PushResult", "build", "changed", "dashboards_app", "push"]

#: The package folder: where the committed ``json/`` and ``provisioning/`` live.
PACKAGE_DIR = Path(__file__).resolve().parent
#: Grafana folder (uid and title) that :func:`push` puts the dashboards in, as provisioning does.
FOLDER = "sleepstream"


def _json_dir(out_dir: Path) -> Path:
    from dashboards.generate import JSON_DIR

    return out_dir / JSON_DIR


def changed(out_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Files that :func:`build` would write, change or delete under ``out_dir``.

    Parameters
    ----------
    out_dir : Path
        Output folder (default: the package, where the generated files are committed).
    """
    from dashboards.generate import render_all

    files = {out_dir / rel: text for rel, text in render_all().items()}
    stale = [p for p, text in files.items()
             if not p.is_file() or p.read_bytes() != text.encode("utf-8")]
    extra = [p for p in sorted(_json_dir(out_dir).glob("*.json")) if p not in files]
    return stale + extra


def build(out_dir: Path = PACKAGE_DIR) -> list[Path]:
    """Write the dashboard JSON and the provisioning files under ``out_dir``.

    ``*.json`` files in ``out_dir/json`` that no dashboard generates are deleted, so a
    dashboard removed from the code disappears from Grafana too.

    Parameters
    ----------
    out_dir : Path
        Output folder (default: the package, where the generated files are committed).

    Returns
    -------
    list of Path
        Every file written, in a fixed order.
    """
    from dashboards.generate import render_all

    written = []
    files = {out_dir / rel: text for rel, text in render_all().items()}
    for path in sorted(_json_dir(out_dir).glob("*.json")) if _json_dir(out_dir).is_dir() else []:
        if path not in files:
            path.unlink()
    for path, text in files.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(text.encode("utf-8"))  # bytes: no newline translation anywhere
        written.append(path)
    return written


class PushResult(NamedTuple):
    """What :func:`push` did.

    Attributes
    ----------
    urls : list of str
        Grafana URL path of each dashboard pushed.
    datasource_found : bool
        Whether the Grafana has the ``sleepstream-influxdb`` data source the panels use.
    """

    urls: list[str]
    datasource_found: bool


def push(
    url: str,
    credential: str | tuple[str, str] | None,
    *,
    json_dir: Path | None = None,
    folder_uid: str = FOLDER,
    message: str = "pushed by sleepstream dashboards push",
    timeout_s: float = 10.0,
) -> PushResult:
    """Create or overwrite the dashboards in a Grafana through its HTTP API.

    Parameters
    ----------
    url : str
        Grafana base URL, e.g. ``http://localhost:3000`` (user and password may be in it).
    credential : str, (str, str) or None
        A service-account token, or ``(user, password)``; None: from ``url``, or anonymous.
    json_dir : Path, optional
        Folder of the dashboard JSON to push (default: the committed ``dashboards/json``).
    folder_uid : str
        Grafana folder (created when missing, title = uid).
    message : str
        Version message stored with each dashboard.
    timeout_s : float
        Per-request timeout in s.

    Raises
    ------
    grafana_client.client.GrafanaException
        Grafana refused a request (401 without a valid credential, 412 when a
        provisioned copy of the dashboard exists...).
    """
    from grafana_client import GrafanaApi
    from grafana_client.client import GrafanaClientError

    from dashboards.influxql import DATASOURCE_UID

    folder = json_dir or _json_dir(PACKAGE_DIR)
    paths = sorted(folder.glob("*.json"))
    if not paths:
        msg = f"no dashboard JSON in {folder}; run `sleepstream dashboards build` first"
        raise FileNotFoundError(msg)
    api = GrafanaApi.from_url(url, credential=credential, timeout=timeout_s)
    try:
        api.folder.get_folder(folder_uid)
    except GrafanaClientError as err:
        if err.status_code != 404:
            raise
        api.folder.create_folder(folder_uid, uid=folder_uid)
    try:
        api.datasource.get_datasource_by_uid(DATASOURCE_UID)
        found = True
    except GrafanaClientError as err:
        if err.status_code != 404:
            raise
        found = False
    urls = []
    for path in paths:
        payload = {"dashboard": json.loads(path.read_text(encoding="utf-8")),
                   "folderUid": folder_uid, "overwrite": True, "message": message}
        answer = api.dashboard.update_dashboard(payload)
        urls.append(str(answer.get("url", path.stem)))
    return PushResult(urls, found)


dashboards_app = typer.Typer(
    help="Grafana dashboards as code: regenerate the committed JSON, push it to Grafana.",
    no_args_is_help=True,
)


@dashboards_app.command("build")
def _build_command(
    out: Annotated[Path, typer.Option(help="Output folder.")] = PACKAGE_DIR,
    check: Annotated[bool, typer.Option(
        "--check", help="Write nothing; exit 1 when a generated file would change.")] = False,
) -> None:
    """Regenerate the dashboard JSON and Grafana provisioning files from the code."""
    if check:
        stale = changed(out)
        for path in stale:
            typer.echo(f"would change: {path}")
        if stale:
            typer.secho("dashboards are out of date: run `sleepstream dashboards build`",
                        fg=typer.colors.RED, err=True)
            raise typer.Exit(code=1)
        typer.echo("dashboards are up to date")
        return
    paths = build(out)
    typer.echo(f"wrote {len(paths)} files under {out}")


@dashboards_app.command("push")
def _push_command(
    url: Annotated[str, typer.Option(envvar="GRAFANA_URL", help="Grafana base URL.")],
    token: Annotated[str | None, typer.Option(
        envvar="GRAFANA_TOKEN", help="Service-account token.")] = None,
    user: Annotated[str | None, typer.Option(
        envvar="GRAFANA_USER", help="User (basic auth, instead of a token).")] = None,
    password: Annotated[str | None, typer.Option(
        envvar="GRAFANA_PASSWORD", help="Password of --user.")] = None,
    folder: Annotated[str, typer.Option(help="Grafana folder uid.")] = FOLDER,
    json_dir: Annotated[Path | None, typer.Option(
        help="Folder of dashboard JSON (default: the committed one).")] = None,
) -> None:
    """Create or overwrite the dashboards in a running Grafana."""
    from grafana_client.client import GrafanaException

    if token and user:
        typer.secho("error: give --token or --user/--password, not both", fg=typer.colors.RED,
                    err=True)
        raise typer.Exit(code=2)
    credential = token or ((user, password or "") if user else None)
    try:
        result = push(url, credential, json_dir=json_dir, folder_uid=folder)
    except (GrafanaException, FileNotFoundError) as err:
        typer.secho(f"error: {err}", fg=typer.colors.RED, err=True)
        raise typer.Exit(code=2) from None
    parts = urlsplit(url)
    base = urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))  # no password
    for dashboard_url in result.urls:
        typer.echo(f"pushed {base.rstrip('/')}{dashboard_url}")
    if not result.datasource_found:
        typer.secho("warning: Grafana has no data source with uid 'sleepstream-influxdb'; "
                    "provision dashboards/provisioning/datasources/sleepstream.yaml",
                    fg=typer.colors.YELLOW, err=True)
