"""The notebooks in notebooks/ run top to bottom (nbmake, in a fresh kernel of this interpreter) and are
exactly what tools/make_notebooks.py writes, with outputs stripped."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((REPO / "notebooks").glob("*.ipynb"))
# seconds per cell; each notebook takes well under a minute on an idle 2-core machine
CELL_TIMEOUT_S = 300


def test_notebooks_match_their_generator():
    proc = subprocess.run([sys.executable, str(REPO / "tools" / "make_notebooks.py"), "--check"], capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert [p.stem for p in NOTEBOOKS] == ["01_quickstart", "02_heavy_rain_study", "03_heat_with_sensors",
                                           "04_scenario_comparison"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_outputs_stripped_and_public_api(nb):
    doc = json.loads(nb.read_text(encoding="utf-8"))
    for cell in doc["cells"]:
        if cell["cell_type"] == "code":
            assert cell["outputs"] == [] and cell["execution_count"] is None
            src = "".join(cell["source"])
            for line in src.splitlines():   # public names only: no private modules or _names from twin
                if line.startswith(("from twin", "import twin")):
                    assert "._" not in line and " _" not in line.split("import", 1)[1], line


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs(nb, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbmake",
                           f"--nbmake-timeout={CELL_TIMEOUT_S}", "--rootdir", str(tmp_path), str(nb)],
                          cwd=tmp_path, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
