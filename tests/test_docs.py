"""The documentation builds without warnings and shows the examples' figures.

Builds a copy of ``docs/`` and ``examples/`` (so the checkout stays clean)
with ``sphinx-build -W --keep-going`` and the gallery in quick mode
(``LDAM_SKLEARN_QUICK=1``: every example runs, on small data), then checks
that each rendered example page embeds the figures its example drew.
Needs the ``docs`` extra (sphinx, numpydoc, sphinx-gallery,
pydata-sphinx-theme, myst-parser).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
PAGES = ["index", "getting_started", "user_guide", "api", "quality", "gpu", "scaling", "changelog"]
TIMEOUT_S = 900


def _draws_figures(path: Path) -> bool:
    return "matplotlib" in path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def built_docs(tmp_path_factory):
    work = tmp_path_factory.mktemp("docs_build")
    shutil.copytree(
        ROOT / "docs",
        work / "docs",
        ignore=shutil.ignore_patterns(
            "_build", "auto_examples", "generated", "sg_execution_times.rst"
        ),
    )
    shutil.copytree(ROOT / "examples", work / "examples")
    shutil.copy(ROOT / "CHANGELOG.md", work / "CHANGELOG.md")
    out = work / "html"
    env = {
        **os.environ,
        "LDAM_SKLEARN_QUICK": "1",
        "MPLBACKEND": "Agg",
        "LDAM_SKLEARN_DATA": str(work / "data"),
    }
    env.pop("LDAM_SKLEARN_SMS_SPAM", None)
    result = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-b", "html", "docs", str(out)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    return result, out


@pytest.mark.slow
def test_docs_build_without_warnings(built_docs):
    result, _ = built_docs
    assert result.returncode == 0, (
        f"sphinx-build -W failed ({result.returncode})\n"
        f"--- stderr ---\n{result.stderr[-6000:]}\n--- stdout ---\n{result.stdout[-3000:]}"
    )


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES)
def test_page_is_rendered(built_docs, page):
    result, out = built_docs
    assert result.returncode == 0, "the build failed; see test_docs_build_without_warnings"
    assert (out / f"{page}.html").is_file()


@pytest.mark.slow
def test_api_reference_documents_the_estimators(built_docs):
    result, out = built_docs
    assert result.returncode == 0, "the build failed; see test_docs_build_without_warnings"
    api = (out / "api.html").read_text(encoding="utf-8")
    for anchor in (
        'id="ldam_sklearn.LDAMDRWClassifier"',
        'id="ldam_sklearn.L2RWClassifier"',
        'id="ldam_sklearn.LDAMDRWClassifier.fit"',
        'id="ldam_sklearn.l2rw_example_weights"',
        'id="ldam_sklearn.losses.LDAMLoss"',
        'id="ldam_sklearn.datasets.make_long_tailed"',
    ):
        assert anchor in api, f"{anchor} missing from the API reference"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_page_shows_its_figures(built_docs, path):
    result, out = built_docs
    assert result.returncode == 0, "the build failed; see test_docs_build_without_warnings"
    page = out / "auto_examples" / f"{path.stem}.html"
    assert page.is_file(), f"no gallery page for {path.name}"
    html = page.read_text(encoding="utf-8")
    assert "Total running time of the script" in html, f"{path.name} was not executed"
    if not _draws_figures(path):
        return
    images = re.findall(rf'<img[^>]+src="([^"]*sphx_glr_{path.stem}_\d+\.png)"', html)
    assert images, f"the page of {path.name} embeds none of its figures"
    for src in images:
        assert (page.parent / src).resolve().is_file(), f"{src} is not in the built site"
