"""The HParams experiment of a folder of studies: every study's hyperparameters and metrics.

TensorBoard's HParams dashboard reads a single experiment config for its whole
log directory (it picks one arbitrarily where there are several). A study
therefore keeps its own experiment in its folder as a plain proto file,
``hparams_experiment.pb``, which TensorBoard does not read, and the folder
holding the studies (``HOME/tensorboard``) gets the one config the dashboard
reads: the union of every study's experiment, recomputed from all of them each
time a study starts, under a lock, and replaced in one rename.

The dashboard ticks its first five hyperparameters and its first five metrics
(the hyperparameters sorted ``differs`` first, then by name), and its
parallel-coordinates view draws no line for a session lacking a ticked
metric. The union marks as ``differs`` the five it means to show: ``study``,
``optimizer`` and ``schedule``, then the searched hyperparameters every study
has (η first, then in the order of :data:`~gdbench.tracking.names.SYMBOLS`).
It lists only the metrics every study has, the objective first: the digits'
``val_accuracy`` would otherwise hide every trial of a sigmoid study. The
objective is named with what it is in each study (``objective (quickstart_sigmoid:
loss; quickstart_digits: val_loss)``), or once where all studies agree
(``objective (val_loss)``); each study's experiment says it in the
objective's description (``quickstart_digits: val_loss``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from google.protobuf.message import DecodeError
from tensorboard.backend.event_processing.event_file_loader import RawEventFileLoader
from tensorboard.compat.proto import event_pb2
from tensorboard.plugins.hparams import api_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata

from gdbench._files import file_lock, written_whole
from gdbench.tracking._domain import HParamDomain, HParamValue
from gdbench.tracking.names import LABEL_KEYS, SYMBOLS

#: The hyperparameter holding each session's study.
STUDY_HPARAM = "study"

#: A study's own experiment in its folder: an ``api_pb2.Experiment``, serialized.
STUDY_EXPERIMENT_FILE = "hparams_experiment.pb"

#: The experiment the dashboard reads, in the folder of the studies.
CONFIG_FILE_NAME = "events.out.tfevents.hparams_config"

#: How many hyperparameters the dashboard ticks at first.
SHOWN_HPARAMS = 5

_LOCK_FILE = ".hparams.lock"


#: The value of a hyperparameter a trial does not have, by its type (see :func:`missing_value`).
MISSING_VALUES: dict[int, bool | float | str] = {
    api_pb2.DATA_TYPE_FLOAT64: 0.0, api_pb2.DATA_TYPE_BOOL: False,
    api_pb2.DATA_TYPE_STRING: "none",
}


def tensorboard_value(domain: HParamDomain, value: HParamValue) -> bool | float | str:
    """``value`` as the HParams dashboard stores it under ``domain``.

    Numbers become floats; a categorical keeps its values' type when all its
    choices share one (bool, number or string) and becomes a string otherwise,
    since a dashboard column holds a single type.
    """
    kind = _value_type(domain)
    if kind == api_pb2.DATA_TYPE_BOOL:
        return bool(value)
    if kind == api_pb2.DATA_TYPE_FLOAT64:
        return float(value)  # type: ignore[arg-type]
    return value if isinstance(value, str) else str(value)


def missing_value(domain: HParamDomain) -> bool | float | str:
    """What a session holds for a hyperparameter of its study that its trial does not have.

    TensorBoard's parallel-coordinates view draws no line for a session
    without a value on one of its axes; gd has no β1, and a study comparing
    gd with Adam would lose every gd line. Such a hyperparameter holds the
    value that leaves its term out of the update: 0 (no momentum, no
    averaging, no ε), ``False`` (no bias correction), ``"none"`` for a string.
    """
    return MISSING_VALUES[_value_type(domain)]


def study_experiment(domains: Mapping[str, HParamDomain], metrics: Sequence[str],
                     objective_meaning: str = "") -> api_pb2.Experiment:
    """One study's experiment: each hyperparameter's domain and type, its metrics.

    Args:
        domains: every hyperparameter of the study, ``study`` among them.
        metrics: the metrics, in the order the dashboard lists them, the objective first.
        objective_meaning: what the objective is in this study
            (``quickstart_digits: val_loss``), its description.
    """
    infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics]
    if infos and objective_meaning:
        infos[0].description = objective_meaning
    return api_pb2.Experiment(
        hparam_infos=[_hparam_info(name, domain) for name, domain in domains.items()],
        metric_infos=infos, time_created_secs=time.time(),
    )


def objective_title(objective: str, meanings: Sequence[str]) -> str:
    """The objective's name in the dashboard, with what it is in each study.

    >>> objective_title("objective", ["quickstart_sigmoid: loss", "quickstart_digits: val_loss"])
    'objective (quickstart_sigmoid: loss; quickstart_digits: val_loss)'
    >>> objective_title("objective", ["a: val_loss", "b: val_loss"])
    'objective (val_loss)'
    """
    meanings = list(dict.fromkeys(m for m in meanings if m))
    if not meanings:
        return objective
    metrics = {meaning.rpartition(": ")[2] for meaning in meanings}
    shown = metrics.pop() if len(metrics) == 1 else "; ".join(meanings)
    return f"{objective} ({shown})"


def union(experiments: Sequence[api_pb2.Experiment], objective: str) -> api_pb2.Experiment:
    """Every hyperparameter of ``experiments``, merged by name, and the metrics they all have.

    Discrete values of one type are joined; intervals, and numbers beside
    intervals, become the interval covering them all; a name whose types
    differ between studies keeps no type and no domain (the dashboard then
    shows the values as they are and filters none out).
    """
    infos: dict[str, api_pb2.HParamInfo] = {}
    for experiment in experiments:
        for info in experiment.hparam_infos:
            infos[info.name] = (_merge(infos[info.name], info) if info.name in infos
                                else _copy(info))
    shared = set(infos)
    for experiment in experiments:
        shared &= {info.name for info in experiment.hparam_infos}
    shown = _shown(infos, shared)
    for name, info in infos.items():
        info.differs = name in shown
    metrics: dict[str, int] = {}
    meanings = []
    for experiment in experiments:
        for metric in dict.fromkeys(m.name.tag for m in experiment.metric_infos):
            metrics[metric] = metrics.get(metric, 0) + 1
        meanings += [m.description for m in experiment.metric_infos if m.name.tag == objective]
    everywhere = [m for m in metrics if metrics[m] == len(experiments)]
    ordered = sorted(everywhere, key=lambda m: m != objective)
    metric_infos = [api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in ordered]
    for info in metric_infos:
        if info.name.tag == objective:
            info.display_name = objective_title(objective, meanings)
            info.description = "; ".join(dict.fromkeys(m for m in meanings if m))
    return api_pb2.Experiment(hparam_infos=list(infos.values()), metric_infos=metric_infos,
                              time_created_secs=time.time())


def write_study(directory: Path, experiment: api_pb2.Experiment, objective: str,
                config_events: Callable[[api_pb2.Experiment], bytes]) -> None:
    """Save a study's experiment in ``directory``, then rewrite its folder's union.

    Args:
        directory: the study's TensorBoard folder, created if missing.
        experiment: the study's own experiment (:func:`study_experiment`).
        objective: the metric listed first.
        config_events: ``experiment → bytes``, the event file the dashboard reads.
    """
    directory.mkdir(parents=True, exist_ok=True)
    _replace(directory / STUDY_EXPERIMENT_FILE, experiment.SerializeToString())
    root = directory.parent
    with file_lock(root / _LOCK_FILE):
        for folder in root.glob(f"*/{CONFIG_FILE_NAME}"):
            _migrate(folder.parent)
        studies = [found for path in sorted(root.glob(f"*/{STUDY_EXPERIMENT_FILE}"))
                   if (found := _read(path)) is not None]
        _replace(root / CONFIG_FILE_NAME, config_events(union(studies, objective)))


def _value_type(domain: HParamDomain) -> int:
    """The dashboard's type of ``domain``'s values: a number, or a categorical's common type."""
    if domain.kind != "categorical":
        return api_pb2.DATA_TYPE_FLOAT64
    if all(isinstance(c, bool) for c in domain.choices):
        return api_pb2.DATA_TYPE_BOOL
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in domain.choices):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def _migrate(folder: Path) -> None:
    """A study folder of the older layout, its config among its runs, where it would
    compete with the union: the config becomes the study's experiment file.

    A folder of studies (its config a union) is left alone.
    """
    if any(folder.glob(f"*/{STUDY_EXPERIMENT_FILE}")):
        return
    if not (folder / STUDY_EXPERIMENT_FILE).is_file():
        for raw in RawEventFileLoader(str(folder / CONFIG_FILE_NAME)).Load():
            for value in event_pb2.Event.FromString(raw).summary.value:
                if value.tag != hparams_metadata.EXPERIMENT_TAG:
                    continue
                experiment = hparams_metadata.parse_experiment_plugin_data(
                    value.metadata.plugin_data.content)
                if STUDY_HPARAM not in {info.name for info in experiment.hparam_infos}:
                    experiment.hparam_infos.insert(0, _hparam_info(
                        STUDY_HPARAM, HParamDomain.fixed(folder.name)))
                _replace(folder / STUDY_EXPERIMENT_FILE, experiment.SerializeToString())
    (folder / CONFIG_FILE_NAME).unlink(missing_ok=True)


