"""Decode an annotation JSON file into typed msgspec Structs, with errors that name the file.

msgspec decodes straight into Structs that declare only the fields a reader needs (the rest, e.g.
COCO segmentations, are skipped while parsing): on COCO-train (267 MB) that is ~2x faster and
~40% less memory than ``json.load``. Files written by Python's ``json.dump`` may hold the
non-standard tokens NaN / Infinity, or numbers beyond float range; for those (only) we re-parse
with the standard library so such records can be skipped and counted instead of failing the file.

Bulky per-record number arrays (COCO keypoints: 51 numbers per person) can be declared
``msgspec.Raw`` and turned into one numpy array by ``number_arrays``, a thousand records at a
time: a Python float costs 32 bytes where the array holds 8, so the millions of them never exist
at once. ``mapped_file`` lets the parser read a large file in place (a memory map, no copy).
"""

from __future__ import annotations

import gc
import json
import mmap
import os
import re
from contextlib import contextmanager
from itertools import chain
from pathlib import Path
from typing import Annotated, Sequence, TypeVar

import msgspec
import numpy as np

from ..errors import DataError

T = TypeVar("T")

_AT_PATH = re.compile(r"^(?P<what>.*?) - at `(?P<where>[^`]*)`$")
_BYTE = re.compile(r"\(byte (?P<byte>\d+)\)")
_NON_STANDARD = (b"NaN", b"Inf", b"-In", b"-Na")


def read_bytes(path: Path) -> bytes:
    """The file's bytes; DataError naming it if it is missing or unreadable."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(path, "annotation file not found") from None
    except IsADirectoryError:
        raise DataError(path, "expected an annotation file, found a directory") from None
    except OSError as err:
        raise DataError(path, f"cannot read: {err.strerror or err}") from None


@contextmanager
def mapped_file(path: Path):
    """The file's bytes as a read-only memory map (b"" if empty), unmapped on exit; DataError
    naming it if it is missing or unreadable.

    The parser reads the page cache in place: no 250 MB copy into a bytes object first (COCO-train:
    ~0.15 s). Objects that still view the map on exit (``msgspec.Raw``) keep it alive until they
    go.
    """
    try:
        with open(path, "rb") as fh:
            size = os.fstat(fh.fileno()).st_size
            data = mmap.mmap(fh.fileno(), 0, access=mmap.ACCESS_READ) if size else b""
    except FileNotFoundError:
        raise DataError(path, "annotation file not found") from None
    except IsADirectoryError:
        raise DataError(path, "expected an annotation file, found a directory") from None
    except (OSError, ValueError) as err:
        raise DataError(path, f"cannot read: {getattr(err, 'strerror', None) or err}") from None
    try:
        yield data
    finally:
        if isinstance(data, mmap.mmap):
            try:
                data.close()
            except BufferError:
                pass  # still viewed: unmapped when the last view goes


@contextmanager
def gc_paused():
    """Pause the cyclic garbage collector while millions of acyclic objects are created.

    Decoding COCO-train allocates ~13M floats in ~300k lists; each allocation burst triggers a
    collection that traverses everything alive, which costs more than the parse itself.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def decode_json(path: Path, type_: type[T], expected: str,
                data: bytes | mmap.mmap | None = None) -> T:
    """Decode ``path`` as ``type_``.

    Arguments:
        expected: a short description of the expected top level, for the error message
            (e.g. "a JSON object with 'images' and 'annotations'").
        data: the file's bytes when already read (default: read ``path``).
    Raises DataError naming the file, and the byte offset or JSON path of the fault.
    """
    if data is None:
        data = read_bytes(path)
    try:
        with gc_paused():
            return msgspec.json.decode(data, type=type_)
    except msgspec.ValidationError as err:
        if "out of range" in str(err):
            return _decode_lenient(path, data, type_, expected, err)
        raise _validation_error(path, err, expected) from None
    except msgspec.DecodeError as err:
        match = _BYTE.search(str(err))
        if match and data[int(match["byte"]):int(match["byte"]) + 3] in _NON_STANDARD:
            return _decode_lenient(path, data, type_, expected, err)
        raise _decode_error(path, data, err) from None


