import numpy as np
import pytest

from aml import eval_numerical_gradient, rel_error


def test_numerical_gradient_of_known_function_and_restores_input():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before = x.copy()
    grad = eval_numerical_gradient(lambda a: float(np.sum(a ** 3) + a[0, 1] * a[1, 0]), x)
    expected = 3 * before ** 2
    expected[0, 1] += before[1, 0]
    expected[1, 0] += before[0, 1]
    np.testing.assert_allclose(grad, expected, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_rel_error():
    assert rel_error(np.array([1.0, 2.0]), np.array([1.0, 2.0])) == 0.0
    assert rel_error(np.array([1.0]), np.array([3.0])) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="shape"):
        rel_error(np.ones(2), np.ones(3))


def test_numerical_gradient_rejects_bad_input():
    with pytest.raises(ValueError, match="'h'"):
        eval_numerical_gradient(np.sum, np.ones(2), h=0)
    with pytest.raises(TypeError, match="'x'"):
        eval_numerical_gradient(np.sum, np.ones(2, dtype=int))
