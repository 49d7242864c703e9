"""Every numba kernel agrees with its plain-Python reference, plus known answers."""

from __future__ import annotations

import numpy as np
import pytest

from models.features import _kernels as k
from models.features import _slow_kernels as ks
from models.features import counts as cnt
from models.features import registry as reg

SEEDS = range(6)


def _sorted_times(rng, n, span=900.0):
    t = np.sort(rng.uniform(-50, span, n))
    if n > 3:
        t[2] = t[1]  # a duplicate time stamp
    return t


@pytest.mark.parametrize("seed", SEEDS)
def test_window_stats_agree(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 200))
    t = _sorted_times(rng, n)
    v = rng.normal(60, 10, n) * (rng.random(n) > 0.2)
    windows = np.array([30.0, 60.0, 150.0, 600.0, 5000.0])
    for end in (0.0, 300.0, 901.0):
        a = k.window_stats_py(t, v, end, windows, 15.0)
        b = k.window_stats(t, v, end, windows, 15.0)
        np.testing.assert_allclose(b, a, rtol=1e-9, atol=1e-12)


def test_window_stats_known_answers():
    t = np.arange(0.0, 600.0, 5.0)
    flat = k.window_stats(t, np.full(t.size, 60.0), 600.0, np.array([60.0, 600.0]), 15.0)
    np.testing.assert_array_equal(flat[:, k.WS_MEAN], [60.0, 60.0])
    np.testing.assert_array_equal(flat[:, [k.WS_STD, k.WS_SDIFF, k.WS_SLOPE]], 0.0)
    np.testing.assert_array_equal(flat[:, k.WS_N], [12, 120])
    ramp = k.window_stats(t, 50.0 + 0.02 * t, 600.0, np.array([60.0, 600.0]), 15.0)
    np.testing.assert_allclose(ramp[:, k.WS_SLOPE], 0.02, rtol=1e-12)
    np.testing.assert_allclose(ramp[:, k.WS_SDIFF], 0.1, rtol=1e-12)  # 0.02 bpm/s * 5 s
    # hand-computed: values 1, 3, 0 at t 0, 10, 40 (the last step is beyond the 15-s pair gap)
    small = k.window_stats(np.array([0.0, 10.0, 40.0]), np.array([1.0, 3.0, 0.0]), 50.0,
                           np.array([100.0]), 15.0)[0]
    assert small[k.WS_N] == 3 and small[k.WS_MEAN] == pytest.approx(4 / 3)
    assert small[k.WS_STD] == pytest.approx(np.std([1, 3, 0]))
    assert small[k.WS_MAX] == 3.0 and small[k.WS_FRAC_POS] == pytest.approx(2 / 3)
    assert small[k.WS_SDIFF] == pytest.approx(2.0)
    assert small[k.WS_SLOPE] == pytest.approx(np.polyfit([0, 10, 40], [1, 3, 0], 1)[0])
    empty = k.window_stats(t, t, -1.0, np.array([60.0]), 15.0)
    np.testing.assert_array_equal(empty, 0.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_histogram_kernels_agree(seed):
    rng = np.random.default_rng(seed)
    v = rng.normal(65, 12, int(rng.integers(0, 500)))
    h_py = np.zeros(reg.NIGHT_HIST_BINS, dtype=np.int64)
    h_nb = h_py.copy()
    k.hist_add_py(h_py, v, 20.0, 1.0)
    k.hist_add(h_nb, v, 20.0, 1.0)
    np.testing.assert_array_equal(h_nb, h_py)
    assert h_py.sum() == v.size
    np.testing.assert_allclose(
        k.hist_centre_scale(h_nb, 20.0, 1.0, 3.0), k.hist_centre_scale_py(h_py, 20.0, 1.0, 3.0),
        rtol=1e-12,
    )


def test_histogram_known_answers():
    h = np.zeros(reg.NIGHT_HIST_BINS, dtype=np.int64)
    assert k.hist_centre_scale(h, 20.0, 1.0, 3.0) == (0.0, 3.0)
    k.hist_add(h, np.full(100, 60.0), 20.0, 1.0)
    assert k.hist_centre_scale(h, 20.0, 1.0, 3.0) == (60.0, 3.0)  # IQR 0.5 bpm -> floor
    h[:] = 0
    k.hist_add(h, np.arange(50.0, 90.0), 20.0, 1.0)  # 40 integers, uniform
    centre, scale = k.hist_centre_scale(h, 20.0, 1.0, 3.0)
    assert centre == pytest.approx(69.5) and scale == pytest.approx(20.0 / 1.349)
    h[:] = 0
    k.hist_add(h, np.array([-100.0, 1000.0]), 20.0, 1.0)  # clipped into the end bins
    assert h[0] == 1 and h[-1] == 1


@pytest.mark.parametrize("seed", SEEDS)
def test_assemble_kernels_agree(seed):
    rng = np.random.default_rng(seed)
    st = np.abs(rng.normal(10, 5, (5, 7)))
    st[rng.random(5) < 0.3, 0] = 0.0
    exp = np.array([12.0, 30.0, 60.0, 120.0, 6.0])
    np.testing.assert_allclose(
        k.hr_assemble(st, 61.0, 4.0, exp), k.hr_assemble_py(st, 61.0, 4.0, exp), rtol=1e-12
    )
    since = float(rng.normal(100, 200))
    np.testing.assert_allclose(
        k.act_assemble(st[:4], exp[:4], since), k.act_assemble_py(st[:4], exp[:4], since),
        rtol=1e-12,
    )
    ht = np.abs(rng.normal(0.5, 0.2, (3, 7)))
    spec = rng.normal(size=601) + 1j * rng.normal(size=601)
    bands = np.array([12, 45, 45, 120])
    win = np.array([60.0, 150.0, 300.0])
    for sp in (spec, spec[:0]):
        np.testing.assert_allclose(
            k.hrv_assemble(ht, win, 60.0, 5.0, sp, bands, 1e-3),
            k.hrv_assemble_py(ht, win, 60.0, 5.0, sp, bands, 1e-3),
            rtol=1e-12,
        )


def _random_beats(rng, n):
    rr = rng.normal(0.9, 0.08, n)
    rr[rng.random(n) < 0.03] = rng.uniform(0.1, 3.0)  # physiological outliers
    t = np.cumsum(np.abs(rr))
    t[rng.random(n) < 0.02] += 2.0  # lost beats: non-contiguous
    t = np.maximum.accumulate(t)
    types = (rng.random(n) < 0.05).astype(np.uint8) * rng.integers(1, 5, n).astype(np.uint8)
    return t, rr, types


@pytest.mark.parametrize("seed", SEEDS)
def test_rr_classify_agrees(seed):
    rng = np.random.default_rng(seed)
    t, rr, types = _random_beats(rng, 400)
    states = [(np.zeros(1), np.zeros(5, np.int64), np.zeros(11)) for _ in range(2)]
    out = []
    for fn, (f, i, m) in zip((k.rr_classify_py, k.rr_classify), states, strict=True):
        parts = [fn(t[a:b], rr[a:b], types[a:b], f, i, m, 0.3, 2.0, 0.2, 0.25)
                 for a, b in ((0, 150), (150, 151), (151, 400))]
        out.append([np.concatenate(p) for p in zip(*parts, strict=True)])
    for a, b in zip(*out, strict=True):
        np.testing.assert_array_equal(a, b)
    for (f1, i1, m1), (f2, i2, m2) in [states]:
        np.testing.assert_array_equal(f1, f2)
        np.testing.assert_array_equal(i1, i2)
        np.testing.assert_array_equal(m1, m2)


def test_rr_classify_ectopic_and_outliers():
    rr = np.array([1.0, 1.0, 1.0, 1.0, 0.7, 1.3, 1.0, 1.0, 1.5, 1.0, 1.0, 2.5, 1.0, 1.0])
    types = np.zeros(rr.size, np.uint8)
    types[4] = 2  # V: interval into it and the one after it are excluded
    t = np.cumsum(rr)
    t[13] += 3.0  # a lost beat before the last one: its successive difference is unusable
    valid, succ = k.rr_classify(t, rr, types, np.zeros(1), np.zeros(5, np.int64), np.zeros(11),
                                0.3, 2.0, 0.2, 0.25)
    #                          first 1  1  1  V  post 1 1  +50%  1  1  >2s  1  1
    np.testing.assert_array_equal(valid, [0, 1, 1, 1, 0, 0, 1, 1, 0, 1, 1, 0, 1, 1])
    np.testing.assert_array_equal(succ, [0, 0, 1, 1, 0, 0, 0, 1, 0, 0, 1, 0, 0, 0])


@pytest.mark.parametrize("seed", SEEDS)
def test_hrv_time_agrees(seed):
    rng = np.random.default_rng(seed)
    t, rr, types = _random_beats(rng, 500)
    valid, succ = k.rr_classify(t, rr, types, np.zeros(1), np.zeros(5, np.int64), np.zeros(11),
                                0.3, 2.0, 0.2, 0.25)
    win = np.array([60.0, 150.0, 300.0])
    for end in (10.0, 200.0, float(t[-1]) + 1):
        np.testing.assert_allclose(
            k.hrv_time(t, rr, valid, succ, end, win, 0.05),
            k.hrv_time_py(t, rr, valid, succ, end, win, 0.05), rtol=1e-9, atol=1e-15,
        )


def test_hrv_time_hand_computed():
    rr = np.array([0.80, 0.90, 0.70, 0.74, 1.00])
    t = np.cumsum(rr)
    ones = np.ones(5, np.int8)
    succ = np.array([0, 1, 1, 1, 1], np.int8)
    h = k.hrv_time(t, rr, ones, succ, 10.0, np.array([100.0]), 0.05)[0]
    # differences: +0.10, -0.20, +0.04 (not > 50 ms), +0.26
    assert h[k.HT_N_VALID] == 5 and h[k.HT_SUM_VALID] == pytest.approx(4.14)
    assert h[k.HT_MEAN_NN] == pytest.approx(0.828)
    assert h[k.HT_SDNN] == pytest.approx(np.std(rr, ddof=1))
    assert h[k.HT_RMSSD] == pytest.approx(np.sqrt((0.01 + 0.04 + 0.0016 + 0.0676) / 4))
    assert h[k.HT_PNN] == pytest.approx(3 / 4) and h[k.HT_N_SUCC] == 4
    # an excluded beat drops out of SDNN and breaks the two differences around it
    valid = np.array([1, 1, 0, 1, 1], np.int8)
    succ = np.array([0, 1, 0, 0, 1], np.int8)
    h = k.hrv_time(t, rr, valid, succ, 10.0, np.array([100.0]), 0.05)[0]
    assert h[k.HT_SDNN] == pytest.approx(np.std([0.8, 0.9, 0.74, 1.0], ddof=1))
    assert h[k.HT_RMSSD] == pytest.approx(np.sqrt((0.01 + 0.0676) / 2))
    assert h[k.HT_PNN] == pytest.approx(1.0)


@pytest.mark.parametrize("seed", SEEDS)
def test_rr_tachogram_agrees(seed):
    rng = np.random.default_rng(seed)
    t, rr, types = _random_beats(rng, 500)
    valid = (rng.random(500) > 0.1).astype(np.int8)
    taper = np.hanning(1200)
    for t0 in (-300.0, 10.0, 100.0, float(t[-1]) - 50):
        np.testing.assert_allclose(
            k.rr_tachogram(t, rr, valid, t0, 4.0, taper),
            k.rr_tachogram_py(t, rr, valid, t0, 4.0, taper), rtol=1e-9, atol=1e-9,
        )


@pytest.mark.parametrize("seed", SEEDS)
def test_count_kernels_agree(seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=500)
    zf1, zf2 = np.zeros((10, 2)), np.zeros((10, 2))
    np.testing.assert_allclose(cnt.sosfilt(cnt.COUNT_SOS, x, zf1),
                               cnt.sosfilt_py(cnt.COUNT_SOS, x, zf2), rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(zf1, zf2, rtol=1e-9, atol=1e-12)
    t = np.cumsum(rng.uniform(0.01, 0.04, 3000))
    t[1500:] += 2.5  # a gap: restart
    z = 1.0 + 0.2 * np.sin(2 * np.pi * 5.3 * t) * (rng.random() + 0.1)
    results = []
    for fn, close in ((cnt.accel_counts_py, cnt.accel_close_py),
                      (cnt.accel_counts, cnt.accel_close)):
        st = cnt.CountState()
        out_c, out_v = np.zeros(100, np.int64), np.zeros(100)
        fn(t[:1000], z[:1000], cnt.COUNT_SOS, st.zf, st.fst, st.ist, cnt.COUNT_PARAMS, out_c, out_v)
        close(30.0, st.fst, st.ist, cnt.COUNT_PARAMS, out_c, out_v)
        fn(t[1000:], z[1000:], cnt.COUNT_SOS, st.zf, st.fst, st.ist, cnt.COUNT_PARAMS, out_c, out_v)
        n = st.ist[cnt.I_N_OUT]
        results.append((out_c[:n], out_v[:n], st.zf, st.fst, st.ist))
    for a, b in zip(*results, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-9)
    assert results[0][0].size > 0


@pytest.mark.parametrize("seed", SEEDS)
def test_hrv_slow_and_resp_agree(seed):
    rng = np.random.default_rng(seed)
    m = int(rng.integers(0, 150))
    ep_end = 30.0 * (np.arange(m) + 1.0)
    n = rng.integers(0, 40, m).astype(np.float64) * (rng.random(m) > 0.2)
    hr = rng.normal(65, 8, m)
    ep = np.column_stack([n, n * hr, n * (hr * hr + rng.uniform(0, 20, m))])
    end = float(ep_end[-1]) if m else 30.0
    hw, ew = np.array([300.0, 600.0, 1800.0, 3600.0]), np.array([150.0, 300.0, 600.0])
    np.testing.assert_allclose(ks.hrv_slow(ep_end, ep, end, hw, ew, 4.0),
                               ks.hrv_slow_py(ep_end, ep, end, hw, ew, 4.0), rtol=1e-12)
    spec = rng.normal(size=601) + 1j * rng.normal(size=601)
    bands = np.array([3, 12, 12, 45, 45, 120])
    for sp in (spec, spec[:0], spec * 0.0):
        np.testing.assert_allclose(ks.hrv_resp(sp, bands, 1e-3, 1 / 300),
                                   ks.hrv_resp_py(sp, bands, 1e-3, 1 / 300), rtol=1e-12)


def test_hrv_slow_hand_computed():
    # four epochs: 60 bpm, no beat, 70 bpm, 80 bpm (10 beats each, no spread inside)
    ep_end = np.array([30.0, 60.0, 90.0, 120.0])
    hr = np.array([60.0, 0.0, 70.0, 80.0])
    n = np.array([10.0, 0.0, 10.0, 10.0])
    ep = np.column_stack([n, n * hr, n * hr * hr])
    out = ks.hrv_slow(ep_end, ep, 120.0, np.array([60.0, 120.0]), np.array([90.0, 120.0]), 2.0)
    spread3 = np.std([60.0, 70.0, 80.0])
    # std of beats: last 60 s holds 70 and 80; the whole holds all three levels
    np.testing.assert_allclose(out[:2], [5.0 / 2.0, spread3 / 2.0])
    # epoch means: 90 s window holds 70, 80 (the empty epoch is skipped)
    np.testing.assert_allclose(out[2:4], [5.0 / 2.0, spread3 / 2.0])
    # changes: only 70 -> 80 joins adjacent epochs with beats (60 -> gap -> 70 does not)
    np.testing.assert_allclose(out[4:], [10.0 / 2.0, 10.0 / 2.0])


def test_hrv_resp_hand_computed():
    bands = np.array([1, 2, 2, 4, 4, 8])
    spec = np.zeros(10, dtype=np.complex128)
    spec[1] = 3.0  # VLF power 9
    spec[6] = 4.0j  # one HF line of power 16
    out = ks.hrv_resp(spec, bands, 1.0, 0.05)
    np.testing.assert_allclose(out, [np.log1p(9.0), np.log(17.0 / 26.0), 0.3, 0.0])
    spec[4:8] = 1.0  # flat HF: entropy at its maximum
    np.testing.assert_allclose(ks.hrv_resp(spec, bands, 1.0, 0.05)[2:], [0.2, 1.0])


TESTED = {
    "window_stats", "hist_add", "hist_centre_scale", "hr_assemble", "act_assemble",
    "hrv_assemble", "rr_classify", "hrv_time", "rr_tachogram", "sosfilt", "accel_counts",
    "accel_close", "hrv_slow", "hrv_resp",
}


def test_every_kernel_has_a_compiled_twin_and_an_agreement_test():
    found = set()
    for module in (k, ks, cnt):
        for name in dir(module):
            if name.endswith("_py") and callable(getattr(module, name)):
                twin = getattr(module, name[:-3])
                assert hasattr(twin, "py_func") and twin.py_func is getattr(module, name)
                found.add(name[:-3])
    assert found == TESTED
