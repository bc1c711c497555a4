"""``gdbench run``, ``report``, ``confirm``, ``create`` and ``worker``: the commands that run or
read studies.

The study layer is imported when a command runs, not when the parser is built,
so that ``--help`` answers without loading TensorFlow.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from gdbench.cli._common import (
    INTERRUPTED,
    CommandError,
    add_home_argument,
    check_positive,
    command_name,
    shell_path,
)
from gdbench.cli._jobs import run_in_parallel
from gdbench.study import keys
from gdbench.study.defaults import (
    DEFAULT_GRACE_PERIOD_S,
    DEFAULT_HEARTBEAT_INTERVAL_S,
    MLFLOW_FILE,
    OPTUNA_FILE,
    REPORTS_FOLDER,
)


def add_commands(commands: Any) -> None:
    run = commands.add_parser(
        "run", help="run (or resume) the studies of a spec file",
        description="Run the studies of SPEC until each holds its number of finished trials. "
                    "Rerunning the same command resumes: only the missing trials run, and "
                    "trials stopped by Ctrl-C or a killed process run again. Several runs of "
                    "one spec on one HOME share the work.",
    )
    run.add_argument("spec", type=Path, metavar="SPEC",
                     help="a study spec (TOML), e.g. studies/quickstart.toml")
    run.add_argument("--trials", type=int, metavar="N",
                     help="finished trials to reach (overrides the spec)")
    add_home_argument(run, "folder of optuna.db, mlflow.db, tensorboard/ and reports/")
    run.add_argument("--storage", metavar="URL",
                     help="Optuna storage URL (default: sqlite:///HOME/optuna.db)")
    run.add_argument("--tracking-uri", metavar="URI",
                     help="MLflow tracking URI (default: sqlite:///HOME/mlflow.db)")
    run.add_argument("--workers", type=int, default=1, metavar="N",
                     help="local 'gdbench worker' processes sharing each study "
                          "(default 1; keep it small with SQLite)")
    run.add_argument("--study", metavar="NAME", help="only this study of SPEC")
    run.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="run up to N of SPEC's studies at once, each in a process of its "
                          "own, their output printed as each ends (default 1: one after "
                          "another)")
    _add_heartbeat_arguments(run)
    run.add_argument("--quiet", action="store_true", help="no progress bar")
    run.set_defaults(handler=_run)

    report = commands.add_parser(
        "report", help="print a stored study's leaderboard and write its plots",
        description="Print the leaderboard of STUDY and write leaderboard.csv and Optuna's plots. "
                    "Given several studies (one per task), write each one's report in a folder "
                    "named for the set, and the optimizers' performance profiles over the "
                    "studies beside them (profiles.csv, profiles.png).",
    )
    report.add_argument("study", metavar="STUDY", nargs="+", help="the study's name")
    add_home_argument(report, "folder of optuna.db and reports/")
    report.add_argument("--storage", metavar="URL",
                        help="Optuna storage URL (default: sqlite:///HOME/optuna.db)")
    report.add_argument("--out", type=Path, metavar="DIR",
                        help="where to write, inside HOME unless absolute "
                             "(default: HOME/reports/STUDY)")
    report.add_argument("--limit", type=int, default=10, metavar="N",
                        help="leaderboard rows printed (default 10)")
    report.set_defaults(handler=_report)

    confirm = commands.add_parser(
        "confirm", help="rerun a stored study's best of each optimizer over seeds",
        description="Rerun the best trial of each optimizer (and schedule) of STUDY with the "
                    "task's seed set to 0, 1, ..., N-1, then print each one's mean, standard "
                    "deviation and 95% bootstrap interval and write confirmed.csv and its "
                    "figures. Rerunning the command runs only the missing seeds.",
    )
    confirm.add_argument("study", metavar="STUDY", help="the study's name")
    confirm.add_argument("--seeds", type=int, metavar="N",
                         help="seeds, at least 2 (default: the study's last confirmation's, "
                              "else 10)")
    add_home_argument(confirm, "folder of optuna.db, mlflow.db, tensorboard/ and reports/")
    confirm.add_argument("--storage", metavar="URL",
                         help="Optuna storage URL (default: sqlite:///HOME/optuna.db)")
    confirm.set_defaults(handler=_confirm)

    create = commands.add_parser(
        "create", help="create a study in a shared storage, for workers to join",
        description="Create the studies of SPEC in the storage (nothing more when they exist), "
                    "keeping the spec in each, so that 'gdbench worker --study NAME' needs "
                    "nothing else.",
    )
    create.add_argument("spec", type=Path, metavar="SPEC", help="a study spec (TOML)")
    create.add_argument("--storage", required=True, metavar="URL",
                        help="the shared Optuna storage: postgresql+psycopg2://USER:PASSWORD@HOST/DB")
    create.add_argument("--study", metavar="NAME", help="only this study of SPEC")
    create.add_argument("--trials", type=int, metavar="N",
                        help="the study's trial budget, counted across workers (overrides the spec)")
    _add_tracking_arguments(create)
    create.set_defaults(handler=_create)

    worker = commands.add_parser(
        "worker", help="join a study as one more worker, until its budget is used up",
        description="Run trials of an existing study until it holds its budget of trials, counted "
                    "across every worker. A trial whose worker dies (no heartbeat for "
                    "--grace-period seconds) is failed and run again once.",
    )
    worker.add_argument("spec", type=Path, nargs="?", metavar="SPEC",
                        help="the study's spec file (default: the spec kept by 'gdbench create')")
    worker.add_argument("--study", metavar="NAME", help="the study's name (needed without SPEC, "
                                                        "or when SPEC holds several)")
    worker.add_argument("--storage", metavar="URL",
                        help="the shared Optuna storage (default: the spec's, or "
                             "sqlite:///HOME/optuna.db)")
    _add_tracking_arguments(worker)
    worker.add_argument("--trials", type=int, metavar="N", help="the budget (overrides the study's)")
    worker.add_argument("--worker-index", type=int, metavar="I",
                        help="offsets the sampler's seed (default: the number of processes "
                             "that joined the study before)")
    _add_heartbeat_arguments(worker)
    worker.add_argument("--progress", action="store_true", help="show a progress bar")
    worker.set_defaults(handler=_worker)


def _add_heartbeat_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--heartbeat-interval", type=int, default=DEFAULT_HEARTBEAT_INTERVAL_S,
                        metavar="S", help=f"seconds between heartbeats of a running trial "
                                          f"(default {DEFAULT_HEARTBEAT_INTERVAL_S})")
    parser.add_argument("--grace-period", type=int, default=DEFAULT_GRACE_PERIOD_S, metavar="S",
                        help=f"seconds without a heartbeat before a trial is taken for dead "
                             f"and run again (default {DEFAULT_GRACE_PERIOD_S})")


def _add_tracking_arguments(parser: argparse.ArgumentParser) -> None:
    add_home_argument(parser, "folder of the default MLflow store and TensorBoard logs")
    parser.add_argument("--tracking-uri", metavar="URI",
                        help="MLflow tracking URI, e.g. http://mlflow:5000 "
                             "(default: the spec's, or sqlite:///HOME/mlflow.db)")
    parser.add_argument("--tensorboard-dir", type=Path, metavar="DIR",
                        help="the study's TensorBoard folder (default: HOME/tensorboard/STUDY)")


@contextlib.contextmanager
def imports_frozen() -> Iterator[None]:
    """No garbage collection while the block imports TensorFlow, Keras, MLflow and Optuna;
    what it leaves alive is then frozen (:func:`gc.freeze`) for the rest of the process.

    Importing them makes hundreds of thousands of objects that live as long as
    the process; each full collection on the way (the collector starts one
    whenever the older objects grew by a quarter) went through all of them
    again: 2–4 s of a small study's start-up. Frozen, they are left out of
    every later collection (those between trials, the report's). The command
    ends when its study or studies are done, so the few cycles the imports
    left for the collector are kept rather than looked for.
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()


def _quiet_optuna() -> None:
    """Optuna's per-study info lines would interleave with the progress bar."""
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)


