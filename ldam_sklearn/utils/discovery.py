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
        Every public, non-abstract subclass of scikit-learn's ``BaseEstimator``
        defined in the package, except ``Base*`` classes.

    See Also
    --------
    sklearn.utils.discovery.all_estimators : The same for scikit-learn [1]_.

    References
    ----------
    .. [1] scikit-learn documentation, "sklearn.utils.discovery.all_estimators",
       https://scikit-learn.org/stable/modules/generated/sklearn.utils.discovery.all_estimators.html;
       F. Pedregosa et al., "Scikit-learn: Machine Learning in Python",
       JMLR 12, pp. 2825-2830, 2011.

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
