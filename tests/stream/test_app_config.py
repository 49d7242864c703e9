"""The Faust app takes its configuration from StreamSettings, not from stray variables."""

from __future__ import annotations

import pytest

from stream.app import create_app
from stream.delivery import InputTopic
from stream.settings import StreamSettings


def test_unprefixed_faust_variables_do_not_override_the_settings(
        monkeypatch: pytest.MonkeyPatch) -> None:
    # names Faust reads from the environment without a prefix, common on shared hosts
    monkeypatch.setenv("WEB_PORT", "1234")
    monkeypatch.setenv("BROKER_SESSION_TIMEOUT", "99")
    monkeypatch.setenv("WEB_BIND", "0.0.0.0")
    settings = StreamSettings(web_port=6100, session_timeout_s=12)
    app = create_app(settings)
    assert app.conf.web_port == 6100
    assert app.conf.web_bind == "127.0.0.1"
    assert app.conf.broker_session_timeout == 12
    # an explicit Faust setting still gets through, under the sleepstream prefix
    monkeypatch.setenv("SLEEPSTREAM_FAUST_WEB_PORT", "6200")
    assert create_app(settings).conf.web_port == 6200


def test_the_agents_read_topics_that_hold_a_reference_to_every_message() -> None:
    app = create_app(StreamSettings(topic_prefix="cfg."))
    stage = app.agents["stage"]
    assert isinstance(stage.channel, InputTopic)
    assert set(stage.channel.topics) == {"cfg.sessions", "cfg.samples"}