def _kept(study_name: str, storage: str) -> str:
    """What an interrupted study kept, in words."""
    import optuna

    from gdbench.study.trials import storage as storages

    try:
        study = optuna.load_study(study_name=study_name, storage=storage)
    except Exception:  # noqa: BLE001 - the message is a courtesy; the interrupt is what matters
        return f"study {study_name}: interrupted"
    counted = len(storages.counted_trials(study))
    waiting = sum(t.state.name == "WAITING" for t in study.get_trials(deepcopy=False))
    return (f"study {study_name}: interrupted; {counted} finished trials kept, {waiting} "
            "queued to run again")


# -- run ------------------------------------------------------------------------


def _run(arguments: argparse.Namespace) -> int:
    check_positive("--trials", arguments.trials)
    check_positive("--workers", arguments.workers)
    check_positive("--jobs", arguments.jobs)
    from gdbench.study.plan.first_look import first_look

    first_look(arguments.spec)
    if arguments.jobs > 1 and arguments.study is None:
        # Each study's process reads (and checks) its own spec: this one imports nothing
        # heavy before they start.
        from gdbench.study import study_names

        names = study_names(arguments.spec)
        if len(names) > 1:
            status = run_in_parallel(arguments, names)
            if status == 0:
                print(f"\nNext: {command_name()} ui --home {shell_path(arguments.home)}")
            return status
    with imports_frozen():
        from gdbench.study import (
            format_leaderboard,
            leaderboard,
            load_specs,
            locations,
            run_study,
        )
        from gdbench.study.compare.budgets import budget_rows, format_budgets

        specs = load_specs(arguments.spec)
    if arguments.study is not None:
        specs = [spec for spec in specs if spec.name == arguments.study] or _no_such_study(
            arguments.study, arguments.spec, specs)
    _quiet_optuna()
    for spec in specs:
        try:
            study = run_study(
                spec, home=arguments.home, trials=arguments.trials, storage=arguments.storage,
                tracking_uri=arguments.tracking_uri, quiet=arguments.quiet,
                workers=arguments.workers, heartbeat_interval=arguments.heartbeat_interval,
                grace_period=arguments.grace_period,
            )
        except KeyboardInterrupt:
            where = locations(spec, home=arguments.home, storage_url=arguments.storage)
            print(f"gdbench: {_kept(spec.name, where.storage)}; rerun the same command to "
                  "resume", file=sys.stderr)
            return INTERRUPTED
        where = locations(spec, home=arguments.home, storage_url=arguments.storage,
                          tracking_uri=arguments.tracking_uri)
        print(f"\nstudy {spec.name} ({spec.objective.label}, {spec.objective.direction})")
        _print_confirmed(study)
        print(format_leaderboard(leaderboard(study)))
        _print_best_of_each(study)
        if spec.compare is not None:
            print(f"\nbest {spec.objective.metric} after each budget of trials")
            print(format_budgets(budget_rows(study, spec.compare.budgets)))
        print(f"report: {where.report_dir}")
    print(f"\nNext: {command_name()} ui --home {shell_path(arguments.home)}")
    return 0


