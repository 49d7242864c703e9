"""Kafka TLS and SASL settings, and that every Kafka client of the project receives them.

No test here talks to a TLS or SASL broker: the embedded broker of the other stream tests
(noida-db, ``stream.stack.EmbeddedBroker``) serves plain Kafka only and has no TLS or SASL
options, and no other broker can be installed here. What is tested instead: the
validation of the settings and its messages; the aiokafka keyword arguments and Faust
credentials built from them; real TLS contexts, checked in in-memory TLS handshakes with a
throwaway CA, server and client certificate (made with the ``openssl`` command in
``tmp_path``); that the password appears in no repr, JSON dump or validation error; and,
with stand-ins for the aiokafka classes, that each client the project creates gets the
options. PLAINTEXT, the default, changes nothing: ``{}`` and no credentials.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import aiokafka
import faust
import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from faust.types import TP
from faust.types.auth import AuthProtocol, SASLMechanism
from pydantic import ValidationError

import stream.collect
import stream.delivery
import stream.live.follow
from ingestors.base import kafka_producer
from stream.app import create_app, deps_of
from stream.collect import OutputCollector
from stream.delivery import GapFiller
from stream.live.follow import LiveFollower
from stream.settings import StreamSettings

PASSWORD = "s3cret-Kafka-pw"
SERVER_NAME = "broker.test"


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The host's SLEEPSTREAM_* variables must not leak into these settings."""
    for key in list(os.environ):
        if key.startswith("SLEEPSTREAM_"):
            monkeypatch.delenv(key)


# --- a throwaway PKI ------------------------------------------------------------------------

def _openssl(cwd: Path, *args: str) -> None:
    result = subprocess.run(["openssl", *args], cwd=cwd, capture_output=True, text=True,
                            timeout=60, check=False)
    assert result.returncode == 0, f"openssl {' '.join(args)}: {result.stderr}"


def _leaf(cwd: Path, name: str, usage: str, san: str | None = None) -> None:
    """``name.key`` and ``name.pem``, signed by ``ca``."""
    ext = ["basicConstraints=critical,CA:FALSE", "keyUsage=critical,digitalSignature",
           f"extendedKeyUsage={usage}", "authorityKeyIdentifier=keyid",
           "subjectKeyIdentifier=hash"]
    if san:
        ext.append(f"subjectAltName={san}")
    (cwd / f"{name}.ext").write_text("\n".join(ext) + "\n", encoding="utf-8")
    _openssl(cwd, "req", "-new", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
             "-nodes", "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", f"/CN={name}")
    _openssl(cwd, "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-CAcreateserial", "-days", "2", "-sha256", "-extfile", f"{name}.ext",
             "-out", f"{name}.pem")


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA, a server certificate for ``broker.test`` and a client certificate."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make test certificates")
    cwd = tmp_path_factory.mktemp("pki")
    _openssl(cwd, "req", "-x509", "-newkey", "ec", "-pkeyopt",
             "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "2", "-sha256", "-subj", "/CN=sleepstream-test-ca",
             "-addext", "basicConstraints=critical,CA:TRUE",
             "-addext", "keyUsage=critical,keyCertSign,cRLSign")
    _leaf(cwd, "server", "serverAuth", f"DNS:{SERVER_NAME}")
    _leaf(cwd, "client", "clientAuth")
    _openssl(cwd, "pkey", "-in", "client.key", "-aes256", "-passout", "pass:pw",
             "-out", "client-encrypted.key")
    return cwd


