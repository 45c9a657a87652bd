"""Figures and tables of the notebooks: each plot function draws one figure, saves it in ``imgs/`` and returns
it; :class:`Table` shows a DataFrame as Markdown, and in the PDF as a booktabs table. Nothing here computes."""
from __future__ import annotations

import ast
import inspect
import math
import numbers
import textwrap
from pathlib import Path

import matplotlib.pyplot as plt
import matplotlib.ticker
import numpy as np
import pandas as pd

from .runs import atomic_path, imgs_dir

DISPLAY_DPI, SAVE_DPI = 110, 200    # the look is applied per figure as it is saved: no global matplotlib setting
WIDE, HIGH = 6.0, 1.9               # inches: the report prints a figure at about this size, so 9 pt stays 9 pt


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


def _legend_below(fig) -> None:
    """One legend for all panels, in a row under them, so that it covers no data (each label once)."""
    entries = {}
    for ax in fig.axes:
        for handle, label in zip(*ax.get_legend_handles_labels()):
            entries.setdefault(label, handle)
    if entries:
        fig.legend(entries.values(), entries.keys(), loc="upper center", bbox_to_anchor=(0.5, 0.0),
                   ncol=len(entries), fontsize=9, frameon=False, handlelength=2.5)


def _finish(fig, name: str, *, epochs: bool = False):
    """Integer epoch ticks on every panel (``epochs``), the legend under the panels, then :func:`save`."""
    for ax in fig.axes if epochs else ():
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True, nbins=6))
    fig.tight_layout()
    _legend_below(fig)
    save(fig, name)
    return fig


def loss_curve(loss_history, name, *, title="Training loss", smooth: int = 0, logy=False, target=None):
    """Loss per iteration (and a moving average over ``smooth`` iterations if > 1); ``target`` draws a
    dotted reference line at that loss."""
    fig, ax = plt.subplots(figsize=(WIDE * 0.8, HIGH))
    if target is not None:
        ax.axhline(target, color="C3", ls=":", lw=1.5, label=f"target {target:g}")
    ax.plot(loss_history := np.asarray(loss_history), lw=1, alpha=0.5 if smooth > 1 else 1, label="per iteration")
    if smooth > 1 and len(loss_history) > smooth:
        avg = np.convolve(loss_history, np.ones(smooth) / smooth, mode="valid")
        ax.plot(np.arange(smooth - 1, len(loss_history)), avg, lw=2, label=f"mean of {smooth}")
    ax.set(title=title, xlabel="iteration", ylabel="loss")
    if logy:
        ax.set_yscale("log")
        plain = matplotlib.ticker.FuncFormatter(   # 0.01, 0.02, 0.05, 0.1, ... in plain numbers
            lambda v, _: f"{v:g}" if round(v / 10 ** math.floor(math.log10(v))) in (1, 2, 5) else "")
        ax.yaxis.set_major_formatter(plain), ax.yaxis.set_minor_formatter(plain)
    return _finish(fig, name)


def training_curves(history: dict, name: str, *, smooth: int = 50, held_out: str = "validation"):
    """One run's history (:mod:`aml.training`): the loss per iteration (and its moving average) and the
    held-out loss per epoch, and train / held-out accuracy per epoch, against epochs (a partial last epoch
    drawn where it ended). Train blue, held-out orange, labelled ``held_out`` (the split the run monitored).
    The loss axis is logarithmic when the largest loss exceeds three times the median (a large start)."""
    fig, axes = plt.subplots(1, 2, figsize=(WIDE, HIGH))
    loss = np.asarray(history["loss_history"], dtype=float)
    x = np.arange(1, len(loss) + 1) / history["iterations_per_epoch"]
    axes[0].plot(x, loss, lw=0.8, alpha=0.35, color="C0", label="train, each minibatch")
    if len(loss) > smooth > 1:
        axes[0].plot(x[smooth - 1:], np.convolve(loss, np.ones(smooth) / smooth, "valid"), lw=2, color="C0",
                     label=f"train, mean of {smooth}")
    epochs = np.asarray(history["epoch_history"], dtype=float)
    val_loss = np.asarray(history.get("val_loss_history", []), dtype=float)
    if val_loss.size and np.isfinite(val_loss).any():
        axes[0].plot(epochs, val_loss, "s-", color="C1", lw=2, label=f"{held_out}, per epoch", clip_on=False)
    if loss.size and np.nanmax(loss) > 3 * np.nanmedian(loss):   # a large start (an L2 term) would flatten the rest
        axes[0].set_yscale("log")
    axes[0].set(title="Loss" + (" (log scale)" if axes[0].get_yscale() == "log" else ""), xlabel="epoch")
    _accuracy_panel(axes[1], history, held_out)
    return _finish(fig, name, epochs=True)


