"""The rules that choose a result, each stated once and tested on hand-made inputs.

Every choice is made on validation results over seeds, and a difference smaller than the seeds'
spread is a tie (:func:`aml.metrics.exceeds_noise`, Welch's two-standard-error rule). Each rule
returns a small frozen record: the choice, the evidence behind it, and ``reason``, one line a
notebook can print.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import check_nonneg_float, check_positive_int
from .metrics import exceeds_noise, mean_std, seed_summary


@dataclass(frozen=True)
class PredictorChoice:
    """``use_flips``: whether test-time flip averaging is chosen over the plain predictor.
    ``gain``: mean(flips) - mean(plain) over seeds; ``exceeds_noise``: whether that difference
    exceeds the seed noise; ``plain``, ``flips``: :func:`aml.metrics.seed_summary` of each."""
    use_flips: bool
    gain: float
    exceeds_noise: bool
    min_gain: float
    plain: dict
    flips: dict

    @property
    def name(self) -> str:
        return "test-time flips" if self.use_flips else "plain predictions"

    @property
    def reason(self) -> str:
        p, f = self.plain, self.flips
        why = ("the gain is at least min_gain and exceeds the seed noise" if self.use_flips else
               "the gain is below min_gain" if self.gain < self.min_gain else
               "the gain does not exceed the seed noise")
        return (f"{self.name}: flips {f['mean']:.3f} ± {f['std']:.3f} vs plain {p['mean']:.3f} ± {p['std']:.3f} "
                f"over {p['n']} seed(s), gain {self.gain:+.3f} (min_gain {self.min_gain:.3f}); {why}.")


def choose_predictor(plain, flips, *, z: float = 2.0, min_gain: float = 0.005) -> PredictorChoice:
    """Plain predictions or test-time flip averaging, from per-seed validation accuracies.

    ``plain`` and ``flips`` hold the accuracy of each seed's model without and with flip averaging
    (same seeds, same order). Flips are chosen only when their mean gain is at least ``min_gain``
    *and* the difference exceeds the seed noise (``exceeds_noise(plain, flips, z=z)``); otherwise
    the plain predictor, which is simpler and costs one forward pass. With one seed there is no
    noise estimate, so the answer is plain.
    """
    min_gain = check_nonneg_float("min_gain", min_gain)
    plain, flips = list(plain), list(flips)
    if len(plain) != len(flips):
        raise ValueError(f"The 'plain' and 'flips' parameters must hold one accuracy per seed each (same seeds). "
                         f"Got {len(plain)} and {len(flips)} values instead.")
    p, f = seed_summary(plain), seed_summary(flips)
    gain = f["mean"] - p["mean"]
    noisy = exceeds_noise(plain, flips, z=z)
    return PredictorChoice(use_flips=gain >= min_gain and noisy, gain=gain, exceeds_noise=noisy,
                           min_gain=min_gain, plain=p, flips=f)


@dataclass(frozen=True)
class SeedChoice:
    """``seed``: the seed whose model is tested; ``index``: its position in the inputs; ``value``:
    its validation result; ``best_seed``, ``best_value``: the luckiest seed, for contrast."""
    seed: int
    index: int
    value: float
    best_seed: int
    best_value: float

    @property
    def reason(self) -> str:
        return (f"seed {self.seed} is tested: its validation result {self.value:.3f} is the median over the seeds "
                f"(a typical run; the best seed, {self.best_seed}, has {self.best_value:.3f}).")


def tested_seed(seeds, values) -> SeedChoice:
    """The seed of the median validation result: the model that goes to the test set once.

    Seeds are ordered by (value, seed) and the middle one is taken (the lower middle for an even
    count), so equal values are broken by the smaller seed. Testing the median run, not the best
    one, keeps the test accuracy from inheriting the luck of a maximum over seeds.
    """
    seeds, values = list(seeds), [float(v) for v in values]
    if not seeds or len(seeds) != len(values):
        raise ValueError(f"The 'seeds' and 'values' parameters must hold one value per seed, at least one. "
                         f"Got {len(seeds)} seeds and {len(values)} values instead.")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"The 'seeds' parameter must hold distinct seeds. Got {seeds} instead.")
    order = sorted(range(len(seeds)), key=lambda i: (values[i], seeds[i]))
    i, best = order[(len(seeds) - 1) // 2], max(range(len(seeds)), key=lambda i: (values[i], -seeds[i]))
    return SeedChoice(seed=seeds[i], index=i, value=values[i], best_seed=seeds[best], best_value=values[best])


@dataclass(frozen=True)
class DepthChoice:
    """``chosen``: the shallowest depth tied with the best; ``best``: the depth of the highest mean;
    ``tied``: depths (ascending, ``best`` included) whose difference from ``best`` does not exceed
    the seed noise; ``beaten``: the others (ascending); ``means``, ``stds``: per depth."""
    chosen: int
    best: int
    tied: tuple[int, ...]
    beaten: tuple[int, ...]
    means: dict
    stds: dict

    @property
    def reason(self) -> str:
        tied = ", ".join(map(str, self.tied))
        beaten = ", ".join(map(str, self.beaten)) or "none"
        return (f"depth {self.chosen}: the shallowest of the depths the seeds cannot tell from the best mean "
                f"(depth {self.best}, {self.means[self.best]:.3f} ± {self.stds[self.best]:.3f}); "
                f"tied: {tied}; beaten: {beaten}.")


def split_noise(num_images: int, accuracy: float = 0.5) -> float:
    """The standard error of the difference of two accuracies measured on ``num_images`` different
    images each, sqrt(2 p (1 - p) / n): how far apart two equally good models can land on a split of
    that size by the draw of its images alone (about 0.016 for 2,000 images at p = 0.5). The spread
    over seeds does not contain it, since every seed is scored on the same images."""
    num_images = check_positive_int("num_images", num_images)
    if not 0.0 <= accuracy <= 1.0:
        raise ValueError(f"The 'accuracy' parameter must be in [0, 1]. Got {accuracy!r} instead.")
    return (2.0 * accuracy * (1.0 - accuracy) / num_images) ** 0.5


def choose_depth(values_by_depth: dict, *, z: float = 2.0, margin: float = 0.0) -> DepthChoice:
    """The depth to report, by the rule fixed before the run: among the depths whose seeds cannot
    be told apart from the best, the smallest network.

    ``values_by_depth`` maps depth (weight layers) to its per-seed validation accuracies. ``best`` is
    the highest mean (equal means: the shallower). A depth is ``tied`` with it when
    ``exceeds_noise(values[best], values[d], z=z)`` is false, or its mean is within ``margin`` of the
    best mean (a difference the split itself cannot resolve, e.g. :func:`split_noise`); ``chosen`` is
    the smallest tied depth. With one seed per depth nothing can be told apart, so the shallowest
    depth is chosen.
    """
    margin = check_nonneg_float("margin", margin)
    if not values_by_depth:
        raise ValueError("The 'values_by_depth' parameter must map at least one depth to its results. Got none.")
    depths = sorted(check_positive_int("depth", d) for d in values_by_depth)
    values = {d: list(values_by_depth[d]) for d in depths}
    stats = {d: mean_std(values[d]) for d in depths}
    means, stds = {d: m for d, (m, _) in stats.items()}, {d: s for d, (_, s) in stats.items()}
    best = max(depths, key=lambda d: (means[d], -d))
    tied = tuple(d for d in depths
                 if not exceeds_noise(values[best], values[d], z=z) or means[best] - means[d] <= margin)
    beaten = tuple(d for d in depths if d not in tied)
    return DepthChoice(chosen=tied[0], best=best, tied=tied, beaten=beaten, means=means, stds=stds)


def compare(reference, candidate, *, z: float = 2.0) -> str:
    """``"better"``, ``"worse"`` or ``"tie"``: ``candidate``'s per-seed results against
    ``reference``'s (an ablation row against the row before it). A tie unless the difference of
    the means exceeds the seed noise (:func:`aml.metrics.exceeds_noise`); always a tie with one seed."""
    if not exceeds_noise(reference, candidate, z=z):
        return "tie"
    return "better" if mean_std(candidate)[0] > mean_std(reference)[0] else "worse"
