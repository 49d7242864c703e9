"""Static checks of the production stack in deploy/: no Docker needed.

The compose file is read as Compose reads it (anchors merged, variables interpolated with
their defaults) and checked against the code it deploys: the settings the worker really
reads, the topics it uses, the dashboards it provisions.
"""

from __future__ import annotations

import os
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml
from faust.types.settings import Settings as FaustSettings
from pydantic_settings import BaseSettings

from stream.settings import SinkSettings, StreamSettings
from tests.deploy.compose_model import (
    DEPLOY,
    REPO,
    compose,
    defaults,
    dockerfile_env,
    dockerfile_instructions,
    env_example,
    environment,
    exec_form,
    raw_compose,
    strings,
    variables,
)

TOPICS = ("sessions", "samples", "stages", "summaries", "deadletter")
# bind sources that are the user's data, not repository files: documented in README.md
EXTERNAL_DATA_VARIABLES = {"SLEEPSTREAM_DATA"}
ONE_SHOT = {"topic-init", "replay"}
SECRET_NAME = re.compile(r"(PASSWORD|TOKEN|SECRET|PRIVATE_KEY)$", re.IGNORECASE)
PINNED_TAG = re.compile(r"^[^:@]+:(v?\d+\.\d+\.\d+[\w.-]*)(@sha256:[0-9a-f]{64})?$")


def _settings_env_names(cls: type[BaseSettings]) -> set[str]:
    prefix = str(cls.model_config.get("env_prefix", ""))
    return {f"{prefix}{name}".upper() for name in cls.model_fields}


SETTINGS_NAMES = _settings_env_names(StreamSettings) | _settings_env_names(SinkSettings)
FAUST_ENV_NAMES = {p.env_name for p in FaustSettings.SETTINGS.values() if p.env_name}


@pytest.fixture(scope="module")
def services() -> dict[str, Any]:
    return compose()["services"]


@pytest.fixture(scope="module")
def raw_services() -> dict[str, Any]:
    return raw_compose()["services"]


def _stream_services(services: dict[str, Any]) -> dict[str, Any]:
    """The services that run the sleepstream image (workers and ingestors)."""
    return {n: s for n, s in services.items() if "build" in s}


def _workers(services: dict[str, Any]) -> dict[str, Any]:
    return {n: s for n, s in _stream_services(services).items() if n not in ONE_SHOT}


def _bind_sources(service: dict[str, Any]) -> list[tuple[str, bool]]:
    """``(source, read_only)`` of a service's bind mounts (named volumes left out)."""
    out = []
    for volume in service.get("volumes", []):
        if isinstance(volume, dict):
            if volume.get("type") == "bind":
                out.append((volume["source"], bool(volume.get("read_only"))))
            continue
        # split on the colons outside ${...}: "${DATA:-../data}:/data:ro"
        parts = re.findall(r"(?:\$\{[^}]*\}|[^:])+", volume)
        if parts[0].startswith((".", "/", "~", "$")):
            out.append((parts[0], parts[-1] == "ro"))
    return out


