"""aml.flips against images built by hand: a mirrored image, the flip masks of the solver's
augmentations, and test-time flip averaging compared with scores computed separately."""
import numpy as np
import pytest

from aml import TwoLayerNet
from aml.flips import FlipFromTable, flip_averaged_predict, flip_averaged_scores, hflip_images, random_hflip


def _images(n, seed=0):
    return np.random.default_rng(seed).standard_normal((n, 3072))


def test_hflip_mirrors_columns_only():
    X = _images(2)
    out = hflip_images(X)
    img, new = X.reshape(2, 32, 32, 3), out.reshape(2, 32, 32, 3)
    for col in range(32):
        np.testing.assert_array_equal(new[:, :, col, :], img[:, :, 31 - col, :])   # width reversed, HWC kept
    assert out.flags["C_CONTIGUOUS"] and not np.shares_memory(out, X)
    with pytest.raises(ValueError, match=r"'X'.*\(N, 3072\)"):
        hflip_images(np.zeros((2, 3071)))
    with pytest.raises(ValueError, match="'X'"):
        hflip_images(np.zeros((2, 32, 96)))


def test_random_hflip_uses_one_draw_per_image_below_one_half():
    X = _images(16)
    out = random_hflip(X, np.arange(16), np.random.default_rng(3))
    flip = np.random.default_rng(3).random(16) < 0.5
    np.testing.assert_array_equal(out[flip], hflip_images(X[flip]))
    np.testing.assert_array_equal(out[~flip], X[~flip])
    assert 0 < flip.sum() < 16 and not np.shares_memory(out, X)


def test_flip_from_table_takes_the_mirrored_rows_of_the_batch():
    X = np.arange(12.0).reshape(6, 2)
    table = -np.arange(12.0).reshape(6, 2) - 100
    idx = np.array([4, 1, 5])
    aug = FlipFromTable(table)
    out = aug(X[idx], idx, np.random.default_rng(0))
    flip = np.random.default_rng(0).random(3) < 0.5
    np.testing.assert_array_equal(out[flip], table[idx[flip]])
    np.testing.assert_array_equal(out[~flip], X[idx][~flip])
    with pytest.raises(ValueError, match="'X_flipped'"):
        FlipFromTable(np.array([[np.nan]]))


class _Scorer:
    """Scores (N, 2): the mean of the left half of each image and of its right half."""
    params = {}

    def scores(self, X):
        img = X.reshape(-1, 32, 32, 3)
        return np.stack([img[:, :, :16].mean(axis=(1, 2, 3)), img[:, :, 16:].mean(axis=(1, 2, 3))], axis=1)


def test_flip_averaged_scores_and_predictions():
    img = np.zeros((2, 32, 32, 3))
    img[0, :, :16] = 1.0          # bright left half
    img[1, :, :16] = 3.0
    img[1, :, 16:] = 1.0          # brighter left half, dim right half
    X = img.reshape(2, -1)
    # image and mirror: [1, 0] and [0, 1] average to [0.5, 0.5]; [3, 1] and [1, 3] to [2, 2]
    np.testing.assert_allclose(flip_averaged_scores(_Scorer(), X), [[0.5, 0.5], [2.0, 2.0]])
    net = TwoLayerNet(3072, 5, 4, std=0.01, seed=0)
    Y = _images(6)
    expected = 0.5 * (net.scores(Y) + net.scores(hflip_images(Y)))
    np.testing.assert_allclose(flip_averaged_scores(net, Y), expected, rtol=1e-12)
    np.testing.assert_array_equal(flip_averaged_predict(net, Y), expected.argmax(axis=1))