def _accuracy_panel(ax, history: dict, held_out: str) -> None:
    epochs = np.asarray(history["epoch_history"], dtype=float)
    ax.plot(epochs, history["train_acc_history"], "o--", color="C0", lw=1.2, label="train, per epoch", clip_on=False)
    ax.plot(epochs, history["val_acc_history"], "s-", color="C1", lw=2, label=f"{held_out}, per epoch", clip_on=False)
    ax.set(title="Accuracy", xlabel="epoch")


def image_grid(images: np.ndarray, *, ncols: int, padding: int = 1) -> np.ndarray:
    """Tile images (N, h, w, 3) with values in [0, 1] into one (rows*h, ncols*w, 3) picture."""
    N, h, w, c = images.shape
    grid = np.ones((math.ceil(N / ncols) * (h + padding) + padding, ncols * (w + padding) + padding, c))
    for i, img in enumerate(images):
        r, k = divmod(i, ncols)
        grid[padding + r * (h + padding): padding + r * (h + padding) + h,
             padding + k * (w + padding): padding + k * (w + padding) + w] = img
    return grid


def first_layer_weights(W1: np.ndarray, name: str, *, max_units: int = 100, title: str = "First-layer weights"):
    """Each column of W1 (3072, H) drawn as a 32x32 colour image, scaled to [0, 1] on its own."""
    H = W1.shape[1]
    units = W1[:, :max_units].T.reshape(-1, 32, 32, 3)
    lo, hi = units.min(axis=(1, 2, 3), keepdims=True), units.max(axis=(1, 2, 3), keepdims=True)
    units = (units - lo) / np.maximum(hi - lo, 1e-12)
    ncols = min(10, len(units))
    fig, ax = plt.subplots(figsize=(ncols * 0.5, math.ceil(len(units) / ncols) * 0.5 + 0.4))
    ax.imshow(image_grid(units, ncols=ncols), interpolation="nearest")
    ax.set_axis_off()
    ax.set_title(f"{title} ({min(H, max_units)} of {H} units)")
    fig.tight_layout()
    save(fig, name)
    return fig


def loss_terms(history: dict, name: str, *, smooth: int = 50, held_out: str = "selection"):
    """The NumPy net's loss terms apart, per iteration: the cross-entropy J of each minibatch (and its moving
    average), the L2 term lambda * sum ||W||^2 (J = loss - L2 term); then train and ``held_out`` accuracy."""
    reg = np.asarray(history["reg_loss_history"], dtype=float)
    data = np.asarray(history["loss_history"], dtype=float) - reg
    x = np.arange(1, len(data) + 1) / history["iterations_per_epoch"]
    fig, axes = plt.subplots(1, 3, figsize=(WIDE, HIGH))
    axes[0].plot(x, data, lw=0.8, alpha=0.35, color="C0", label="train, each minibatch")
    if len(data) > smooth > 1:
        axes[0].plot(x[smooth - 1:], np.convolve(data, np.ones(smooth) / smooth, "valid"), lw=2, color="C0",
                     label=f"train, mean of {smooth}")
    axes[0].set(title="Cross-entropy J", xlabel="epoch")
    axes[1].plot(x, reg, lw=2, color="C2")
    axes[1].set(title="L2 term", xlabel="epoch")
    _accuracy_panel(axes[2], history, held_out)
    return _finish(fig, name, epochs=True)


def depth_effect(frame, name: str):
    """Accuracy against depth in two panels, train and validation, one line per setting, error bars one standard
    deviation over seeds. ``frame``: rows with ``setting``, ``measure`` ("train" or "validation"), ``depth``,
    ``mean``, ``std``; one colour per setting, the same in both panels."""
    frame = pd.DataFrame(frame)
    fig, axes = plt.subplots(1, 2, figsize=(WIDE, HIGH), sharey=True)
    for ax, measure in zip(axes, ("train", "validation")):
        for i, setting in enumerate(dict.fromkeys(frame["setting"])):
            rows = frame[(frame["setting"] == setting) & (frame["measure"] == measure)].sort_values("depth")
            if len(rows):
                ax.errorbar(rows["depth"], rows["mean"], yerr=rows["std"], fmt="o-", capsize=3, lw=1.6,
                            color=f"C{i}", label=setting)
        ax.set(xlabel="depth (Linear layers)", title=measure)
        ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    axes[0].set_ylabel("accuracy")
    return _finish(fig, name)


