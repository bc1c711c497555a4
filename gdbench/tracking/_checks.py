"""Checks of the trackers' arguments, shared by the study and the trial tracker.

Each raises a ``ValueError`` naming the offending field; NaN and infinities
pass as numbers, since they are what a diverging trial looks like.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def read_png(path: Path) -> tuple[bytes, int, int]:
    """A PNG file's bytes, width and height."""
    png = path.read_bytes()
    if png[:8] != PNG_SIGNATURE or len(png) < 24:
        raise ValueError(f"path: expected a PNG file, got {path}")
    width, height = struct.unpack(">II", png[16:24])
    return png, width, height


def check_mapping_of_numbers(value: Any) -> dict[int, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"histories: expected a mapping of trial number to history, got {value!r}")
    return dict(value)


def check_history(history: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """Per-epoch curves as float arrays of one length (NaN and infinities pass)."""
    curves: dict[str, np.ndarray] = {}
    for key, curve in check_mapping("history", history).items():
        try:
            curves[key] = np.asarray(curve, dtype=np.float64).reshape(-1)
        except (TypeError, ValueError):
            raise ValueError(f"history[{key!r}]: expected a sequence of numbers, "
                             f"got {curve!r}") from None
    lengths = {len(curve) for curve in curves.values()}
    if len(lengths) > 1:
        raise ValueError(f"history: expected curves of one length, got lengths {sorted(lengths)}")
    return curves


def check_name(field: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ValueError(f"{field}: expected a non-empty string, got {value!r}")
    return value


def check_mapping(field: str, value: Mapping[str, Any] | None) -> dict[str, Any]:
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise ValueError(f"{field}: expected a mapping of name to value, got {value!r}")
    for key in value:
        check_name(field, key)
    return dict(value)


def check_step(field: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{field}: expected an integer >= 0, got {value!r}")
    return int(value)


def check_metrics(field: str, metrics: Mapping[str, Any]) -> dict[str, float]:
    """``metrics`` with float values; NaN and infinities pass, non-numbers do not."""
    return {
        key: check_number(f"{field}[{key!r}]", value)
        for key, value in check_mapping(field, metrics).items()
    }


def check_number(field: str, value: Any) -> float:
    """``float(value)`` for a number (NaN and infinities included), else a ``ValueError``."""
    if isinstance(value, (bool, str, bytes)):
        raise ValueError(f"{field}: expected a number, got {value!r}")
    try:
        return float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{field}: expected a number, got {value!r}") from None
