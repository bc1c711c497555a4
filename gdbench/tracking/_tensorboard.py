"""TensorBoard side of a study: an HParams experiment, one session per trial.

Layout under the study's TensorBoard directory::

    events.out.tfevents.hparams_config   the experiment: every hyperparameter's
                                         domain and every metric
    trial-0007/events.out.tfevents.*     trial 7: its session (hyperparameters,
                                         status), per-epoch scalars, histograms,
                                         images, final metrics

Trial 7's session is in the HParams group ``<study>/trial-0007``, so that a
dashboard over a folder of several studies keeps each study's trials apart.

Events are written with TensorBoard's own protos and record writer, straight to
a file, without TensorFlow's summary machinery: no TensorFlow import, no writer
thread, and a flush puts every event so far into the operating system's hands.

A whole curve (:meth:`TensorBoardTrial.log_curves`, a population trial's
thousand epochs) is written as one block: its events are the bytes of
TensorBoard's own scalar proto with each value put in its place, and their
records' CRC32C checksums are computed for every record at once. One proto
from ``tensor_util.make_tensor_proto`` costs about 40 µs, and TensorBoard's
record writer computes each checksum byte by byte in Python: a thousand epochs
of two metrics cost a tenth of a second that way, and about a millisecond so.
"""

from __future__ import annotations

import functools
import itertools
import os
import socket
import struct
import time
from pathlib import Path
from typing import BinaryIO, Iterable, Mapping, Sequence

import numpy as np
from tensorboard.compat.proto import event_pb2, summary_pb2
from tensorboard.plugins.histogram import metadata as histogram_metadata
from tensorboard.plugins.hparams import api_pb2, plugin_data_pb2
from tensorboard.plugins.hparams import metadata as hparams_metadata
from tensorboard.plugins.image import metadata as image_metadata
from tensorboard.plugins.scalar import metadata as scalar_metadata
from tensorboard.plugins.text import metadata as text_metadata
from tensorboard.summary.writer.record_writer import RecordWriter
from tensorboard.util import tensor_util

from gdbench.tracking._domain import HParamDomain, HParamValue

#: Buckets of every histogram, as TensorBoard's own default.
HISTOGRAM_BUCKETS = 30

#: The experiment file: one per study directory, replaced (not appended to) by
#: each invocation and worker, so the HParams dashboard reads a single config.
CONFIG_FILE_NAME = "events.out.tfevents.hparams_config"

_SCALAR_METADATA = scalar_metadata.create_summary_metadata(display_name=None, description=None)
_HISTOGRAM_METADATA = histogram_metadata.create_summary_metadata(
    display_name=None, description=None
)
_IMAGE_METADATA = image_metadata.create_summary_metadata(display_name=None, description=None)
_TEXT_METADATA = text_metadata.create_summary_metadata(display_name=None, description=None)
_file_serial = itertools.count()


def _event_file_name() -> str:
    """A new event file's name, unique across processes and machines sharing a folder."""
    return (f"events.out.tfevents.{int(time.time()):010d}."
            f"{socket.gethostname()}.{os.getpid()}.{next(_file_serial)}")


def session_name(number: int) -> str:
    """The run directory and HParams session of trial ``number``, sortable by name."""
    return f"trial-{number:04d}"


def session_group(study_name: str, number: int) -> str:
    """The HParams session group of trial ``number``: ``<study>/trial-0007``.

    The dashboard merges sessions of one group name into one row; with the
    study in the name, a log directory holding several studies keeps their
    trials apart.
    """
    return f"{study_name}/{session_name(number)}"


