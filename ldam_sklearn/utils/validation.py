"""Hyper-parameter checks shared by the estimators; each error names the parameter."""

from __future__ import annotations

import numbers
from collections.abc import Collection

import numpy as np


def check_choice(name: str, value, choices: Collection[str]) -> None:
    """Raise a ValueError listing the choices unless ``value`` is one of them.

    Examples
    --------
    >>> check_choice("loss", "ldam", ["ldam", "ce"])
    >>> check_choice("loss", "hinge", ["ldam", "ce"])
    Traceback (most recent call last):
    ...
    ValueError: loss='hinge' is not valid; choose one of ['ce', 'ldam'].
    """
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"{name}={value!r} is not valid; choose one of {sorted(choices)}.")


def check_bool(name: str, value) -> None:
    """Raise a ValueError unless ``value`` is a boolean (Python's or NumPy's).

    Examples
    --------
    >>> check_bool("choose_tau", "yes")
    Traceback (most recent call last):
    ...
    ValueError: choose_tau must be True or False, got 'yes'.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be True or False, got {value!r}.")


def check_int(name: str, value, minimum: int = 1) -> None:
    """Raise a ValueError unless ``value`` is an integer ``>= minimum``.

    Examples
    --------
    >>> check_int("batch_size", 0)
    Traceback (most recent call last):
    ...
    ValueError: batch_size must be an integer >= 1, got 0.
    """
    if isinstance(value, bool) or not isinstance(value, numbers.Integral) or value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}.")


def check_real(
    name: str, value, minimum: float, *, strict: bool = False, below: float | None = None
) -> None:
    """Raise a ValueError unless ``value`` is a real number in the given range.

    The range is ``[minimum, below)``, or ``(minimum, below)`` with ``strict``;
    ``below=None`` leaves it open above.

    Examples
    --------
    >>> check_real("beta", 0.9999, 0, below=1)
    >>> check_real("s", "30", 0, strict=True)
    Traceback (most recent call last):
    ...
    ValueError: s must be a real number > 0, got '30'.
    """
    bounds = f"> {minimum}" if strict else f">= {minimum}"
    if below is not None:
        bounds = f"in {'(' if strict else '['}{minimum}, {below})"
    valid = isinstance(value, numbers.Real) and not isinstance(value, bool)
    if valid:
        valid = value > minimum if strict else value >= minimum
        valid = valid and (below is None or value < below)
    if not valid:
        raise ValueError(f"{name} must be a real number {bounds}, got {value!r}.")