def _cell(value, fmt: str | None) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if fmt and isinstance(value, numbers.Number) and not isinstance(value, bool):
        return format(value, fmt)
    return str(value)


def _latex_escape(text: str) -> str:
    """``text`` safe in LaTeX; a cell that is one ``$...$`` formula passes as it is (e.g. ``$\\tilde J$``)."""
    if text[:1] == text[-1:] == "$" and text.count("$") == 2:
        return text
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"),
                 ("$", r"\$"), ("{", r"\{"), ("}", r"\}"), ("~", r"\textasciitilde{}"), ("^", r"\^{}")):
        text = text.replace(a, b)
    return text


class Table:
    """``data`` (a DataFrame, or anything ``pd.DataFrame`` takes, such as a list of dicts; its index not shown)
    with its column names as headers; ``formats``: column name -> format spec for that column's numbers
    (booleans and text are left as they are)."""

    def __init__(self, data, formats: dict[str, str] | None = None):
        frame = pd.DataFrame(data).reset_index(drop=True)
        if frame.empty:
            raise ValueError("The 'data' parameter must hold at least one row. Got an empty table instead.")
        formats = dict(formats or {})
        unknown = sorted(set(formats) - set(frame.columns))
        if unknown:
            raise ValueError(f"The 'formats' parameter names columns {unknown} that the table does not have "
                             f"(columns: {list(frame.columns)}).")
        self.frame = frame
        self.heads = [str(c) for c in frame.columns]
        self.body = [[_cell(v, formats.get(c)) for c, v in zip(frame.columns, row)]
                     for row in frame.itertuples(index=False, name=None)]

    def _repr_markdown_(self) -> str:
        lines = ["| " + " | ".join(self.heads) + " |", "|" + "|".join("---" for _ in self.heads) + "|"]
        lines += ["| " + " | ".join(cells) + " |" for cells in self.body]
        return "\n".join(lines)

    def _repr_latex_(self) -> str:
        def numeric(j):
            return all(c.replace(".", "", 1).replace("-", "", 1).replace("+", "").replace("e", "", 1).isdigit()
                       for c in (row[j] for row in self.body) if c)
        spec = "".join("r" if numeric(j) else "l" for j in range(len(self.heads)))
        lines = [r"\begin{center}\small", rf"\begin{{tabular}}{{{spec}}}", r"\toprule",
                 " & ".join(_latex_escape(h) for h in self.heads) + r" \\", r"\midrule"]
        lines += [" & ".join(_latex_escape(c) for c in cells) + r" \\" for cells in self.body]
        lines += [r"\bottomrule", r"\end{tabular}", r"\end{center}"]
        return "\n".join(lines)


def source_code(obj, *blocks: str) -> str:
    """The source of a function or class without its docstrings and bare ``check_*`` calls (argument checks);
    with ``blocks``, only the first statement whose first line starts with each (e.g. ``"for it in"``), dedented,
    in the order of the source."""
    source = textwrap.dedent(inspect.getsource(obj))
    lines, tree = source.splitlines(), ast.parse(source)
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        for i, stmt in enumerate(body if isinstance(body, list) else []):
            value = stmt.value if isinstance(stmt, ast.Expr) else None
            if (i == 0 and isinstance(value, ast.Constant) and isinstance(value.value, str)) or (
                    isinstance(value, ast.Call) and getattr(value.func, "id", "").lstrip("_").startswith("check_")):
                lines[stmt.lineno - 1:stmt.end_lineno] = [None] * (stmt.end_lineno - stmt.lineno + 1)
    if blocks:
        statements = sorted((n.lineno, n.end_lineno) for n in ast.walk(tree) if isinstance(n, ast.stmt))
        spans = []
        for block in blocks:
            span = next((s for s in statements if (lines[s[0] - 1] or "").lstrip().startswith(block)), None)
            if span is None:
                raise ValueError(f"The 'blocks' parameter must each start a statement of {obj.__qualname__}. "
                                 f"Got {block!r}.")
            spans.append(span)
        lines = [textwrap.dedent("\n".join(x for x in lines[a - 1:b] if x is not None)) for a, b in sorted(spans)]
    return textwrap.dedent("\n".join(line for line in lines if line is not None))
