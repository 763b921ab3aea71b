"""Sphinx configuration of the ldam-sklearn documentation.

Build (from the repository root)::

    pip install ".[docs]" && sphinx-build -W -b html docs docs/_build/html

The gallery executes every ``examples/plot_*.py``. ``LDAM_SKLEARN_QUICK=1``
makes each example shrink its data and epochs (same code paths, a few seconds
each); ``-D plot_gallery=0`` skips running them altogether.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
# The package is installed (``pip install .``); the repository root on the
# path lets the docs build from a plain checkout too.
sys.path.insert(0, str(ROOT))

import ldam_sklearn  # noqa: E402

# -- project -----------------------------------------------------------------------

project = "ldam-sklearn"
author = "ldam-sklearn developers"
copyright = "ldam-sklearn developers"
version = release = ldam_sklearn.__version__

# -- general -----------------------------------------------------------------------

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.mathjax",
    "sphinx.ext.viewcode",
    "numpydoc",
    "myst_parser",
    "sphinx_gallery.gen_gallery",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
exclude_patterns = [
    "_build",
    "Thumbs.db",
    ".DS_Store",
    # sphinx-gallery writes these itself (.py, .ipynb, .zip, .md5, .pickle)
    "auto_examples/*.ipynb",
    "auto_examples/*.py",
    "auto_examples/*.zip",
    "auto_examples/*.md5",
    "auto_examples/*.pickle",
]
# No network at build time: intersphinx is left out, so references to
# scikit-learn, skorch or torch objects render as plain code.
default_role = "literal"
nitpicky = False

# -- MyST (Markdown pages) -----------------------------------------------------------

myst_enable_extensions = ["dollarmath", "amsmath", "colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / autosummary / numpydoc -----------------------------------------------

autodoc_default_options = {"members": True, "member-order": "bysource"}
autodoc_typehints = "none"  # numpydoc's Parameters sections say it better
autodoc_class_signature = "mixed"
autosummary_generate = False  # api.rst documents every object itself

numpydoc_show_class_members = False
numpydoc_class_members_toctree = False
numpydoc_attributes_as_param_list = True
numpydoc_xref_param_type = False

# -- sphinx-gallery --------------------------------------------------------------------

QUICK = os.environ.get("LDAM_SKLEARN_QUICK") == "1"

sphinx_gallery_conf = {
    "examples_dirs": str(ROOT / "examples"),
    "gallery_dirs": "auto_examples",
    # Execute every plot_*.py, so the rendered pages carry their figures.
    "filename_pattern": r"[\\/]plot_",
    "ignore_pattern": r"__init__\.py",
    "within_subsection_order": "FileNameSortKey",
    "image_scrapers": ("matplotlib",),
    "reset_modules": ("matplotlib",),
    "remove_config_comments": True,
    "download_all_examples": False,
    "show_memory": False,
    "capture_repr": ("_repr_html_", "__repr__"),
    # A failing example fails the build.
    "only_warn_on_example_error": False,
    "abort_on_example_error": False,
    # Report every example's running time, even a quick-mode one under a
    # second (the page then says "Total running time of the script").
    "min_reported_time": 0,
}

# -- HTML ----------------------------------------------------------------------------

html_theme = "pydata_sphinx_theme"
html_title = f"ldam-sklearn {release}"
html_theme_options = {
    "navigation_with_keys": False,
    "show_toc_level": 2,
    "secondary_sidebar_items": ["page-toc"],
}
html_sidebars = {"**": ["sidebar-nav-bs"]}
html_show_sourcelink = False
html_static_path: list[str] = []


# -- docstring fix-ups -----------------------------------------------------------------

# ``ndarray of shape (n_features_in_,)`` in a numpydoc type reads, to reST, as
# a link to a target "n_features_in" (a trailing underscore makes a reference).
# scikit-learn writes ``(`n_features_in_`,)``; render ours the same way.
_TRAILING_UNDERSCORE_NAME = re.compile(r"(?<![`\w])([A-Za-z]\w*_)(?=[,)])")


def _quote_attribute_names(app, what, name, obj, options, lines):
    for i, line in enumerate(lines):
        if " : " in line and "shape (" in line:
            lines[i] = _TRAILING_UNDERSCORE_NAME.sub(r"`\1`", line)


# Pages written alongside this site. Until one exists, the site builds without
# it: its toctree entry is dropped and links to it become plain text. Once all
# exist this hook changes nothing.
PAGES_IN_PROGRESS = ("benchmarks", "guarantees")


def _skip_missing_pages(app, docname, source):
    for page in PAGES_IN_PROGRESS:
        if any((HERE / f"{page}{ext}").exists() for ext in (".md", ".rst")):
            continue
        text = source[0]
        text = re.sub(rf"(?m)^ +{page}\n", "", text)  # toctree entry
        text = re.sub(rf"\[([^\]]+)\]\({page}(?:\.md)?(?:#[^)]*)?\)", r"\1", text)
        source[0] = text


def setup(app):
    app.connect("autodoc-process-docstring", _quote_attribute_names)
    app.connect("source-read", _skip_missing_pages)
