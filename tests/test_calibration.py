"""Centring a probability map on its own subject/background split."""

from __future__ import annotations

import numpy as np
from bgmask.engine.calibration import centre_on_split, split_level


def two_level_map(subject: float, background: float) -> np.ndarray:
    prob = np.full((64, 64), background, np.float32)
    prob[16:48, 16:48] = subject
    return prob


def test_the_split_falls_between_subject_and_background():
    assert 0.05 < split_level(two_level_map(0.6, 0.05)) <= 0.6
    assert 0.3 < split_level(two_level_map(0.95, 0.3)) <= 0.95


def test_a_timid_subject_crosses_one_half_and_the_background_stays_below():
    # The network found the subject but only at 0.6 against 0.05: the mask must still read
    # the subject as the subject at the usual 0.5 cut.
    centred = centre_on_split(two_level_map(0.6, 0.05))
    assert centred[32, 32] > 0.5 > centred[0, 0]


def test_order_and_ends_are_kept():
    rng = np.random.default_rng(1)
    prob = np.sort(rng.random(4096, dtype=np.float32))
    prob[0], prob[-1] = 0.0, 1.0
    centred = centre_on_split(prob.reshape(64, 64)).ravel()
    assert np.all(np.diff(centred) >= 0)
    assert centred[0] == 0.0 and abs(centred[-1] - 1.0) < 1e-6


def test_a_map_of_one_value_is_not_stretched_into_noise():
    for value in (0.0, 1.0):
        flat = np.full((32, 32), value, np.float32)
        assert np.array_equal(centre_on_split(flat), flat)
