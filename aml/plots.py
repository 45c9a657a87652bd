"""Figures of the notebooks. Each function draws one figure, saves it as a PNG in ``imgs/`` and
returns it; notebooks show it inline. Nothing here computes a result."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np

from .runs import atomic_path, imgs_dir

#: The look of every figure, applied to each figure as it is saved (:func:`save`), so importing this
#: module changes no global setting of matplotlib. (A ``plt.style.context`` around the first figure
#: of a Jupyter session switches off the inline backend's display of every later figure.)
DISPLAY_DPI, SAVE_DPI = 110, 130


def _apply_style(fig) -> None:
    """Light grids and no top/right spines on the plotting axes (image axes are left alone)."""
    fig.set_dpi(DISPLAY_DPI)
    for ax in fig.axes:
        if ax.images or not ax.axison or ax.get_label() == "<colorbar>":
            continue
        ax.grid(True, alpha=0.3)
        ax.spines[["top", "right"]].set_visible(False)


def save(fig, name: str, folder: Path | None = None) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` (default: :func:`aml.runs.imgs_dir`), atomically."""
    _apply_style(fig)
    path = Path(folder or imgs_dir()) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight", dpi=SAVE_DPI)
    return path


def _integer_epochs(ax) -> None:
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))


def _style_handles():
    """Legend entries that say which line style is train (dashed) and which validation (solid)."""
    from matplotlib.lines import Line2D
    return [Line2D([], [], color="0.3", ls="--", lw=1.2, label="train"),
            Line2D([], [], color="0.3", ls="-", lw=2, label="validation")]


def relu_heaviside(name="relu_heaviside"):
    """ReLU(z) and its derivative, the Heaviside step Θ(z) (taken as 0 at z = 0)."""
    z = np.linspace(-3, 3, 601)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    axes[0].plot(z, np.maximum(z, 0), lw=2)
    axes[0].set(title="ReLU(z) = max(0, z)", xlabel="z")
    axes[1].plot(z[z < 0], np.zeros((z < 0).sum()), lw=2, color="C1")
    axes[1].plot(z[z > 0], np.ones((z > 0).sum()), lw=2, color="C1")
    axes[1].plot([0], [0], "o", color="C1")
    axes[1].plot([0], [1], "o", mfc="white", color="C1")
    axes[1].set(title="ReLU'(z) = Θ(z)", xlabel="z", ylim=(-0.15, 1.15))
    fig.tight_layout()
    save(fig, name)
    return fig


def loss_curve(loss_history, name, *, title="Training loss", smooth: int = 0, logy=False, target=None):
    """Loss per iteration (and a moving average over ``smooth`` iterations if > 1); ``target`` draws a
    dotted reference line at that loss."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    if target is not None:
        ax.axhline(target, color="C3", ls=":", lw=1.5, label=f"target {target:g}")
    loss_history = np.asarray(loss_history)
    ax.plot(loss_history, lw=1, alpha=0.5 if smooth > 1 else 1, label="per iteration")
    if smooth > 1 and len(loss_history) > smooth:
        avg = np.convolve(loss_history, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(smooth - 1, len(loss_history)), avg, lw=2, label=f"mean of {smooth}")
    if smooth > 1 or target is not None:
        ax.legend()
    ax.set(title=title, xlabel="iteration", ylabel="loss")
    if logy:
        ax.set_yscale("log")
    fig.tight_layout()
    save(fig, name)
    return fig


def training_curves(history: dict, name: str, *, title: str = "", smooth: int = 50):
    """One run's history (:mod:`aml.training`): the loss per iteration (and its moving average) and the
    validation loss per epoch, and train / validation accuracy per epoch, both against epochs (a
    partial last epoch is drawn where it ended). Train is blue, validation orange; each legend entry
    is drawn as its line is. The loss axis is logarithmic when the largest loss exceeds three times the
    median (a large start, such as an L2 term at initialisation, would flatten the rest)."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.1))
    loss = np.asarray(history["loss_history"], dtype=float)
    per_epoch = history["iterations_per_epoch"]
    x = np.arange(1, len(loss) + 1) / per_epoch
    axes[0].plot(x, loss, lw=0.8, alpha=0.35, color="C0", label="train, each minibatch")
    if len(loss) > smooth > 1:
        axes[0].plot(x[smooth - 1:], np.convolve(loss, np.ones(smooth) / smooth, "valid"), lw=2, color="C0",
                     label=f"train, mean of {smooth}")
    epochs = np.asarray(history["epoch_history"], dtype=float)
    val_loss = np.asarray(history.get("val_loss_history", []), dtype=float)
    if val_loss.size and np.isfinite(val_loss).any():
        axes[0].plot(epochs, val_loss, "s-", color="C1", lw=2, label="validation")
    if loss.size and np.nanmax(loss) > 3 * np.nanmedian(loss):   # a large start (an L2 term) would flatten the rest
        axes[0].set_yscale("log")
    axes[0].set(title="Loss" + (" (log scale)" if axes[0].get_yscale() == "log" else ""), xlabel="epoch")
    axes[0].legend(fontsize=8)
    axes[1].plot(epochs, history["train_acc_history"], "o--", color="C0", lw=1.2, label="train")
    axes[1].plot(epochs, history["val_acc_history"], "s-", color="C1", lw=2, label="validation")
    axes[1].set(title="Accuracy", xlabel="epoch")
    axes[1].legend(fontsize=8)
    for ax in axes:
        _integer_epochs(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, name)
    return fig


