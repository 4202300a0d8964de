"""Editor tests must run where the editors are required (``BGMASK_REQUIRE_EDITORS=1``, set by
scripts/test.sh as root): there, a skip for any reason is reported as a failure."""

from __future__ import annotations

import os

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # noqa: ANN201
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("BGMASK_REQUIRE_EDITORS") == "1":
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"editor test skipped where editors are required: {reason}"
