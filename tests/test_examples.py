"""Every gallery example runs to completion in its quick mode.

``LDAM_SKLEARN_QUICK=1`` makes each example shrink its data and epochs while
running the same code; the documentation build executes the full versions.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES_DIR = Path(__file__).resolve().parents[1] / "examples"
EXAMPLES = sorted(EXAMPLES_DIR.glob("plot_*.py"))

# Generous: quick runs take seconds of CPU, but imports on a loaded machine
# (torch, Dask worker processes) can take a good part of a minute.
TIMEOUT_S = 300


def test_the_gallery_has_its_examples():
    names = {path.stem for path in EXAMPLES}
    expected = {
        "plot_long_tailed_comparison",
        "plot_ablation",
        "plot_l2rw_label_noise",
        "plot_text_intents_long_tailed",
    }
    assert expected <= names, f"missing examples: {sorted(expected - names)}"


@pytest.mark.slow
@pytest.mark.parametrize("path", EXAMPLES, ids=[path.stem for path in EXAMPLES])
def test_example_runs_in_quick_mode(path, tmp_path):
    env = {
        **os.environ,
        "LDAM_SKLEARN_QUICK": "1",
        "MPLBACKEND": "Agg",
        # Generated data sets go to a throwaway cache, not the user's.
        "LDAM_SKLEARN_DATA": str(tmp_path / "data"),
    }
    # The generated corpora, not local files.
    env.pop("LDAM_SKLEARN_SMS_SPAM", None)
    env.pop("LDAM_SKLEARN_BANKING77", None)
    result = subprocess.run(
        [sys.executable, str(path)],
        cwd=tmp_path,  # anything an example writes lands here
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT_S,
    )
    assert result.returncode == 0, (
        f"{path.name} exited with {result.returncode}\n"
        f"--- stdout ---\n{result.stdout[-4000:]}\n--- stderr ---\n{result.stderr[-4000:]}"
    )
