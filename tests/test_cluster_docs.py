"""docs/cluster.md's local-cluster commands, run as written: `ray start --head`, the smoke
study submitted to it with `--executor ray --address auto`, `actlab status`, `ray stop`."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import db_rows

pytest.importorskip("ray", reason="the Ray executor's tests need `actlab[ray]`")

ROOT = Path(__file__).resolve().parents[1]


def documented_block() -> str:
    text = (ROOT / "docs" / "cluster.md").read_text()
    match = re.search(r"<!-- tested: tests/test_cluster_docs.py[^>]*-->\s*```bash\n(.*?)```",
                      text, re.DOTALL)
    assert match, "docs/cluster.md lost its tested block"
    return match.group(1)


@pytest.mark.slow
def test_the_documented_local_cluster_commands_work(tmp_path) -> None:
    block = documented_block()
    assert "ray start --head" in block
    assert "--executor ray" in block
    (tmp_path / "studies").mkdir()
    shutil.copy(ROOT / "studies" / "smoke.yaml", tmp_path / "studies")
    bin_dir = str(Path(sys.executable).parent)  # actlab and ray of this environment
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "COLUMNS": "200"}
    env.pop("RAY_ADDRESS", None)
    try:
        result = subprocess.run(["bash", "-euo", "pipefail", "-c", block], cwd=tmp_path,
                                env=env, capture_output=True, text=True, timeout=500)
    finally:
        subprocess.run(["ray", "stop", "--force"], env=env, capture_output=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr
    output = " ".join(result.stdout.split())
    assert "study smoke: 8 completed, 0 diverged, 0 failed" in output
    assert "Ray, 1 CPU per run" in output
    assert "8/8" in output  # actlab status
    db = tmp_path / "results" / "cluster.db"
    assert db_rows(db, "SELECT status, attempts, COUNT(*) FROM runs GROUP BY 1, 2") == [
        ("completed", 1, 8)]
