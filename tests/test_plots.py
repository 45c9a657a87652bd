"""The figures' legends say what their lines are: each legend entry is drawn as the line it names."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from aml import plots  # noqa: E402


@pytest.fixture(autouse=True)
def _output_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("AML_OUTPUT_DIR", str(tmp_path))
    (tmp_path / "imgs").mkdir()
    yield
    matplotlib.pyplot.close("all")


def _history(epochs=3, per_epoch=10, seed=0):
    rng = np.random.default_rng(seed)
    return {"loss_history": list(2 - np.linspace(0, 1, epochs * per_epoch) + 0.1 * rng.random(epochs * per_epoch)),
            "iterations_per_epoch": per_epoch, "epoch_history": list(range(1, epochs + 1)),
            "val_loss_history": list(np.linspace(1.9, 1.2, epochs)),
            "train_acc_history": list(np.linspace(0.3, 0.6, epochs)),
            "val_acc_history": list(np.linspace(0.3, 0.5, epochs))}


def _same_look(handle, line):
    return (matplotlib.colors.same_color(handle.get_color(), line.get_color())
            and handle.get_linestyle() == line.get_linestyle() and handle.get_marker() == line.get_marker())


def test_training_curves_legend_entries_match_their_lines():
    fig = plots.training_curves(_history(), "curves", smooth=5)
    for ax in fig.axes:
        legend = ax.get_legend()
        lines = {line.get_label(): line for line in ax.get_lines()}
        labels = [t.get_text() for t in legend.get_texts()]
        assert "validation" in labels and any(label.startswith("train") for label in labels)
        for handle, label in zip(legend.legend_handles, labels):
            assert _same_look(handle, lines[label]), label
    train, val = (line for line in fig.axes[1].get_lines())
    assert train.get_linestyle() == "--" and val.get_linestyle() == "-"
    assert not matplotlib.colors.same_color(train.get_color(), val.get_color())
    fig = plots.training_curves(_history(), "curves", smooth=5, held_out="selection")   # the monitored split's name
    assert [t.get_text() for t in fig.axes[1].get_legend().get_texts()] == ["train", "selection"]


@pytest.mark.parametrize("start", [2.0, 50.0])        # linear, and logarithmic (a large start) loss axes
def test_training_curves_leave_the_upper_half_of_the_loss_panel_to_its_legend(start):
    h = _history()
    h["loss_history"][0] = start
    ax = plots.training_curves(h, "curves", smooth=5).axes[0]
    lo, hi = ax.get_ylim()
    middle = np.sqrt(lo * hi) if ax.get_yscale() == "log" else (lo + hi) / 2
    assert ax.get_yscale() == ("log" if start > 10 else "linear")
    assert max(max(line.get_ydata()) for line in ax.get_lines()) <= middle
    assert ax.get_legend()._loc == 1                              # matplotlib's code for "upper right"



def test_loss_curve_labels_a_log_axis_in_plain_numbers_down_to_the_target():
    fig = plots.loss_curve(np.geomspace(1.2, 0.012, 100), "toy", logy=True, target=0.02)
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = {t.get_text() for t in [*ax.get_yticklabels(), *ax.get_yticklabels(minor=True)]} - {""}
    assert {"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"} <= labels
    assert not labels & {"0.03", "0.04", "0.3"}        # only 1, 2 and 5 of each decade: legible


def test_depth_effect_draws_train_dashed_and_validation_solid_per_setting():
    rows = [{"setting": s, "measure": m, "depth": d, "mean": 0.5 + 0.01 * d, "std": 0.01}
            for s in ("chosen", "he-only") for m in ("train", "validation") for d in (2, 3, 4, 5)]
    fig = plots.depth_effect(rows, "d")
    ax = fig.axes[0]
    assert len(ax.containers) == 4                                  # one errorbar container per line
    assert [t.get_text() for t in ax.get_legend().get_texts()] == [
        "chosen, train", "chosen, validation", "he-only, train", "he-only, validation"]
    styles = [c.lines[0].get_linestyle() for c in ax.containers]
    assert styles == ["--", "-", "--", "-"]



def test_loss_terms_draws_cross_entropy_and_l2_apart_on_linear_axes():
    h = {"loss_history": np.full(20, 2.5), "reg_loss_history": np.full(20, 0.5), "iterations_per_epoch": 10,
         "epoch_history": [1, 2], "train_acc_history": [0.5, 0.6], "val_acc_history": [0.3, 0.4]}
    fig = plots.loss_terms(h, "t", smooth=5)
    left, right, acc = fig.axes
    assert left.get_yscale() == right.get_yscale() == "linear"
    assert np.allclose(left.lines[0].get_ydata(), 2.0) and np.allclose(right.lines[0].get_ydata(), 0.5)
    assert "J" in left.get_title() and "L2" in right.get_title()
    assert [t.get_text() for t in acc.get_legend().get_texts()] == ["train", "selection"]
    assert np.allclose(acc.lines[1].get_ydata(), [0.3, 0.4])


def test_source_code_drops_docstrings_and_keeps_the_code():
    def f(x):
        """Doc
        string."""
        y = x + 1   # kept
        return y

    assert plots.source_code(f) == "def f(x):\n    y = x + 1   # kept\n    return y"

    def g(x):
        _check_x(x)              # noqa: F821 - never called
        check_x(x, "x")          # noqa: F821
        y = check_x(x)           # noqa: F821 - a value, kept
        return y

    assert plots.source_code(g) == "def g(x):\n    y = check_x(x)           # noqa: F821 - a value, kept\n    return y"


def test_source_code_block_is_the_first_statement_that_starts_so_dedented():
    def h(xs):
        total = 0
        for x in xs:
            check_x(x)           # noqa: F821 - dropped inside the block too
            for y in xs:
                total += x * y
        return total

    assert plots.source_code(h, block="for x in") == "for x in xs:\n    for y in xs:\n        total += x * y"
    assert plots.source_code(h, block="for y") == "for y in xs:\n    total += x * y"
    with pytest.raises(ValueError, match="'block'.*'while'"):
        plots.source_code(h, block="while")