def _server_context(pki: Path) -> ssl.SSLContext:
    """A broker's side that demands a client certificate signed by the test CA."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(pki / "server.pem", pki / "server.key")
    ctx.load_verify_locations(pki / "ca.pem")
    ctx.verify_mode = ssl.CERT_REQUIRED
    return ctx


def _handshake(client_ctx: ssl.SSLContext, server_ctx: ssl.SSLContext,
               server_hostname: str = SERVER_NAME) -> dict[str, Any]:
    """Run a TLS handshake in memory; the client certificate as the server saw it."""
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_hostname=server_hostname)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    done = {"client": False, "server": False}
    for _ in range(10):
        for name, side in (("client", client), ("server", server)):
            if not done[name]:
                with contextlib.suppress(ssl.SSLWantReadError):
                    side.do_handshake()
                    done[name] = True
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        if all(done.values()):
            # TLS 1.3: the server checks the client's certificate after the client is done
            with contextlib.suppress(ssl.SSLWantReadError):
                server.read(1)
            peer = server.getpeercert()
            return dict(peer) if peer else {}
    raise AssertionError("TLS handshake did not finish")


def _settings(**kw: Any) -> StreamSettings:
    """Settings from keyword values as the environment would give them (str, Path)."""
    return StreamSettings(**kw)


def _sasl(protocol: str = "SASL_SSL", **kw: Any) -> StreamSettings:
    return _settings(kafka_security_protocol=protocol, kafka_sasl_username="sleepy",
                          kafka_sasl_password=PASSWORD, **kw)


# --- defaults -------------------------------------------------------------------------------

def test_plaintext_default_changes_nothing() -> None:
    settings = StreamSettings()
    assert settings.kafka_security_protocol == "PLAINTEXT"
    assert settings.kafka_client_options() == {}
    assert settings.faust_credentials() is None
    assert settings.kafka_ssl_context() is None
    assert create_app(settings).conf.broker_credentials is None


def test_empty_variables_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    # what deploy/compose.yaml passes for an unset ${VAR:-}
    for name in ("USERNAME", "PASSWORD"):
        monkeypatch.setenv(f"SLEEPSTREAM_KAFKA_SASL_{name}", "")
    for name in ("CAFILE", "CERTFILE", "KEYFILE"):
        monkeypatch.setenv(f"SLEEPSTREAM_KAFKA_SSL_{name}", "")
    settings = StreamSettings()
    assert settings.kafka_sasl_username is None and settings.kafka_sasl_password is None
    assert settings.kafka_ssl_cafile is None and settings.kafka_ssl_keyfile is None
    assert settings.kafka_client_options() == {}


# --- validation -----------------------------------------------------------------------------

@pytest.mark.parametrize("protocol", ["SASL_PLAINTEXT", "SASL_SSL"])
@pytest.mark.parametrize(("given", "missing"), [
    ({}, "set SLEEPSTREAM_KAFKA_SASL_USERNAME and SLEEPSTREAM_KAFKA_SASL_PASSWORD"),
    ({"kafka_sasl_username": "u"}, "set SLEEPSTREAM_KAFKA_SASL_PASSWORD"),
    ({"kafka_sasl_password": "p"}, "set SLEEPSTREAM_KAFKA_SASL_USERNAME"),
])
def test_sasl_needs_username_and_password(protocol: str, given: dict[str, str],
                                          missing: str) -> None:
    with pytest.raises(ValidationError, match=f"SECURITY_PROTOCOL={protocol} needs a SASL "
                       f"user name and password; {missing}"):
        _settings(kafka_security_protocol=protocol, **given)


def test_sasl_settings_without_a_sasl_protocol_are_refused() -> None:
    with pytest.raises(ValidationError, match=r"SLEEPSTREAM_KAFKA_SASL_USERNAME, "
                       r"SLEEPSTREAM_KAFKA_SASL_PASSWORD set, but "
                       r"SLEEPSTREAM_KAFKA_SECURITY_PROTOCOL is SSL.*SASL_SSL"):
        _settings(kafka_security_protocol="SSL", kafka_sasl_username="u",
                       kafka_sasl_password="p")


def test_tls_files_without_a_tls_protocol_are_refused(pki: Path) -> None:
    with pytest.raises(ValidationError, match=r"SLEEPSTREAM_KAFKA_SSL_CAFILE set, but "
                       r"SLEEPSTREAM_KAFKA_SECURITY_PROTOCOL is SASL_PLAINTEXT.*SSL or SASL_SSL"):
        _sasl("SASL_PLAINTEXT", kafka_ssl_cafile=pki / "ca.pem")


@pytest.mark.parametrize(("given", "other"), [("certfile", "KEYFILE"), ("keyfile", "CERTFILE")])
def test_client_certificate_and_key_come_together(pki: Path, given: str, other: str) -> None:
    path = pki / ("client.pem" if given == "certfile" else "client.key")
    with pytest.raises(ValidationError, match=f"mutual TLS needs both.*SLEEPSTREAM_KAFKA_SSL_"
                       f"{given.upper()} is set, SLEEPSTREAM_KAFKA_SSL_{other} is not"):
        _settings(kafka_security_protocol="SSL", **{f"kafka_ssl_{given}": path})


@pytest.mark.parametrize("name", ["cafile", "certfile", "keyfile"])
def test_a_missing_file_names_the_variable_and_the_path(pki: Path, tmp_path: Path,
                                                        name: str) -> None:
    files = {"kafka_ssl_cafile": pki / "ca.pem", "kafka_ssl_certfile": pki / "client.pem",
             "kafka_ssl_keyfile": pki / "client.key"}
    files[f"kafka_ssl_{name}"] = tmp_path / "nowhere.pem"
    with pytest.raises(ValidationError) as err:
        _settings(kafka_security_protocol="SSL", **files)
    assert f"SLEEPSTREAM_KAFKA_SSL_{name.upper()}={tmp_path / 'nowhere.pem'}: no such file" in (
        str(err.value))


def test_unknown_protocol_or_mechanism_is_refused() -> None:
    with pytest.raises(ValidationError, match="kafka_security_protocol"):
        _settings(kafka_security_protocol="TLS")
    with pytest.raises(ValidationError, match="kafka_sasl_mechanism"):
        _sasl(kafka_sasl_mechanism="GSSAPI")


def test_settings_are_read_from_the_environment(pki: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"SECURITY_PROTOCOL": "SASL_SSL", "SASL_MECHANISM": "SCRAM-SHA-256",
           "SASL_USERNAME": "sleepy", "SASL_PASSWORD": PASSWORD,
           "SSL_CAFILE": str(pki / "ca.pem"), "SSL_CHECK_HOSTNAME": "false"}
    for key, value in env.items():
        monkeypatch.setenv(f"SLEEPSTREAM_KAFKA_{key}", value)
    settings = StreamSettings()
    assert settings.kafka_sasl_mechanism == "SCRAM-SHA-256"
    assert settings.kafka_ssl_cafile == pki / "ca.pem"
    assert settings.kafka_ssl_check_hostname is False
    assert settings.kafka_client_options()["sasl_plain_password"] == PASSWORD


# --- TLS contexts ---------------------------------------------------------------------------

def test_ssl_options_verify_the_broker_with_the_ca(pki: Path) -> None:
    settings = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki / "ca.pem")
    options = settings.kafka_client_options()
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["security_protocol"] == "SSL"
    ctx = options["ssl_context"]
    assert isinstance(ctx, ssl.SSLContext)
    assert ctx.verify_mode == ssl.CERT_REQUIRED and ctx.check_hostname
    assert [c["subject"] for c in ctx.get_ca_certs()] == [((("commonName",
                                                             "sleepstream-test-ca"),),)]
    # the broker demands a client certificate: without one the handshake fails
    with pytest.raises(ssl.SSLError, match="peer did not return a certificate"):
        _handshake(ctx, _server_context(pki))
    # a broker that does not demand one is accepted, and only under its own name
    lenient = _server_context(pki)
    lenient.verify_mode = ssl.CERT_NONE
    assert _handshake(ctx, lenient) == {}
    with pytest.raises(ssl.SSLCertVerificationError, match="Hostname mismatch"):
        _handshake(settings.kafka_client_options()["ssl_context"], lenient, "other.test")


def test_mutual_tls_presents_the_client_certificate(pki: Path) -> None:
    settings = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki / "ca.pem",
                              kafka_ssl_certfile=pki / "client.pem",
                              kafka_ssl_keyfile=pki / "client.key")
    peer = _handshake(settings.kafka_client_options()["ssl_context"], _server_context(pki))
    assert peer["subject"] == ((("commonName", "client"),),)


def test_check_hostname_off_still_verifies_the_chain(pki: Path) -> None:
    settings = _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=pki / "ca.pem",
                              kafka_ssl_certfile=pki / "client.pem",
                              kafka_ssl_keyfile=pki / "client.key",
                              kafka_ssl_check_hostname=False)
    ctx = settings.kafka_ssl_context()
    assert ctx is not None and not ctx.check_hostname and ctx.verify_mode == ssl.CERT_REQUIRED
    assert _handshake(ctx, _server_context(pki), "other.test")["subject"]
    # without the test CA (system CAs only) the same broker is refused
    system = _settings(kafka_security_protocol="SSL", kafka_ssl_check_hostname=False)
    lenient = _server_context(pki)
    lenient.verify_mode = ssl.CERT_NONE
    with pytest.raises(ssl.SSLCertVerificationError):
        _handshake(system.kafka_client_options()["ssl_context"], lenient)


def test_unreadable_pem_files_name_the_settings(pki: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.pem"
    junk.write_text("not a certificate\n", encoding="utf-8")
    with pytest.raises(ValueError, match="cannot load the Kafka CA file "
                       f"SLEEPSTREAM_KAFKA_SSL_CAFILE={junk}"):
        _settings(kafka_security_protocol="SSL", kafka_ssl_cafile=junk).kafka_ssl_context()
    wrong_key = _settings(kafka_security_protocol="SSL", kafka_ssl_certfile=pki / "client.pem",
                               kafka_ssl_keyfile=pki / "server.key")
    with pytest.raises(ValueError, match=r"cannot load the Kafka client certificate "
                       r"SLEEPSTREAM_KAFKA_SSL_CERTFILE=.*client\.pem with its key "
                       r"SLEEPSTREAM_KAFKA_SSL_KEYFILE=.*server\.key"):
        wrong_key.kafka_client_options()
    encrypted = _settings(kafka_security_protocol="SSL",
                               kafka_ssl_certfile=pki / "client.pem",
                               kafka_ssl_keyfile=pki / "client-encrypted.key")
    # refused with a message, never an interactive OpenSSL password prompt
    with pytest.raises(ValueError, match=r"KEYFILE=.*client-encrypted\.key is an encrypted key"):
        encrypted.faust_credentials()


# --- aiokafka options and Faust credentials ---------------------------------------------------

@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_options_and_credentials(mechanism: str) -> None:
    settings = _sasl("SASL_PLAINTEXT", kafka_sasl_mechanism=mechanism)
    assert settings.kafka_client_options() == {
        "security_protocol": "SASL_PLAINTEXT", "sasl_mechanism": mechanism,
        "sasl_plain_username": "sleepy", "sasl_plain_password": PASSWORD}
    creds = settings.faust_credentials()
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol is AuthProtocol.SASL_PLAINTEXT
    assert creds.mechanism is SASLMechanism(mechanism)
    assert (creds.username, creds.password, creds.ssl_context) == ("sleepy", PASSWORD, None)


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-512"])
def test_sasl_ssl_options_and_credentials(pki: Path, mechanism: str) -> None:
    settings = _sasl(kafka_sasl_mechanism=mechanism, kafka_ssl_cafile=pki / "ca.pem")
    options = settings.kafka_client_options()
    assert isinstance(options.pop("ssl_context"), ssl.SSLContext)
    assert options == {"security_protocol": "SASL_SSL", "sasl_mechanism": mechanism,
                       "sasl_plain_username": "sleepy", "sasl_plain_password": PASSWORD}
    creds = settings.faust_credentials()
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol is AuthProtocol.SASL_SSL
    assert creds.mechanism is SASLMechanism(mechanism)
    assert isinstance(creds.ssl_context, ssl.SSLContext)
    assert creds.ssl_context.verify_mode == ssl.CERT_REQUIRED


def test_ssl_credentials(pki: Path) -> None:
    creds = _settings(kafka_security_protocol="SSL",
                           kafka_ssl_cafile=pki / "ca.pem").faust_credentials()
    assert isinstance(creds, faust.SSLCredentials)
    assert creds.protocol is AuthProtocol.SSL
    assert isinstance(creds.context, ssl.SSLContext) and creds.context.check_hostname


@pytest.mark.parametrize("protocol", ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"])
def test_faust_hands_its_clients_what_the_other_clients_get(pki: Path, protocol: str) -> None:
    """Faust's aiokafka driver turns the credentials into the same client arguments."""
    kw: dict[str, Any] = {"kafka_security_protocol": protocol}
    if protocol.startswith("SASL"):
        kw.update(kafka_sasl_username="sleepy", kafka_sasl_password=PASSWORD,
                  kafka_sasl_mechanism="SCRAM-SHA-256")
    if protocol.endswith("SSL"):
        kw["kafka_ssl_cafile"] = pki / "ca.pem"
    settings = _settings(**kw)
    faust_side = dict(credentials_to_aiokafka_auth(settings.faust_credentials()))
    ours = {"security_protocol": "PLAINTEXT", **settings.kafka_client_options()}
    for side in (faust_side, ours):
        context = side.pop("ssl_context", None)
        assert (context is not None) == protocol.endswith("SSL"), side
    assert faust_side == ours


