"""Where the editors are required (BGMASK_REQUIRE_EDITORS=1, as root in scripts/test.sh), an
editor test that skips, for any reason, is a failure: a run that could not reach an editor
must not pass as if it had checked it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

EDITORS = Path(__file__).resolve().parent / "editors"


def run_skipping_test(tmp_path: Path, required: bool) -> subprocess.CompletedProcess[str]:
    folder = tmp_path / "editors"
    folder.mkdir()
    shutil.copyfile(EDITORS / "conftest.py", folder / "conftest.py")
    (folder / "test_an_editor.py").write_text(
        "import pytest\n\n\ndef test_in_the_editor():\n"
        "    pytest.skip('the editor is not installed')\n")
    env = {k: v for k, v in os.environ.items() if k != "BGMASK_REQUIRE_EDITORS"}
    if required:
        env["BGMASK_REQUIRE_EDITORS"] = "1"
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                           str(folder)], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=120)


def test_a_skipped_editor_test_fails_where_editors_are_required(tmp_path):
    result = run_skipping_test(tmp_path, required=True)
    assert result.returncode == 1, result.stdout
    assert "1 failed" in result.stdout
    assert "the editor is not installed" in result.stdout


def test_elsewhere_it_stays_a_skip(tmp_path):
    result = run_skipping_test(tmp_path, required=False)
    assert result.returncode == 0, result.stdout
    assert "1 skipped" in result.stdout