def image_grid(images: np.ndarray, *, ncols: int, padding: int = 1) -> np.ndarray:
    """Tile images (N, h, w, 3) with values in [0, 1] into one (rows*h, ncols*w, 3) picture."""
    N, h, w, c = images.shape
    nrows = math.ceil(N / ncols)
    grid = np.ones((nrows * (h + padding) + padding, ncols * (w + padding) + padding, c))
    for i, img in enumerate(images):
        r, k = divmod(i, ncols)
        grid[padding + r * (h + padding): padding + r * (h + padding) + h,
             padding + k * (w + padding): padding + k * (w + padding) + w] = img
    return grid


def first_layer_weights(W1: np.ndarray, name: str, *, max_units: int = 100, title: str = "First-layer weights"):
    """Each column of W1 (3072, H) drawn as a 32x32 colour image, scaled to [0, 1] on its own."""
    H = W1.shape[1]
    units = W1[:, :max_units].T.reshape(-1, 32, 32, 3)
    lo = units.min(axis=(1, 2, 3), keepdims=True)
    hi = units.max(axis=(1, 2, 3), keepdims=True)
    units = (units - lo) / np.maximum(hi - lo, 1e-12)
    ncols = min(10, len(units))
    fig, ax = plt.subplots(figsize=(ncols * 0.5, math.ceil(len(units) / ncols) * 0.5 + 0.4))
    ax.imshow(image_grid(units, ncols=ncols), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{title} ({min(H, max_units)} of {H} units)")
    fig.tight_layout()
    save(fig, name)
    return fig


def class_samples(images: np.ndarray, labels: np.ndarray, class_names, name: str, *, per_class: int = 6, seed=0):
    """A grid of ``per_class`` random uint8 images (N, 32, 32, 3) of each class, one column a class."""
    rng = np.random.default_rng(seed)
    C = len(class_names)
    fig, axes = plt.subplots(per_class, C, figsize=(C * 0.85, per_class * 0.75 + 0.4), dpi=80)
    for c in range(C):
        idx = rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
        for r, i in enumerate(idx):
            axes[r, c].imshow(images[i])
            axes[r, c].set_axis_off()
        axes[0, c].set_title(class_names[c], fontsize=8)
    fig.tight_layout(pad=0.2)
    save(fig, name)
    return fig


def accuracy_curves(panels: dict[str, dict[str, dict]], name: str, *, title: str = ""):
    """Train (dashed) and validation (solid) accuracy per epoch of labelled histories, one panel per
    entry of ``panels`` ({panel title: {label: history}}), side by side with a shared y axis, so that
    they do not hide each other. A label has the same colour in every panel; one legend below."""
    from matplotlib.lines import Line2D
    labels = list(dict.fromkeys(label for curves in panels.values() for label in curves))
    colour = {label: f"C{i}" for i, label in enumerate(labels)}
    n = max(1, len(panels))
    fig, axes = plt.subplots(1, n, figsize=(2.9 * n if n > 1 else 6, 3.2), sharey=True, squeeze=False)
    for ax, (panel, curves) in zip(axes[0], panels.items()):
        for label, h in curves.items():
            epochs = np.asarray(h["epoch_history"], dtype=float)
            ax.plot(epochs, h["train_acc_history"], "--", color=colour[label], lw=1.2)
            ax.plot(epochs, h["val_acc_history"], "-", color=colour[label], lw=2)
        ax.set(xlabel="epoch", title=panel)
        _integer_epochs(ax)
    axes[0][0].set(ylabel="accuracy")
    handles = [Line2D([], [], color=colour[label], lw=2, label=label) for label in labels] + _style_handles()
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.09, 1, 1))
    save(fig, name)
    return fig