# --- the password stays secret ------------------------------------------------------------

def test_the_password_appears_in_no_repr_dump_or_error(pki: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    settings = _sasl(kafka_ssl_cafile=pki / "ca.pem")
    assert PASSWORD not in repr(settings)
    assert PASSWORD not in str(settings)
    assert PASSWORD not in settings.model_dump_json()
    assert PASSWORD not in repr(settings.faust_credentials())
    assert PASSWORD not in repr(GapFiller("b:9092", "g", settings.kafka_client_options()))
    # only when asked for explicitly
    assert settings.kafka_sasl_password is not None
    assert settings.kafka_sasl_password.get_secret_value() == PASSWORD
    # a validation error must not echo the input (pydantic prints it by default)
    monkeypatch.setenv("SLEEPSTREAM_KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("SLEEPSTREAM_KAFKA_SASL_USERNAME", "sleepy")
    monkeypatch.setenv("SLEEPSTREAM_KAFKA_SASL_PASSWORD", PASSWORD)
    with pytest.raises(ValidationError) as err:
        StreamSettings()
    assert "SLEEPSTREAM_KAFKA_SASL_PASSWORD set" in str(err.value)
    assert PASSWORD not in str(err.value) and PASSWORD not in repr(err.value)


# --- every Kafka client of the project gets the options ---------------------------------------

class _Refused(Exception):
    """What the stand-in clients raise on start: no broker is contacted."""


@pytest.fixture
def clients(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Replace the aiokafka classes the project uses; yields ``(class, kwargs)`` per client."""
    made: list[tuple[str, dict[str, Any]]] = []

    def stand_in(name: str) -> type:
        class Client:
            def __init__(self, *args: Any, **kwargs: Any) -> None:
                made.append((name, kwargs))

            async def start(self) -> None:
                raise _Refused

            async def stop(self) -> None:
                pass

            async def close(self) -> None:
                pass

        return Client

    monkeypatch.setattr(aiokafka, "AIOKafkaProducer", stand_in("producer"))
    for module in (stream.collect, stream.live.follow, stream.delivery):
        monkeypatch.setattr(module, "AIOKafkaConsumer", stand_in("consumer"))
    monkeypatch.setattr(stream.delivery, "AIOKafkaAdminClient", stand_in("admin"))
    yield made


def _assert_secured(kwargs: dict[str, Any], mechanism: str) -> None:
    assert kwargs["security_protocol"] == "SASL_SSL"
    assert kwargs["sasl_mechanism"] == mechanism
    assert (kwargs["sasl_plain_username"], kwargs["sasl_plain_password"]) == ("sleepy", PASSWORD)
    assert isinstance(kwargs["ssl_context"], ssl.SSLContext)


def test_every_kafka_client_gets_the_security_options(
        pki: Path, clients: list[tuple[str, dict[str, Any]]]) -> None:
    settings = _sasl(kafka_sasl_mechanism="SCRAM-SHA-512", kafka_ssl_cafile=pki / "ca.pem")

    async def scenario() -> None:
        with pytest.raises(_Refused):
            await OutputCollector(settings).start()
        with pytest.raises(_Refused):
            await LiveFollower(settings, view=None)._follow()  # type: ignore[arg-type]
        gaps = GapFiller(settings.bootstrap, "g", settings.kafka_client_options())
        with pytest.raises(_Refused):
            await gaps.delivery_start(TP("t", 0))
        with pytest.raises(_Refused):
            await gaps._client()
        with pytest.raises(_Refused):
            await kafka_producer(settings)

    asyncio.run(scenario())
    assert [name for name, _ in clients] == ["consumer", "consumer", "admin", "consumer",
                                             "producer"]
    for _, kwargs in clients:
        _assert_secured(kwargs, "SCRAM-SHA-512")
        assert kwargs["bootstrap_servers"] == "127.0.0.1:9092"


def test_create_app_passes_the_credentials_to_faust_and_the_gap_filler(pki: Path) -> None:
    settings = _sasl(kafka_sasl_mechanism="SCRAM-SHA-256", kafka_ssl_cafile=pki / "ca.pem")
    app = create_app(settings)  # builds the app only: nothing connects
    creds = app.conf.broker_credentials
    assert isinstance(creds, faust.SASLCredentials)
    assert creds.protocol is AuthProtocol.SASL_SSL
    assert creds.mechanism is SASLMechanism.SCRAM_SHA_256
    assert (creds.username, creds.password) == ("sleepy", PASSWORD)
    assert isinstance(creds.ssl_context, ssl.SSLContext)
    # what Faust's consumers and producer will be built with
    auth = credentials_to_aiokafka_auth(app.conf.broker_credentials, app.conf.ssl_context)
    assert auth["security_protocol"] == "SASL_SSL" and auth["sasl_plain_password"] == PASSWORD
    _assert_secured(dict(deps_of(app).gaps.client_options), "SCRAM-SHA-256")
