"""Regenerate the pictures of docs/lectures.md from the specs in studies/lectures/.

Every spec runs as a study (its trials are the lecture's fixed settings), and
each of its optimizers is trained again with ``Task.fit`` at those settings
to draw the claim's picture; the script stops if a run's final loss is not
the one its study recorded.

    python scripts/lectures_gallery.py        # writes docs/images/lectures/*.png
"""

from __future__ import annotations

import argparse
import os
import tempfile
import tomllib
from pathlib import Path
from typing import Any, Callable

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import keras  # noqa: E402
import numpy as np  # noqa: E402
import optuna  # noqa: E402
from readme_figures import shrink_to_palette  # noqa: E402

import gdbench.optimizers  # noqa: E402
import gdbench.schedules  # noqa: E402
import gdbench.tasks  # noqa: E402
from gdbench import plots  # noqa: E402
from gdbench.study import leaderboard, load_specs, run_study  # noqa: E402
from gdbench.tasks import search  # noqa: E402
from gdbench.tasks.trace import effective_learning_rate_trace  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "studies" / "lectures"
DEFAULT_OUTPUT = ROOT / "docs" / "images" / "lectures"


class Study:
    """One study of a lecture spec: its task and its optimizers, as the TOML sets them."""

    def __init__(self, table: dict[str, Any]) -> None:
        self.table = table
        task = table["task"]
        self.task = gdbench.tasks.get(task["name"], **{k: v for k, v in task.items()
                                                       if k != "name"})
        self.epochs = table["epochs"]
        self.batch_size = table.get("batch_size")
        items = table.get("optimizers") or [table["optimizer"]]
        self.optimizers = {}
        for item in items:
            item = {"name": item} if isinstance(item, str) else item
            keywords = {k: v for k, v in item.items() if k not in ("name", "label")}
            self.optimizers[item.get("label", item["name"])] = (item["name"], keywords)

    def fit(self, label: str, **keywords: Any) -> gdbench.tasks.FitResult:
        name, fixed = self.optimizers[label]
        keras.backend.clear_session()
        optimizer = gdbench.optimizers.get(name, **{**fixed, **keywords})
        return self.task.fit(optimizer, epochs=self.epochs, batch_size=self.batch_size)

    def fit_all(self) -> dict[str, gdbench.tasks.FitResult]:
        return {label: self.fit(label) for label in self.optimizers}


def _steps(trajectory: np.ndarray) -> np.ndarray:
    return np.linalg.norm(np.diff(trajectory, axis=0), axis=1)


def _paths(study: Study, fitted: dict[str, gdbench.tasks.FitResult], out: Path, title: str,
           **options: Any) -> list[Path]:
    return [plots.plot_trajectories(
        study.task, {label: r.trajectory for label, r in fitted.items()}, out, title=title,
        **options)]