def layer_scales(stats: dict[str, dict[str, list]], name: str, *, title=""):
    """Per-layer std of activations and of weight gradients (log scale), one line per network."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.1))
    for i, (label, s) in enumerate(stats.items()):
        axes[0].plot(range(1, len(s["activation_std"]) + 1), s["activation_std"], "o-", color=f"C{i}", label=label)
        axes[1].plot(range(1, len(s["grad_std"]) + 1), s["grad_std"], "o-", color=f"C{i}", label=label)
    for ax in axes:
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].set(yscale="log", xlabel="Linear layer", title="std of the layer's output")
    axes[1].set(yscale="log", xlabel="Linear layer", title="std of dLoss/dW")
    axes[0].legend(fontsize=8)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, name)
    return fig


def search_history(table, name: str, *, title: str = ""):
    """An Optuna study's trials (``aml.search.trials_table``): the selection accuracy each complete or
    pruned trial last reported and the best complete value so far (left), and the epochs each trial
    reached before it stopped (right). Failed trials have no accuracy: they are drawn apart, as marks
    in a strip under the accuracies, never as a value of 0. The legend sits below the panels."""
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.3))
    colours = {"COMPLETE": "C0", "PRUNED": "C7", "FAIL": "C3"}
    strip = axes[0].get_xaxis_transform()   # x in trials, y in axes fractions
    handles = []
    for state, colour in colours.items():
        part = table[table["state"] == state]
        label = f"{state.lower()} ({len(part)})"
        if state == "FAIL":
            handles.append(axes[0].scatter(part["number"], np.full(len(part), 0.04), transform=strip, marker="x",
                                           s=30, color=colour, label=label, clip_on=False))
        else:
            handles.append(axes[0].scatter(part["number"], part["value"], s=25, color=colour, label=label))
        axes[1].scatter(part["number"], part["epochs"], s=25, color=colour, marker="x" if state == "FAIL" else "o")
    done = table[table["state"] == "COMPLETE"].sort_values("number")
    if len(done):
        handles += axes[0].step(done["number"], done["value"].cummax(), where="post", color="C1",
                                label="best complete so far")
    axes[0].set(xlabel="trial", ylabel="selection accuracy", title="Trials (last epoch reported)")
    axes[1].set(xlabel="trial", ylabel="epochs trained", title="Budget spent (successive halving)")
    for ax in axes:
        _integer_epochs(ax)
    axes[1].yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    fig.legend(handles=handles, loc="lower center", ncol=len(handles), fontsize=8, frameon=False)
    if title:
        fig.suptitle(title)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    save(fig, name)
    return fig


def param_importances(importances: dict[str, float], name: str, *, title: str = "Which hyper-parameters mattered"):
    """Horizontal bars of hyper-parameter importances (fractions of the explained variance)."""
    items = sorted(importances.items(), key=lambda kv: kv[1])
    fig, ax = plt.subplots(figsize=(4.8, 0.28 * len(items) + 1))
    ax.barh([k for k, _ in items], [v for _, v in items], color="C0")
    ax.set(xlabel="importance (PED-ANOVA)", title=title)
    fig.tight_layout()
    save(fig, name)
    return fig


def confusion_matrix(matrix: np.ndarray, class_names, name: str, *, title: str = ""):
    """A (C, C) confusion matrix (rows: true class, columns: predicted), each row normalised to 1."""
    matrix = np.asarray(matrix, dtype=float)
    rates = matrix / np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    fig, ax = plt.subplots(figsize=(5.0, 4.2))
    im = ax.imshow(rates, cmap="Blues", vmin=0, vmax=1)
    for i in range(len(class_names)):
        for j in range(len(class_names)):
            ax.text(j, i, f"{rates[i, j]:.2f}", ha="center", va="center", fontsize=6,
                    color="white" if rates[i, j] > 0.5 else "black")
    ax.set_xticks(range(len(class_names)), class_names, rotation=45, ha="right")
    ax.set_yticks(range(len(class_names)), class_names)
    ax.set(xlabel="predicted", ylabel="true", title=title)
    ax.grid(False)
    fig.colorbar(im, ax=ax, fraction=0.046)
    fig.tight_layout()
    save(fig, name)
    return fig


def misclassified(images: np.ndarray, true, pred, class_names, name: str, *, ncols: int = 6, title: str = ""):
    """uint8 images (n, 32, 32, 3), each titled "true / predicted"."""
    n = len(images)
    nrows = math.ceil(n / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(ncols * 1.15, nrows * 1.35), squeeze=False)
    for k, ax in enumerate(axes.flat):
        ax.set_axis_off()
        if k < n:
            ax.imshow(images[k])
            ax.set_title(f"{class_names[true[k]]}\n→ {class_names[pred[k]]}", fontsize=8)
    if title:
        fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    save(fig, name)
    return fig


def depth_effect(summary, name: str, *, title: str = ""):
    """Final validation accuracy against depth, one line per setting, error bars one standard
    deviation over seeds. ``summary``: rows of :func:`aml.mlp.depth_study.summarise` (``setting``,
    ``depth``, ``seeds``, ``val_mean``, ``val_std``)."""
    rows = list(summary)
    settings = list(dict.fromkeys(r["setting"] for r in rows))
    fig, ax = plt.subplots(figsize=(6, 3.4))
    for i, setting in enumerate(settings):
        mine = sorted((r for r in rows if r["setting"] == setting), key=lambda r: r["depth"])
        seeds = sorted({r["seeds"] for r in mine})
        ax.errorbar([r["depth"] + 0.04 * (i - (len(settings) - 1) / 2) for r in mine], [r["val_mean"] for r in mine],
                    yerr=[r["val_std"] for r in mine], fmt="o-", capsize=3, lw=1.8, color=f"C{i}",
                    label=f"{setting} ({'/'.join(map(str, seeds))} seeds)")
    ax.set(xlabel="depth (Linear layers)", ylabel="validation accuracy", title=title)
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    fig.tight_layout()
    save(fig, name)
    return fig


def loss_terms(history: dict, name: str, *, title: str = "", smooth: int = 50):
    """The two terms of the NumPy net's training loss drawn apart, on linear axes: the cross-entropy J
    of each minibatch (and its moving average) and the L2 term lambda * sum ||W||^2, per iteration,
    from ``loss_history`` and ``reg_loss_history`` (J = loss - L2 term)."""
    reg = np.asarray(history["reg_loss_history"], dtype=float)
    data = np.asarray(history["loss_history"], dtype=float) - reg
    x = np.arange(1, len(data) + 1) / history["iterations_per_epoch"]
    fig, axes = plt.subplots(1, 2, figsize=(8, 3.1))
    axes[0].plot(x, data, lw=0.8, alpha=0.35, color="C0", label="each minibatch")
    if len(data) > smooth > 1:
        axes[0].plot(x[smooth - 1:], np.convolve(data, np.ones(smooth) / smooth, "valid"), lw=2, color="C0",
                     label=f"mean of {smooth}")
    axes[0].set(title="Cross-entropy J (training minibatches)", xlabel="epoch", ylabel="J")
    axes[0].legend(fontsize=8)
    axes[1].plot(x, reg, lw=2, color="C2")
    axes[1].set(title=r"L2 term $\lambda\,(\|W_1\|^2 + \|W_2\|^2)$", xlabel="epoch", ylabel="L2 term")
    for ax in axes:
        _integer_epochs(ax)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    save(fig, name)
    return fig