def _no_such_study(name: str, path: Path, specs: Sequence[Any]) -> list[Any]:
    raise CommandError(f"--study: {path} has no study named {name!r}; its studies: "
                       f"{', '.join(spec.name for spec in specs)}")


# -- report -----------------------------------------------------------------------


def _stored_studies(arguments: argparse.Namespace, names: Sequence[str]) -> tuple[list[Any], str]:
    """The stored studies ``names`` (each checked), and their storage URL."""
    import optuna

    from gdbench.study.trials import storage

    home = Path(arguments.home).absolute()
    url = arguments.storage or f"sqlite:///{home / OPTUNA_FILE}"
    database = storage.sqlite_path(url)
    if database is not None and not database.is_file():
        raise CommandError(f"no Optuna storage at {database}; pass --home or --storage")
    storage.check_database_url(url, "--storage", storage.STORAGE_BACKENDS)
    url, read_only = storage.read_only_url(url)
    if read_only:
        print(f"gdbench: {database.parent} cannot be written here: {database.name} is read "
              "as it is, read only", file=sys.stderr)
    _quiet_optuna()
    stored = [summary.study_name for summary in optuna.get_all_study_summaries(url)]
    for name in names:
        if name not in stored:
            raise CommandError(f"no study named {name!r} in {url}; "
                               f"studies: {', '.join(stored) or 'none'}")
    return [optuna.load_study(study_name=name, storage=url) for name in names], url


