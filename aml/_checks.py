"""Argument validation shared by every public function of `aml`.

Each helper raises ``ValueError`` or ``TypeError`` whose message names the argument, what was
expected and what arrived, in the manner of scikit-learn's parameter validation.
"""
from __future__ import annotations

import numbers

import numpy as np


def check_positive_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The {name!r} parameter must be a positive int. Got {value!r} instead.")
    if value <= 0:
        raise ValueError(f"The {name!r} parameter must be a positive int. Got {value!r} instead.")
    return int(value)


def check_nonneg_int(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The {name!r} parameter must be an int >= 0. Got {value!r} instead.")
    if value < 0:
        raise ValueError(f"The {name!r} parameter must be an int >= 0. Got {value!r} instead.")
    return int(value)


def _check_real(name: str, value, expected: str) -> float:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    value = float(value)
    if not np.isfinite(value):
        raise ValueError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    return value


def check_positive_float(name: str, value) -> float:
    value = _check_real(name, value, "a finite float > 0")
    if value <= 0:
        raise ValueError(f"The {name!r} parameter must be a finite float > 0. Got {value!r} instead.")
    return value


def check_nonneg_float(name: str, value) -> float:
    value = _check_real(name, value, "a finite float >= 0")
    if value < 0:
        raise ValueError(f"The {name!r} parameter must be a finite float >= 0. Got {value!r} instead.")
    return value


def check_interval(name: str, value, low: float, high: float, *, closed_high: bool = False) -> float:
    """A float in [low, high) (or [low, high] with ``closed_high``)."""
    bracket = "]" if closed_high else ")"
    expected = f"a float in [{low}, {high}{bracket}"
    value = _check_real(name, value, expected)
    if value < low or value > high or (value == high and not closed_high):
        raise ValueError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    return value


def check_choice(name: str, value, choices) -> str:
    if value not in choices:
        raise ValueError(f"The {name!r} parameter must be one of {sorted(choices)}. Got {value!r} instead.")
    return value


def check_X(X, *, num_features: int | None = None, name: str = "X") -> np.ndarray:
    """A finite 2-D float array (N, D); D must equal ``num_features`` when given."""
    if not isinstance(X, np.ndarray):
        raise TypeError(f"The {name!r} parameter must be a numpy.ndarray of shape (N, D). "
                        f"Got {type(X).__name__} instead.")
    if X.ndim != 2:
        raise ValueError(f"The {name!r} parameter must be 2-D of shape (N, D). Got shape {X.shape} instead.")
    if num_features is not None and X.shape[1] != num_features:
        raise ValueError(f"The {name!r} parameter must have {num_features} features (columns). "
                         f"Got shape {X.shape} instead.")
    if not np.issubdtype(X.dtype, np.floating):
        raise TypeError(f"The {name!r} parameter must hold floats. Got dtype {X.dtype} instead.")
    if not np.isfinite(X).all():
        raise ValueError(f"The {name!r} parameter must be finite. Got NaN or inf values instead.")
    return X


def check_y(y, *, num_samples: int, num_classes: int, name: str = "y") -> np.ndarray:
    """Integer labels (N,) with values in [0, num_classes)."""
    if not isinstance(y, np.ndarray) or not np.issubdtype(y.dtype, np.integer):
        dtype = getattr(y, "dtype", type(y).__name__)
        raise TypeError(f"The {name!r} parameter must be an integer numpy.ndarray of shape (N,). "
                        f"Got {dtype} instead.")
    if y.shape != (num_samples,):
        raise ValueError(f"The {name!r} parameter must have shape ({num_samples},) to match X. "
                         f"Got shape {y.shape} instead.")
    if y.size and (y.min() < 0 or y.max() >= num_classes):
        raise ValueError(f"The {name!r} parameter must hold labels in [0, {num_classes}). "
                         f"Got values in [{y.min()}, {y.max()}] instead.")
    return y


def check_bool(name: str, value) -> bool:
    """A real ``bool`` (not 0/1, not a string such as "no")."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"The {name!r} parameter must be a bool. Got {value!r} instead.")
    return bool(value)


def check_seed(name: str, value, *, allow_none: bool = False, allow_generator: bool = False):
    """An int in [0, 2**32) (NumPy's legacy seeding range), optionally None or a numpy Generator."""
    if value is None and allow_none:
        return None
    if allow_generator and isinstance(value, np.random.Generator):
        return value
    expected = "an int in [0, 2**32)" + (" or None" if allow_none else "") + (
        " or a numpy.random.Generator" if allow_generator else "")
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    if not 0 <= value < 2**32:
        raise ValueError(f"The {name!r} parameter must be {expected}. Got {value!r} instead.")
    return int(value)


def check_labels(y, *, num_samples: int, name: str = "y") -> np.ndarray:
    """Integer labels of shape exactly (num_samples,): a (N, 1) column or a length-1 array would
    broadcast against predictions and give a wrong accuracy without a word."""
    y = np.asarray(y)
    if not np.issubdtype(y.dtype, np.integer):
        raise TypeError(f"The {name!r} parameter must hold integer labels. Got dtype {y.dtype} instead.")
    if y.shape != (num_samples,):
        raise ValueError(f"The {name!r} parameter must have shape ({num_samples},) to match X. "
                         f"Got shape {y.shape} instead.")
    return y
