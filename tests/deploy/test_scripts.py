"""The shell scripts of deploy/, run here against stand-ins for kafka-topics.sh and influx."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.deploy.compose_model import DEPLOY

CREATE_TOPICS = DEPLOY / "kafka" / "create-topics.sh"
INFLUX_INIT = DEPLOY / "influxdb" / "init" / "10-sleepstream-v1.sh"
ENTRYPOINT = DEPLOY / "worker-entrypoint.sh"

pytestmark = pytest.mark.skipif(shutil.which("bash") is None, reason="needs bash")


def _fake(path: Path, body: str) -> Path:
    """An executable that appends its arguments to ``$FAKE_LOG`` and runs ``body``."""
    path.write_text(f'#!/bin/sh\necho "$*" >> "$FAKE_LOG"\n{body}\n', encoding="utf-8")
    path.chmod(0o755)
    return path


def _run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    return subprocess.run(args, env={**base, **env}, capture_output=True, text=True,
                          timeout=30, check=False)


@pytest.mark.parametrize("script", [CREATE_TOPICS, INFLUX_INIT, ENTRYPOINT])
def test_scripts_parse_and_are_executable(script):
    shell = "sh" if script == ENTRYPOINT else "bash"  # the entry point is POSIX sh
    assert _run([shell, "-n", str(script)], {}).returncode == 0
    assert script.stat().st_mode & 0o111, f"{script.name} is not executable"


def _create_topics(tmp_path: Path, existing: int) -> tuple[subprocess.CompletedProcess[str], str]:
    log = tmp_path / "calls.log"
    fake = _fake(tmp_path / "kafka-topics.sh",
                 f'case "$*" in *--describe*) printf "Topic: x\\tTopicId: y\\t'
                 f'PartitionCount: {existing}\\tReplicationFactor: 1\\n";; esac')
    result = _run(["bash", str(CREATE_TOPICS)], {
        "KAFKA_TOPICS": str(fake), "FAKE_LOG": str(log), "BOOTSTRAP": "kafka:9092",
        "TOPIC_PREFIX": "sleep.", "TOPIC_PARTITIONS": "8", "TOPIC_REPLICATION_FACTOR": "1"})
    return result, log.read_text(encoding="utf-8") if log.exists() else ""


def test_create_topics_creates_the_five_topics(tmp_path):
    result, calls = _create_topics(tmp_path, existing=8)
    assert result.returncode == 0, result.stderr
    creates = [line for line in calls.splitlines() if "--create" in line]
    assert [line.split("--topic ")[1].split()[0] for line in creates] == [
        "sleep.sessions", "sleep.samples", "sleep.stages", "sleep.summaries", "sleep.deadletter"]
    assert all("--if-not-exists" in c and "--partitions 8" in c and "--replication-factor 1" in c
               and "--bootstrap-server kafka:9092" in c for c in creates)


def test_create_topics_refuses_another_partition_count(tmp_path):
    result, _ = _create_topics(tmp_path, existing=4)
    assert result.returncode == 1
    assert "has 4 partitions, expected 8" in result.stderr
    assert "SLEEPSTREAM_PARTITIONS" in result.stderr


def _influx_init(tmp_path: Path, password: str) -> tuple[subprocess.CompletedProcess[str], str]:
    bin_dir, secrets, log = tmp_path / "bin", tmp_path / "secrets", tmp_path / "calls.log"
    bin_dir.mkdir()
    secrets.mkdir()
    _fake(bin_dir / "influx", "")
    (secrets / "grafana_influx_password").write_text(password, encoding="utf-8")
    result = _run(["bash", str(INFLUX_INIT)], {
        "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "FAKE_LOG": str(log), "RUN_SECRETS_DIR": str(secrets),
        "DOCKER_INFLUXDB_INIT_ORG": "sleepstream", "DOCKER_INFLUXDB_INIT_BUCKET_ID": "b123",
        "V1_DATABASE": "sleepstream", "V1_READ_USER": "grafana"})
    return result, log.read_text(encoding="utf-8") if log.exists() else ""


def test_influx_init_maps_the_database_and_adds_a_read_only_user(tmp_path):
    result, calls = _influx_init(tmp_path, "pw-for-test")
    assert result.returncode == 0, result.stderr
    dbrp, auth = calls.splitlines()
    assert dbrp.startswith("v1 dbrp create")
    assert "--bucket-id b123" in dbrp and "--db sleepstream" in dbrp and "--rp autogen" in dbrp
    assert auth.startswith("v1 auth create")
    assert "--username grafana" in auth and "--password pw-for-test" in auth
    assert "--read-bucket b123" in auth and "--write-bucket" not in auth


def test_influx_init_needs_the_grafana_password(tmp_path):
    result, calls = _influx_init(tmp_path, "")
    assert result.returncode == 1
    assert "grafana_influx_password" in result.stderr
    assert "v1 auth create" not in calls


@pytest.mark.parametrize(("preset", "secret", "expected"), [
    (None, "from-secret", "from-secret"),
    ("from-env", "from-secret", "from-env"),
    (None, None, ""),
])
def test_entrypoint_puts_the_secret_token_in_the_environment(tmp_path, preset, secret, expected):
    if secret is not None:
        (tmp_path / "sleepstream_influx_token").write_text(secret + "\n", encoding="utf-8")
    env = {"RUN_SECRETS_DIR": str(tmp_path)}
    if preset is not None:
        env["SLEEPSTREAM_INFLUX_TOKEN"] = preset
    result = _run(["sh", str(ENTRYPOINT), "sh", "-c", 'printf %s "$SLEEPSTREAM_INFLUX_TOKEN"'],
                  env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected


@pytest.mark.parametrize(("preset", "secret", "expected"), [
    (None, "kafka-pw", "kafka-pw"),
    ("from-env", "kafka-pw", "from-env"),
    (None, "", "unset"),  # the empty secret file of a PLAINTEXT deployment
    (None, None, "unset"),
])
def test_entrypoint_puts_the_kafka_sasl_password_in_the_environment(tmp_path, preset, secret,
                                                                     expected):
    if secret is not None:
        (tmp_path / "sleepstream_kafka_sasl_password").write_text(
            secret + "\n" if secret else "", encoding="utf-8")
    env = {"RUN_SECRETS_DIR": str(tmp_path)}
    if preset is not None:
        env["SLEEPSTREAM_KAFKA_SASL_PASSWORD"] = preset
    result = _run(["sh", str(ENTRYPOINT), "sh", "-c",
                   'printf %s "${SLEEPSTREAM_KAFKA_SASL_PASSWORD-unset}"'], env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == expected
