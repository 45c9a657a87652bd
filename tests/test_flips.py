"""aml.flips, the home of every test of its behaviour, against images built by hand: a mirrored
image, the flip masks of the solver's augmentations, and test-time flip averaging compared with
scores computed separately. One test per behaviour."""
import numpy as np
import pytest

from aml import TwoLayerNet
from aml.flips import flip_averaged_predict, flip_averaged_scores, hflip_images, random_hflip


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3072))


def _mask(n, seed):
    """The draw the augmentations make: one uniform per image, flipped below 1/2."""
    return np.random.default_rng(seed).random(n) < 0.5


def test_hflip_images_reverses_the_columns_of_each_image_only():
    X = _images(2)
    out = hflip_images(X)
    img, new = X.reshape(2, 32, 32, 3), out.reshape(2, 32, 32, 3)
    for col in range(32):
        np.testing.assert_array_equal(new[:, :, col, :], img[:, :, 31 - col, :])   # width reversed, HWC kept
    np.testing.assert_array_equal(hflip_images(out), X)                             # an involution
    assert out.shape == (2, 3072) and out.flags["C_CONTIGUOUS"] and not np.shares_memory(out, X)
    assert hflip_images(np.zeros((0, 3072))).shape == (0, 3072)


def test_hflip_images_refuses_arrays_that_are_not_flattened_images():
    with pytest.raises(ValueError, match=r"'X'.*\(N, 3072\).*\(2, 3071\)"):
        hflip_images(np.zeros((2, 3071)))
    with pytest.raises(ValueError, match=r"'X'.*\(2, 32, 96\)"):
        hflip_images(np.zeros((2, 32, 96)))


def test_random_hflip_mirrors_the_images_of_one_draw_per_image_below_one_half():
    X = _images(16)
    out = random_hflip(X, np.arange(16), np.random.default_rng(3))
    flip = _mask(16, 3)
    assert 0 < flip.sum() < 16
    np.testing.assert_array_equal(out[flip], hflip_images(X[flip]))
    np.testing.assert_array_equal(out[~flip], X[~flip])
    assert not np.shares_memory(out, X)


def test_random_hflip_with_no_image_drawn_returns_an_unchanged_copy():
    X = _images(1)
    seeds = [s for s in range(8) if not _mask(1, s)[0]]
    assert seeds                                                   # some seeds draw "no flip" for the only row
    for seed in seeds:
        out = random_hflip(X, np.arange(1), np.random.default_rng(seed))
        np.testing.assert_array_equal(out, X)
        assert not np.shares_memory(out, X)


class _Scorer:
    """Scores (N, 2): the mean of the left half of each image and of its right half."""
    params = {}

    def scores(self, X):
        img = X.reshape(-1, 32, 32, 3)
        return np.stack([img[:, :, :16].mean(axis=(1, 2, 3)), img[:, :, 16:].mean(axis=(1, 2, 3))], axis=1)


def test_flip_averaged_scores_are_the_mean_of_image_and_mirror():
    img = np.zeros((2, 32, 32, 3))
    img[0, :, :16] = 1.0          # bright left half
    img[1, :, :16] = 3.0
    img[1, :, 16:] = 1.0          # brighter left half, dim right half
    # image and mirror: [1, 0] and [0, 1] average to [0.5, 0.5]; [3, 1] and [1, 3] to [2, 2]
    np.testing.assert_allclose(flip_averaged_scores(_Scorer(), img.reshape(2, -1)), [[0.5, 0.5], [2.0, 2.0]])
    net = TwoLayerNet(3072, 5, 4, std=0.01, seed=0)
    Y = _images(6)
    expected = 0.5 * (net.scores(Y) + net.scores(hflip_images(Y)))
    np.testing.assert_allclose(flip_averaged_scores(net, Y), expected, rtol=1e-12)


def test_flip_averaged_predict_is_the_argmax_of_the_averaged_scores():
    img = np.zeros((2, 32, 32, 3))
    img[0, :, :16], img[0, :, 16:] = 1.0, 2.0          # [1, 2] and mirrored [2, 1]: [1.5, 1.5], a tie -> 0
    img[1, :, :16], img[1, :, 16:] = 0.0, 1.0          # [0, 1] and [1, 0]: a tie again; argmax takes class 0
    np.testing.assert_array_equal(flip_averaged_predict(_Scorer(), img.reshape(2, -1)), [0, 0])
    net = TwoLayerNet(3072, 5, 4, std=0.01, seed=0)
    Y = _images(40)
    expected = 0.5 * (net.scores(Y) + net.scores(hflip_images(Y)))
    predicted = flip_averaged_predict(net, Y)
    np.testing.assert_array_equal(predicted, expected.argmax(axis=1))
    assert len(set(predicted.tolist())) > 1 and (predicted != net.scores(Y).argmax(axis=1)).any()
