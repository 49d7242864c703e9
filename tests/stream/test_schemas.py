from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from faust.serializers import codecs
from pydantic import ValidationError

from stream.codecs import DecodeFailure, decode, register_codecs
from stream.schemas import DeadLetter, SampleChunk, SessionEvent, StageEvent

T0 = datetime(2026, 11, 21, 22, 0, tzinfo=UTC)


def _chunk(**kw: object) -> SampleChunk:
    base: dict[str, object] = dict(
        subject_id="s1", session_id="n1", source_id="watch-1", seq=3, modality="heart_rate",
        unit="bpm", t0_utc=T0, offsets_s=(0.0, 5.0, 10.0), values=(60.0, 61.0, 62.0),
    )
    base.update(kw)
    return SampleChunk(**base)  # type: ignore[arg-type]


def test_sample_chunk_times_and_values() -> None:
    c = _chunk()
    np.testing.assert_allclose(c.times_s(T0 - timedelta(seconds=30)), [30, 35, 40])
    r = _chunk(offsets_s=None, rate_hz=2.0, modality="acceleration", unit="g",
               values=(0, 0, 1, 0.1, 0, 1))
    assert len(r) == 2
    assert r.values_array().shape == (2, 3)
    np.testing.assert_allclose(r.times_s(T0), [0.0, 0.5])
    assert c.key == ("watch-1", 3)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"values": (60.0, float("nan"), 62.0)}, "finite"),
        ({"unit": "Hz"}, "must be sent in 'bpm'"),
        ({"offsets_s": (0.0, 10.0, 5.0)}, "non-decreasing"),
        ({"offsets_s": None}, "exactly one of offsets_s"),
        ({"subject_id": "a b"}, "pattern"),
        ({"t0_utc": datetime(2026, 1, 1)}, "timezone"),  # noqa: DTZ001
        ({"schema_version": 2}, "schema_version 2 is not supported"),
        ({"beat_types": ("N", "N", "N")}, "only for rr"),
    ],
)
def test_sample_chunk_rejects_bad_input(change: dict[str, object], message: str) -> None:
    with pytest.raises(ValidationError, match=message):
        _chunk(**change)


def _eeg(raw: np.ndarray, **kw: object) -> SampleChunk:
    fields: dict[str, object] = dict(
        subject_id="s1", session_id="n1", source_id="n1-eeg-Fpz-Cz", seq=0, modality="eeg",
        unit="uV", t0_utc=T0, rate_hz=256.0, sample0=1280, channel="Fpz-Cz")
    fields.update(kw)
    return SampleChunk.compact(raw, **fields)  # type: ignore[arg-type]


def test_eeg_chunks_are_compact_and_calibrated() -> None:
    digital = np.array([-32768, 0, 1, 32767], dtype=np.int16)
    c = _eeg(digital, scale=0.25, offset=-3.0)
    assert len(c) == 4 and c.dtype == "<i2"
    np.testing.assert_array_equal(c.values_array(), digital * 0.25 - 3.0)
    np.testing.assert_allclose(c.times_s(T0), 5.0 + np.arange(4) / 256.0)  # sample 1280 on
    back = SampleChunk.model_validate_json(c.model_dump_json())
    assert back == c and np.array_equal(back.values_array(), c.values_array())
    assert "values" not in c.model_dump(exclude_none=True)  # no JSON list of numbers
    f = _eeg(np.array([1.5, -2.25], dtype=np.float32))
    np.testing.assert_array_equal(f.values_array(), [1.5, -2.25])
    with pytest.raises(TypeError, match="int16 or float32; got float64"):
        _eeg(np.zeros(2))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"data_b64": None, "dtype": None, "values": (1.0,)}, "eeg samples must be compact"),
        ({"data_b64": "!!"}, "not valid base64"),
        ({"data_b64": "AAAA", "dtype": "<f4"}, "not a whole number of <f4 values"),
        ({"data_b64": "AADAfw==", "dtype": "<f4"}, "NaN or infinite"),
        ({"dtype": None}, "needs its dtype"),
        ({"channel": None}, "channel names the EEG channel"),
        ({"rate_hz": None, "sample0": 0, "offsets_s": (0.0,)}, "eeg chunks are regular"),
    ],
)
def test_eeg_chunks_reject_bad_input(change: dict[str, object], message: str) -> None:
    good = _eeg(np.zeros(1, dtype=np.int16)).model_dump()
    good.update(change)
    with pytest.raises(ValidationError, match=message):
        SampleChunk.model_validate(good)


