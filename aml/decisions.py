"""The rules that decide results, each tested on hand-made inputs: seed summaries, when a difference exceeds
the seeds' noise (two standard errors), the choices made with it (:func:`compare`, the one-change ladder, the
predictor, the tested seed, the depth; on selection-split results over seeds), and :func:`check_claim`."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from ._checks import check_nonneg_float, check_positive_float, check_positive_int


def _values(name: str, values) -> np.ndarray:
    values = np.asarray(list(values), dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise ValueError(f"The {name!r} parameter must hold at least one number. Got {values.tolist()!r} instead.")
    return values


def mean_std(values) -> tuple[float, float]:
    """Mean and sample standard deviation (ddof=1; 0 for a single value) of per-seed results."""
    values = _values("values", values)
    return float(values.mean()), float(values.std(ddof=1)) if values.size > 1 else 0.0


def seed_summary(values) -> dict:
    """``mean``, sample ``std`` (ddof=1), ``n`` and standard error of the mean ``se`` = std / sqrt(n)
    of one setting's per-seed results (std and se are 0 for a single seed: no estimate of the noise)."""
    values = _values("values", values)
    mean, std = mean_std(values)
    return {"mean": mean, "std": std, "n": values.size, "se": std / math.sqrt(values.size)}


def exceeds_noise(a, b, *, z: float = 2.0) -> bool:
    """Whether two settings' mean results over seeds differ by more than their seed noise: Welch's rule,
    ``|mean_a - mean_b| > z * sqrt(s_a^2 / n_a + s_b^2 / n_b)`` (sample variances, ddof=1; z = 2 is about a
    95 % two-sided level). Fewer than two seeds on a side: never (a tie); no spread at all: any difference."""
    z = check_positive_float("z", z)
    a, b = _values("a", a), _values("b", b)
    if a.size < 2 or b.size < 2:
        return False
    se = math.sqrt(a.var(ddof=1) / a.size + b.var(ddof=1) / b.size)
    return bool(abs(a.mean() - b.mean()) > z * se)


def neighbour_correlation(W1) -> float:
    """How smooth a layer's units are as images: the correlation between horizontally neighbouring weights
    over all units, W1 (3072, H) holding one 32x32x3 image per column (0 for random weights, 1 for constant rows)."""
    W1 = np.asarray(W1, dtype=float)
    if W1.ndim != 2 or W1.shape[0] != 3072 or W1.shape[1] < 1:
        raise ValueError(f"The 'W1' parameter must have shape (3072, H). Got {W1.shape} instead.")
    units = W1.T.reshape(-1, 32, 32, 3)                     # (H, rows, columns, colours)
    return float(np.corrcoef(units[:, :, :-1].ravel(), units[:, :, 1:].ravel())[0, 1])


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
    gain_se: float = 0.0     # the standard error of the mean per-seed gain

    @property
    def name(self) -> str:
        return "test-time flips" if self.use_flips else "plain predictions"

    @property
    def reason(self) -> str:
        p, f = self.plain, self.flips
        why = (f"at least {self.min_gain:.3f} and above that noise" if self.use_flips else
               f"below the {self.min_gain:.3f} that would matter" if self.gain < self.min_gain else "within that noise")
        return (f"Chosen: {self.name}. On the selection split, averaging the predictions for each image and its mirror "
                f"image gives {f['mean']:.3f} ± {f['std']:.3f} against {p['mean']:.3f} ± {p['std']:.3f} without "
                f"({p['n']} seeds), a gain of {self.gain:+.3f} (two standard errors of the per-seed gains: "
                f"{2 * self.gain_se:.3f}): {why}.")