_NULL = b"null"
# Numbers are decoded as ``int | float`` (ints within int64) and converted to float64 by numpy:
# msgspec accepts and rejects exactly the values it does for ``float`` (an integer token is a
# number in both; one beyond int64 fails here, and the caller's full decode then reads or
# rejects it exactly), but leaves integers as Python ints, and the small ones COCO is full of
# (visibility flags, the zeros of unlabelled joints) are shared objects, not fresh floats: ~1.4x
# faster. int64 -> float64 is correctly rounded, as msgspec's own conversion is, so the values
# are the same to the bit.
_INT64 = Annotated[int, msgspec.Meta(ge=-(2 ** 63), le=2 ** 63 - 1)]
_NUMBER_LISTS = list[list[_INT64 | float] | None]


def number_arrays(raws: Sequence[msgspec.Raw | None], width: int, wanted: np.ndarray,
                  chunk: int = 1024) -> tuple[np.ndarray, np.ndarray]:
    """Decode per-record JSON values that must be null or arrays of numbers, in chunks.

    Each value is checked exactly as a ``list[float] | None`` field would be (msgspec's rules and
    float parsing), so the numbers are the same as a full decode gives.

    Arguments:
        raws: (N,) the records' raw JSON values (``msgspec.Raw``); None for an absent field.
        width: numbers per record that the caller wants values for (e.g. 51).
        wanted: (N,) bool, records whose values to return (those of another length are not).
    Returns:
        lengths: (N,) int64, numbers in each record's array; -1 where null or absent.
        values: (K, width) float64, the numbers of the records ``wanted & (lengths == width)``,
            in record order.
    Raises msgspec.ValidationError if a value is not null nor an array of numbers, or a number
    is out of float range; the caller decodes the whole file the usual way then, for the exact
    error (or the lenient path) a full decode gives.
    """
    n = len(raws)
    lengths = np.empty(n, np.int64)
    values = np.empty((int(np.count_nonzero(wanted)), width), np.float64)
    k = 0
    for start in range(0, n, chunk):
        part = raws[start:start + chunk]
        m = len(part)
        if None in part:
            part = [_NULL if raw is None else raw for raw in part]
        arrays = msgspec.json.decode(b"[" + b",".join(part) + b"]", type=_NUMBER_LISTS)
        if None in arrays:
            lens = np.fromiter((-1 if a is None else len(a) for a in arrays), np.int64, count=m)
        else:
            lens = np.fromiter(map(len, arrays), np.int64, count=m)
        lengths[start:start + m] = lens
        take = np.flatnonzero(wanted[start:start + m] & (lens == width))
        values[k:k + len(take)] = np.fromiter(
            chain.from_iterable([arrays[i] for i in take]) if len(take) < m
            else chain.from_iterable(arrays), np.float64,
            count=len(take) * width).reshape(-1, width)
        k += len(take)
    return lengths, values[:k]


def _decode_lenient(path: Path, data: bytes | mmap.mmap, type_: type[T], expected: str,
                    first: Exception) -> T:
    try:
        obj = json.loads(bytes(data))
    except (ValueError, RecursionError):
        raise _decode_error(path, data, first) from None
    try:
        return msgspec.convert(obj, type=type_)
    except msgspec.ValidationError as err:
        raise _validation_error(path, err, expected) from None


def _decode_error(path: Path, data: bytes | mmap.mmap, err: Exception) -> DataError:
    text = str(err)
    if "truncated" in text:
        return DataError(path, f"invalid JSON: file cut short at byte {len(data)} "
                               "(truncated download or copy?)")
    return DataError(path, f"invalid JSON: {text}")


def _validation_error(path: Path, err: msgspec.ValidationError, expected: str) -> DataError:
    text = str(err)
    match = _AT_PATH.match(text)
    what, where = (match["what"], match["where"]) if match else (text, "$")
    if where == "$":
        return DataError(path, f"wrong structure: {what}; expected {expected}")
    return DataError(path, f"wrong structure: {what}; expected {expected}", record=where)