def test_only_eeg_chunks_name_a_channel_and_only_regular_ones_place_sample0() -> None:
    with pytest.raises(ValidationError, match="channel names the EEG channel"):
        _chunk(channel="C3")
    with pytest.raises(ValidationError, match="sample0 places regular samples"):
        _chunk(sample0=3)
    with pytest.raises(ValidationError, match="send them only with it"):
        _chunk(scale=2.0)


def test_payloads_are_frozen_and_strict() -> None:
    c = _chunk()
    with pytest.raises(ValidationError):
        c.seq = 4  # type: ignore[misc]
    with pytest.raises(ValidationError, match="Extra inputs"):
        _chunk(bpm=3)


def test_session_event_validation() -> None:
    ok = SessionEvent(event="start", subject_id="s1", session_id="n1", modalities=("rr",),
                      time_zone="Europe/Amsterdam", t_utc=T0, family="cardio")
    assert ok.family == "cardio"
    with pytest.raises(ValidationError, match="unknown IANA time zone"):
        SessionEvent(event="end", subject_id="s1", session_id="n1", time_zone="Mars/Olympus",
                     t_utc=T0)
    with pytest.raises(ValidationError, match="must list the modalities"):
        SessionEvent(event="start", subject_id="s1", session_id="n1", t_utc=T0)
    psg = SessionEvent(event="start", subject_id="s1", session_id="n1", family="psg",
                       modalities=("eeg",), channels=("Fpz-Cz", "Pz-Oz"), t_utc=T0)
    assert psg.channels == ("Fpz-Cz", "Pz-Oz")
    with pytest.raises(ValidationError, match="lists its EEG channels in `channels` exactly"):
        SessionEvent(event="start", subject_id="s1", session_id="n1", family="psg",
                     modalities=("eeg",), t_utc=T0)
    with pytest.raises(ValidationError, match="must be unique"):
        SessionEvent(event="start", subject_id="s1", session_id="n1", family="psg",
                     modalities=("eeg",), channels=("C3", "C3"), t_utc=T0)


def test_stage_event_identity_and_classes() -> None:
    ev = StageEvent(
        subject_id="s1", session_id="n1", epoch_index=2, epoch_start_utc=T0, model_name="m",
        model_version="1", kind="causal", stage="REM",
        probabilities={"W": 0.1, "light": 0.2, "deep": 0.1, "REM": 0.6}, confidence=0.6,
        closed_at_utc=T0, emitted_at_utc=T0, latency_s=0.01,
    )
    assert ev.event_id == f"s1|n1|{T0.isoformat()}|causal"
    with pytest.raises(ValidationError, match="keys"):
        StageEvent(**{**ev.model_dump(), "probabilities": {"W": 1.0}})


def test_decode_never_raises() -> None:
    c = _chunk()
    assert decode(c.model_dump_json().encode(), SampleChunk) == c
    bad_json = decode(b"{not json", SampleChunk)
    assert isinstance(bad_json, DecodeFailure) and bad_json.stage == "decode"
    nan = decode(c.model_dump_json().replace("61.0", "NaN").encode(), SampleChunk)
    assert isinstance(nan, DecodeFailure) and nan.stage == "validate"
    assert "values.1: must be a finite number" in nan.reason
    assert isinstance(decode(b"", SampleChunk), DecodeFailure)


def test_codecs_round_trip_through_faust() -> None:
    register_codecs()
    c = _chunk()
    raw = codecs.dumps("sleepstream.samples.v1", c)
    assert codecs.loads("sleepstream.samples.v1", raw) == c
    dl = DeadLetter.wrap(b"\xff\x00raw", topic="t", stage="decode", reason="r",
                         error_type="E", received_at_utc=T0)
    assert dl.raw == b"\xff\x00raw"