def choose_predictor(plain, flips, *, z: float = 2.0, min_gain: float = 0.005) -> PredictorChoice:
    """Plain predictions or test-time flip averaging, from per-seed accuracies without and with flips (same
    seeds, same order): flips only when their mean gain is at least ``min_gain`` *and* exceeds the noise of the
    per-seed gains (paired: both predictors score the same models on the same images); otherwise plain, which
    is simpler and costs one forward pass (always, with one seed)."""
    min_gain = check_nonneg_float("min_gain", min_gain)
    plain, flips = list(plain), list(flips)
    if len(plain) != len(flips):
        raise ValueError(f"The 'plain' and 'flips' parameters must hold one accuracy per seed each (same seeds). "
                         f"Got {len(plain)} and {len(flips)} values instead.")
    p, f, gains = seed_summary(plain), seed_summary(flips), seed_summary(np.subtract(flips, plain))   # paired
    gain = f["mean"] - p["mean"]
    noisy = bool(gains["n"] >= 2 and abs(gains["mean"]) > check_positive_float("z", z) * gains["se"])
    return PredictorChoice(use_flips=gain >= min_gain and noisy, gain=gain, exceeds_noise=noisy, min_gain=min_gain,
                           plain=p, flips=f, gain_se=gains["se"])


@dataclass(frozen=True)
class SeedChoice:
    """``seed``: the seed whose model is tested; ``index``: its position in the inputs; ``value``:
    its result on the split that chooses (selection); ``best_seed``, ``best_value``: the luckiest seed."""
    seed: int
    index: int
    value: float
    best_seed: int
    best_value: float

    @property
    def reason(self) -> str:
        return (f"seed {self.seed} is tested: its selection result {self.value:.3f} is the median over the seeds "
                f"(a typical run; the best seed, {self.best_seed}, has {self.best_value:.3f}).")


def tested_seed(seeds, values) -> SeedChoice:
    """The seed of the median result on the selection split: the model that goes to the test set.

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
    """``chosen``: ``default`` when tied with the best, else the shallowest depth tied with ``best`` (the highest
    mean); ``tied``: depths (ascending, ``best`` included) within the noise of ``best``; ``beaten``: the others."""
    chosen: int
    best: int
    tied: tuple[int, ...]
    beaten: tuple[int, ...]
    means: dict
    stds: dict
    default: int | None = None

    @property
    def reason(self) -> str:
        def listed(depths, one: str, many: str) -> str:   # depth 4 ties, depths 2 and 5 tie
            d, n = list(map(str, depths)), len(depths) > 1
            return f"depth{'s' * n} {', '.join(d[:-1])}{' and ' * n}{d[-1]} {many if n else one}"
        others = [d for d in self.tied if d != self.best]
        best = f"{self.means[self.best]:.3f} ± {self.stds[self.best]:.3f}"
        which = "the default depth" if self.chosen == self.default else "the shallowest depth tied with the best"
        head = (f"Depth {self.best} has the best mean ({best})" if self.chosen == self.best else
                f"Depth {self.chosen}, {which}, is kept (the best mean: depth {self.best}, {best})")
        ties = listed(others, "ties with it", "tie with it") if others else "no other depth ties with it"
        beaten = listed(self.beaten, "is beaten", "are beaten") if self.beaten else "none is beaten"
        return f"{head}; {ties}, {beaten} beyond the seeds' noise."


def choose_depth(values_by_depth: dict, *, z: float = 2.0, default: int | None = None) -> DepthChoice:
    """The depth to report: ``default`` (the depth the configuration was chosen at) unless another depth
    beats it, else the shallowest depth tied with the best. ``values_by_depth``: depth (weight layers) ->
    per-seed accuracies. ``best`` has the highest mean (equal means: the shallower); a depth is tied with it
    unless :func:`exceeds_noise` says otherwise (the rule of :func:`compare`)."""
    if not values_by_depth:
        raise ValueError("The 'values_by_depth' parameter must map at least one depth to its results. Got none.")
    depths = sorted(check_positive_int("depth", d) for d in values_by_depth)
    if default is not None and default not in depths:
        raise ValueError(f"The 'default' parameter must be one of {depths} or None. Got {default!r} instead.")
    values = {d: list(values_by_depth[d]) for d in depths}
    means, stds = ({d: mean_std(values[d])[k] for d in depths} for k in (0, 1))
    best = max(depths, key=lambda d: (means[d], -d))
    tied = tuple(d for d in depths if not exceeds_noise(values[best], values[d], z=z))
    beaten = tuple(d for d in depths if d not in tied)
    chosen = default if default in tied else tied[0]
    return DepthChoice(chosen=chosen, best=best, tied=tied, beaten=beaten, means=means, stds=stds, default=default)


def compare(reference, candidate, *, z: float = 2.0) -> str:
    """``"better"``, ``"worse"`` or ``"tie"``: ``candidate``'s per-seed results against
    ``reference``'s (an ablation row against the row before it). A tie unless the difference of
    the means exceeds the seed noise (:func:`aml.metrics.exceeds_noise`); always a tie with one seed."""
    if not exceeds_noise(reference, candidate, z=z):
        return "tie"
    return "better" if mean_std(candidate)[0] > mean_std(reference)[0] else "worse"

class ClaimNotSupported(AssertionError):
    """A claim of the report is not supported by this run's results."""


