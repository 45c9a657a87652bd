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


def test_accuracy_curves_keep_a_label_s_colour_across_panels_and_share_one_legend():
    panels = {"a": {"depth 2": _history(), "depth 3": _history(seed=1)},
              "b": {"depth 2": _history(seed=2), "depth 3": _history(seed=3)}}
    fig = plots.accuracy_curves(panels, "acc")
    assert [ax.get_title() for ax in fig.axes] == ["a", "b"]
    colours = [[line.get_color() for line in ax.get_lines()] for ax in fig.axes]
    assert colours[0] == colours[1]                          # depth 2 and depth 3 alike in both panels
    assert colours[0][0] == colours[0][1] != colours[0][2]   # a label's train and validation lines share it
    (legend,) = fig.legends
    assert [t.get_text() for t in legend.get_texts()] == ["depth 2", "depth 3", "train", "validation"]
    assert [h.get_linestyle() for h in legend.legend_handles[-2:]] == ["--", "-"]


def test_training_curves_use_a_log_loss_axis_only_when_the_start_dwarfs_the_rest():
    h = _history()
    assert plots.training_curves(h, "lin").axes[0].get_yscale() == "linear"
    h["loss_history"][0] = 12.0
    fig = plots.training_curves(h, "log")
    assert fig.axes[0].get_yscale() == "log" and "log scale" in fig.axes[0].get_title()


def test_search_history_draws_failed_trials_apart_from_accuracies():
    import pandas as pd
    table = pd.DataFrame({"number": [0, 1, 2, 3], "state": ["COMPLETE", "PRUNED", "FAIL", "COMPLETE"],
                          "value": [0.40, 0.30, None, 0.45], "epochs": [9, 1, 2, 9]})
    fig = plots.search_history(table, "s")
    ax = fig.axes[0]
    fail = next(c for c in ax.collections if c.get_label().startswith("fail"))
    assert fail.get_transform() != ax.transData                  # a strip in axes coordinates, not a value
    values = np.concatenate([c.get_offsets()[:, 1] for c in ax.collections if not c.get_label().startswith("fail")])
    assert 0.0 not in values and ax.get_ylim()[0] > 0.1            # no accuracy axis dragged down to 0
    assert fig.legends and not ax.get_legend()                     # the legend sits below, off the points


def test_depth_effect_draws_one_line_per_setting_with_error_bars():
    rows = [{"setting": s, "depth": d, "seeds": 3, "val_mean": 0.5 + 0.01 * d, "val_std": 0.01}
            for s in ("fixed", "tuned") for d in (2, 3, 4, 5)]
    fig = plots.depth_effect(rows, "d")
    ax = fig.axes[0]
    assert len(ax.containers) == 2                                  # one errorbar container per setting
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["fixed (3 seeds)", "tuned (3 seeds)"]


def test_loss_terms_draws_cross_entropy_and_l2_apart_on_linear_axes():
    h = {"loss_history": np.full(20, 2.5), "reg_loss_history": np.full(20, 0.5), "iterations_per_epoch": 10}
    fig = plots.loss_terms(h, "t", smooth=5)
    left, right = fig.axes
    assert left.get_yscale() == right.get_yscale() == "linear"
    assert np.allclose(left.lines[0].get_ydata(), 2.0) and np.allclose(right.lines[0].get_ydata(), 0.5)
    assert left.get_ylabel() and right.get_ylabel()
