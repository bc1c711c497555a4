"""TensorBoard's HParams dashboard over a home of several studies, read by TensorBoard's own plugin.

The event files are read back through the HParams plugin's backend (the code
behind ``/data/plugin/hparams/experiment`` and ``/session_groups``), the way
``gdbench ui`` serves ``HOME/tensorboard``.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest
from tensorboard import context as tb_context
from tensorboard.backend.event_processing import data_provider, plugin_event_multiplexer
from tensorboard.plugins import base_plugin
from tensorboard.plugins.hparams import (
    api_pb2,
    backend_context,
    get_experiment,
    list_session_groups,
)

from gdbench.study import load_spec, run_study
from gdbench.tracking import HParamDomain, StudyTracker
from gdbench.tracking._experiment import SHOWN_HPARAMS, STUDY_EXPERIMENT_FILE, union

pytestmark = pytest.mark.filterwarnings("ignore::sqlalchemy.exc.SADeprecationWarning")

ALL_STATUSES = [api_pb2.STATUS_UNKNOWN, api_pb2.STATUS_SUCCESS, api_pb2.STATUS_FAILURE,
                api_pb2.STATUS_RUNNING]

#: The type each hyperparameter type's values are stored as in a session.
VALUE_FIELDS = {api_pb2.DATA_TYPE_FLOAT64: "number_value", api_pb2.DATA_TYPE_STRING: "string_value",
                api_pb2.DATA_TYPE_BOOL: "bool_value"}

SIGMOID = """
name = "hp_sigmoid"
task = "sigmoid_neuron"
optimizers = ["gd", "adam"]
epochs = 12
trials = 6
trials_per_batch = 6
sampler = {name = "random", seed = 1}
"""

# One trial at a time: a trial trained alone has weight histograms, a population's members none.
DIGITS = """
name = "hp_digits"
task = {name = "digits_mlp", subset = 256, validation_size = 64, test_size = 64}
optimizer = "adam"
epochs = 2
batch_size = 64
trials = 2
population = false
pruner = "none"
tune = ["learning_rate", "beta_1"]
sampler = {name = "random", seed = 2}
"""


class Dashboard:
    """What TensorBoard's HParams plugin serves for ``logdir``, computed in this process."""

    def __init__(self, logdir: Path) -> None:
        self.multiplexer = plugin_event_multiplexer.EventMultiplexer()
        self.multiplexer.AddRunsFromDirectory(str(logdir))
        self.multiplexer.Reload()
        provider = data_provider.MultiplexerDataProvider(self.multiplexer, str(logdir))
        self._context = backend_context.Context(base_plugin.TBContext(
            data_provider=provider, multiplexer=self.multiplexer, logdir=str(logdir)))
        self._request = tb_context.RequestContext()

    def experiment(self) -> api_pb2.Experiment:
        """``/experiment`` as the dashboard asks for it (at most 1000 hyperparameters)."""
        request = api_pb2.GetExperimentRequest(hparams_limit=1000, include_metrics=True)
        return get_experiment.Handler(self._request, self._context, "", request).run()

    def session_groups(self, experiment: api_pb2.Experiment) -> list[api_pb2.SessionGroup]:
        """``/session_groups`` of every status, every column, no filter."""
        columns = [api_pb2.ColParams(hparam=info.name) for info in experiment.hparam_infos]
        columns += [api_pb2.ColParams(metric=info.name) for info in experiment.metric_infos]
        request = api_pb2.ListSessionGroupsRequest(
            start_index=0, slice_size=10_000, allowed_statuses=ALL_STATUSES, col_params=columns)
        return list(list_session_groups.Handler(
            self._request, self._context, "", request).run().session_groups)

    def steps(self, run: str, tag: str) -> list[int]:
        return [event.step for event in self.multiplexer.Tensors(run, tag)]


def shown_at_first(experiment: api_pb2.Experiment) -> list[str]:
    """The hyperparameters the dashboard ticks when it opens: as its frontend
    (tf-hparams-query-pane) does, ``differs`` ones first (a stable sort), the first five."""
    infos = sorted(experiment.hparam_infos, key=lambda info: not info.differs)
    return [info.name for info in infos[:SHOWN_HPARAMS]]


