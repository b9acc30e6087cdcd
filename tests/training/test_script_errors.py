"""The training scripts answer a mistyped run folder with one line, not a traceback."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("script", ["fit_prior.py", "choose_tta.py"])
def test_a_missing_run_folder_is_one_line(script, tmp_path):
    cmd = [sys.executable, f"training/{script}", str(tmp_path / "typo"), "--data", str(tmp_path)]
    res = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=120)
    lines = [line for line in res.stderr.splitlines() if line.strip()]
    assert res.returncode == 1 and len(lines) == 1, res.stderr
    assert "typo/model.json: no such file" in lines[0] and "Traceback" not in res.stderr
