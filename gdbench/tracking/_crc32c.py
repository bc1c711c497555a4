"""TensorBoard's masked CRC32C of its records, computed with NumPy for many records at once."""

from __future__ import annotations

import functools
from typing import Any, Sequence

import numpy as np

__all__ = ["crc32c_of_bytes", "mask", "masked_crc32c", "masked_crc32c_of_rows"]


def _crc32c_table() -> np.ndarray:
    table = np.arange(256, dtype=np.uint32)
    for _ in range(8):
        table = np.where(table & 1, (table >> 1) ^ np.uint32(0x82F63B78), table >> 1)
    return table.astype(np.uint32)


_CRC32C_TABLE = _crc32c_table()
_CRC32C_LIST = _CRC32C_TABLE.tolist()


def masked_crc32c(rows: np.ndarray) -> np.ndarray:
    """TensorBoard's masked CRC32C of every row of a ``uint8`` array, one column at a time."""
    return mask(_crc32c_unmasked(rows))


def _crc32c_unmasked(rows: np.ndarray) -> np.ndarray:
    crc = np.full(len(rows), 0xFFFFFFFF, dtype=np.uint32)
    for column in rows.T:
        crc = _CRC32C_TABLE[(crc ^ column) & 0xFF] ^ (crc >> 8)
    return crc ^ np.uint32(0xFFFFFFFF)


def mask(crc: Any) -> Any:
    """TensorBoard's mask of a CRC (an integer, or an array of ``uint32``)."""
    return (((crc >> 15) | (crc << 17)) + 0xA282EAD8) & 0xFFFFFFFF


def masked_crc32c_of_rows(rows: np.ndarray, varying: Sequence[int]) -> np.ndarray:
    """:func:`masked_crc32c` of rows that differ only in the columns ``varying``.

    A CRC of messages of one length is affine in their bits: a row's is the
    CRC of the rows' common bytes (``varying`` zeroed) XOR each varying
    byte's own contribution at its place (:func:`_crc32c_contributions`), a
    table look-up a column rather than a pass over every column.
    """
    base = rows[0].copy()
    base[list(varying)] = 0
    crc = np.uint32(crc32c_of_bytes(base.tobytes()))
    for column in varying:
        crc = crc ^ _crc32c_contributions(rows.shape[1], column)[rows[:, column]]
    return mask(crc)


def crc32c_of_bytes(data: bytes) -> int:
    """The CRC32C of one message, unmasked (Python integers: quicker than arrays of one)."""
    table = _CRC32C_LIST
    crc = 0xFFFFFFFF
    for byte in data:
        crc = table[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


@functools.lru_cache(maxsize=1024)
def _crc32c_contributions(length: int, column: int) -> np.ndarray:
    """Byte value → what it adds (XOR) to the CRC32C of a message of ``length`` bytes
    when it stands at ``column`` in place of a zero."""
    crc = _CRC32C_TABLE.copy()
    for _ in range(length - column - 1):
        crc = _CRC32C_TABLE[crc & 0xFF] ^ (crc >> 8)
    return crc
