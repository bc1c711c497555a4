"""gdbench: hyperparameter studies of gradient-descent optimizers."""

from __future__ import annotations

__version__ = "0.1.0"
