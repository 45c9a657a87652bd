"""aml.decisions on hand-made per-seed results: clear differences, ties, and differences inside the
seed noise. The noise figures in the comments are Welch's standard error of the difference,
sqrt(s_a^2 / n_a + s_b^2 / n_b) with ddof=1 (see aml.metrics.exceeds_noise)."""
import dataclasses

import pytest

from aml.decisions import choose_depth, choose_predictor, compare
from aml.decisions import tested_seed as pick_seed  # a name pytest does not collect as a test

# --- choose_predictor ---------------------------------------------------------------------------------------


def test_choose_predictor_takes_flips_on_a_clear_gain():
    # gain 0.02 on every seed: the per-seed gains have no spread, so any gain exceeds their noise
    choice = choose_predictor([0.50, 0.51, 0.49], [0.52, 0.53, 0.51])
    assert choice.use_flips and choice.exceeds_noise
    assert choice.gain == pytest.approx(0.02)
    assert choice.plain["mean"] == pytest.approx(0.50) and choice.flips["mean"] == pytest.approx(0.52)
    assert choice.plain["n"] == 3 and choice.plain["std"] == pytest.approx(0.01)
    assert choice.name == "test-time flips"
    assert choice.reason == ("Chosen: test-time flips. On the selection split, averaging the predictions for each "
                             "image and its mirror image gives 0.520 ± 0.010 against 0.500 ± 0.010 without (3 seeds), "
                             "a gain of +0.020 (two standard errors of the per-seed gains: 0.000): at least 0.005 "
                             "and above that noise.")
    with pytest.raises(dataclasses.FrozenInstanceError):
        choice.use_flips = False


@pytest.mark.parametrize("gain", [0.0, 0.001, 0.002, 0.003])
def test_choose_predictor_keeps_plain_for_a_gain_below_min_gain_even_beyond_the_noise(gain):
    # the same gain on every seed exceeds the noise of the per-seed gains (none); gains up to 0.003
    # are still too small to matter (a fresh clone flipped the decision on such a difference)
    plain = [0.500, 0.501, 0.499]
    choice = choose_predictor(plain, [p + gain for p in plain])
    assert not choice.use_flips and choice.name == "plain predictions"
    assert choice.exceeds_noise == (gain > 0)
    assert choice.reason.endswith(": below the 0.005 that would matter.")


def test_choose_predictor_keeps_plain_for_a_gain_inside_the_noise():
    # gain 0.02 >= min_gain, but the per-seed gains are -0.0225 and 0.0625: 2 se = 2 * 0.0601 / sqrt(2) = 0.085
    choice = choose_predictor([0.45, 0.55], [0.4275, 0.6125])
    assert choice.gain == pytest.approx(0.02) and not choice.exceeds_noise and not choice.use_flips
    assert choice.gain_se == pytest.approx(0.0425)
    assert choice.reason.endswith("(two standard errors of the per-seed gains: 0.085): within that noise.")


def test_choose_predictor_pairs_the_seeds():
    # the seeds differ by 5 points (Welch's unpaired rule would call a 0.01 gain a tie), but flips gain
    # 0.01 on each of them: paired, the gain is beyond the noise
    plain = [0.50, 0.55, 0.60]
    choice = choose_predictor(plain, [p + 0.01 for p in plain])
    assert choice.exceeds_noise and choice.use_flips
    assert not compare(plain, [p + 0.01 for p in plain]) == "better"     # the unpaired rule: a tie


def test_choose_predictor_keeps_plain_when_flips_are_worse():
    # flips worse by 0.05, far beyond the noise: still plain, with or without a minimum gain
    for min_gain in (0.005, 0.0):
        choice = choose_predictor([0.50, 0.51, 0.49], [0.45, 0.46, 0.44], min_gain=min_gain)
        assert choice.exceeds_noise and choice.gain == pytest.approx(-0.05) and not choice.use_flips


def test_choose_predictor_keeps_plain_with_a_single_seed():
    choice = choose_predictor([0.40], [0.60])          # no noise estimate from one seed
    assert not choice.use_flips and not choice.exceeds_noise and choice.gain == pytest.approx(0.2)


