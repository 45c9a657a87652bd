"""The figures' legends say what their lines are: each legend entry is drawn as the line it names."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.colors  # noqa: E402
import matplotlib.lines  # noqa: E402
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


def _legend_below(fig):
    """The figure's one legend, checked to lie under every panel (so it covers no data) and to draw each
    entry as the line of that label; returns its labels."""
    (legend,), renderer = fig.legends, fig.canvas.get_renderer()
    assert not any(ax.get_legend() for ax in fig.axes)
    box = legend.get_window_extent(renderer)
    assert all(box.y1 <= ax.get_tightbbox(renderer).y0 + 1 for ax in fig.axes)
    lines = {line.get_label(): line for ax in fig.axes for line in ax.get_lines()}
    lines |= {c.get_label(): c.lines[0] for ax in fig.axes for c in ax.containers}
    labels = [t.get_text() for t in legend.get_texts()]
    for handle, label in zip(legend.legend_handles, labels):
        line = lines[label]
        if isinstance(handle, matplotlib.lines.Line2D):
            assert _same_look(handle, line), label
        else:                                           # an error bar's entry: its colour
            assert matplotlib.colors.same_color(handle.get_color()[0], line.get_color()), label
    assert min(t.get_fontsize() for t in legend.get_texts()) >= 9
    return labels


def test_training_curves_legend_lies_under_the_panels_and_names_its_lines():
    fig = plots.training_curves(_history(), "curves", smooth=5)
    assert _legend_below(fig) == ["train, each minibatch", "train, mean of 5", "validation, per epoch",
                                  "train, per epoch"]
    train, val = (line for line in fig.axes[1].get_lines())
    assert train.get_linestyle() == "--" and val.get_linestyle() == "-"
    assert not matplotlib.colors.same_color(train.get_color(), val.get_color())
    fig = plots.training_curves(_history(), "curves", smooth=5, held_out="selection")   # the monitored split's name
    assert "selection, per epoch" in _legend_below(fig)


@pytest.mark.parametrize("start", [2.0, 50.0])        # linear, and logarithmic (a large start) loss axes
def test_training_curves_use_a_log_loss_axis_after_a_large_start(start):
    h = _history()
    h["loss_history"][0] = start
    ax = plots.training_curves(h, "curves", smooth=5).axes[0]
    assert ax.get_yscale() == ("log" if start > 10 else "linear")


def test_loss_curve_labels_a_log_axis_in_plain_numbers_down_to_the_target():
    fig = plots.loss_curve(np.geomspace(1.2, 0.012, 100), "toy", logy=True, target=0.02)
    fig.canvas.draw()
    ax = fig.axes[0]
    labels = {t.get_text() for t in [*ax.get_yticklabels(), *ax.get_yticklabels(minor=True)]} - {""}
    assert {"0.01", "0.02", "0.05", "0.1", "0.2", "0.5", "1"} <= labels
    assert not labels & {"0.03", "0.04", "0.3"}        # only 1, 2 and 5 of each decade: legible
    assert _legend_below(fig) == ["target 0.02", "per iteration"]


def test_depth_effect_draws_train_and_validation_apart_one_colour_per_setting():
    rows = [{"setting": s, "measure": m, "depth": d, "mean": 0.5 + 0.01 * d + 0.1 * (m == "train"), "std": 0.01}
            for s in ("chosen", "he-only") for m in ("train", "validation") for d in (2, 3, 4, 5)]
    fig = plots.depth_effect(rows, "d")
    train, val = fig.axes
    assert (train.get_title(), val.get_title()) == ("train", "validation")
    assert len(train.containers) == len(val.containers) == 2              # one errorbar line per setting
    assert np.allclose(train.containers[0].lines[0].get_ydata(), [0.62, 0.63, 0.64, 0.65])
    assert np.allclose(val.containers[1].lines[0].get_ydata(), [0.52, 0.53, 0.54, 0.55])
    assert _legend_below(fig) == ["chosen", "he-only"]
    colours = [c.lines[0].get_color() for c in train.containers]
    assert not matplotlib.colors.same_color(*colours)


def test_loss_terms_draws_cross_entropy_and_l2_apart_on_linear_axes():
    h = {"loss_history": np.full(20, 2.5), "reg_loss_history": np.full(20, 0.5), "iterations_per_epoch": 10,
         "epoch_history": [1, 2], "train_acc_history": [0.5, 0.6], "val_acc_history": [0.3, 0.4]}
    fig = plots.loss_terms(h, "t", smooth=5)
    left, right, acc = fig.axes
    assert left.get_yscale() == right.get_yscale() == "linear"
    assert np.allclose(left.lines[0].get_ydata(), 2.0) and np.allclose(right.lines[0].get_ydata(), 0.5)
    assert "J" in left.get_title() and "L2" in right.get_title()
    assert _legend_below(fig) == ["train, each minibatch", "train, mean of 5", "train, per epoch",
                                  "selection, per epoch"]
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

    assert plots.source_code(h, "for x in") == "for x in xs:\n    for y in xs:\n        total += x * y"
    assert plots.source_code(h, "for y") == "for y in xs:\n    total += x * y"
    # several blocks: each dedented, in the order of the source whatever the order asked
    assert plots.source_code(h, "return", "total = 0", "for y") == (
        "total = 0\nfor y in xs:\n    total += x * y\nreturn total")
    with pytest.raises(ValueError, match="'blocks'.*'while'"):
        plots.source_code(h, "total", "while")
