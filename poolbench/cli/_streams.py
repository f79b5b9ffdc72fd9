"""The command's output streams: a reader that goes away or a stream that cannot encode is not an
error of the command's.

* ``poolbench compare ... | head -1`` or ``show FILE | true``: the reader closes the pipe and the
  next write raises ``BrokenPipeError``. Output ends there, quietly, and the command goes on to
  its own exit code (the gate's answer), instead of exit 1, which reads as a regression, or exit 3.
* ``PYTHONIOENCODING=ascii`` or ``LC_ALL=C PYTHONUTF8=0``: tables hold ``µs``, ``±`` and ``→``;
  characters the stream cannot encode are written in ASCII, one for one (``us``, ``~`` for ``±``),
  ``?`` for any other, instead of a ``UnicodeEncodeError`` after the result was saved.
"""

from __future__ import annotations

import codecs
import io
import os
import sys
from typing import Any

ASCII = {"µ": "u", "±": "~", "×": "x", "·": ".", "→": ">", "–": "-", "—": "-", "≥": ">", "≤": "<",
         "…": ".", "‘": "'", "’": "'", "“": '"', "”": '"'}  # fmt: skip
"""What poolbench prints outside ASCII, and what it becomes where a stream cannot encode it: one
character for one, so that rich's tables (measured before encoding) stay aligned."""
_ERRORS = "poolbench-ascii"


def _ascii(error: UnicodeError) -> tuple[str, int]:
    if not isinstance(error, UnicodeEncodeError):
        raise error
    text = error.object[error.start : error.end]
    return "".join(ASCII.get(ch, "?") for ch in text), error.end


codecs.register_error(_ERRORS, _ascii)


class _Output:
    """A stream whose reader may leave: after ``BrokenPipeError`` everything written is dropped
    (the file descriptor then points to ``/dev/null``, so the interpreter's last flush is quiet)."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.gone = False

    def write(self, text: str) -> int:
        if not self.gone:
            try:
                return int(self._stream.write(text))
            except BrokenPipeError:
                self._leave()
        return len(text)

    def flush(self) -> None:
        if not self.gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._leave()

    def _leave(self) -> None:
        self.gone = True
        try:
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, self._stream.fileno())
            os.close(null)
        except (OSError, ValueError, io.UnsupportedOperation):
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def guard() -> None:
    """Make ``sys.stdout`` and ``sys.stderr`` safe as described above (idempotent)."""
    for name in ("stdout", "stderr"):
        stream = getattr(sys, name)
        if stream is None or isinstance(stream, _Output):
            continue
        encoding = (getattr(stream, "encoding", None) or "").lower().replace("-", "").replace("_", "")
        if isinstance(stream, io.TextIOWrapper) and not encoding.startswith("utf"):
            stream.reconfigure(errors=_ERRORS)
        setattr(sys, name, _Output(stream))
