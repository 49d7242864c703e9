"""Clock features across time zones and DST, and the feature registry."""

from __future__ import annotations

import json
import math
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import numpy as np
import pytest

from models.features import FeatureExtractor, compute_features, registry
from models.features.clock import clock_features, tz_from_state, tz_to_state

AMS = ZoneInfo("Europe/Amsterdam")


def _tod(hours: float) -> tuple[float, float]:
    return math.sin(2 * math.pi * hours / 24), math.cos(2 * math.pi * hours / 24)


def test_time_of_day_at_23h_amsterdam():
    start = datetime(2024, 3, 5, 23, 0, tzinfo=AMS)
    hours, s, c, known = clock_features(start, False, 0, 30.0)
    assert (hours, known) == (0.0, 1.0)
    assert (s, c) == pytest.approx(_tod(23.0))
    assert clock_features(start, False, 120, 30.0)[1:3] == pytest.approx(_tod(0.0), abs=1e-12)
    assert clock_features(start, False, 3, 30.0)[0] == pytest.approx(90 / 3600)


def test_daylight_saving_change_during_the_night():
    start = datetime(2024, 3, 30, 23, 0, tzinfo=AMS)  # clocks jump 02:00 -> 03:00
    four_hours = clock_features(start, False, 480, 30.0)
    assert four_hours[0] == 4.0
    assert four_hours[1:3] == pytest.approx(_tod(4.0))  # 04:00 local, not 03:00


def test_nominal_start_has_no_time_of_day():
    row = clock_features(datetime(2000, 1, 1, tzinfo=UTC), True, 240, 30.0)
    np.testing.assert_array_equal(row, [2.0, 0.0, 0.0, 0.0])


@pytest.mark.parametrize("start", [
    datetime(2024, 3, 30, 23, 0, tzinfo=AMS),
    datetime(2024, 3, 30, 23, 0, tzinfo=timezone(timedelta(hours=-5))),
    datetime(2024, 3, 30, 23, 0, tzinfo=UTC),
])
def test_time_zone_survives_the_state(start):
    assert tz_from_state(json.loads(json.dumps(tz_to_state(start)))).utcoffset(start) == \
        start.utcoffset()
    ex = FeatureExtractor("cardio", start)
    for _ in range(5):
        ex.close_epoch()
    twin = FeatureExtractor.from_state(json.loads(json.dumps(ex.to_state())))
    rows = [twin.close_epoch() for _ in range(600)]
    assert np.array_equal(np.array(rows), compute_features("cardio", start, 605)[5:])


def test_registry_is_ordered_unique_and_described():
    for family in registry.FAMILIES:
        names = registry.feature_names(family)
        assert len(names) == len(set(names))
        assert names == tuple(n for g in registry.FAMILY_GROUPS[family]
                              for n in registry.FEATURE_GROUPS[g])
        assert set(names) <= set(registry.FEATURE_DESCRIPTIONS)
        if family not in registry.PER_CHANNEL_FAMILIES:
            ex = FeatureExtractor(family, datetime(2024, 1, 1, tzinfo=UTC))
            assert ex.close_epoch().shape == (len(names),)
        spec = json.loads(json.dumps(registry.feature_spec(family)))
        assert spec["names"] == list(names)
        assert spec["version"] == registry.feature_version(family)
        assert spec["per_channel"] == (family == "psg")
    assert len(registry.feature_names("wearable")) == 60
    assert len(registry.feature_names("cardio")) == 65
    assert len(registry.feature_names("psg")) == 32
    with pytest.raises(ValueError, match="wearable"):
        registry.feature_names("eeg")
    with pytest.raises(ValueError, match="psg"):
        registry.feature_version("eeg")
    with pytest.raises(ValueError, match="PsgFeatures"):
        FeatureExtractor("psg", datetime(2024, 1, 1, tzinfo=UTC))


def test_every_parameter_belongs_to_a_family():
    prefixes = tuple(p for ps in registry.FAMILY_PARAMETER_PREFIXES.values() for p in ps)
    params = [name for name, value in vars(registry).items() if registry.is_parameter(name, value)]
    assert params and all(name.startswith(prefixes) for name in params), params
    spec = registry.feature_spec("psg")["parameters"]
    assert "PSG_NIGHT_CLIP" in spec and "eeg_spec.WELCH_NPERSEG" in spec
    assert not any(k.startswith(("HR_", "RR_")) for k in spec)
    assert "PSG_NIGHT_CLIP" not in registry.feature_spec("cardio")["parameters"]


def test_feature_versions_are_bumped_with_any_definition_change():
    # Changing a family's name, order or parameter changes its digest: bump that family's
    # entry of FEATURE_VERSIONS and update its pair below together. Other families' digests
    # (and so their shipped models) are untouched.
    pinned = {family: (registry.feature_version(family), registry.spec_digest(family))
              for family in registry.FAMILIES}
    assert pinned == {
        "wearable": ("4", "75901d4bfab81832"),
        "cardio": ("4", "fd4bac71af88d5db"),
        "psg": ("1", "f0446db6ed2c1aef"),
    }
