"""aml.metrics on hand-made inputs: every expected number below was worked by hand."""
import math

import numpy as np
import pytest

from aml.decisions import exceeds_noise, mean_std, seed_summary


def test_mean_std_uses_the_sample_standard_deviation():
    assert mean_std([1.0, 2.0, 3.0, 6.0]) == (3.0, pytest.approx(math.sqrt(14 / 3)))   # ddof=1: 14/3, not 14/4
    assert mean_std(v for v in (0.5, 0.7)) == (pytest.approx(0.6), pytest.approx(math.sqrt(0.02)))
    assert mean_std([0.4]) == (0.4, 0.0)
    with pytest.raises(ValueError, match="'values'"):
        mean_std([])


def test_seed_summary_gives_the_standard_error_of_the_mean():
    s = seed_summary([1.0, 2.0, 3.0, 6.0])
    assert s == {"mean": 3.0, "std": pytest.approx(math.sqrt(14 / 3)), "n": 4,
                 "se": pytest.approx(math.sqrt(14 / 3) / 2)}
    assert seed_summary(iter([0.5])) == {"mean": 0.5, "std": 0.0, "n": 1, "se": 0.0}
    with pytest.raises(ValueError, match="'values'"):
        seed_summary([])


def test_exceeds_noise_is_welchs_two_standard_error_rule():
    # a: 3 seeds, mean 0.50, s^2 = 0.0001; b: 2 seeds, mean 0.53, s^2 = 0.000392 (ddof=1)
    # se = sqrt(0.0001/3 + 0.000392/2) = 0.01528, so the difference 0.03 is 1.963 se
    a, b = [0.49, 0.50, 0.51], [0.516, 0.544]
    se = math.sqrt(0.0001 / 3 + 0.000392 / 2)
    assert 1.95 * se < 0.03 < 2 * se
    assert not exceeds_noise(a, b) and not exceeds_noise(b, a)             # within 2 se: a tie
    assert exceeds_noise(a, b, z=1.95) and exceeds_noise(b, a, z=1.95)   # beyond 1.95 se
    # each of these wrong rules says "exceeds" at z = 2: a pooled variance (2 se = 0.0256), the
    # sizes swapped (sqrt(0.0001/2 + 0.000392/3): 2 se = 0.0269), ddof=0 (2 se = 0.0205)
    with pytest.raises(ValueError, match="'z'"):
        exceeds_noise(a, b, z=0)


def test_exceeds_noise_at_the_boundary_is_strict():
    # a = [0, 2], b = [4, 6]: s^2 = 2 each, se = sqrt(2/2 + 2/2) = sqrt(2); difference 4 = 2 sqrt(2) * sqrt(2)
    assert exceeds_noise([0.0, 2.0], [4.0, 6.0], z=2.0)            # 4 > 2.83
    assert exceeds_noise([0.0, 2.0], [4.0, 6.0])                   # the default is z = 2 ...
    assert not exceeds_noise([0.0, 2.0], [4.0, 6.0], z=3.0)        # ... not 3 (4 < 4.24)
    assert not exceeds_noise([0.0, 2.0], [4.0, 6.0], z=4 / math.sqrt(2) + 1e-9)
    assert not exceeds_noise([0.0, 2.0], [2.0, 4.0], z=math.sqrt(2))  # 2 == sqrt(2) * sqrt(2): equal is not more
    assert exceeds_noise([0.0, 2.0], [2.0, 4.0], z=math.sqrt(2) - 1e-9)


@pytest.mark.filterwarnings("error")     # no variance of a single value is computed (NumPy would warn: ddof)
def test_exceeds_noise_without_a_noise_estimate():
    # one seed on either side: no noise estimate, so never (however large the difference)
    assert not exceeds_noise([0.1], [0.9, 0.91])
    assert not exceeds_noise([0.9, 0.91], [0.1])
    assert not exceeds_noise([0.1], [0.9])
    # no spread at all: any difference exceeds it, no difference does not
    assert exceeds_noise([0.5, 0.5], [0.501, 0.501])
    assert not exceeds_noise([0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="'a'"):
        exceeds_noise([], [0.5, 0.6])
    with pytest.raises(ValueError, match="'b'"):
        exceeds_noise([0.5, 0.6], [])


def test_neighbour_correlation_is_the_correlation_of_horizontally_neighbouring_weights():
    from aml.decisions import neighbour_correlation
    rng = np.random.default_rng(0)
    assert abs(neighbour_correlation(rng.standard_normal((3072, 20)))) < 0.02        # random weights: about 0
    rows = np.repeat(rng.standard_normal((20, 32, 1, 3)), 32, axis=2)             # each row constant: 1
    assert neighbour_correlation(rows.reshape(20, 3072).T) == pytest.approx(1.0)
    columns = np.repeat(rng.standard_normal((20, 1, 32, 3)), 32, axis=1)          # each column constant: the
    assert abs(neighbour_correlation(columns.reshape(20, 3072).T)) < 0.05         # vertical neighbours, not these
    with pytest.raises(ValueError, match=r"'W1'.*\(3072, H\).*\(3, 1024\)"):
        neighbour_correlation(np.ones((3, 1024)))