def _report_folder(arguments: argparse.Namespace, out: Path | None, folder: str) -> Path:
    """The report folder: ``out``, or ``reports/<folder>`` under the home."""
    from gdbench.study.trials import session

    home = Path(arguments.home).absolute()
    out = session.in_home(home, out or Path(REPORTS_FOLDER) / folder, "--out")
    if not out.is_relative_to(home) and not out.parent.is_dir():
        raise CommandError(f"--out: the folder of {out} does not exist; create it first")
    return out


def _home_mlflow(home: str | Path) -> str | None:
    mlflow = Path(home).absolute() / MLFLOW_FILE
    return f"sqlite:///{mlflow}" if mlflow.is_file() else None


def _print_confirmed(study: Any) -> None:
    """The confirmed leaderboard, when the study was confirmed over seeds."""
    from gdbench.study.report.confirmed import confirmed_leaderboard

    text = confirmed_leaderboard(study)
    if text is not None:
        print(f"{text}\n")


def _print_best_of_each(study: Any) -> None:
    """The best trial of each optimizer (× schedule), when the study compares several."""
    from gdbench.study.report.by_optimizer import format_best_of_each

    text = format_best_of_each(study)
    if text is not None:
        print(f"\n{text}")


def _report(arguments: argparse.Namespace) -> int:
    check_positive("--limit", arguments.limit)
    from gdbench._figure_pool import FigurePool

    # The figures' workers start first: they import matplotlib while this
    # process imports TensorFlow.
    with FigurePool() as pool:
        return _report_studies(arguments, pool)


def _report_studies(arguments: argparse.Namespace, pool: Any) -> int:
    from gdbench.study import format_leaderboard, leaderboard, write_report
    from gdbench.study.compare import profiles
    from gdbench.study.compare.budgets import (
        budget_rows,
        format_budgets,
        stored_budgets,
    )
    from gdbench.study.trials import session

    names = [session.check_study_name(name, "STUDY") for name in arguments.study]
    several = len(names) > 1
    out = _report_folder(arguments, arguments.out,
                         profiles.set_folder_name(names) if several else names[0])
    writable = next(folder for folder in (out, *out.parents) if folder.exists())
    if not os.access(writable, os.W_OK):
        raise CommandError(f"--out: {out} cannot be written here ({writable} is read only); "
                           "pass --out DIR to write the report's files elsewhere")
    studies, _ = _stored_studies(arguments, names)
    for name in names:
        session.restore_tracking(Path(arguments.home).absolute(), name)
    tracking_uri = _home_mlflow(arguments.home)
    for study in studies:
        if several:
            print(f"\nstudy {study.study_name}")
        _print_confirmed(study)
        print(format_leaderboard(leaderboard(study), limit=arguments.limit))
        _print_best_of_each(study)
        compared = stored_budgets(study)
        if compared is not None:
            print(f"\nbest after each budget of trials\n"
                  f"{format_budgets(budget_rows(study, compared))}")
        for path in write_report(study, out / study.study_name if several else out,
                                 tracking_uri=tracking_uri, quiet=False, pool=pool):
            print(f"wrote {path}")
    if several:
        try:
            written = profiles.write_profiles(studies, out)
        except ValueError as error:
            raise CommandError(f"profiles: {error}") from None
        for path in written:
            print(f"wrote {path}")
    return 0


# -- confirm ----------------------------------------------------------------------