def test_the_stack_has_its_services(services):
    assert {"kafka", "topic-init", "influxdb", "grafana", "replay"} <= set(services)
    workers = _workers(services)
    assert len(workers) >= 3, f"expected at least 3 worker replicas, got {sorted(workers)}"
    assert services["replay"]["profiles"] == ["replay"]
    for name, service in _stream_services(services).items():
        assert service["build"]["dockerfile"] == "deploy/worker.Dockerfile", name
        assert (DEPLOY / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_mounted_host_paths_exist_or_are_documented_external_data(services, raw_services):
    readme = (DEPLOY / "README.md").read_text(encoding="utf-8")
    for name, service in services.items():
        raw = _bind_sources(raw_services[name])
        for (source, read_only), (raw_source, _) in zip(_bind_sources(service), raw, strict=True):
            external = variables(raw_source) & EXTERNAL_DATA_VARIABLES
            if external:
                var = external.pop()
                assert read_only, f"{name}: the data folder {raw_source} must be mounted :ro"
                assert var in env_example(), f"{var} missing from .env.example"
                assert var in readme, f"{var} (external data folder) not documented in README"
                continue
            assert not variables(raw_source), f"{name}: unexpected variable in {raw_source}"
            assert (DEPLOY / source).exists(), f"{name}: {source} does not exist under deploy/"
            assert (DEPLOY / source).resolve().is_relative_to(REPO), f"{name}: {source}"


def test_secrets_are_declared_files_outside_git(services):
    top = compose()["secrets"]
    used = set()
    for service in services.values():
        for secret in service.get("secrets", []):
            used.add(secret["source"] if isinstance(secret, dict) else secret)
    assert used == set(top), "every secret used is declared, every declared one used"
    ignore = (DEPLOY / "secrets" / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert "*" in ignore, "deploy/secrets/.gitignore must ignore every secret file"
    for name, secret in top.items():
        path = DEPLOY / secret["file"]
        assert path.parent == DEPLOY / "secrets", f"secret {name}: {secret['file']}"
        assert path.name == name
        assert not (path.exists() and path.stat().st_size), f"a real secret in the repo: {path}"


def test_sleepstream_variables_are_settings_the_worker_reads(services):
    for name, service in services.items():
        unknown = {k for k in environment(service) if k.startswith("SLEEPSTREAM_")}
        unknown -= SETTINGS_NAMES
        assert not unknown, f"{name}: {sorted(unknown)} are not StreamSettings/SinkSettings fields"
    unknown = {k for k in dockerfile_env() if k.startswith("SLEEPSTREAM_")} - SETTINGS_NAMES
    assert not unknown, f"worker.Dockerfile ENV {sorted(unknown)} are not settings fields"


def test_no_faust_environment_variable_overrides_the_settings(services):
    # Faust reads e.g. WEB_PORT or TOPIC_PARTITIONS unprefixed and lets them win over the app
    for name, service in _stream_services(services).items():
        clash = set(environment(service)) & FAUST_ENV_NAMES
        assert not clash, f"{name}: {sorted(clash)} would override the Faust app's settings"
    assert not set(dockerfile_env()) & FAUST_ENV_NAMES


@pytest.mark.parametrize("service_name", ["worker-0", "worker-1", "worker-2", "replay"])
def test_the_settings_validate_in_each_container(service_name, services, monkeypatch):
    for key in list(os.environ):
        if key.startswith("SLEEPSTREAM_"):
            monkeypatch.delenv(key)
    for key, value in {**dockerfile_env(), **environment(services[service_name])}.items():
        if key.startswith("SLEEPSTREAM_"):
            monkeypatch.setenv(key, value)
    stream, sink = StreamSettings(), SinkSettings()
    assert stream.bootstrap == "kafka:9092"
    assert stream.partitions == 8
    assert stream.web_host == "127.0.0.1", "the worker's web server must stay on loopback"
    # the stack's own Kafka is PLAINTEXT: the defaults must not ask for TLS or SASL
    assert stream.kafka_client_options() == {} and stream.faust_credentials() is None
    if service_name != "replay":
        assert (sink.kind, sink.url) == ("v2", "http://influxdb:8086")
        assert sink.org and sink.bucket


def test_the_kafka_clients_get_the_sasl_password_secret(services):
    for name, service in _stream_services(services).items():
        assert {"source": "kafka_sasl_password", "target": "sleepstream_kafka_sasl_password"} in (
            service.get("secrets", [])), f"{name}: worker-entrypoint.sh reads it from there"
        assert "SLEEPSTREAM_KAFKA_SASL_PASSWORD" not in environment(service)


def test_each_worker_has_its_own_stable_instance_id(services):
    workers = _workers(services)
    ids = [environment(s).get("SLEEPSTREAM_INSTANCE_ID") for s in workers.values()]
    assert all(ids), "every worker needs SLEEPSTREAM_INSTANCE_ID (static membership)"
    assert len(set(ids)) == len(ids), f"instance ids must differ: {ids}"
    assert ids == sorted(workers), "instance id = service name, so it survives re-creation"
    for service in workers.values():
        assert "replicas" not in service.get("deploy", {}), "replicas would share one id"
        assert {"source": "influxdb_admin_token", "target": "sleepstream_influx_token"} in (
            service["secrets"]
        )
    partitions = int(environment(workers["worker-0"])["SLEEPSTREAM_PARTITIONS"])
    assert len(workers) <= partitions, "more workers than partitions leaves some idle"


def test_every_image_is_pinned(services):
    version = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))
    for name, service in services.items():
        image = service["image"]
        assert PINNED_TAG.match(image), f"{name}: image {image!r} is not pinned to a version"
        assert ":latest" not in image
        if "build" in service:
            assert image.endswith(":" + version["project"]["version"]), f"{name}: {image}"
    for word, rest in dockerfile_instructions():
        if word == "FROM":
            base = rest.split()[0]
            assert re.match(r"^python:3\.11\.\d+-slim", base), f"FROM {base}: pin python 3.11"


def test_published_ports_bind_loopback(services):
    for name, service in services.items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name}: port {port} is not bound to 127.0.0.1"


def test_long_running_services_have_healthchecks_and_restart(services):
    for name, service in services.items():
        if name in ONE_SHOT:
            assert service["restart"] == "no", name
            continue
        assert service["restart"] in ("unless-stopped", "always"), name
        assert service["healthcheck"]["test"], name