def test_choose_predictor_min_gain_is_inclusive_and_configurable():
    # exact binary fractions: the gain is exactly 2**-7 = 0.0078125, with no spread
    plain, flips = [0.5, 0.5], [0.5078125, 0.5078125]
    assert choose_predictor(plain, flips, min_gain=0.0078125).use_flips
    assert not choose_predictor(plain, flips, min_gain=0.0078126).use_flips
    assert choose_predictor(plain, flips).use_flips                     # default 0.005
    # z is passed on to the noise rule: per-seed gains 0, 0.02, 0.04 (se = 0.02 / sqrt(3) = 0.0115): 1.73 se
    plain, flips = [0.49, 0.50, 0.51], [0.49, 0.52, 0.55]
    assert choose_predictor(plain, flips, min_gain=0.0, z=1.5).use_flips
    assert not choose_predictor(plain, flips, min_gain=0.0).use_flips


def test_choose_predictor_refuses_unpaired_or_bad_input():
    with pytest.raises(ValueError, match="'plain' and 'flips'.*3 and 2"):
        choose_predictor([0.5, 0.5, 0.5], [0.5, 0.5])
    with pytest.raises(ValueError, match="'min_gain'"):
        choose_predictor([0.5], [0.5], min_gain=-0.001)
    with pytest.raises(ValueError, match="'values'"):
        choose_predictor([], [])

# --- tested_seed --------------------------------------------------------------------------------------------


def test_tested_seed_is_the_median_not_the_best():
    seeds, values = [0, 1, 2, 3, 4], [0.50, 0.56, 0.52, 0.48, 0.51]
    t = pick_seed(seeds, values)
    # ordered: 0.48 (3), 0.50 (0), 0.51 (4), 0.52 (2), 0.56 (1)
    assert (t.seed, t.index, t.value) == (4, 4, 0.51)
    assert (t.best_seed, t.best_value) == (1, 0.56)
    assert t.seed != seeds[max(range(5), key=values.__getitem__)]       # the rule "max" fails here
    assert t.reason == ("seed 4 is tested: its selection result 0.510 is the median over the seeds "
                        "(a typical run; the best seed, 1, has 0.560).")


def test_tested_seed_takes_the_lower_middle_of_an_even_count():
    t = pick_seed([10, 11, 12, 13], [0.4, 0.6, 0.5, 0.7])          # 0.4 (10), 0.5 (12), 0.6 (11), 0.7 (13)
    assert (t.seed, t.index, t.value) == (12, 2, 0.5)
    assert (t.best_seed, t.best_value) == (13, 0.7)
    assert pick_seed([5, 6], [0.7, 0.3]).seed == 6


def test_tested_seed_breaks_equal_values_by_the_smaller_seed():
    # ordered: 0.4 (1), 0.5 (2), 0.5 (9), 0.6 (4): the lower middle is seed 2, though seed 9 comes first
    t = pick_seed([9, 2, 4, 1], [0.5, 0.5, 0.6, 0.4])
    assert (t.seed, t.index) == (2, 1)
    t = pick_seed([7, 3, 5], [0.5, 0.5, 0.5])
    assert (t.seed, t.index, t.best_seed) == (5, 2, 3)            # best among equals: the smaller seed too
    assert pick_seed([8], [0.3]) == pick_seed((8,), iter([0.3]))
    assert pick_seed([8], [0.3]).seed == 8