class TensorBoardStudy:
    """The HParams experiment of one study, in ``directory``.

    Args:
        directory: the study's TensorBoard log directory, created if missing.
        study_name: the study, the first part of its sessions' group names.
    """

    def __init__(self, directory: Path, study_name: str) -> None:
        self.directory = directory
        self.study_name = study_name
        self._domains: dict[str, HParamDomain] = {}

    def start(self, domains: Mapping[str, HParamDomain], metrics: Sequence[str]) -> None:
        """Write the experiment config: every hyperparameter's domain and every metric.

        Without this config TensorBoard infers the hyperparameters from the
        sessions, as untyped values; with it the dashboard lists every
        hyperparameter (the varying ones first) and every metric.
        """
        self._domains = dict(domains)
        experiment = api_pb2.Experiment(
            hparam_infos=[_hparam_info(name, domain) for name, domain in domains.items()],
            metric_infos=[api_pb2.MetricInfo(name=api_pb2.MetricName(tag=m)) for m in metrics],
            time_created_secs=time.time(),
        )
        value = _hparams_value(
            hparams_metadata.EXPERIMENT_TAG,
            plugin_data_pb2.HParamsPluginData(experiment=experiment),
        )
        self.directory.mkdir(parents=True, exist_ok=True)
        # Several workers may write at once: each writes its own temporary file
        # (a name without "tfevents", invisible to TensorBoard) and renames it.
        partial = self.directory / f".hparams_config.{socket.gethostname()}.{os.getpid()}"
        with open(partial, "wb") as file:
            events = _EventFile(file)
            events.write([value], step=0)
        os.replace(partial, self.directory / CONFIG_FILE_NAME)

    def start_trial(self, number: int, hparams: Mapping[str, HParamValue]) -> TensorBoardTrial:
        """Open trial ``number``'s run directory and start its HParams session.

        Args:
            number: the trial number.
            hparams: the trial's hyperparameters, every one declared in
                :meth:`start`'s ``domains``.
        """
        values = {
            name: tensorboard_value(self._domains[name], value) for name, value in hparams.items()
        }
        return TensorBoardTrial(
            self.directory / session_name(number), session_group(self.study_name, number), values
        )


    def log_png(self, number: int, step: int, tag: str, png: bytes, width: int,
                height: int) -> None:
        """A PNG image of trial ``number``, finished: a new event file in its run directory."""
        directory = self.directory / session_name(number)
        directory.mkdir(parents=True, exist_ok=True)
        with open(directory / _event_file_name(), "wb") as file:
            _EventFile(file).write([_image_value(tag, png, width, height)], step)


class TensorBoardTrial:
    """One HParams session: a run directory with one event file.

    Every ``log_*`` method flushes, so a killed trial loses nothing already logged.

    Args:
        directory: the trial's run directory, created if missing.
        group: the session's group name in the HParams dashboard.
        hparams: the trial's hyperparameters, as :func:`tensorboard_value` gives them.
    """

    def __init__(
        self, directory: Path, group: str, hparams: Mapping[str, bool | float | str]
    ) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._events = _EventFile(open(directory / _event_file_name(), "wb"))
        start_info = plugin_data_pb2.SessionStartInfo(
            group_name=group, start_time_secs=time.time()
        )
        for name, value in hparams.items():
            _set_proto_value(start_info.hparams[name], value)
        self._events.write(
            [
                _hparams_value(
                    hparams_metadata.SESSION_START_INFO_TAG,
                    plugin_data_pb2.HParamsPluginData(session_start_info=start_info),
                )
            ],
            step=0,
        )
        self._events.flush()

    def log_scalars(self, step: int, metrics: Mapping[str, float]) -> None:
        """One scalar per metric at ``step``."""
        self._events.write([_scalar_value(tag, value) for tag, value in metrics.items()], step)
        self._events.flush()

    def log_curves(self, curves: Mapping[str, np.ndarray]) -> None:
        """Every epoch of each curve at once: step ``e`` holds ``curve[e]`` of every metric."""
        self._events.write_records(_scalar_events(curves, time.time()))
        self._events.flush()

    def log_histograms(self, step: int, tensors: Mapping[str, np.ndarray]) -> None:
        """One histogram per tensor at ``step``; NaN and infinite entries are left out."""
        self._events.write([_histogram_value(tag, array) for tag, array in tensors.items()], step)
        self._events.flush()

    def log_png(self, step: int, tag: str, png: bytes, width: int, height: int) -> None:
        """A PNG image at ``step``."""
        self._events.write([_image_value(tag, png, width, height)], step)
        self._events.flush()

    def finish(
        self, step: int, metrics: Mapping[str, float], texts: Mapping[str, str], success: bool
    ) -> None:
        """Write the final metrics and texts, end the session and close the file."""
        values = [_scalar_value(tag, value) for tag, value in metrics.items()]
        values += [_text_value(tag, text) for tag, text in texts.items()]
        end_info = plugin_data_pb2.SessionEndInfo(
            status=api_pb2.STATUS_SUCCESS if success else api_pb2.STATUS_FAILURE,
            end_time_secs=time.time(),
        )
        values.append(
            _hparams_value(
                hparams_metadata.SESSION_END_INFO_TAG,
                plugin_data_pb2.HParamsPluginData(session_end_info=end_info),
            )
        )
        try:
            self._events.write(values, step)
        finally:
            self._events.close()