def study_experiment(folder: Path) -> api_pb2.Experiment:
    return api_pb2.Experiment.FromString((folder / STUDY_EXPERIMENT_FILE).read_bytes())


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    """A home with a population study of the sigmoid neuron and a Keras study of the digits."""
    root = tmp_path_factory.mktemp("hparams")
    studies = {}
    for text in (SIGMOID, DIGITS):
        spec_path = root / "spec.toml"
        spec_path.write_text(text, encoding="utf-8")
        spec = load_spec(spec_path)
        studies[spec.name] = run_study(spec, home=root / "home", quiet=True)
    return root / "home", studies


def mlflow_tensorboard_runs(home: Path, study: str) -> dict[int, str]:
    """Trial number → the TensorBoard run its MLflow run names (``gdbench.tensorboard_run``)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(f"sqlite:///{home / 'mlflow.db'}")
    experiment = client.get_experiment_by_name(study)
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return {int(run.data.tags["gdbench.trial_number"]): run.data.tags["gdbench.tensorboard_run"]
            for run in runs if "mlflow.parentRunId" in run.data.tags}


def test_the_home_is_one_experiment_of_every_study(home: tuple[Path, dict[str, Any]]) -> None:
    folder, studies = home
    board = Dashboard(folder / "tensorboard")
    experiment = board.experiment()
    own = {name: study_experiment(folder / "tensorboard" / name) for name in studies}
    names = [info.name for info in experiment.hparam_infos]
    assert sorted(names) == sorted({info.name for e in own.values() for info in e.hparam_infos})
    assert "study" in names and "momentum" not in names
    assert {"task.subset", "bias_correction", "beta_2"} <= set(names)
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos["study"].domain_discrete.values) and sorted(
        v.string_value for v in infos["study"].domain_discrete.values) == sorted(studies)
    assert sorted(v.string_value for v in infos["task"].domain_discrete.values) == [
        "digits_mlp", "sigmoid_neuron"]
    # The union of both studies' searched learning rates.
    bounds = [(i.domain_interval.min_value, i.domain_interval.max_value) for e in own.values()
              for i in e.hparam_infos if i.name == "learning_rate"]
    assert (infos["learning_rate"].domain_interval.min_value,
            infos["learning_rate"].domain_interval.max_value) == (
        min(low for low, _ in bounds), max(high for _, high in bounds))
    # Only the metrics every study has: a trial lacking a listed metric is no line in
    # the parallel view. The objective says what it is in each study.
    assert [info.name.tag for info in experiment.metric_infos] == ["objective", "loss"]
    assert experiment.metric_infos[0].display_name == (
        "objective (hp_digits: val_loss; hp_sigmoid: loss)")
    assert {"val_loss", "val_accuracy"} <= {m.name.tag for m in own["hp_digits"].metric_infos}
    assert set(shown_at_first(experiment)) == {
        "study", "optimizer", "schedule", "learning_rate", "beta_1"}


def test_every_trial_is_a_session_with_its_readable_name_and_its_studys_metrics(
        home: tuple[Path, dict[str, Any]]) -> None:
    folder, studies = home
    board = Dashboard(folder / "tensorboard")
    experiment = board.experiment()
    groups = {group.name: group for group in board.session_groups(experiment)}
    assert len(groups) == sum(len(study.trials) for study in studies.values())
    listed = {info.name.tag for info in experiment.metric_infos}
    for name, study in studies.items():
        runs = mlflow_tensorboard_runs(folder, name)
        own = study_experiment(folder / "tensorboard" / name)
        metrics = {info.name.tag for info in own.metric_infos}
        assert sorted(runs) == [trial.number for trial in study.trials]
        for trial in study.trials:
            run = runs[trial.number]
            label = trial.user_attrs["hyperparameters"]["optimizer"]
            assert run.startswith(f"{label} · η=") and run.endswith(f" · #{trial.number}")
            group = groups[f"{run} · {name}"]
            (session,) = group.sessions
            assert session.name == f"{name}/{run}"
            assert group.hparams["study"].string_value == name
            # The dashboard reads the metrics the home lists (those every study has);
            # the study's own (the digits' val_loss) are its run's scalars below.
            values = {value.name.tag for value in group.metric_values}
            assert values >= listed - {"objective"}, run
            assert ("objective" in values) == (trial.state.name == "COMPLETE"), run
            # Every epoch of every per-epoch metric is a scalar of the session's run.
            epochs = trial.user_attrs["epochs_run"]
            per_epoch = ["loss", "learning_rate"] if name == "hp_sigmoid" else [
                "loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"]
            assert set(per_epoch) - {"learning_rate"} <= metrics  # its own experiment's
            for tag in per_epoch:
                assert board.steps(session.name, tag) == list(range(epochs)), (run, tag)


def test_every_line_of_the_parallel_view_has_a_value_on_every_axis(
        home: tuple[Path, dict[str, Any]]) -> None:
    # TensorBoard's parallel-coordinates view leaves out a session that has no
    # value on one of its axes: gd's sessions have a β1 (0, the term left out).
    folder, _ = home
    board = Dashboard(folder / "tensorboard")
    experiment = board.experiment()
    infos = {info.name: info for info in experiment.hparam_infos}
    shown = shown_at_first(experiment)
    groups = board.session_groups(experiment)
    optimizers = set()
    for group in groups:
        study = group.hparams["study"].string_value
        own = [info.name for info in study_experiment(folder / "tensorboard" / study).hparam_infos]
        for name in {*shown, *own}:
            value = group.hparams[name]
            assert value.WhichOneof("kind") == VALUE_FIELDS[infos[name].type], (group.name, name)
        optimizers.add(group.hparams["optimizer"].string_value)
        if group.hparams["optimizer"].string_value == "gd":
            assert group.hparams["beta_1"].number_value == 0.0
            assert group.hparams["bias_correction"].bool_value is False
    assert optimizers == {"gd", "adam"}


def test_image_trials_have_weight_histograms_each_epoch(
        home: tuple[Path, dict[str, Any]]) -> None:
    folder, studies = home
    board = Dashboard(folder / "tensorboard")
    runs = board.multiplexer.Runs()
    for trial in studies["hp_digits"].trials:
        run = f"hp_digits/{mlflow_tensorboard_runs(folder, 'hp_digits')[trial.number]}"
        tags = [tag for tag in runs[run]["tensors"] if tag.startswith("weights/")]
        assert len(tags) == 4, tags  # two dense layers' kernels and biases
        for tag in tags:
            assert board.steps(run, tag) == list(range(trial.user_attrs["epochs_run"]))


def test_studies_starting_at_once_all_end_up_in_the_config(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import time

    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    from gdbench.tracking import _experiment

    def slow_union(experiments: list[api_pb2.Experiment], objective: str) -> api_pb2.Experiment:
        # A process that found fewer studies writes later: unlocked, it would write last.
        time.sleep(0.05 * (6 - len(experiments)))
        return union(experiments, objective)

    monkeypatch.setattr(_experiment, "union", slow_union)
    barrier = threading.Barrier(6)

    def start(index: int) -> None:
        tracker = StudyTracker(study_name=f"s{index}", tracking_uri=None,
                               tensorboard_dir=tmp_path / f"s{index}")
        barrier.wait()
        tracker.start(hparam_domains={f"only_{index}": HParamDomain("float", 0.0, 1.0)},
                      metrics=[f"metric_{index}"])

    threads = [threading.Thread(target=start, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    (event,) = [e for e in EventFileLoader(str(tmp_path / "events.out.tfevents.hparams_config"))
                .Load() if e.summary.value]
    experiment = plugin_data_pb2.HParamsPluginData.FromString(
        event.summary.value[0].metadata.plugin_data.content).experiment
    assert sorted(info.name for info in experiment.hparam_infos) == sorted(
        ["study", *(f"only_{i}" for i in range(6))])
    # The one metric the six share.
    assert [m.name.tag for m in experiment.metric_infos] == ["objective"]
    assert experiment.metric_infos[0].display_name == "objective (" + "; ".join(
        f"s{i}: metric_{i}" for i in range(6)) + ")"
    # No temporary file is left, nor any other event file.
    assert sorted(path.name for path in tmp_path.iterdir() if path.is_file()) == [
        ".hparams.lock", "events.out.tfevents.hparams_config"]


def test_a_hyperparameter_of_two_types_keeps_no_domain() -> None:
    def experiment(**infos: api_pb2.HParamInfo) -> api_pb2.Experiment:
        return api_pb2.Experiment(hparam_infos=list(infos.values()))

    first = experiment(
        seed=api_pb2.HParamInfo(name="seed", type=api_pb2.DATA_TYPE_FLOAT64),
        width=api_pb2.HParamInfo(name="width", type=api_pb2.DATA_TYPE_FLOAT64),
    )
    first.hparam_infos[0].domain_discrete.values.add().number_value = 3.0
    first.hparam_infos[1].domain_interval.min_value = 1.0
    first.hparam_infos[1].domain_interval.max_value = 2.0
    second = experiment(
        seed=api_pb2.HParamInfo(name="seed", type=api_pb2.DATA_TYPE_STRING),
        width=api_pb2.HParamInfo(name="width", type=api_pb2.DATA_TYPE_FLOAT64),
    )
    second.hparam_infos[0].domain_discrete.values.add().string_value = "3"
    second.hparam_infos[1].domain_discrete.values.add().number_value = 8.0
    merged = {info.name: info for info in union([first, second], "objective").hparam_infos}
    assert merged["seed"].type == api_pb2.DATA_TYPE_UNSET
    assert merged["seed"].WhichOneof("domain") is None
    assert (merged["width"].domain_interval.min_value,
            merged["width"].domain_interval.max_value) == (1.0, 8.0)


@pytest.mark.slow
def test_a_tensorboard_server_on_the_home_serves_both_studies(
        home: tuple[Path, dict[str, Any]]) -> None:
    import subprocess
    import sys
    import time
    import urllib.error

    from test_tracking import free_port, get_json, post_json

    folder, studies = home
    port = free_port()
    process = subprocess.Popen(
        [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(folder / "tensorboard"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}/data/plugin/hparams"
    query = {"experimentName": "", "allowedStatuses": [api_pb2.Status.Name(s) for s in ALL_STATUSES],
             "colParams": [], "startIndex": 0, "sliceSize": 1000, "includeMetrics": True}
    expected = sum(len(study.trials) for study in studies.values())
    try:
        deadline = time.monotonic() + 90
        groups: list[dict[str, Any]] = []
        while len(groups) < expected and time.monotonic() < deadline:
            try:
                groups = post_json(f"{url}/session_groups", query).get("sessionGroups", [])
            except (urllib.error.URLError, ConnectionError):
                pass
            time.sleep(0.5)
        experiment = post_json(f"{url}/experiment", {"experimentName": "", "includeMetrics": True})
        assert get_json(f"http://127.0.0.1:{port}/data/runs")
    finally:
        process.terminate()
        process.wait(timeout=30)
    names = {info["name"] for info in experiment["hparamInfos"]}
    assert {"study", "optimizer", "schedule", "learning_rate", "beta_1", "task.subset"} <= names
    assert {m["name"]["tag"] for m in experiment["metricInfos"]} == {"loss", "objective"}
    assert len(groups) == expected
    for name, study in studies.items():
        runs = mlflow_tensorboard_runs(folder, name)
        rows = {group["name"] for group in groups if group["hparams"]["study"] == name}
        assert rows == {f"{runs[trial.number]} · {name}" for trial in study.trials}


@pytest.mark.slow
def test_the_parallel_view_draws_every_trial_of_the_home_with_every_box_ticked(
        home: tuple[Path, dict[str, Any]], tmp_path: Path) -> None:
    import json
    import shutil
    import subprocess
    import sys
    import time

    from browser import DASHBOARD_STATE, Chromium, require_chromium
    from test_tracking import free_port

    require_chromium()

    folder, studies = home
    experiment = Dashboard(folder / "tensorboard").experiment()
    shown = shown_at_first(experiment)
    metrics = [info.display_name or info.name.tag for info in experiment.metric_infos]
    port = free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).parent / "tensorboard"), "--logdir", str(folder / "tensorboard"),
         "--host", "127.0.0.1", "--port", str(port)],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    profile = tmp_path / "profile"
    profile.mkdir()
    browser = Chromium(profile)
    try:
        browser.open(f"http://127.0.0.1:{port}/#hparams")
        last = {name: max(t.number for t in study.trials) for name, study in studies.items()}
        browser.wait_for_text([f"#{number} · {name}" for name, number in last.items()],
                              timeout_s=120)
        assert browser.click_text("Parallel Coordinates View") == 1
        browser.wait_for_text(["Color by"])
        time.sleep(3)
        state = json.loads(browser.evaluate(DASHBOARD_STATE))
        # The side panel ticks what shown_at_first says (its value boxes are ticked too).
        names = {info.name for info in experiment.hparam_infos}
        assert set(state["ticked"]) & names == set(shown)
        # Every metric listed is ticked, and every complete trial of both studies,
        # gd's and the sigmoid's among them, is a line.
        assert set(state["ticked"]) & set(metrics) == set(metrics)
        complete = {name: sum(t.state.name == "COMPLETE" for t in study.trials)
                    for name, study in studies.items()}
        assert state["lines"] == sum(complete.values())
    finally:
        browser.close()
        server.terminate()
        server.wait(timeout=30)
        shutil.rmtree(profile, ignore_errors=True)


def test_a_study_folder_of_the_older_layout_joins_the_union(tmp_path: Path) -> None:
    from gdbench.tracking import _experiment, _tensorboard

    # Before: each study's config among its runs, where TensorBoard picked one of them.
    old = tmp_path / "old"
    old.mkdir()
    config = _experiment.study_experiment({"momentum": HParamDomain("float", 0.1, 0.9)}, ["loss"])
    (old / _experiment.CONFIG_FILE_NAME).write_bytes(_tensorboard._config_events(config))
    tracker = StudyTracker(study_name="new", tracking_uri=None, tensorboard_dir=tmp_path / "new")
    tracker.start(hparam_domains={"beta_1": HParamDomain("float", 0.5, 0.9)}, metrics=["loss"])
    assert not (old / _experiment.CONFIG_FILE_NAME).exists()
    assert sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.glob("**/*tfevents*")) == [
        _experiment.CONFIG_FILE_NAME]
    experiment = Dashboard(tmp_path).experiment()
    infos = {info.name: info for info in experiment.hparam_infos}
    assert sorted(infos) == ["beta_1", "momentum", "study"]
    assert sorted(v.string_value for v in infos["study"].domain_discrete.values) == ["new", "old"]


def test_a_folder_of_studies_beside_a_study_keeps_its_config(tmp_path: Path) -> None:
    from gdbench.tracking import _experiment

    for folder in (tmp_path / "tensorboard" / "inside", tmp_path / "beside"):
        tracker = StudyTracker(study_name=folder.name, tracking_uri=None, tensorboard_dir=folder)
        tracker.start(hparam_domains={}, metrics=["loss"])
    # tmp_path/tensorboard holds studies: its config is theirs, not an older study's.
    assert (tmp_path / "tensorboard" / _experiment.CONFIG_FILE_NAME).is_file()
    assert not (tmp_path / "tensorboard" / _experiment.STUDY_EXPERIMENT_FILE).exists()
    infos = {info.name: info
             for info in Dashboard(tmp_path / "tensorboard").experiment().hparam_infos}
    assert [v.string_value for v in infos["study"].domain_discrete.values] == ["inside"]
