"""Reading what a TensorBoard run folder holds, for the tests."""

from __future__ import annotations

from pathlib import Path


def session_hparams(run_dir: Path) -> dict:
    """The hyperparameters a TensorBoard HParams session starts with."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import plugin_data_pb2

    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_start_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content)
                    hparams = data.session_start_info.hparams
                    return {name: getattr(hparams[name], hparams[name].WhichOneof("kind"))
                            for name in hparams}
    return {}


def session_status(run_dir: Path) -> str:
    """The HParams session status a trial's TensorBoard run ends with (``STATUS_SUCCESS``…)."""
    from tensorboard.backend.event_processing.event_file_loader import EventFileLoader
    from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2

    for path in sorted(run_dir.glob("events.out.tfevents.*")):
        for event in EventFileLoader(str(path)).Load():
            for value in event.summary.value:
                if value.tag == "_hparams_/session_end_info":
                    data = plugin_data_pb2.HParamsPluginData.FromString(
                        value.metadata.plugin_data.content)
                    return api_pb2.Status.Name(data.session_end_info.status)
    return "none"
