"""The update rules of aml.optim against steps worked by hand (CS231n's way of testing ``optim.py``).

Each rule is run for three steps on a 2-vector with gradients that change sign and size, so that a
rule which ignores its velocity, uses the current gradient twice or confuses Nesterov's look-ahead
with classical momentum gives different numbers.
"""
import numpy as np
import pytest

from aml import optim

# the three gradients of every test: (step, dw)
GRADS = [np.array([1.0, -2.0]), np.array([2.0, 0.5]), np.array([-1.0, 1.0])]
W0 = np.array([1.0, 3.0])
LR, MU = 0.1, 0.9


def _run(rule, **hyper):
    """Three steps of ``rule`` from W0; returns the w and the velocity after each step."""
    w, config, ws, vs = W0.copy(), {"learning_rate": LR, **hyper}, [], []
    for dw in GRADS:
        before = (w.copy(), dw.copy(), dict(config))
        w_next, config_next = rule(w, dw, config)
        np.testing.assert_array_equal(w, before[0])      # pure: nothing changed in place
        np.testing.assert_array_equal(dw, before[1])
        assert config.keys() == before[2].keys()
        assert config_next["learning_rate"] == LR
        w, config = w_next, config_next
        ws.append(w)
        vs.append(config.get("velocity"))
    return ws, vs


def test_sgd_by_hand():
    # w <- w - 0.1 dw: [1, 3] -> [0.9, 3.2] -> [0.7, 3.15] -> [0.8, 3.05]
    ws, vs = _run(optim.sgd)
    np.testing.assert_allclose(ws, [[0.9, 3.2], [0.7, 3.15], [0.8, 3.05]], rtol=0, atol=1e-15)
    assert vs == [None, None, None]        # plain SGD keeps no state


def test_sgd_momentum_by_hand():
    # v <- 0.9 v - 0.1 dw; w <- w + v
    # step 1: v = [-0.1, 0.2]                         w = [0.9, 3.2]
    # step 2: v = [-0.09 - 0.2, 0.18 - 0.05]        = [-0.29, 0.13];    w = [0.61, 3.33]
    # step 3: v = [-0.261 + 0.1, 0.117 - 0.1]       = [-0.161, 0.017];  w = [0.449, 3.347]
    ws, vs = _run(optim.sgd_momentum, momentum=MU)
    np.testing.assert_allclose(vs, [[-0.1, 0.2], [-0.29, 0.13], [-0.161, 0.017]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ws, [[0.9, 3.2], [0.61, 3.33], [0.449, 3.347]], rtol=0, atol=1e-14)


def test_nesterov_momentum_by_hand():
    # v' <- 0.9 v - 0.1 dw; w <- w - 0.9 v + 1.9 v'   (the velocities are those of classical momentum)
    # step 1: v = 0,             v' = [-0.1, 0.2];     w = [1 - 0.19, 3 + 0.38]            = [0.81, 3.38]
    # step 2: v = [-0.1, 0.2],   v' = [-0.29, 0.13];   w = [0.81 + 0.09 - 0.551,
    #                                                       3.38 - 0.18 + 0.247]          = [0.349, 3.447]
    # step 3: v = [-0.29, 0.13], v' = [-0.161, 0.017]; w = [0.349 + 0.261 - 0.3059,
    #                                                       3.447 - 0.117 + 0.0323]       = [0.3041, 3.3623]
    ws, vs = _run(optim.nesterov_momentum, momentum=MU)
    np.testing.assert_allclose(vs, [[-0.1, 0.2], [-0.29, 0.13], [-0.161, 0.017]], rtol=0, atol=1e-14)
    np.testing.assert_allclose(ws, [[0.81, 3.38], [0.349, 3.447], [0.3041, 3.3623]], rtol=0, atol=1e-14)


def test_nesterov_is_not_classical_momentum():
    # the bug the issue names: Nesterov replaced by heavy-ball momentum must change the iterates
    nesterov, _ = _run(optim.nesterov_momentum, momentum=MU)
    classical, _ = _run(optim.sgd_momentum, momentum=MU)
    assert not np.allclose(nesterov[-1], classical[-1])


@pytest.mark.parametrize("rule", [optim.sgd_momentum, optim.nesterov_momentum])
def test_momentum_zero_is_sgd(rule):
    ws, _ = _run(rule, momentum=0.0)
    plain, _ = _run(optim.sgd)
    np.testing.assert_allclose(ws, plain, rtol=0, atol=1e-15)


@pytest.mark.parametrize("rule", [optim.sgd_momentum, optim.nesterov_momentum])
def test_velocity_is_per_config_and_starts_at_zero(rule):
    # two parameters, two configs: one parameter's velocity never leaks into the other's; float32 stays float32
    a, b = np.array([1.0], dtype=np.float32), np.array([1.0], dtype=np.float32)
    a, ca = rule(a, np.array([1.0], dtype=np.float32), {"learning_rate": 0.5, "momentum": 0.5})
    b, cb = rule(b, np.array([-1.0], dtype=np.float32), {"learning_rate": 0.5, "momentum": 0.5})
    np.testing.assert_array_equal(ca["velocity"], [-0.5])
    np.testing.assert_array_equal(cb["velocity"], [0.5])
    assert ca["velocity"].dtype == a.dtype == np.float32 and ca["velocity"].shape == a.shape
