import numpy as np
import pytest

from aml import TwoLayerNet, check_model_gradients, eval_numerical_gradient, rel_error
from aml.gradient_check import formula_errors, numerical_gradients, torch_gradients


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


# ---------------------------------------------------------------------------------------------
# Every function of aml.gradient_check against an independent oracle: centred differences whose
# error is known in closed form, torch.autograd, and a loss worked by hand.
# ---------------------------------------------------------------------------------------------


def test_rel_error_is_the_largest_elementwise_error_with_a_floor():
    # elementwise |x - y| / (|x| + |y|) = [0, 2/4]: the max, not the mean
    assert rel_error(np.array([1.0, 1.0]), np.array([1.0, 3.0])) == 0.5
    assert rel_error(np.array([1.0, -1.0]), np.array([1.0, 1.0])) == 1.0      # |x - y| / (|x| + |y|)
    # below 1e-8 the denominator is 1e-8: 1e-10 apart near zero is a relative error of 1e-2
    assert rel_error(np.array([0.0]), np.array([1e-10])) == pytest.approx(1e-2, rel=1e-12)
    assert rel_error([0.0, 0.0], [0.0, 0.0]) == 0.0                            # lists are accepted


def test_centred_difference_error_is_h_squared():
    # for f(x) = x^3 at 0, (f(h) - f(-h)) / 2h = h^2 exactly: this pins the default h = 1e-5 and
    # the centred (not one-sided) difference
    grad = eval_numerical_gradient(lambda a: float(a[0] ** 3), np.array([0.0]))
    assert grad[0] == pytest.approx(1e-10, rel=1e-6)
    grad = eval_numerical_gradient(lambda a: float(a[0] ** 3), np.array([0.0]), h=1e-3)
    assert grad[0] == pytest.approx(1e-6, rel=1e-6)
    # one-sided would give h for f(x) = x^2 at 0; centred gives 0
    assert eval_numerical_gradient(lambda a: float(a[0] ** 2), np.array([0.0]))[0] == 0.0


def test_numerical_gradient_of_float32_input_is_float64():
    x = np.array([1.0, 2.0], dtype=np.float32)
    grad = eval_numerical_gradient(lambda a: float(np.sum(a.astype(np.float64) * [3.0, -1.0])), x, h=1e-2)
    assert grad.dtype == np.float64
    np.testing.assert_allclose(grad, [3.0, -1.0], rtol=1e-5)
    with pytest.raises(TypeError, match="'x'.*list"):
        eval_numerical_gradient(np.sum, [1.0, 2.0])


class _Cubic:
    """A stub model: loss = sum over params of (p^3) + reg * sum(p) + (a uniform draw if rng)."""

    def __init__(self):
        self.params = {"a": np.zeros(2), "b": np.zeros((1, 1))}

    def loss(self, X, y, reg=0.0, rng=None):
        loss = sum(float(np.sum(p ** 3)) + reg * float(np.sum(p)) for p in self.params.values())
        if rng is not None:
            loss += rng.random()
        return loss, {k: 3 * p ** 2 + reg + 0.5 for k, p in self.params.items()}   # wrong by 0.5


def test_numerical_gradients_pass_reg_h_and_the_dropout_seed():
    model = _Cubic()
    grads = numerical_gradients(model, None, None, reg=0.25, h=1e-3)
    assert set(grads) == {"a", "b"} and grads["b"].shape == (1, 1)
    np.testing.assert_allclose(grads["a"], [0.25 + 1e-6] * 2, rtol=1e-9)     # d(reg p)/dp + h^2
    # the same mask for every evaluation: the random term cancels in the differences
    grads = numerical_gradients(model, None, None, dropout_seed=3)
    np.testing.assert_allclose(grads["b"], [[1e-10]], rtol=1e-3, atol=0)
    np.testing.assert_array_equal(model.params["a"], [0.0, 0.0])            # parameters restored


def test_check_model_gradients_reports_a_wrong_backward_pass():
    errors = check_model_gradients(_Cubic(), None, None, reg=1.0, dropout_seed=0)
    # analytic 1.5 against numeric 1 + 1e-10: (0.5) / 2.5 = 0.2
    assert set(errors) == {"a", "b"}
    assert errors["a"] == pytest.approx(0.2, rel=1e-6) and errors["b"] == pytest.approx(0.2, rel=1e-6)


def test_check_model_gradients_defaults_and_h():
    # defaults: reg 0, so analytic 0.5 against numeric h^2 ~ 0: relative error ~1
    assert check_model_gradients(_Cubic(), None, None)["a"] == pytest.approx(1.0, rel=1e-6)
    # h is passed on: numeric (0.1)^2 = 0.01 against analytic 0.5
    assert check_model_gradients(_Cubic(), None, None, h=0.1)["a"] == pytest.approx(0.49 / 0.51, rel=1e-9)


class _RngSensitive(_Cubic):
    """Its analytic gradient is wrong only when an rng (dropout) is passed."""

    def loss(self, X, y, reg=0.0, rng=None):
        loss, grads = super().loss(X, y, reg, None)
        return loss, {k: g - 0.5 + (0.5 if rng is not None else 0.0) for k, g in grads.items()}


def test_check_model_gradients_passes_no_rng_without_a_dropout_seed():
    errors = check_model_gradients(_RngSensitive(), None, None, reg=1.0)
    assert max(errors.values()) < 1e-8
    assert check_model_gradients(_RngSensitive(), None, None, reg=1.0, dropout_seed=2)["a"] == pytest.approx(0.2)


