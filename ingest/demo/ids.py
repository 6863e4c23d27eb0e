"""Ids made from a seeded generator's bits, as Arrow strings, without a Python object per id.

Event ids are UUIDv7 (RFC 9562): the event's millisecond up front, so they sort by time as
`warehouse.new_event_id()`'s do, and the rest from the generator, so a seed always makes
the same ids.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

_HEX = np.frombuffer(b"0123456789abcdef", dtype=np.uint8)
_DASHES_AFTER = (8, 12, 16, 20)  # hex digits before each dash of a UUID's text


def random_bytes(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """An (n, width) matrix of random bytes."""
    return rng.integers(0, 256, size=(n, width), dtype=np.uint8)


def uuid7_bytes(rng: np.random.Generator, ms: np.ndarray) -> np.ndarray:
    """16 bytes per millisecond timestamp: version 7, RFC variant, random bits from `rng`."""
    raw = random_bytes(rng, len(ms), 16)
    ms = ms.astype(">u8").view(np.uint8).reshape(-1, 8)
    raw[:, :6] = ms[:, 2:]  # the low 48 bits, big-endian
    raw[:, 6] = 0x70 | (raw[:, 6] & 0x0F)
    raw[:, 8] = 0x80 | (raw[:, 8] & 0x3F)
    return raw


def as_uuids(raw: np.ndarray) -> pa.StringArray:
    """16-byte rows as canonical UUID text (8-4-4-4-12)."""
    digits = _hex_digits(raw)
    parts = np.split(digits, _DASHES_AFTER, axis=1)
    dash = np.full((len(raw), 1), ord("-"), dtype=np.uint8)
    pieces = [parts[0]]
    for part in parts[1:]:
        pieces += [dash, part]
    return _fixed_width_strings(np.concatenate(pieces, axis=1))


def as_prefixed_hex(raw: np.ndarray, prefix: str) -> pa.StringArray:
    """Byte rows as `prefix` followed by their hex digits, e.g. sess_0190ab…"""
    digits = _hex_digits(raw)
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    rows = np.concatenate([np.broadcast_to(head, (len(raw), len(head))), digits], axis=1)
    return _fixed_width_strings(rows)


def _hex_digits(raw: np.ndarray) -> np.ndarray:
    digits = np.empty((raw.shape[0], raw.shape[1] * 2), dtype=np.uint8)
    digits[:, 0::2] = _HEX[raw >> 4]
    digits[:, 1::2] = _HEX[raw & 0x0F]
    return digits


def _fixed_width_strings(rows: np.ndarray) -> pa.StringArray:
    """One string per row of an (n, width) matrix of ASCII bytes, built straight from buffers."""
    n, width = rows.shape
    offsets = np.arange(0, (n + 1) * width, width, dtype=np.int32)
    data = np.ascontiguousarray(rows).tobytes()
    return pa.StringArray.from_buffers(n, pa.py_buffer(offsets), pa.py_buffer(data))


def repeated(text: str, n: int) -> pa.StringArray:
    """`text`, n times."""
    one = np.frombuffer(text.encode(), dtype=np.uint8)
    return _fixed_width_strings(np.broadcast_to(one, (n, len(one))))
