"""Performance profiles: ratios, ρ(τ) and the area score against a hand-worked example;
costs read from studies; ``gdbench report`` of several studies writes them."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import optuna
import pytest
from optuna.distributions import CategoricalDistribution
from optuna.trial import TrialState, create_trial

from gdbench import cli
from gdbench.study.compare import profiles
from gdbench.study.keys import HYPERPARAMETERS_ATTR, SPEC_ATTR

INF = math.inf

# Three optimizers on four tasks (costs: e.g. epochs to the target; ∞ = never reached).
#
#            task1  task2  task3  task4        best:  10   15   5   6
#   A          10     30      5     ∞         r_A = [1,   2,   1,  ∞]
#   B          20     15      5    12         r_B = [2,   1,   1,  2]
#   C          40      ∞     10     6         r_C = [4,   ∞,   2,  1]
COSTS = {
    "task1": {"A": 10.0, "B": 20.0, "C": 40.0},
    "task2": {"A": 30.0, "B": 15.0, "C": INF},
    "task3": {"A": 5.0, "B": 5.0, "C": 10.0},
    "task4": {"A": INF, "B": 12.0, "C": 6.0},
}
RATIOS = {"A": [1, 2, 1, INF], "B": [2, 1, 1, 2], "C": [4, INF, 2, 1]}
# ρ(τ) = (tasks with r ≤ τ) / 4, at τ = 1, 1.5, 2, 3.9, 4:
#   A: r ≤ 1 on task1, task3 → 2/4; ≤ 2 adds task2 → 3/4; task4 never.
#   B: 2/4 at 1 (task2, task3); every task by 2.
#   C: 1/4 at 1 (task4); 2/4 by 2 (task3); 3/4 only at 4 (task1); task2 never.
TAUS = [1.0, 1.5, 2.0, 3.9, 4.0]
RHO = {"A": [0.5, 0.5, 0.75, 0.75, 0.75],
       "B": [0.5, 0.5, 1.0, 1.0, 1.0],
       "C": [0.25, 0.25, 0.5, 0.5, 0.75]}
# Area over [1, 4], divided by 4 − 1 = 3: each task adds (4 − r)/4 where r < 4.
#   A: (3 + 2 + 3 + 0) / 4 / 3 = 8/12
#   B: (2 + 3 + 3 + 2) / 4 / 3 = 10/12
#   C: (0 + 0 + 2 + 3) / 4 / 3 = 5/12
AREAS = {"A": 8 / 12, "B": 10 / 12, "C": 5 / 12}


def test_the_hand_worked_profiles() -> None:
    result = profiles.performance_profiles(COSTS, tau_max=4.0)
    assert result.solvers == ("A", "B", "C")
    assert result.tasks == ("task1", "task2", "task3", "task4")
    np.testing.assert_array_equal(result.ratios, [RATIOS[s] for s in result.solvers])
    np.testing.assert_array_equal(profiles.profile_values(result.ratios, np.array(TAUS)),
                                  [RHO[s] for s in result.solvers])
    np.testing.assert_allclose(result.scores, [AREAS[s] for s in result.solvers], rtol=1e-12)


def test_the_area_is_the_integral_of_the_step_function() -> None:
    result = profiles.performance_profiles(COSTS, tau_max=4.0)
    # A fine midpoint rule over [1, 4] on ρ itself, an independent way to the same areas.
    edges = np.linspace(1.0, 4.0, 300_001)
    middles = (edges[1:] + edges[:-1]) / 2
    integral = profiles.profile_values(result.ratios, middles).mean(axis=1)
    np.testing.assert_allclose(result.scores, integral, atol=1e-5)


def test_a_task_nobody_solved_is_left_out_and_an_absent_optimizer_costs_infinity() -> None:
    result = profiles.performance_profiles({"easy": {"A": 2.0}, "hard": {"A": INF, "B": INF},
                                            "other": {"B": 3.0, "A": 6.0}})
    assert result.tasks == ("easy", "other") and result.unsolved == ("hard",)
    np.testing.assert_array_equal(result.ratios, [[1.0, 2.0], [INF, 1.0]])
    with pytest.raises(ValueError, match="positive"):
        profiles.performance_ratios(np.array([[0.0, 1.0]]))


def study_with(name: str, trials: list[tuple[str, float, list[float]]], *,
               target: float | None = None) -> optuna.Study:
    """An in-memory study of (optimizer, value, per-epoch reports) trials, recorded as the
    loop records them."""
    study = optuna.create_study(study_name=name, direction="minimize")
    summary = {"task": "digits_mlp", "task_options": {}, "metric": "val_accuracy",
               "direction": "minimize", "optimizers": ["adam", "gd"], "schedules": ["constant"]}
    if target is not None:
        summary.update(target=target, measure="epochs", metric_direction="maximize")
    study.set_user_attr(SPEC_ATTR, json.dumps(summary))
    for optimizer, value, reports in trials:
        study.add_trial(create_trial(
            state=TrialState.COMPLETE, value=value, params={"optimizer": optimizer},
            distributions={"optimizer": CategoricalDistribution(["adam", "gd"])},
            user_attrs={HYPERPARAMETERS_ATTR: {"optimizer": optimizer}},
            intermediate_values=dict(enumerate(reports))))
    return study


def test_a_study_costs_each_optimizer_its_best_trial_and_never_reached_is_infinite() -> None:
    study = study_with("ttt", [
        ("adam", 3.0, [0.5, 0.8, 0.91, 0.93]),
        ("adam", 2.0, [0.85, 0.95]),
        # The budget of 4 epochs: never ≥ 0.9, so no cost at all.
        ("gd", 4.0, [0.3, 0.5, 0.6, 0.7]),
    ], target=0.9)
    assert profiles.study_costs(study) == {"adam": 2.0, "gd": INF}
    losses = study_with("loss", [("adam", 0.3, []), ("gd", 0.2, []), ("gd", 0.6, [])])
    assert profiles.study_costs(losses) == {"adam": 0.3, "gd": 0.2}
    maximized = optuna.create_study(direction="maximize")
    with pytest.raises(ValueError, match="maximizes"):
        profiles.study_costs(maximized)


def test_write_profiles_writes_the_table_and_the_figure(tmp_path: Path) -> None:
    written = profiles.write_profiles([], tmp_path / "set", costs=COSTS)
    assert [path.name for path in written] == ["profiles.csv", "profiles.png"]
    with open(written[0], encoding="utf-8") as file:
        rows = list(csv.DictReader(file))
    assert [row["optimizer"] for row in rows] == ["B", "A", "C"]
    assert float(rows[0]["area_score"]) == pytest.approx(10 / 12, rel=1e-5)
    assert rows[2]["ratio:task2"] == "inf" and rows[2]["cost:task1"] == "40"
    assert written[1].stat().st_size > 1000


def test_report_of_several_studies_writes_each_report_and_their_profiles(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    home = tmp_path / "home"
    home.mkdir()
    url = f"sqlite:///{home / 'optuna.db'}"
    for name, trials in {"first": [("adam", 2.0, [0.95]), ("gd", 4.0, [0.5])],
                         "second": [("adam", 3.0, [0.95]), ("gd", 1.0, [0.92])]}.items():
        source = study_with(name, trials, target=0.9)
        optuna.copy_study(from_study_name=name, from_storage=source._storage, to_storage=url)
    assert cli.main(["report", "first", "second", "--home", str(home)]) == 0
    out = home / "reports" / "first+second"
    assert (out / "first" / "leaderboard.csv").is_file()
    assert (out / "second" / "leaderboard.csv").is_file()
    with open(out / "profiles.csv", encoding="utf-8") as file:
        rows = {row["optimizer"]: row for row in csv.DictReader(file)}
    # first: adam 2, gd never → r = 1, ∞; second: adam 3, gd 1 → r = 3, 1.
    assert rows["adam"]["ratio:first"] == "1" and rows["adam"]["ratio:second"] == "3"
    assert rows["gd"]["ratio:first"] == "inf" and rows["gd"]["ratio:second"] == "1"
    # Areas over [1, 4] / 3: adam (3 + 1) / 2 / 3 = 2/3; gd (0 + 3) / 2 / 3 = 1/2.
    assert float(rows["adam"]["area_score"]) == pytest.approx(2 / 3, rel=1e-5)
    assert float(rows["gd"]["area_score"]) == pytest.approx(1 / 2, rel=1e-5)
    assert (out / "profiles.png").is_file()
    assert "profiles.png" in capsys.readouterr().out
