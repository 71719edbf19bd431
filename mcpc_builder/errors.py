"""One error type for bad input: it always names the file and, where known, the record."""

from __future__ import annotations


class DataError(ValueError):
    """Bad input data. ``str(err)`` reads ``<file>: <record>: <what is wrong>``."""

    def __init__(self, path, message: str, record: str | None = None):
        self.path = str(path)
        self.record = record
        self.message = message
        where = f"{self.path}: {record}" if record else self.path
        super().__init__(f"{where}: {message}")