def test_dockerfile_installs_the_stream_extra_without_torch():
    instructions = dockerfile_instructions()
    installs = [rest for word, rest in instructions if word == "RUN" and "pip install" in rest]
    assert installs, "worker.Dockerfile installs nothing"
    for rest in installs:
        assert re.search(r"""pip install ['"]?\.\[stream\]['"]?""", rest), rest
        assert not re.search(r"torch|lightning|\[[^\]]*(train|test)", rest.replace(
            "find_spec('torch')", "")), f"the worker image must not install training deps: {rest}"
    users = [rest for word, rest in instructions if word == "USER"]
    assert users and users[-1].split(":")[0] not in ("root", "0"), "the image must not run as root"
    cmd = exec_form(next(rest for word, rest in reversed(instructions) if word == "CMD"))
    assert cmd == ["faust", "-A", "stream.app", "worker", "-l", "info"]
    entry = exec_form(next(rest for word, rest in reversed(instructions) if word == "ENTRYPOINT"))
    assert entry == ["sleepstream-entrypoint"]
    script = (DEPLOY / "worker-entrypoint.sh").read_text(encoding="utf-8")
    assert 'exec "$@"' in script and "sleepstream_influx_token" in script


def test_env_example_lists_every_variable_with_the_compose_default():
    example = env_example()
    text = "\n".join(strings(raw_compose()))
    used, compose_defaults = variables(text), defaults(text)
    assert used - set(example) == set(), f"missing from .env.example: {used - set(example)}"
    assert set(example) - used == set(), f"unused in compose.yaml: {set(example) - used}"
    for name, value in example.items():
        assert value == compose_defaults.get(name, value), f"{name}: .env.example {value!r} " \
            f"differs from the compose default {compose_defaults[name]!r}"


def test_no_secret_value_in_env_example_or_compose(services):
    for name, value in env_example().items():
        assert not (SECRET_NAME.search(name) and value), f".env.example sets {name}"
    for name, service in services.items():
        for key, value in environment(service).items():
            if SECRET_NAME.search(key) and not key.endswith("_FILE"):
                assert not value, f"{name}: {key} is set in compose.yaml; use a secret file"


def test_topic_init_creates_the_stream_topics(services):
    init = services["topic-init"]
    env = environment(init)
    worker_env = environment(services["worker-0"])
    assert env["TOPIC_PARTITIONS"] == worker_env["SLEEPSTREAM_PARTITIONS"]
    assert env["TOPIC_PREFIX"] == worker_env["SLEEPSTREAM_TOPIC_PREFIX"]
    assert env["TOPIC_REPLICATION_FACTOR"] == worker_env["SLEEPSTREAM_REPLICATION_FACTOR"]
    script = (DEPLOY / "kafka" / "create-topics.sh").read_text(encoding="utf-8")
    loop = re.search(r"for name in ([\w ]+); do", script)
    assert loop and tuple(loop.group(1).split()) == TOPICS
    settings = StreamSettings(topic_prefix=env["TOPIC_PREFIX"])
    assert [settings.topic(t) for t in TOPICS] == [f"sleep.{t}" for t in TOPICS]
    kafka = environment(services["kafka"])
    assert kafka["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert kafka["KAFKA_PROCESS_ROLES"] == "broker,controller", "KRaft, no ZooKeeper"


def test_influxdb_maps_a_v1_database_for_influxql(services):
    env = environment(services["influxdb"])
    assert env["DOCKER_INFLUXDB_INIT_MODE"] == "setup"
    assert env["DOCKER_INFLUXDB_INIT_ADMIN_TOKEN_FILE"].startswith("/run/secrets/")
    assert env["DOCKER_INFLUXDB_INIT_PASSWORD_FILE"].startswith("/run/secrets/")
    script = DEPLOY / "influxdb" / "init" / "10-sleepstream-v1.sh"
    assert script.stat().st_mode & 0o111, f"{script.name} must be executable (run-parts)"
    assert "influx v1 dbrp create" in script.read_text(encoding="utf-8")
    assert env["V1_DATABASE"] == environment(services["grafana"])["SLEEPSTREAM_INFLUX_DATABASE"]


def test_grafana_gets_what_the_provisioning_files_ask_for(services):
    grafana = services["grafana"]
    env = environment(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "false"
    assert env["GF_SECURITY_ADMIN_PASSWORD__FILE"].startswith("/run/secrets/")
    provided = set(env) | set(re.findall(r"export (\w+)=", " ".join(grafana["entrypoint"])))
    mounts = dict(v.split(":")[:2] for v in grafana["volumes"] if v.startswith(".."))
    provisioning = DEPLOY / next(k for k, v in mounts.items() if v == "/etc/grafana/provisioning")
    for path in sorted(provisioning.glob("*/*.y*ml")):
        wanted = variables("\n".join(strings(yaml.safe_load(path.read_text(encoding="utf-8")))))
        assert wanted <= provided, f"{path.name} needs {sorted(wanted - provided)} from compose"
    providers = yaml.safe_load(
        (provisioning / "dashboards" / "sleepstream.yaml").read_text(encoding="utf-8"))
    json_mount = next(v for k, v in mounts.items() if Path(k).name == "json")
    assert [p["options"]["path"] for p in providers["providers"]] == [json_mount]
