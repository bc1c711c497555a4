"""The progress bar of a study's trial loop."""

from __future__ import annotations

import sys

import optuna
from optuna.trial import TrialState

from gdbench.study.trials import storage

__all__ = ["Progress", "ReportProgress"]


class Progress:
    """A progress bar of finished trials (tqdm) with the best value so far; silent when quiet."""

    def __init__(self, study: optuna.Study, budget: int, name: str, quiet: bool) -> None:
        self.study = study
        self.budget = budget
        self.bar = None
        if quiet:
            return
        from tqdm import tqdm

        self.bar = tqdm(total=budget, desc=name, unit="trial", file=sys.stderr, dynamic_ncols=True)
        self.refresh()

    def refresh(self) -> None:
        if self.bar is None:
            return
        counted = storage.counted_trials(self.study)
        self.bar.update(min(len(counted), self.budget) - self.bar.n)
        values = [t.value for t in counted if t.state == TrialState.COMPLETE]
        if values:
            best = max(values) if self.study.direction.name == "MAXIMIZE" else min(values)
            self.bar.set_postfix_str(f"best={best:.4g}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


class ReportProgress:
    """A progress bar of the files a study's report writes (tqdm), with the one under way;
    silent when quiet.

    The report follows the trials: Optuna's plots, then the best trials trained
    again and their figures drawn, seconds in all for a study of many optimizers.
    """

    def __init__(self, name: str, quiet: bool) -> None:
        self.bar = None
        if quiet:
            return
        from tqdm import tqdm

        self.bar = tqdm(desc=f"{name} report", unit="file", file=sys.stderr,
                        dynamic_ncols=True)

    def doing(self, what: str) -> None:
        """Show what the report does now (the file it draws, the trials it trains)."""
        if self.bar is not None:
            self.bar.set_postfix_str(what)

    def wrote(self, count: int = 1) -> None:
        """Count ``count`` more files written."""
        if self.bar is not None:
            self.bar.update(count)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.set_postfix_str("")
            self.bar.close()