def _read(path: Path) -> api_pb2.Experiment | None:
    """A study's experiment; ``None`` for a file that is not one (a damaged study must
    not hide the others)."""
    try:
        return api_pb2.Experiment.FromString(path.read_bytes())
    except (OSError, DecodeError):
        return None


def _hparam_info(name: str, domain: HParamDomain) -> api_pb2.HParamInfo:
    info = api_pb2.HParamInfo(name=name, differs=domain.varies, type=_value_type(domain))
    if domain.kind == "categorical":
        info.domain_discrete.extend(dict.fromkeys(tensorboard_value(domain, c)
                                                  for c in domain.choices))
        return info
    info.domain_interval.min_value = float(domain.low)  # type: ignore[arg-type]
    info.domain_interval.max_value = float(domain.high)  # type: ignore[arg-type]
    scale = "log scale" if domain.log else "linear scale"
    info.description = f"{domain.kind} in [{domain.low}, {domain.high}], {scale}"
    return info


def _copy(info: api_pb2.HParamInfo) -> api_pb2.HParamInfo:
    copy = api_pb2.HParamInfo()
    copy.CopyFrom(info)
    return copy


def _merge(first: api_pb2.HParamInfo, other: api_pb2.HParamInfo) -> api_pb2.HParamInfo:
    """One hyperparameter's info covering both studies' domains."""
    merged = api_pb2.HParamInfo(name=first.name)
    if first.type != other.type:
        return merged
    merged.type = first.type
    both = (first, other)
    if all(i.HasField("domain_discrete") for i in both):
        values = dict.fromkeys(_plain(v) for i in both for v in i.domain_discrete.values)
        merged.domain_discrete.extend(values)
        return merged
    if first.type != api_pb2.DATA_TYPE_FLOAT64:
        return api_pb2.HParamInfo(name=first.name)
    numbers = [n for i in both for n in _numbers(i)]
    merged.domain_interval.min_value = min(numbers)
    merged.domain_interval.max_value = max(numbers)
    if first.description == other.description:
        merged.description = first.description
    return merged


