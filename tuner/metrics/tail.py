"""Incremental reading of a growing text file, line by line.

A :class:`LineTailer` remembers a byte offset and returns the complete lines appended
since its previous call. A last line without its newline is held back until the newline
arrives, or returned by a ``final`` read (the writer has exited). Lines longer than
``max_line`` bytes are cut into ``max_line``-byte pieces counted from the line's start,
so memory stays bounded and the sequence of lines depends only on the file's content,
never on when it was read (observations stay deterministic for ``skip_observations``).
The file is expected to be append-only; a missing file reads as empty.
"""

from __future__ import annotations

import os
from pathlib import Path

MAX_LINE = 1 << 20
_CHUNK = 1 << 20


class LineTailer:
    def __init__(self, path: Path, max_line: int = MAX_LINE) -> None:
        self.path = path
        self.max_line = max_line
        self.offset = 0  # bytes consumed into complete lines or ``_pending``
        self._pending = b""

    def read(self, final: bool = False) -> list[str]:
        """Lines completed since the last call (and the partial last one if ``final``)."""
        lines: list[str] = []
        # os.open/os.pread, no file object: called for every running trial at every turn
        # of the controller's loop, where open()'s buffered reader (fstat, isatty ioctl,
        # two lseeks, a read past the end) was most of its cost.
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return lines
        try:
            while True:
                chunk = os.pread(fd, _CHUNK, self.offset)
                if not chunk:
                    break
                self.offset += len(chunk)
                self._split(self._pending + chunk, lines)
                if len(chunk) < _CHUNK:
                    break  # at the end as of now; what comes later, the next call reads
        finally:
            os.close(fd)
        if final and self._pending:
            lines.append(self._decode(self._pending))
            self._pending = b""
        return lines

    def _split(self, data: bytes, lines: list[str]) -> None:
        start = 0
        while True:
            end = data.find(b"\n", start)
            if end < 0:
                break
            self._add_line(data[start:end], lines)
            start = end + 1
        rest = data[start:]
        while len(rest) >= self.max_line:
            lines.append(self._decode(rest[: self.max_line]))
            rest = rest[self.max_line :]
        self._pending = rest

    def _add_line(self, line: bytes, lines: list[str]) -> None:
        while len(line) > self.max_line:
            lines.append(self._decode(line[: self.max_line]))
            line = line[self.max_line :]
        lines.append(self._decode(line))

    @staticmethod
    def _decode(line: bytes) -> str:
        return line.rstrip(b"\r").decode("utf-8", errors="replace")