def _confirm(arguments: argparse.Namespace) -> int:
    if arguments.seeds is not None and arguments.seeds < 2:
        raise CommandError(f"--seeds: expected an integer >= 2, got {arguments.seeds}")
    from gdbench.study.compare import confirm
    from gdbench.study.defaults import TENSORBOARD_FOLDER
    from gdbench.study.report.by_optimizer import write_comparison
    from gdbench.study.report.confirmed import write_confirm_report
    from gdbench.study.spec.model import ConfirmSpec
    from gdbench.study.trials import session

    name = session.check_study_name(arguments.study, "STUDY")
    out = _report_folder(arguments, None, name)
    (study,), url = _stored_studies(arguments, [name])
    companion = confirm.open_companion(study, url, create=False)
    seeds = arguments.seeds or (companion.user_attrs.get(keys.SEEDS_ATTR)
                                if companion is not None else None) or ConfirmSpec().seeds
    target = confirm.stored_target(
        study, url, tracking_uri=_home_mlflow(arguments.home),
        tensorboard_root=Path(arguments.home).absolute() / TENSORBOARD_FOLDER)
    confirm.confirm_study(target, seeds)
    _print_confirmed(study)
    _print_best_of_each(study)
    for path in [*write_confirm_report(study, out), *write_comparison(study, out)]:
        print(f"wrote {path}")
    return 0


# -- create and worker -------------------------------------------------------------


def _chosen_specs(path: Path, study: str | None) -> list[Any]:
    """The studies of the spec file ``path`` (``study`` alone, when given); a malformed spec is
    refused by its first look, before TensorFlow is imported."""
    from gdbench.study import load_specs

    specs = load_specs(path)
    if study is None:
        return specs
    chosen = [spec for spec in specs if spec.name == study]
    if not chosen:
        raise CommandError(f"--study: {path} holds no study named {study!r}; it holds "
                           + ", ".join(spec.name for spec in specs))
    return chosen


def _create(arguments: argparse.Namespace) -> int:
    check_positive("--trials", arguments.trials)
    specs = _chosen_specs(arguments.spec, arguments.study)
    from gdbench.study.worker import create_study

    _quiet_optuna()
    for spec in specs:
        study = create_study(spec, arguments.storage, trials=arguments.trials,
                             home=arguments.home, tracking_uri=arguments.tracking_uri,
                             tensorboard_dir=arguments.tensorboard_dir)
        budget = study.user_attrs.get(keys.BUDGET_ATTR, spec.trials)
        print(f"study {spec.name}: {len(study.trials)} trials so far, budget {budget}")
    return 0


def _worker(arguments: argparse.Namespace) -> int:
    check_positive("--trials", arguments.trials)
    spec = None
    if arguments.spec is not None:
        with imports_frozen():
            specs = _chosen_specs(arguments.spec, arguments.study)
        if len(specs) > 1:
            raise CommandError(f"--study: {arguments.spec} holds several studies; name one of "
                               + ", ".join(s.name for s in specs))
        spec = specs[0]
    elif arguments.study is None or arguments.storage is None:
        raise CommandError("give SPEC, or --study NAME with --storage URL")
    from gdbench.study import locations
    from gdbench.study.worker import run_worker

    _quiet_optuna()
    name = spec.name if spec is not None else arguments.study
    storage = arguments.storage or locations(spec, home=arguments.home).storage
    try:
        run_worker(name, storage, spec=spec, home=arguments.home,
                   tracking_uri=arguments.tracking_uri, tensorboard_dir=arguments.tensorboard_dir,
                   trials=arguments.trials, worker_index=arguments.worker_index,
                   heartbeat_interval=arguments.heartbeat_interval,
                   grace_period=arguments.grace_period, quiet=not arguments.progress)
    except KeyError:
        raise CommandError(f"no study named {name!r} in {storage}; create it with "
                           f"'gdbench create SPEC --storage URL'") from None
    except KeyboardInterrupt:
        print(f"gdbench: {_kept(name, storage)}; start the worker again to resume",
              file=sys.stderr)
        return INTERRUPTED
    return 0