def check_claim(claim: str, holds: bool, evidence: str, *, enforce: bool = True) -> None:
    """Raise :class:`ClaimNotSupported` naming ``claim`` (the sentence above, in the report) and ``evidence``
    (the figures the judgement rests on) unless ``holds``; ``enforce`` is False on the small (smoke) budget."""
    if not isinstance(claim, str) or not claim.strip():
        raise ValueError(f"The 'claim' parameter must be the claim's sentence. Got {claim!r} instead.")
    if enforce and not bool(holds):
        raise ClaimNotSupported(f"The report claims: {claim!r}, but this run does not support it ({evidence}). "
                                f"Rewrite the claim or find out why the evidence changed.")


@dataclass(frozen=True)
class LadderRow:
    """One row of :func:`one_change_ladder`: ``change`` (field -> value, empty for row 0), ``config``
    (the configuration trained), ``values`` (its per-seed results), ``verdict`` (:func:`compare` against
    the last kept row; "" for row 0) and whether the change was ``kept``."""
    label: str
    change: dict
    config: object
    values: tuple
    verdict: str
    kept: bool


def one_change_ladder(base, steps, run, seeds, *, base_label: str = "the handout's settings",
                      replace=dataclasses.replace) -> list[LadderRow]:
    """Add one change at a time to ``base``; keep each change unless it is *worse* beyond the seed noise.

    ``steps``: ``(label, change)`` pairs, a change being a dict of fields or a list of such dicts (a
    small grid: each is run with ``seeds[0]``, the best is taken, earlier candidates winning ties).
    ``run(config, seed) -> float`` trains one configuration and returns its selection accuracy. Each
    row is compared with the last kept row over ``seeds``; a *tie* is kept (each change is a standard
    remedy whose benefit grows with the budget, so only evidence against it removes it). The last kept
    row's ``config`` is the chosen configuration.
    """
    cache = {}

    def score(config, seed):
        if (config, seed) not in cache:
            cache[config, seed] = float(run(config, seed))
        return cache[config, seed]

    rows = [LadderRow(f"0. {base_label}", {}, base, tuple(score(base, s) for s in seeds), "", True)]
    kept = rows[0]
    for i, (label, change) in enumerate(steps, start=1):
        grid = change if isinstance(change, list) else [change]
        firsts = [score(replace(kept.config, **c), seeds[0]) for c in grid]
        change = grid[max(range(len(grid)), key=lambda k: (firsts[k], -k))]
        config = replace(kept.config, **change)
        values = tuple(score(config, s) for s in seeds)
        verdict = compare(kept.values, values)
        row = LadderRow(f"{i}. {label}", dict(change), config, values, verdict, verdict != "worse")
        rows.append(row)
        kept = row if row.kept else kept
    return rows