def tensorboard_value(domain: HParamDomain, value: HParamValue) -> bool | float | str:
    """``value`` as the HParams dashboard stores it under ``domain``.

    Numbers become floats; a categorical keeps its values' type when all its
    choices share one (bool, number or string) and becomes a string otherwise,
    since a dashboard column holds a single type.
    """
    if domain.kind != "categorical":
        return float(value)  # type: ignore[arg-type]
    kind = _categorical_type(domain.choices)
    if kind == api_pb2.DATA_TYPE_BOOL:
        return bool(value)
    if kind == api_pb2.DATA_TYPE_FLOAT64:
        return float(value)  # type: ignore[arg-type]
    return value if isinstance(value, str) else str(value)


class _EventFile:
    """TensorBoard records appended to an open binary file, synchronously."""

    def __init__(self, file: BinaryIO) -> None:
        self._file = file
        self._records = RecordWriter(file)
        self._write_event(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2"))

    def write(self, values: Iterable[summary_pb2.Summary.Value], step: int) -> None:
        event = event_pb2.Event(wall_time=time.time(), step=step)
        event.summary.value.extend(values)
        self._write_event(event)

    def write_records(self, records: bytes) -> None:
        """Append records already framed (length, checksums) as TensorBoard reads them."""
        self._file.write(records)

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()

    def _write_event(self, event: event_pb2.Event) -> None:
        self._records.write(event.SerializeToString())


def _hparam_info(name: str, domain: HParamDomain) -> api_pb2.HParamInfo:
    info = api_pb2.HParamInfo(name=name, differs=domain.varies)
    if domain.kind == "categorical":
        info.type = _categorical_type(domain.choices)
        values = dict.fromkeys(tensorboard_value(domain, c) for c in domain.choices)
        info.domain_discrete.extend(values)
        return info
    info.type = api_pb2.DATA_TYPE_FLOAT64
    info.domain_interval.min_value = float(domain.low)  # type: ignore[arg-type]
    info.domain_interval.max_value = float(domain.high)  # type: ignore[arg-type]
    scale = "log scale" if domain.log else "linear scale"
    info.description = f"{domain.kind} in [{domain.low}, {domain.high}], {scale}"
    return info


def _categorical_type(choices: Sequence[HParamValue]) -> int:
    if all(isinstance(c, bool) for c in choices):
        return api_pb2.DATA_TYPE_BOOL
    if all(isinstance(c, (int, float)) and not isinstance(c, bool) for c in choices):
        return api_pb2.DATA_TYPE_FLOAT64
    return api_pb2.DATA_TYPE_STRING


def _set_proto_value(proto: object, value: bool | float | str) -> None:
    if isinstance(value, bool):
        proto.bool_value = value  # type: ignore[attr-defined]
    elif isinstance(value, float):
        proto.number_value = value  # type: ignore[attr-defined]
    else:
        proto.string_value = value  # type: ignore[attr-defined]


def _hparams_value(tag: str, data: plugin_data_pb2.HParamsPluginData) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=hparams_metadata.create_summary_metadata(data),
        tensor=hparams_metadata.NULL_TENSOR,
    )


def _scalar_value(tag: str, value: float) -> summary_pb2.Summary.Value:
    # float32: TensorBoard's fast loader drops float64 scalars without a word.
    # A diverged loss beyond float32's range is meant to show as ±inf.
    with np.errstate(over="ignore"):
        single = np.float32(value)
    return summary_pb2.Summary.Value(
        tag=tag, metadata=_SCALAR_METADATA, tensor=tensor_util.make_tensor_proto(single)
    )


def _varint(value: int) -> bytes:
    """Protobuf's base-128 varint of an integer >= 0."""
    out = bytearray()
    while value > 0x7F:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


@functools.lru_cache(maxsize=256)
def _scalar_template(tag: str) -> bytes:
    """``_scalar_value(tag, 0.0)`` serialized, its float32 value the last four bytes.

    The tensor field is put after the others (fields may come in any order):
    a value's bytes are this template with those four bytes replaced.
    """
    tensor = tensor_util.make_tensor_proto(np.float32(0.0)).SerializeToString()
    if not tensor.endswith(b"\x00\x00\x00\x00"):
        raise RuntimeError("TensorBoard's scalar tensor proto no longer ends with its value")
    head = summary_pb2.Summary.Value(tag=tag, metadata=_SCALAR_METADATA).SerializeToString()
    tensor_field = b"\x42" + _varint(len(tensor)) + tensor  # field 8, length-delimited
    expected = _scalar_value(tag, 0.0)
    parsed = summary_pb2.Summary.Value.FromString(head + tensor_field)
    if parsed != expected:
        raise RuntimeError("the scalar template does not parse as TensorBoard's scalar value")
    return head + tensor_field


