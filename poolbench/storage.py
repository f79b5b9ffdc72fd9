"""Result files: poolbench's own versioned JSON, written atomically, never silently overwritten.

The format (``"format": "poolbench-result"``, its version history in :mod:`poolbench.result`) is
documented in the README; each result type writes and reads (checking every field) its own part.
pyperf's format cannot be the primary one: it rejects values that are not > 0, and 0 allocations
per operation is a real result. Readers refuse newer versions by name, and files of other tools
(pyperf's included) with a message that says what the file is.
"""

from __future__ import annotations

import fcntl
import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

from .errors import ResultExistsError, ResultFileError
from .result import Result, parse


def dumps(result: Result, *, compact: bool = False) -> str:
    return json.dumps(result.to_json(), indent=None if compact else 1, allow_nan=False) + "\n"


def make_folder(folder: Path) -> None:
    """``mkdir -p folder``, naming the file in the way when a part of it is one (``-o notes.txt/x.json``
    said "File exists" of a folder that did not)."""
    for part in [folder, *folder.parents]:
        if part.exists():
            if not part.is_dir():
                raise ResultFileError(
                    f"{part} is a file, not a folder",
                    hint=f"name a path whose folders are folders, not {part}",
                )
            break
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ResultFileError(f"cannot make the folder {folder}: {exc.strerror or exc}") from None


def write_atomic(path: Path, text: str, *, durable: bool = True) -> None:
    """Write to a temporary file in the same folder, then rename it over ``path``.

    A crash or a full disk leaves the earlier file (if any) untouched. ``durable`` also waits for
    the disk (``fsync``) before the rename, so that not even a power cut can leave a torn file.
    """
    make_folder(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, 0o666 & ~_umask())  # mkstemp makes it private; results are ordinary files
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            if durable:
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold ``path`` for one writer: a second ``poolbench run -o path`` at the same time is refused
    instead of both printing "saved" while one run's cells are lost (an ``flock`` on a ``.lock``
    file beside it, released when this process ends however it ends)."""
    lock = path.with_name(f".{path.name}.lock")
    make_folder(lock.parent)
    try:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise ResultFileError(f"cannot write {path}: {exc.strerror or exc}") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise ResultFileError(
                f"another poolbench command is writing {path}", hint="wait for it, or write to another --out"
            ) from None
        try:
            yield
        finally:
            try:
                os.unlink(lock)
            except OSError:
                pass
    finally:
        os.close(fd)


def save(result: Result, path: Path, *, overwrite: bool = False, interim: bool = False) -> None:
    """Write ``result`` to ``path`` atomically. An ``interim`` save (a run's, after each worker
    process) is compact and not waited onto the disk: indenting and ``fsync`` cost 50 of the 59 ms
    a save of a quick run's file took, after each of its ~80 processes; the last save is whole."""
    if (path.exists() or path.is_symlink()) and not path.is_file():
        raise ResultFileError(
            f"{path} is not a regular file", hint="--out must name a file (or a path that does not exist yet)"
        )
    if path.exists() and not overwrite:
        raise ResultExistsError(
            f"{path} exists", hint="pass --force to overwrite it, or --out to name another file"
        )
    try:
        write_atomic(path, dumps(result, compact=interim), durable=not interim)
    except OSError as exc:
        raise ResultFileError(f"cannot write {path}: {exc.strerror or exc}") from None


def default_path(folder: Path, label: str, now: datetime | None = None) -> Path:
    stamp = (now or datetime.now(UTC)).strftime("%Y%m%d-%H%M%S")
    safe = "".join(ch if ch.isalnum() or ch in "-_." else "-" for ch in label)[:60] or "run"
    return folder / f"{stamp}-{safe}.json"


MAX_FILE = 256 * 1024 * 1024
"""The largest result file a reader opens. A rigorous run of a 300-cell matrix writes a few MiB;
a 2 GiB file took 17.5 s and 4.2 GB of memory before it could be called "not valid JSON"."""


def _check_size_and_start(path: Path) -> None:
    """Refuse, before parsing, a file too large to be a result or one that does not start as JSON."""
    size = path.stat().st_size
    if size > MAX_FILE:
        raise ResultFileError(
            f"{path} is {size / 2**20:,.0f} MiB: larger than any result file ({MAX_FILE // 2**20} MiB at most)"
        )
    with open(path, "rb") as f:
        start = f.read(4096).lstrip(b" \t\r\n\xef\xbb\xbf")
    if start and not start.startswith(b"{"):
        raise ResultFileError(f"{path} is not a poolbench result file: expected a JSON object")


def load(path: Path) -> Result:
    """Read a result file; any problem is one :class:`ResultFileError` naming the file."""
    try:
        if path.exists() and not path.is_file() and not path.is_dir():
            raise ResultFileError(f"{path} is not a regular file (a device or a pipe?)")
        if path.is_file():
            _check_size_and_start(path)
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ResultFileError(
            f"{path}: no such file", hint="poolbench run saves results under results/"
        ) from None
    except IsADirectoryError:
        raise ResultFileError(f"{path} is a folder, not a result file") from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:  # ValueError: a NUL in the name
        raise ResultFileError(f"{path}: cannot read it ({exc})") from None
    return parse(text, path)
