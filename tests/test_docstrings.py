"""Every public class and function has a complete numpydoc docstring.

The public API is what the public modules (no ``_``-prefixed part in their
name) list in ``__all__``. Each class or function there must have, parsed by
:mod:`numpydoc.docscrape`:

- a ``Parameters`` section when it takes parameters (``*args``/``**kwargs``
  aside; for a class, those of ``__init__``);
- an ``Attributes`` section (classes) or a ``Returns``/``Yields`` section
  (functions);
- a ``References`` section;
- an ``Examples`` section with doctest lines (``>>>``), which
  ``--doctest-modules`` runs.

A new object added to an ``__all__`` without such a docstring fails here,
under its own name.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil

import pytest
from numpydoc.docscrape import ClassDoc, FunctionDoc

import ldam_sklearn


def _public_modules():
    modules = [ldam_sklearn]
    for info in pkgutil.walk_packages(ldam_sklearn.__path__, prefix="ldam_sklearn."):
        if any(part.startswith("_") for part in info.name.split(".")):
            continue
        modules.append(importlib.import_module(info.name))
    return modules


def _public_objects() -> dict[str, object]:
    """Qualified name -> class or function, once per object."""
    found = {}
    for module in _public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if not (inspect.isclass(obj) or inspect.isfunction(obj)):
                continue
            found.setdefault(f"{obj.__module__}.{obj.__qualname__}", obj)
    return dict(sorted(found.items()))


PUBLIC = _public_objects()


def _missing_sections(obj) -> list[str]:
    if inspect.isclass(obj):
        doc = ClassDoc(obj, config={"show_class_members": False})
        signature = inspect.signature(obj.__init__)
        skip = ("self", "args", "kwargs")
    else:
        doc = FunctionDoc(obj)
        signature = inspect.signature(obj)
        skip = ("args", "kwargs")
    params = [name for name in signature.parameters if name not in skip]
    missing = []
    if params and not doc["Parameters"]:
        missing.append("Parameters")
    if inspect.isclass(obj) and not doc["Attributes"]:
        missing.append("Attributes")
    if inspect.isfunction(obj) and not (doc["Returns"] or doc["Yields"]):
        missing.append("Returns")
    if not doc["References"]:
        missing.append("References")
    if not any(line.lstrip().startswith(">>>") for line in doc["Examples"]):
        missing.append("Examples (with doctest lines)")
    return missing


def test_public_api_is_found():
    # Guards the walk itself: an empty or truncated list would pass vacuously.
    for name in (
        "ldam_sklearn.ldam_drw.LDAMDRWClassifier",
        "ldam_sklearn.l2rw.L2RWClassifier",
        "ldam_sklearn.losses.LDAMLoss",
        "ldam_sklearn.compare.run.run_comparison",
        "ldam_sklearn.cli.main",
    ):
        assert name in PUBLIC


@pytest.mark.parametrize("name", list(PUBLIC))
def test_numpydoc_sections(name):
    obj = PUBLIC[name]
    assert inspect.getdoc(obj), f"{name} has no docstring"
    missing = _missing_sections(obj)
    assert not missing, f"{name}'s docstring lacks: {', '.join(missing)}"
