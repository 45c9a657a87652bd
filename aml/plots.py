"""Figures of the notebooks. Each function draws one figure, saves it as a PNG in ``imgs/`` and
returns it; notebooks show it inline. Nothing here computes a result."""
from __future__ import annotations

import math
from pathlib import Path

import matplotlib.ticker
import matplotlib.pyplot as plt
import numpy as np

from .files import atomic_path
from .paths import imgs_dir

plt.rcParams.update({"figure.dpi": 110, "savefig.dpi": 130, "axes.grid": True, "grid.alpha": 0.3,
                     "axes.spines.top": False, "axes.spines.right": False})


def save(fig, name: str, folder: Path | None = None) -> Path:
    """Save ``fig`` as ``<folder>/<name>.png`` (default: :func:`aml.utils.imgs_dir`), atomically."""
    path = Path(folder or imgs_dir()) / f"{name}.png"
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", bbox_inches="tight")
    return path


def relu_heaviside(name="relu_heaviside"):
    """ReLU(z) and its derivative, the Heaviside step H(z) (taken as 0 at z = 0)."""
    z = np.linspace(-3, 3, 601)
    fig, axes = plt.subplots(1, 2, figsize=(8, 2.8))
    axes[0].plot(z, np.maximum(z, 0), lw=2)
    axes[0].set(title="ReLU(z) = max(0, z)", xlabel="z")
    axes[1].plot(z[z < 0], np.zeros((z < 0).sum()), lw=2, color="C1")
    axes[1].plot(z[z > 0], np.ones((z > 0).sum()), lw=2, color="C1")
    axes[1].plot([0], [0], "o", color="C1")
    axes[1].plot([0], [1], "o", mfc="white", color="C1")
    axes[1].set(title="ReLU'(z) = H(z)", xlabel="z", ylim=(-0.15, 1.15))
    fig.tight_layout()
    save(fig, name)
    return fig


def loss_curve(loss_history, name, *, title="Training loss", smooth: int = 0, logy=False):
    """Loss per iteration (and a moving average over ``smooth`` iterations if > 1)."""
    fig, ax = plt.subplots(figsize=(6, 3.2))
    loss_history = np.asarray(loss_history)
    ax.plot(loss_history, lw=1, alpha=0.5 if smooth > 1 else 1, label="per iteration")
    if smooth > 1 and len(loss_history) > smooth:
        avg = np.convolve(loss_history, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(smooth - 1, len(loss_history)), avg, lw=2, label=f"mean of {smooth}")
        ax.legend()
    ax.set(title=title, xlabel="iteration", ylabel="loss")
    if logy:
        ax.set_yscale("log")
    fig.tight_layout()
    save(fig, name)
    return fig


def training_curves(stats: dict, name: str, *, title: str = "", smooth: int = 50):
    """Loss per iteration, and train / validation accuracy per epoch, of one :func:`aml.train` run."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
    loss = np.asarray(stats["loss_history"])
    axes[0].plot(loss, lw=0.8, alpha=0.4)
    if len(loss) > smooth > 1:
        axes[0].plot(np.arange(smooth - 1, len(loss)), np.convolve(loss, np.ones(smooth) / smooth, "valid"), lw=2)
    axes[0].set(title="Loss", xlabel="iteration")
    epochs = np.arange(1, len(stats["val_acc_history"]) + 1)
    axes[1].plot(epochs, stats["train_acc_history"], "o-", label="train")
    axes[1].plot(epochs, stats["val_acc_history"], "s-", label="validation")
    axes[1].set(title="Accuracy", xlabel="epoch")
    axes[1].legend()
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
    ncols = min(10, len(units)) if len(units) <= 50 else 20
    fig, ax = plt.subplots(figsize=(ncols * 0.55, math.ceil(len(units) / ncols) * 0.55 + 0.4))
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
    fig, axes = plt.subplots(per_class, C, figsize=(C * 0.6, per_class * 0.6 + 0.3), dpi=80)
    for c in range(C):
        idx = rng.choice(np.flatnonzero(labels == c), per_class, replace=False)
        for r, i in enumerate(idx):
            axes[r, c].imshow(images[i])
            axes[r, c].set_axis_off()
        axes[0, c].set_title(class_names[c], fontsize=8)
    fig.tight_layout(pad=0.2)
    save(fig, name)
    return fig


def sweep_scatter(rows: list[dict], name: str, *, x="learning_rate", y="reg", color="val_acc"):
    """Validation accuracy of a random search against learning rate and regularisation (log-log)."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.6))
    xs = np.array([r[x] for r in rows])
    ys = np.array([r[y] for r in rows])
    cs = np.array([r[color] for r in rows])
    sc = axes[0].scatter(xs, ys, c=cs, cmap="viridis", s=60, edgecolor="k")
    axes[0].set(xscale="log", yscale="log", xlabel=x, ylabel=y, title=f"{color} of each run")
    fig.colorbar(sc, ax=axes[0])
    axes[1].scatter(xs, cs, s=40)
    axes[1].set(xscale="log", xlabel=x, ylabel=color, title=f"{color} against {x}")
    for ax in axes:
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    axes[0].yaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
    fig.tight_layout()
    save(fig, name)
    return fig


def accuracy_curves(curves: dict[str, dict], name: str, *, title: str = "", train_key="train_acc_history",
                    val_key="val_acc_history"):
    """Train (dashed) and validation (solid) accuracy per epoch of several labelled runs."""
    fig, ax = plt.subplots(figsize=(7, 3.8))
    for i, (label, h) in enumerate(curves.items()):
        epochs = np.arange(1, len(h[val_key]) + 1)
        ax.plot(epochs, h[train_key], "--", color=f"C{i}", lw=1.2)
        ax.plot(epochs, h[val_key], "-", color=f"C{i}", lw=2, label=label)
    ax.set(xlabel="epoch", ylabel="accuracy (solid: validation, dashed: train)", title=title)
    ax.legend(fontsize=8)
    fig.tight_layout()
    save(fig, name)
    return fig


def layer_scales(stats: dict[str, dict[str, list]], name: str, *, title=""):
    """Per-layer std of activations and of weight gradients (log scale), one line per network."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 3.4))
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
