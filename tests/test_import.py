"""Importing bgmask is silent and cheap; the client works without numpy."""

import subprocess
import sys


def run_python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)


def test_import_prints_nothing_and_loads_no_heavy_modules():
    result = run_python(
        "import sys, bgmask, bgmask.host.catalogue, bgmask.host.client, bgmask.host.job\n"
        "heavy = [m for m in ('numpy', 'onnxruntime', 'PIL') if m in sys.modules]\n"
        "sys.stderr.write(repr(heavy))"
    )
    assert result.returncode == 0
    assert result.stdout == ""
    assert result.stderr == "[]"


def test_client_imports_with_numpy_and_onnxruntime_missing():
    # Editors' Pythons have neither: make both imports fail and use the client anyway.
    result = run_python(
        "import sys\n"
        "sys.modules['numpy'] = None; sys.modules['onnxruntime'] = None\n"
        "from bgmask.host.channels import worker_command\n"
        "from bgmask.host.client import WorkerClient\n"
        "from bgmask.host.protocol import expected_payload\n"
        "print(expected_payload(3, 2, 'rgba16'))"
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "48"


def test_missing_onnxruntime_is_a_clear_error_at_use_not_at_import():
    result = run_python(
        "import sys\n"
        "sys.modules['onnxruntime'] = None\n"
        "import bgmask.engine.pipeline\n"
        "from bgmask.engine.runtime import import_onnxruntime\n"
        "from bgmask.host.errors import RuntimeMissingError\n"
        "try:\n    import_onnxruntime()\n"
        "except RuntimeMissingError as e:\n    print(e)\n"
    )
    assert result.returncode == 0, result.stderr
    assert "pip install onnxruntime" in result.stdout
