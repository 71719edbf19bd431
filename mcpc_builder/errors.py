"""Bad input as one error line: the error types, and the one wrapper every entry point uses.

``DataError`` is bad input data; ``ConfigError`` a bad config file or ``--set`` value;
``UsageError`` a bad combination of command-line options. Each reads
``<file>: <record>: <what is wrong>`` (``UsageError``: just what is wrong).

``cli_entry(prog)`` wraps an entry point's ``main(argv) -> int`` so that a known failure prints
ONE line ``<prog>: error: <file>: <record>: <what>`` to stderr and returns 2, never a traceback:

* ``DataError`` / ``ConfigError`` / ``UsageError``;
* ``FileNotFoundError``, ``PermissionError``, ``IsADirectoryError``, ``NotADirectoryError``,
  ``FileExistsError`` and any ``OSError`` carrying a file name or a known errno (ENOSPC, EROFS,
  EACCES, EDQUOT, ...): the file name and the system's words (``No space left on device``);
* ``yaml.YAMLError``: the file, line and column of the problem;
* ``pyarrow.ArrowInvalid`` and the like when the message names a file (``reading(path)`` below
  makes every error inside it name the file);
* ``SystemExit("message")`` raised by older code: the message as the error line, exit 2.

``KeyboardInterrupt`` prints ``<prog>: interrupted`` and returns 130. argparse's own errors
(``SystemExit(2)`` with the usage line) pass through unchanged. Anything else is a bug of ours:
one line with the exception type and message plus ``set WSP_DEBUG=1 for the traceback``, exit 1;
with ``WSP_DEBUG=1`` in the environment the exception propagates with its traceback.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import sys
from collections.abc import Callable, Iterator

EXIT_BAD_INPUT = 2
EXIT_BUG = 1
EXIT_INTERRUPTED = 130
DEBUG_ENV = "WSP_DEBUG"


class DataError(ValueError):
    """Bad input data. ``str(err)`` reads ``<file>: <record>: <what is wrong>``."""

    def __init__(self, path, message: str, record: str | None = None):
        self.path = str(path)
        self.record = record
        self.message = message
        where = f"{self.path}: {record}" if record else self.path
        super().__init__(f"{where}: {message}")

    def __reduce__(self):
        # Rebuilt from its three parts when it crosses a process boundary (builder worker
        # processes, DataLoader workers): the default would call cls(one_string) and fail.
        return type(self), (self.path, self.message, self.record)


class ConfigError(DataError):
    """A bad config: ``path`` is the YAML file (or ``--set``), ``record`` the dotted key."""


class UsageError(ValueError):
    """Command-line options that cannot work together (argparse checks each one alone)."""


def check_number(option: str, value, low=None, high=None, what: str = "") -> None:
    """Refuse a command-line number outside ``[low, high]`` (or not finite) with one
    ``UsageError`` naming the option: ``--workers: must be at least 1, got 0``."""
    import math

    if value is None:
        return
    if isinstance(value, float) and not math.isfinite(value):
        raise UsageError(f"{option}: must be a finite number, got {value}")
    if low is not None and value < low:
        raise UsageError(f"{option}: must be at least {low}{what}, got {value}")
    if high is not None and value > high:
        raise UsageError(f"{option}: must be at most {high}{what}, got {value}")


# errno -> what the user should read; the OS words ("No space left on device") follow the file.
_KNOWN_ERRNO = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.ENOENT, errno.EISDIR,
                errno.ENOTDIR, errno.EEXIST, errno.ENAMETOOLONG, errno.ELOOP, errno.EMFILE,
                errno.ENOTEMPTY, errno.EXDEV, errno.EIO, errno.EFBIG}
if hasattr(errno, "EDQUOT"):
    _KNOWN_ERRNO.add(errno.EDQUOT)


def _os_error_line(err: OSError) -> str | None:
    """``<file>: <what>`` for an OSError a user can act on, else None (an unexpected OSError)."""
    if err.filename is None:
        # Raised by our own code with a message only (``FileNotFoundError("x: not found")``),
        # or by the OS with no file (disk full while writing an already-open file).
        if err.errno in _KNOWN_ERRNO and err.strerror:
            return err.strerror
        if type(err) in (FileNotFoundError, PermissionError, IsADirectoryError,
                         NotADirectoryError, FileExistsError) and err.args:
            return str(err)
        return None
    what = err.strerror or (str(err.args[0]) if err.args else type(err).__name__)
    # A rename (write-then-rename) names the user's target, not our temporary file.
    where = _user_path(os.fsdecode(err.filename2 if err.filename2 is not None else err.filename))
    if isinstance(err, FileExistsError) and os.path.exists(where) and not os.path.isdir(where):
        what = f"{what} (a file where a folder is needed)"
    return f"{where}: {what}"




def _user_path(path: str) -> str:
    """``dir/x.json`` for the temporary sibling ``dir/.x.json.<pid>.tmp`` of an atomic write."""
    from .atomic import temp_target

    head, tail = os.path.split(path)
    target = temp_target(tail)
    return os.path.join(head, target) if target else path


def _yaml_line(err: Exception) -> str:
    """``<file>: line L, column C: <problem>`` of a yaml.YAMLError (the file from its mark)."""
    mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
    problem = " ".join(str(p) for p in (getattr(err, "context", None),
                                        getattr(err, "problem", None)) if p) or str(err)
    if mark is None:
        return f"invalid YAML: {problem}"
    return f"{mark.name}: line {mark.line + 1}, column {mark.column + 1}: invalid YAML: {problem}"


def _arrow_error_types() -> tuple[type[BaseException], ...]:
    mod = sys.modules.get("pyarrow")  # only when something already imported pyarrow
    if mod is None:
        return ()
    return tuple(getattr(mod, n) for n in ("ArrowInvalid", "ArrowIOError", "ArrowTypeError",
                                           "ArrowNotImplementedError") if hasattr(mod, n))


_WORKER = "\nOriginal Traceback (most recent call last):"  # torch's ExceptionWrapper text
_KNOWN_NAMES = {"DataError", "ConfigError", "UsageError", "FileNotFoundError", "PermissionError",
                "IsADirectoryError", "NotADirectoryError", "FileExistsError", "ArrowInvalid",
                "ArrowIOError", "YAMLError", "ScannerError", "ParserError"}


def _worker_error(err: BaseException) -> tuple[str, str] | None:
    """(type name, message) of the exception a DataLoader worker re-raised in this process
    (as RuntimeError or the original type, with the worker's traceback as its message)."""
    text = str(err)
    if _WORKER not in text:
        return None
    last = [line for line in text.strip().splitlines() if line.strip()][-1].strip()
    name, sep, message = last.partition(": ")
    return (name.rsplit(".", 1)[-1], message) if sep else (type(err).__name__, last)


def error_line(err: BaseException) -> str | None:
    """The one-line message of a known bad-input failure (without ``prog: error:``), or None."""
    worker = _worker_error(err)
    if worker is not None:
        name, message = worker
        return message if name in _KNOWN_NAMES else None
    if isinstance(err, (DataError, UsageError)):
        return str(err)
    if isinstance(err, OSError):  # before Arrow: ArrowIOError is an OSError subclass
        line = _os_error_line(err)
        if line is not None:
            return line
    yaml = sys.modules.get("yaml")
    if yaml is not None and isinstance(err, yaml.YAMLError):
        return _yaml_line(err)
    if isinstance(err, _arrow_error_types()):
        return str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
    return None


@contextlib.contextmanager
def reading(path, record: str | None = None) -> Iterator[None]:
    """Turn any error raised while reading ``path`` into a ``DataError`` naming it.

    ``with reading(shard): table = pq.read_table(shard)`` makes a truncated Parquet file, bad
    JSON or a corrupt npz one line ``<shard>: <what the library said>`` instead of a traceback
    without a file name. DataError (already naming its file), KeyboardInterrupt and MemoryError
    pass through unchanged."""
    try:
        yield
    except (DataError, KeyboardInterrupt, MemoryError, SystemExit, GeneratorExit):
        raise
    except OSError as err:
        if err.filename is not None:
            raise
        raise DataError(path, _first_line(err), record) from err
    except Exception as err:  # noqa: BLE001 - the point is to name the file whatever broke
        raise DataError(path, _first_line(err), record) from err


def _first_line(err: BaseException) -> str:
    worker = _worker_error(err)
    if worker is not None:
        return f"{worker[0]} in a data loader worker: {worker[1]}"
    text = str(err).strip()
    first = text.splitlines()[0] if text else ""
    return f"{type(err).__name__}: {first}" if first else type(err).__name__


# Set by ``run_torchrun`` for its ranks: a file where they note the error lines already printed.
RANK_ERRORS_ENV = "WSP_RANK_ERRORS"


def _say(text: str) -> None:
    """Print ``text`` to stderr; under ``run_torchrun`` with several ranks, once per run: ranks
    that hit the same bad input (they read the same config and build) would each print the
    same line. A line no other rank printed is always printed."""
    path = os.environ.get(RANK_ERRORS_ENV)
    if not path or int(os.environ.get("WORLD_SIZE", "1") or 1) <= 1:
        print(text, file=sys.stderr, flush=True)
        return
    import fcntl

    try:
        with open(path, "a+", encoding="utf-8") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            f.seek(0)
            if text in f.read().splitlines():
                return
            f.write(text + "\n")
            f.flush()
            print(text, file=sys.stderr, flush=True)
    except OSError:  # the note file is gone or unwritable: print, never lose a line
        print(text, file=sys.stderr, flush=True)


def report(prog: str, err: BaseException) -> int:
    """Print the one line for ``err`` to stderr; the exit code to use."""
    if isinstance(err, KeyboardInterrupt):
        _say(f"{prog}: interrupted")
        return EXIT_INTERRUPTED
    line = error_line(err)
    if line is not None:
        _say(f"{prog}: error: {line}")
        return EXIT_BAD_INPUT
    _say(f"{prog}: error: unexpected {_first_line(err)} (set {DEBUG_ENV}=1 for the traceback)")
    return EXIT_BUG


def _debug() -> bool:
    return os.environ.get(DEBUG_ENV, "").strip().lower() not in ("", "0", "false", "no")


def run_cli(prog: str, main: Callable[..., int | None], *args, **kwargs) -> int:
    """``main(*args, **kwargs)`` with every failure reported as one line (see module doc)."""
    try:
        return int(main(*args, **kwargs) or 0)
    except SystemExit as exit_:
        code = exit_.code
        if code is None or isinstance(code, int):
            raise  # argparse (usage + exit 2), --help (0), or an explicit exit code
        print(f"{prog}: error: {code}", file=sys.stderr, flush=True)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt as err:
        return report(prog, err)
    except Exception as err:  # noqa: BLE001 - the last line of defence: no traceback for users
        if _debug():
            raise
        return report(prog, err)


def cli_entry(prog: str) -> Callable[[Callable[..., int | None]], Callable[..., int]]:
    """Decorator form of ``run_cli``: ``@cli_entry("mcpc-build") def main(argv=None): ...``."""
    def wrap(main: Callable[..., int | None]) -> Callable[..., int]:
        @functools.wraps(main)
        def entry(*args, **kwargs) -> int:
            return run_cli(prog, main, *args, **kwargs)
        entry.__wrapped_main__ = main  # the bare main, for tests that want the exception
        return entry
    return wrap


# torchrun whose own failure report (a launcher traceback and a box of N/A fields) is dropped:
# the ranks have each printed their one line already; a rank killed by a signal gets one line.
_TORCHRUN = """
import logging, signal, sys
logging.disable(logging.ERROR)
prog = sys.argv[1]
try:
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import main
    main(sys.argv[2:])
except ChildFailedError as err:
    failures = sorted(err.failures.items())
    codes = [failure.exitcode for _, failure in failures]
    if not any(c > 0 for c in codes):  # else the others were stopped by torchrun: not news
        for rank, failure in failures:
            print(f"{prog}: error: rank {rank} was killed by {failure.signal_name()}",
                  file=sys.stderr, flush=True)
    for code in (2, 130):
        if code in codes:
            sys.exit(code)
    sys.exit(max([c for c in codes if c > 0] or [1]))
except KeyboardInterrupt:
    sys.exit(130)
except Exception as err:
    print(f"{prog}: error: torchrun: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
    sys.exit(1)
"""


def run_torchrun(prog: str, cmd: list[str]) -> int:
    """Run ``[python, -m, torch.distributed.run, *args]`` (``cmd``) and return its exit code,
    with the launcher's own failure traceback replaced by the ranks' one-line errors (a line
    that several ranks hit is printed once): a rank that exits 2 (bad input) makes this
    return 2."""
    import subprocess
    import tempfile

    if cmd[1:3] != ["-m", "torch.distributed.run"]:
        raise ValueError(f"not a torchrun command: {cmd[:3]}")
    with tempfile.NamedTemporaryFile(prefix="wsp-rank-errors-") as notes:
        env = {**os.environ, RANK_ERRORS_ENV: notes.name}
        return subprocess.call([cmd[0], "-c", _TORCHRUN, prog, *cmd[3:]], env=env)


__all__ = ["ConfigError", "DataError", "UsageError", "cli_entry", "error_line", "reading",
           "report", "run_cli", "run_torchrun"]
