"""Find the package's public estimators, as ``sklearn.utils.all_estimators`` does."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from sklearn.base import BaseEstimator

__all__ = ["all_estimators"]


def all_estimators() -> list[tuple[str, type]]:
    """Public, concrete estimator classes of :mod:`ldam_sklearn`, sorted by name.

    Returns
    -------
    estimators : list of (name, class) tuples

    Examples
    --------
    >>> from ldam_sklearn.utils.discovery import all_estimators
    >>> "LDAMDRWClassifier" in dict(all_estimators())
    True
    """
    import ldam_sklearn

    found = {}
    for info in pkgutil.walk_packages(ldam_sklearn.__path__, prefix="ldam_sklearn."):
        if any(part.startswith("_") for part in info.name.split(".")) or info.name.endswith(
            ("cli", "__main__")
        ):
            continue
        module = importlib.import_module(info.name)
        for name, obj in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(obj, BaseEstimator)
                and obj.__module__.startswith("ldam_sklearn")
                and not name.startswith(("Base", "_"))
                and not inspect.isabstract(obj)
            ):
                found[name] = obj
    return sorted(found.items())
