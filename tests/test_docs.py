"""The documentation: its code blocks run, it builds, and it shows the examples' figures.

Every ```python block of ``README.md`` and ``docs/*.md`` runs here (fast,
except the pages marked slow in :data:`SLOW_PAGES`). The convention, also
stated in docs/getting_started.md: the blocks of a page run in order in one
namespace (a later block uses what an earlier one defined), in a temporary
folder, as ``__main__``; ``X, y`` and ``X_train, X_test, y_train, y_test``,
which stand for the reader's data, are a small imbalanced data set unless
the page defines them; ``DASK_SCHEDULER_ADDRESS`` names a running scheduler
(a local one). A ```text block right after a Python block shows its
output: its first line must be in what the block printed. Any other fence
language that could hold Python fails.

The build tests copy ``docs/`` and ``examples/`` (so the checkout stays
clean) and build them with ``sphinx-build -W --keep-going`` and the gallery
in quick mode
(``LDAM_SKLEARN_QUICK=1``: every example runs, on small data), then checks
that each rendered example page embeds the figures its example drew.
Needs the ``docs`` extra (sphinx, numpydoc, sphinx-gallery,
pydata-sphinx-theme, myst-parser).
"""

from __future__ import annotations

import contextlib
import io
import linecache
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import sklearn
import torch
from sklearn.datasets import make_classification
from sklearn.model_selection import train_test_split

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = sorted((ROOT / "examples").glob("plot_*.py"))
PAGES = ["index", "getting_started", "user_guide", "api", "quality", "gpu", "scaling", "changelog"]
TIMEOUT_S = 900

DOC_PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
#: Pages whose blocks start a Dask cluster or train for more than a few seconds.
SLOW_PAGES = {"getting_started.md", "guarantees.md", "scaling.md", "user_guide.md"}
#: Fence languages that are not run (shell commands, printed output, MyST directives).
NOT_PYTHON = {"bash", "text", "{include}"}
_FENCE = re.compile(r"^(`{3,})[ \t]*([^\s`]*)[^\n]*\n(.*?)^\1[ \t]*$", re.MULTILINE | re.DOTALL)


def _fences(path: Path) -> list[tuple[str, int, str]]:
    """(language, line number, code) of every fenced block of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    return [
        (match.group(2), text.count("\n", 0, match.start()) + 1, match.group(3))
        for match in _FENCE.finditer(text)
    ]


def _readers_data() -> dict:
    """What ``X, y`` stand for in the docs: 300 rows, 3 classes of 80/15/5 %."""
    X, y = make_classification(
        n_samples=300,
        n_features=8,
        n_informative=5,
        n_classes=3,
        weights=[0.8, 0.15, 0.05],
        random_state=0,
    )
    X_train, X_test, y_train, y_test = train_test_split(X, y, stratify=y, random_state=0)
    return {"X": X, "y": y, "X_train": X_train, "X_test": X_test, "y_train": y_train,
            "y_test": y_test}  # fmt: skip


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A temporary folder, and the global state a page may change restored afterwards."""
    monkeypatch.chdir(tmp_path)
    environ = dict(os.environ)
    deterministic, threads = torch.are_deterministic_algorithms_enabled(), torch.get_num_threads()
    with sklearn.config_context():
        yield
    os.environ.clear()
    os.environ.update(environ)
    torch.use_deterministic_algorithms(deterministic)
    torch.set_num_threads(threads)


@pytest.mark.parametrize("page", DOC_PAGES, ids=[path.name for path in DOC_PAGES])
def test_every_fence_is_run_or_not_python(page):
    fences = _fences(page)
    assert {lang for lang, _, _ in fences} <= NOT_PYTHON | {"python"}, (
        "spell Python blocks ```python so that they run"
    )
    opened = page.read_text(encoding="utf-8").count("\n```python\n")
    assert sum(lang == "python" for lang, _, _ in fences) == opened


def _page_param(path: Path):
    marks = [pytest.mark.slow] if path.name in SLOW_PAGES else []
    return pytest.param(path, marks=marks, id=path.name)


@pytest.mark.parametrize(
    "page",
    [_page_param(path) for path in DOC_PAGES if any(f[0] == "python" for f in _fences(path))],
)
def test_code_blocks_of_the_page_run(page, isolated, monkeypatch, one_torch_thread):
    namespace = {"__name__": "__main__", **_readers_data()}
    with contextlib.ExitStack() as stack:
        if page.name == "scaling.md":
            distributed = pytest.importorskip("distributed")
            cluster = stack.enter_context(
                distributed.LocalCluster(
                    n_workers=1, threads_per_worker=1, processes=False, dashboard_address=":0"
                )
            )
            monkeypatch.setenv("DASK_SCHEDULER_ADDRESS", cluster.scheduler_address)
        printed = None
        for language, line, code in _fences(page):
            if language == "text" and printed is not None:
                first = code.splitlines()[0].strip()
                assert first in printed, f"{page.name}, line {line}: {first!r} was not printed"
            printed = None
            if language == "python":
                name = f"{page.name}, block at line {line}"
                linecache.cache[name] = (len(code), None, code.splitlines(True), name)  # tracebacks
                with contextlib.redirect_stdout(io.StringIO()) as out:
                    exec(compile(code, name, "exec"), namespace)
                printed = out.getvalue()


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