def _scalar_events(curves: Mapping[str, np.ndarray], wall_time: float) -> bytes:
    """Framed records of one event per step, each holding every curve's value at that step."""
    tags = list(curves)
    values = np.stack([np.asarray(curves[tag], dtype=np.float64) for tag in tags], axis=1)
    with np.errstate(over="ignore"):
        singles = values.astype("<f4")
    templates = [_scalar_template(tag) for tag in tags]
    summary = b"".join(b"\x0a" + _varint(len(t)) + t for t in templates)  # Summary.value
    # Where each value's four bytes sit in the summary.
    offsets, position = [], 0
    for template in templates:
        position += 1 + len(_varint(len(template))) + len(template)
        offsets.append(position - 4)
    head = b"\x09" + struct.pack("<d", wall_time)  # Event.wall_time
    tail = b"\x2a" + _varint(len(summary)) + summary  # Event.summary
    blocks = []
    steps = len(values)
    # Steps of one varint length make records of one length: one array each.
    start = 0
    while start < steps:
        width = len(_varint(start))
        stop = min(steps, 1 << (7 * width))
        count = stop - start
        data_length = len(head) + 1 + width + len(tail)
        record = np.empty((count, 16 + data_length), dtype=np.uint8)
        record[:, :8] = np.frombuffer(struct.pack("<Q", data_length), dtype=np.uint8)
        record[:, 8:12] = np.frombuffer(struct.pack("<I", _masked_crc32c(
            np.frombuffer(struct.pack("<Q", data_length), dtype=np.uint8)[None])[0]),
            dtype=np.uint8)
        data = record[:, 12:12 + data_length]
        data[:, :len(head)] = np.frombuffer(head, dtype=np.uint8)
        data[:, len(head)] = 0x10  # Event.step
        step = np.arange(start, stop, dtype=np.int64)
        for byte in range(width):
            low = (step >> (7 * byte)) & 0x7F
            data[:, len(head) + 1 + byte] = low | (0x80 if byte < width - 1 else 0)
        summary_at = len(head) + 1 + width
        data[:, summary_at:] = np.frombuffer(tail, dtype=np.uint8)
        summary_at += len(tail) - len(summary)
        for column, offset in enumerate(offsets):
            at = summary_at + offset
            data[:, at:at + 4] = singles[start:stop, column:column + 1].view(np.uint8)
        record[:, 12 + data_length:] = _masked_crc32c(data).astype("<u4")[:, None].view(np.uint8)
        blocks.append(record.tobytes())
        start = stop
    return b"".join(blocks)


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table.astype(np.uint32)


_CRC32C_TABLE = _crc32c_table()


def _masked_crc32c(rows: np.ndarray) -> np.ndarray:
    """TensorBoard's masked CRC32C of every row of a ``uint8`` array, one column at a time."""
    crc = np.full(len(rows), 0xFFFFFFFF, dtype=np.uint32)
    for column in rows.T:
        crc = _CRC32C_TABLE[(crc ^ column) & 0xFF] ^ (crc >> 8)
    crc ^= np.uint32(0xFFFFFFFF)
    return ((crc >> 15) | (crc << 17)) + np.uint32(0xA282EAD8)


def _histogram_value(tag: str, array: np.ndarray) -> summary_pb2.Summary.Value:
    data = np.asarray(array, dtype=np.float64).ravel()
    data = data[np.isfinite(data)]
    if data.size == 0:
        buckets = np.zeros((HISTOGRAM_BUCKETS, 3))
    else:
        counts, edges = np.histogram(data, bins=HISTOGRAM_BUCKETS)
        buckets = np.stack([edges[:-1], edges[1:], counts], axis=1)
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=_HISTOGRAM_METADATA,
        tensor=tensor_util.make_tensor_proto(buckets, dtype=np.float64),
    )


def _image_value(tag: str, png: bytes, width: int, height: int) -> summary_pb2.Summary.Value:
    # The image plugin's tensor layout: [width, height, encoded image...].
    images = np.array([str(width).encode(), str(height).encode(), png], dtype=object)
    return summary_pb2.Summary.Value(
        tag=tag, metadata=_IMAGE_METADATA, tensor=tensor_util.make_tensor_proto(images)
    )


def _text_value(tag: str, text: str) -> summary_pb2.Summary.Value:
    return summary_pb2.Summary.Value(
        tag=tag,
        metadata=_TEXT_METADATA,
        tensor=tensor_util.make_tensor_proto(text, dtype=np.object_),
    )
