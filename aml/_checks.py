"""Argument validation shared by every public function of `aml`.

Each check returns the value or raises ``TypeError`` / ``ValueError`` naming the argument, what was
expected and what arrived, as scikit-learn does. A config declares its constraints as data,
``{field: check}``, which :func:`check_fields` applies.
"""
from __future__ import annotations

import math
import numbers

import numpy as np


def _number(name: str, value, expected: str, ok, kind=numbers.Real):
    """``value`` as an int (``kind=numbers.Integral``) or a finite float for which ``ok(value)`` holds."""
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    if not ok(value) or (kind is numbers.Real and not math.isfinite(value)):
        raise ValueError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    return int(value) if kind is numbers.Integral else float(value)


def check_positive_int(name: str, value) -> int:
    return _number(name, value, "a positive int", lambda v: v > 0, numbers.Integral)


def check_nonneg_int(name: str, value) -> int:
    return _number(name, value, "an int >= 0", lambda v: v >= 0, numbers.Integral)


def check_positive_float(name: str, value) -> float:
    return _number(name, value, "a finite float > 0", lambda v: v > 0)


def check_nonneg_float(name: str, value) -> float:
    return _number(name, value, "a finite float >= 0", lambda v: v >= 0)


def check_interval(name: str, value, low: float, high: float, *, closed_low: bool = True,
                   closed_high: bool = False) -> float:
    """A float in [low, high) by default; ``closed_low``/``closed_high`` choose the brackets."""
    expected = f"a float in {'[' if closed_low else '('}{low}, {high}{']' if closed_high else ')'}"
    return _number(name, value, expected, lambda v: (low <= v if closed_low else low < v)
                   and (v <= high if closed_high else v < high))


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"The {name!r} parameter must be one of {sorted(choices)}. Got {value!r} instead.")
    return value


def check_bool(name: str, value) -> bool:
    """A real ``bool`` (not 0/1, not a string such as "no")."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"The {name!r} parameter must be a bool. Got {value!r} instead.")
    return bool(value)


def optional(check):
    """``check`` that also accepts None."""
    return lambda name, value: None if value is None else check(name, value)


def check_fields(obj, constraints: dict) -> None:
    """Apply ``constraints`` ({attribute name: check(name, value)}) to ``obj``: one place per config."""
    for name, check in constraints.items():
        check(name, getattr(obj, name))


def check_seed(name: str, value, *, allow_none: bool = False, allow_generator: bool = False):
    """An int in [0, 2**32) (NumPy's legacy seeding range), optionally None or a numpy Generator."""
    if (value is None and allow_none) or (allow_generator and isinstance(value, np.random.Generator)):
        return value
    expected = "an int in [0, 2**32)" + (" or None" if allow_none else "") + (
        " or a numpy.random.Generator" if allow_generator else "")
    return _number(name, value, expected, lambda v: 0 <= v < 2**32, numbers.Integral)


def check_X(X, *, num_features: int | None = None, nonempty: bool = False, name: str = "X") -> np.ndarray:
    """A finite 2-D float array (N, D); D must equal ``num_features`` when given, N >= 1 if ``nonempty``."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"The {name!r} parameter must be a numpy.ndarray of shape (N, D). "
                        f"Got {type(X).__name__} instead.")
    if X.ndim != 2:
        raise ValueError(f"The {name!r} parameter must be 2-D of shape (N, D). Got shape {X.shape} instead.")
    if num_features is not None and X.shape[1] != num_features:
        raise ValueError(f"The {name!r} parameter must have {num_features} features (columns). "
                         f"Got shape {X.shape} instead.")
    if nonempty and X.shape[0] == 0:
        raise ValueError(f"The {name!r} parameter must hold at least one row. Got shape {X.shape} instead.")
    if not np.issubdtype(X.dtype, np.floating):
        raise TypeError(f"The {name!r} parameter must hold floats. Got dtype {X.dtype} instead.")
    if not np.isfinite(X).all():
        raise ValueError(f"The {name!r} parameter must be finite. Got NaN or inf values instead.")
    return X


def check_y(y, *, num_samples: int, num_classes: int | None = None, name: str = "y") -> np.ndarray:
    """Integer labels (num_samples,) exactly (a column would broadcast), in [0, num_classes) if given."""
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer):
        dtype = getattr(y, "dtype", type(y).__name__)
        raise TypeError(f"The {name!r} parameter must be an integer numpy.ndarray of shape (N,). "
                        f"Got {dtype} instead.")
    if y.shape != (num_samples,):
        raise ValueError(f"The {name!r} parameter must have shape ({num_samples},) to match X. "
                         f"Got shape {y.shape} instead.")
    if num_classes is not None and y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"The {name!r} parameter must hold labels in [0, {num_classes}). "
                         f"Got values in [{y.min()}, {y.max()}] instead.")
    return y