def test_tested_seed_refuses_unpaired_or_repeated_seeds():
    with pytest.raises(ValueError, match="'seeds' and 'values'.*2 seeds and 3 values"):
        pick_seed([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="'seeds' and 'values'.*0 seeds and 0 values"):
        pick_seed([], [])
    with pytest.raises(ValueError, match=r"distinct.*\[1, 2, 1\]"):
        pick_seed([1, 2, 1], [0.1, 0.2, 0.3])

# --- choose_depth -------------------------------------------------------------------------------------------


def test_choose_depth_with_a_clear_winner():
    # depth 3 leads by 0.05; s = 0.01 over 3 seeds: 2 se = 0.016
    choice = choose_depth({2: [0.50, 0.51, 0.49], 3: [0.55, 0.56, 0.54], 4: [0.50, 0.50, 0.50]})
    assert (choice.chosen, choice.best, choice.tied, choice.beaten) == (3, 3, (3,), (2, 4))
    assert choice.means == pytest.approx({2: 0.50, 3: 0.55, 4: 0.50})
    assert choice.stds == pytest.approx({2: 0.01, 3: 0.01, 4: 0.0})
    assert choice.reason == ("Depth 3 has the best mean (0.550 ± 0.010); no other depth ties with it, depths 2 and 4 "
                             "are beaten beyond the seeds' noise.")


def test_choose_depth_takes_the_shallower_of_two_tied_depths():
    # depth 3 has the best mean, depth 2 is 0.01 below it: 2 se = 0.033, a tie; depth 4 is beaten.
    # A rule that ignores ties (chosen = best) answers 3.
    choice = choose_depth({4: [0.40, 0.41, 0.39], 3: [0.54, 0.56, 0.52], 2: [0.53, 0.55, 0.51]})
    assert (choice.chosen, choice.best, choice.tied, choice.beaten) == (2, 3, (2, 3), (4,))
    assert choice.reason == ("Depth 2, the shallowest depth tied with the best, is kept (the best mean: depth 3, "
                             "0.540 ± 0.020); depth 2 ties with it, depth 4 is beaten beyond the seeds' noise.")


def test_choose_depth_keeps_the_default_depth_when_it_ties():
    # depths 2 and 3 tie with the best (3); the default 3 is kept, not the shallower 2
    values = {4: [0.40, 0.41, 0.39], 3: [0.54, 0.56, 0.52], 2: [0.53, 0.55, 0.51]}
    choice = choose_depth(values, default=3)
    assert (choice.chosen, choice.best, choice.tied, choice.default) == (3, 3, (2, 3), 3)
    assert choice.reason.startswith("Depth 3 has the best mean (0.540")
    assert choose_depth({2: [0.53, 0.55, 0.51], 3: [0.52, 0.54, 0.50]}, default=3).reason.startswith(
        "Depth 3, the default depth, is kept (the best mean: depth 2, 0.530")
    # a beaten default is replaced by the shallowest depth tied with the best
    assert choose_depth(values, default=4).chosen == 2
    assert choose_depth({2: [0.50, 0.51, 0.49], 3: [0.60, 0.61, 0.59]}, default=2).chosen == 3


def test_choose_depth_judges_ties_against_the_best_only():
    # depth 2 is tied with depth 3, depth 3 with depth 4 (the best), but depth 2 is beaten by depth 4
    # (0.04 > 2 se = 0.0327): it is not chosen through a chain of ties
    choice = choose_depth({2: [0.50, 0.52, 0.48], 3: [0.52, 0.54, 0.50], 4: [0.54, 0.56, 0.52]})
    assert (choice.chosen, choice.best, choice.tied, choice.beaten) == (3, 4, (3, 4), (2,))


def test_choose_depth_when_all_depths_tie():
    choice = choose_depth({5: [0.50, 0.56], 2: [0.52, 0.50], 3: [0.55, 0.49]})
    assert (choice.chosen, choice.best, choice.tied, choice.beaten) == (2, 5, (2, 3, 5), ())
    assert choice.reason.endswith("depths 2 and 3 tie with it, none is beaten beyond the seeds' noise.")


def test_choose_depth_with_single_seed_depths_ties_everything():
    choice = choose_depth({2: [0.40], 3: [0.60], 4: [0.50]})
    assert (choice.chosen, choice.best, choice.tied, choice.beaten) == (2, 3, (2, 3, 4), ())


def test_choose_depth_breaks_equal_means_by_depth():
    # depths 3 and 4 have the same mean: the best is the shallower one; depth 2 is beaten
    choice = choose_depth({4: [0.60, 0.50], 3: [0.50, 0.60], 2: [0.30, 0.31]})
    assert (choice.chosen, choice.best, choice.tied, choice.beaten) == (3, 3, (3, 4), (2,))
    # z is passed on: at z = 100 even depth 2 ties
    assert choose_depth({4: [0.60, 0.50], 3: [0.50, 0.60], 2: [0.30, 0.31]}, z=100).chosen == 2


def test_choose_depth_refuses_bad_input():
    with pytest.raises(ValueError, match="'values_by_depth'"):
        choose_depth({})
    with pytest.raises(ValueError, match="'depth'"):
        choose_depth({0: [0.5]})
    with pytest.raises(ValueError, match="'values'"):
        choose_depth({2: []})
    with pytest.raises(ValueError, match=r"'default'.*\[2, 3\].*Got 4 instead"):
        choose_depth({2: [0.5, 0.6], 3: [0.5, 0.6]}, default=4)

# --- compare ------------------------------------------------------------------------------------------------


def test_compare_names_a_difference_beyond_the_noise():
    base = [0.50, 0.51, 0.49]
    assert compare(base, [0.55, 0.56, 0.54]) == "better"
    assert compare(base, [0.45, 0.46, 0.44]) == "worse"
    assert compare([0.55, 0.56, 0.54], base) == "worse"
    assert compare([0.0, 2.0], [4.0, 6.0]) == "better"          # 2.83 se: beyond the default z = 2, not z = 3


def test_compare_calls_a_difference_inside_the_noise_a_tie():
    assert compare([0.50, 0.51, 0.49], [0.51, 0.52, 0.50]) == "tie"       # 0.01 < 2 se = 0.016
    assert compare([0.50, 0.51, 0.49], [0.50, 0.51, 0.49]) == "tie"
    assert compare([0.40], [0.60]) == "tie"                               # one seed: no noise estimate
    assert compare([0.49, 0.50, 0.51], [0.516, 0.544]) == "tie"           # 0.03 is 1.963 se ...
    assert compare([0.49, 0.50, 0.51], [0.516, 0.544], z=1.95) == "better"   # ... beyond z = 1.95


def test_one_change_ladder_keeps_ties_and_gains_drops_a_loss_and_picks_the_best_of_a_grid():
    from dataclasses import dataclass

    from aml.decisions import one_change_ladder

    @dataclass(frozen=True)
    class Cfg:
        a: int = 0
        b: int = 0
        c: int = 0

    noise = {0: 0.0, 1: 0.01, 2: -0.01}
    calls = []

    def run(cfg, seed):
        calls.append((cfg, seed))
        return 0.5 + 0.1 * cfg.a - 0.1 * cfg.b + 0.001 * cfg.c + noise[seed]

    steps = [("a up", {"a": 1}), ("b up", {"b": 1}), ("c grid", [{"c": 1}, {"c": 3}, {"c": 2}])]
    rows = one_change_ladder(Cfg(), steps, run, [0, 1, 2], base_label="base")
    assert [r.label for r in rows] == ["0. base", "1. a up", "2. b up", "3. c grid"]
    assert [r.verdict for r in rows] == ["", "better", "worse", "tie"]
    assert [r.kept for r in rows] == [True, True, False, True]
    assert rows[2].config == Cfg(a=1, b=1)                 # a change is tried on the last kept row
    assert rows[3].change == {"c": 3} and rows[3].config == Cfg(a=1, b=0, c=3)   # b dropped, best of the grid
    assert len(calls) == len(set(calls))                  # each (config, seed) is trained once
    assert rows[1].values == pytest.approx((0.6, 0.61, 0.59))


def test_choose_predictor_default_is_two_standard_errors_and_checks_z():
    plain, flips = [0.5, 0.5, 0.5], [0.504, 0.522, 0.513]       # gains 0.013 on average, 2.5 standard errors
    assert choose_predictor(plain, flips).use_flips
    assert not choose_predictor(plain, flips, z=3.0).use_flips
    with pytest.raises(ValueError, match="'z'"):
        choose_predictor(plain, flips, z=0.0)