def plateau(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = study.fit_all()
    # The plateau is crossed within 200 epochs; the rest is the valley's floor.
    return _paths(study, fitted, out / "plateau_paths.png", kind="both",
                  title="η = 1, γ = 0.9, from (−2, −2): GD crawls across the plateau") + [
        plots.plot_loss_curves({label: {"loss": r.history["loss"][:200]}
                                for label, r in fitted.items()},
                               out / "plateau_loss.png", log_scale=False)]


def momentum_overshoot(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = {label: result for label, result in study.fit_all().items()}
    return _paths(study, fitted, out / "overshoot_paths.png", kind="contour",
                  bounds=((-2.5, 4.0), (-6.0, 0.5)),
                  title="Momentum's U-turns against NAG's (η = 1, γ = 0.9)") + [
        plots.plot_loss_curves({label: r.history for label, r in fitted.items()},
                               out / "overshoot_loss.png")]


def adagrad_sparse(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = study.fit_all()
    keras.backend.clear_session()
    traces = {label: effective_learning_rate_trace(
        study.task, gdbench.optimizers.get(study.optimizers[label][0],
                                           **study.optimizers[label][1]),
        epochs=study.epochs) for label in ("gd", "adagrad")}
    return _paths(study, fitted, out / "adagrad_paths.png", kind="contour",
                  bounds=((-4.5, 3.0), (-4.5, 0.5)),
                  title="Sparse data (80 % of x = 0), η = 0.1: only Adagrad moves along w") + [
        plots.plot_effective_learning_rates(traces, study.task.parameter_names,
                                            out / "adagrad_rates.png")]


def rmsprop_oscillation(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = study.fit_all()
    return [plots.plot_loss_curves({label: r.history for label, r in fitted.items()},
                                   out / "rmsprop_loss.png")] + _paths(
        study, fitted, out / "rmsprop_paths.png", kind="contour",
        bounds=((-4.5, 3.0), (-4.5, 0.5)), title="RMSProp, β = 0.5, ε = 1e-4")


def adadelta_vs_rmsprop(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = study.fit_all()
    # Past step 200 both are in the valley, where AdaDelta's steps shrink to
    # nothing as it settles: the first 200 show the acceleration.
    return [plots.plot_per_step(
        {label: _steps(r.trajectory)[:200] for label, r in fitted.items()},
        out / "adadelta_steps.png", ylabel="step size ‖Δ(w, b)‖", log_scale=True,
        title="AdaDelta speeds up by itself; RMSProp (η0 = 0.013) does not")] + _paths(
        study, fitted, out / "adadelta_paths.png", kind="contour",
        bounds=((-4.5, 3.0), (-4.5, 0.5)), title="AdaDelta against RMSProp from (−4, −4)")


def adam_bias_correction(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = study.fit_all()
    return [plots.plot_per_step(
        {label: np.abs(np.diff(r.trajectory[:21, 0])) for label, r in fitted.items()},
        out / "adam_bias_correction_steps.png", ylabel="|Δw|",
        title="The first 20 steps, η = 0.1: without correction they are larger")] + [
        plots.plot_loss_curves({label: r.history for label, r in fitted.items()},
                               out / "adam_bias_correction_loss.png")]


def adamax_vs_adam(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    fitted = study.fit_all()
    eta = study.optimizers["adam"][1]["learning_rate"]
    return [plots.plot_per_step(
        {label: np.abs(np.diff(r.trajectory[:, 0])) / eta for label, r in fitted.items()},
        out / "adamax_steps.png", ylabel="|Δw| / η",
        title="Stochastic steps on sparse data: Adam's exceed η, AdaMax's never do")]


def batch_sizes(studies: list[Study], out: Path) -> list[Path]:
    regimes = {1: "stochastic", studies[0].task.num_examples: "batch"}
    fitted = {f"{regimes.get(study.batch_size, 'mini-batch')} (B = {study.batch_size})":
              study.fit("gd") for study in studies}
    task = studies[0].task
    losses = {label: task.loss(r.trajectory[1:]).numpy() for label, r in fitted.items()}
    return [plots.plot_trajectories(
        task, {label: r.trajectory for label, r in fitted.items()}, out / "batch_paths.png",
        kind="contour", bounds=((-4.0, -3.5), (-2.05, -1.75)),
        title="Batch, mini-batch and stochastic GD, η = 0.3, 20 epochs"),
        plots.plot_per_step(
            {label: values[:3 * fitted[label].steps_per_epoch] for label, values in losses.items()},
            out / "batch_loss_per_step.png", ylabel="loss on all data", xlabel="epoch",
            steps_per_unit={label: r.steps_per_epoch for label, r in fitted.items()},
            title="Loss after every update, the first 3 epochs")]


def schedules(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    (label,) = study.optimizers
    eta = study.optimizers[label][1]["learning_rate"]
    rates = {}
    for table in study.table["schedules"]:
        schedule = _schedule(table, eta)
        steps = np.arange(study.epochs, dtype=np.float64)
        rates[table["name"]] = [float(schedule(step)) for step in steps]
    return [plots.plot_per_step(rates, out / "schedules.png", ylabel="η",
                                title="η at every step, η = 1 at the peak")]


def _schedule(table: dict[str, Any], eta: float) -> Any:
    """The schedule a spec's table asks for, η set as the spec's docstring says."""
    keywords = {key: value for key, value in table.items() if key not in ("name", "label")}
    name = table["name"]
    if name == "cyclical":
        return gdbench.schedules.get(name, maximal_learning_rate=eta,
                                     step_size=keywords["step_size"],
                                     initial_learning_rate=eta * keywords["base_fraction"])
    if name == "cosine_restarts":
        return gdbench.schedules.get(name, maximal_learning_rate=eta, period=keywords["period"],
                                     minimal_learning_rate=eta * keywords["minimal_fraction"])
    if name == "warmup":
        target = {k: v for k, v in keywords["target"].items() if k != "name"}
        return gdbench.schedules.get(
            name, warmup_steps=keywords["warmup_steps"],
            target=gdbench.schedules.get(keywords["target"]["name"],
                                         initial_learning_rate=eta, **target))
    return gdbench.schedules.get(name, initial_learning_rate=eta, **keywords)


def line_search(studies: list[Study], out: Path) -> list[Path]:
    (study,) = studies
    histories = {f"fixed η = {eta:g}": study.fit("gd", learning_rate=eta).history
                 for eta in study.table["search"]["learning_rate"]["choices"]}
    histories["line search"] = search.line_search(study.task, epochs=study.epochs).history
    histories["random search"] = search.random_search(
        study.task, epochs=study.epochs).history
    return [plots.plot_loss_curves(histories, out / "line_search_loss.png")]


#: spec stem → the function drawing its pictures.
CLAIMS: dict[str, Callable[[list[Study], Path], list[Path]]] = {
    "plateau": plateau,
    "momentum_overshoot": momentum_overshoot,
    "batch_sizes": batch_sizes,
    "adagrad_sparse": adagrad_sparse,
    "rmsprop_oscillation": rmsprop_oscillation,
    "adadelta_vs_rmsprop": adadelta_vs_rmsprop,
    "adam_bias_correction": adam_bias_correction,
    "adamax_vs_adam": adamax_vs_adam,
    "schedules": schedules,
    "line_search": line_search,
}


def check_against_study(path: Path, studies: list[Study], home: Path) -> None:
    """Run the spec's studies and check that each run drawn ends where its trial did."""
    for spec, study in zip(load_specs(path), studies):
        rows = leaderboard(run_study(spec, home=home, quiet=True))
        for row in rows:
            if row["schedule"] not in ("", "none"):
                continue
            keywords = ({"learning_rate": row["learning_rate"]}
                        if "search" in study.table else {})
            final = study.fit(row["optimizer"], **keywords).history["loss"][-1]
            # A study trains through the XLA population loop, whose sums round
            # unlike Keras's; an oscillating run (RMSProp, AdaDelta near the
            # valley) grows that last-bit difference to ~1e-3 over 500 epochs.
            if not np.isclose(final, row["value"], rtol=1e-2, atol=1e-12):
                raise SystemExit(f"{path.name}: {row['optimizer']} ends at {final}, "
                                 f"its study's trial at {row['value']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="folder of PNGs")
    parser.add_argument("--home", type=Path, help="where the studies are stored "
                        "(a temporary folder, removed afterwards, by default)")
    parser.add_argument("claims", nargs="*", metavar="CLAIM",
                        help=f"only these claims ({', '.join(CLAIMS)})")
    arguments = parser.parse_args()
    for claim in arguments.claims:
        if claim not in CLAIMS:
            parser.error(f"unknown claim {claim!r}; known: {', '.join(CLAIMS)}")
    unknown = set(path.stem for path in LECTURES.glob("*.toml")) - set(CLAIMS)
    if unknown:
        raise SystemExit(f"no picture for the spec(s) {', '.join(sorted(unknown))}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as scratch:
        home = arguments.home or Path(scratch)
        for stem in arguments.claims or CLAIMS:
            path = LECTURES / f"{stem}.toml"
            with open(path, "rb") as file:
                table = tomllib.load(file)
            studies = [Study(item) for item in table.get("study", [table])]
            check_against_study(path, studies, home)
            for picture in CLAIMS[stem](studies, arguments.output):
                shrink_to_palette(picture)
                print(f"{picture.relative_to(ROOT)} ({picture.stat().st_size / 1000:.0f} kB)")


if __name__ == "__main__":
    main()
