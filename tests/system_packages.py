"""The system packages the README names: PostgreSQL, Chromium, Fashion-MNIST.

A test that needs one that is missing is skipped here, with the reason; in CI
(``CI=true``), whose ``.ci/run`` installs them all, it fails instead, so that
a missing install step cannot pass for a green run.
"""

from __future__ import annotations

import os

import pytest

#: Whether the tests run in CI.
IN_CI = os.environ.get("CI", "").lower() not in ("", "0", "false")


def missing(reason: str) -> None:
    """Skip the test (fail it in CI): a system package it needs is missing, as ``reason`` says."""
    if IN_CI:
        pytest.fail(f"{reason}; .ci/run installs it", pytrace=False)
    pytest.skip(reason)