def _plain(value: object) -> HParamValue:
    kind = value.WhichOneof("kind")  # type: ignore[attr-defined]
    return getattr(value, kind) if kind else None


def _numbers(info: api_pb2.HParamInfo) -> list[float]:
    if info.HasField("domain_interval"):
        return [info.domain_interval.min_value, info.domain_interval.max_value]
    return [v.number_value for v in info.domain_discrete.values]


def _varies(info: api_pb2.HParamInfo) -> bool:
    if info.HasField("domain_interval"):
        return info.domain_interval.min_value < info.domain_interval.max_value
    return len(info.domain_discrete.values) > 1


def _shown(infos: Mapping[str, api_pb2.HParamInfo], shared: set[str]) -> list[str]:
    """The hyperparameters ticked at first: labels, then searched ones all studies have."""
    order = list(SYMBOLS)
    labels = [name for name in (STUDY_HPARAM, *LABEL_KEYS) if name in infos]
    rest = sorted((name for name in shared if name not in labels),
                  key=lambda name: (not _varies(infos[name]),
                                    order.index(name) if name in order else len(order), name))
    return (labels + rest)[:SHOWN_HPARAMS]


def _replace(path: Path, content: bytes) -> None:
    with written_whole(path) as partial:
        partial.write_bytes(content)