def _hand_net():
    # the example of test_two_layer_net.test_hand_worked_example
    net = TwoLayerNet(1, 1, 2, seed=0)
    net.params.update(W1=np.array([[1.0]]), b1=np.zeros(1), W2=np.array([[1.0, -1.0]]), b2=np.zeros(2))
    return net, np.array([[1.0]]), np.array([0])


def test_numerical_gradients_of_the_hand_worked_example():
    net, X, y = _hand_net()
    s = 1 / (1 + np.e ** 2)
    grads = numerical_gradients(net, X, y, reg=0.5)
    np.testing.assert_allclose(grads["W1"], [[1 - 2 * s]], rtol=1e-8)
    np.testing.assert_allclose(grads["W2"], [[1 - s, -1 + s]], rtol=1e-8)
    np.testing.assert_allclose(grads["b1"], [-2 * s], rtol=1e-8)


def test_torch_gradients_of_the_hand_worked_example():
    net, X, y = _hand_net()
    s = 1 / (1 + np.e ** 2)
    g = torch_gradients(net.params, X, y, reg=0.5)
    assert set(g) == {"z3", "W1", "b1", "W2", "b2"}
    np.testing.assert_allclose(g["z3"], [[-s, s]], rtol=1e-12)             # of J, without the L2 term
    np.testing.assert_allclose(g["W1"], [[1 - 2 * s]], rtol=1e-12)
    np.testing.assert_allclose(g["W2"], [[1 - s, -1 + s]], rtol=1e-12)
    np.testing.assert_allclose(g["b1"], [-2 * s], rtol=1e-12)
    np.testing.assert_allclose(g["b2"], [-s, s], rtol=1e-12)
    assert all(v.dtype == np.float64 for v in g.values())
    # reg defaults to 0; float32 inputs are computed in float64
    g0 = torch_gradients(net.params, X.astype(np.float32), y)
    np.testing.assert_allclose(g0["W1"], [[-2 * s]], rtol=1e-12)
    np.testing.assert_allclose(g0["W2"], [[-s, s]], rtol=1e-12)


@pytest.mark.parametrize("reg", [0.0, 0.3])
def test_torch_gradients_agree_with_the_numpy_backward_pass(reg):
    rng = np.random.default_rng(5)
    net = TwoLayerNet(4, 6, 3, std=0.5, seed=rng, dtype=np.float32)     # float32 params: torch works in float64
    X, y = rng.standard_normal((7, 4)), rng.integers(0, 3, 7)
    g = torch_gradients(net.params, X, y, reg=reg)
    net64 = TwoLayerNet(4, 6, 3, seed=0)
    net64.params = {k: v.astype(np.float64) for k, v in net.params.items()}
    _, grads = net64.loss(X, y, reg=reg)
    for k in net.params:
        assert rel_error(g[k], grads[k]) < 1e-10, k
    probs = net64.loss(X)
    onehot = np.eye(3)[y]
    np.testing.assert_allclose(g["z3"], (probs - onehot) / 7, rtol=1e-10, atol=1e-14)


def test_formula_errors_tolerances_are_strict_and_default_to_1e8_and_1e6():
    f = np.array([1.0, 2.0])
    rows = formula_errors("dW", f, exact={"exact": f.copy(), "close": f * (1 + 1e-10)})
    assert [(r["reference"], r["error"]) for r in rows] == [("exact", 0.0), ("close", pytest.approx(5e-11, rel=1e-3))]
    with pytest.raises(AssertionError, match=r"^dW: the formula disagrees with \['far'\]"):
        formula_errors("dW", f, exact={"exact": f, "far": f * 3})
    formula_errors("dW", np.array([1.0]), tol=0.51, exact={"ref": [3.0]})          # error 0.5 < 0.51
    with pytest.raises(AssertionError, match="far"):
        formula_errors("dW", np.array([1.0]), tol=0.5, exact={"far": [3.0]})       # an error equal to it fails
    formula_errors("dW", np.array([1.0]), exact={"ref": [1.0 + 1.9e-8]})
    with pytest.raises(AssertionError):
        formula_errors("dW", np.array([1.0]), exact={"ref": [1.0 + 2.1e-8]})
    formula_errors("dW", np.array([1.0]), numeric={"ref": [1.0 + 1.9e-6]})
    with pytest.raises(AssertionError):
        formula_errors("dW", np.array([1.0]), numeric={"ref": [1.0 + 2.1e-6]})
    assert formula_errors("dW", f) == []


def test_formula_errors_gives_one_row_per_reference_with_its_bound():
    f = np.array([2.0])
    rows = formula_errors("db1", f, exact={"torch": f}, numeric={"fd": f * (1 + 2e-7)})
    assert rows == [{"quantity": "db1", "reference": "torch", "error": 0.0, "bound": 1e-8},
                    {"quantity": "db1", "reference": "fd", "error": pytest.approx(1e-7, rel=1e-6), "bound": 1e-6}]
    rows = formula_errors("db1", f, numeric={"fd": f}, tol=0.5, numeric_tol=0.25)
    assert [r["bound"] for r in rows] == [0.25]
    with pytest.raises(AssertionError, match=r"^db1: .*\['fd'\]"):
        formula_errors("db1", f, exact={"torch": f}, numeric={"fd": f * 1.01})
    with pytest.raises(AssertionError, match=r"^db1: .*\['torch'\]"):
        formula_errors("db1", f, exact={"torch": f * (1 + 3e-8)})
