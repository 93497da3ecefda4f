"""dagsim.divergences: KL, TV and entropies against independent formulas, and their zero conventions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy.stats import entropy as scipy_entropy

from dagsim.divergences import count_entropy, entropy, kl_divergence, majority_ratio, total_variation
from dagsim.tolerances import FLOAT64_SUMS
from tests.strategies import simplex_points


def _kl_fsum(p, q) -> float:
    """Σ p log(p/q) term by term with math.fsum (an independent oracle; p > 0 only)."""
    return math.fsum(a * math.log(a / b) for a, b in zip(p, q) if a > 0)


@given(st.integers(2, 8), st.data())
def test_kl_tv_entropy_equal_independent_formulas(k, data):
    p, q = data.draw(simplex_points(k)), data.draw(simplex_points(k))
    assert abs(kl_divergence(p, q) - _kl_fsum(p, q)) <= FLOAT64_SUMS
    assert abs(kl_divergence(p, q) - scipy_entropy(p, q)) <= FLOAT64_SUMS
    assert abs(total_variation(p, q) - 0.5 * math.fsum(abs(a - b) for a, b in zip(p, q))) <= FLOAT64_SUMS
    assert total_variation(p, q) == total_variation(q, p)
    assert abs(entropy(p) - scipy_entropy(p)) <= FLOAT64_SUMS


def test_zero_conventions():
    p, q = np.array([0.5, 0.5, 0.0]), np.array([0.25, 0.25, 0.5])
    assert kl_divergence(p, q) == pytest.approx(math.log(2), abs=FLOAT64_SUMS)  # 0 log 0 = 0
    assert kl_divergence(q, p) == math.inf  # q puts mass where p has none
    floored = kl_divergence(q, p, floor=1e-15)  # llm.theory's finite convention
    assert math.isfinite(floored)
    assert floored == pytest.approx(_kl_fsum(q, np.maximum(p, 1e-15)), abs=FLOAT64_SUMS)
    assert kl_divergence(p, p) == 0.0 and entropy(np.array([1.0, 0.0])) == 0.0


def test_control_kl_is_not_symmetric_and_the_floor_changes_the_value():
    """The wrong variants a caller could pick: swapped arguments, or a floor where none was asked for."""
    p, q = np.array([0.9, 0.1]), np.array([0.5, 0.5])
    assert abs(kl_divergence(p, q) - kl_divergence(q, p)) > 0.05
    assert kl_divergence(p, np.array([1.0, 0.0]), floor=1e-15) != kl_divergence(p, np.array([1.0, 0.0]))


def test_count_entropy_and_majority_ratio():
    counts = np.array([3, 0, 1, 4])  # a group of G = 8, no-answer bucket last
    assert count_entropy(counts, 8) == pytest.approx(scipy_entropy(counts / 8), abs=FLOAT64_SUMS)
    assert count_entropy(counts) == count_entropy(counts, 8)
    assert majority_ratio(counts, 8) == 0.5  # the no-answer bucket may be the majority (TRL metric)
    assert majority_ratio(counts, 8, label=0) == 0.375  # the pseudo-label's share (trainer metric)
