"""What a local and a phone trace capture share: perflab's segment markers around a block
(``perflab:segment:<name>:begin|end``, read back by :data:`perflab.tracing.sections.SEGMENT_RE`)
and a teardown that saves the trace and then always puts the tracer back as it was."""

from __future__ import annotations

import contextlib
from abc import ABC, abstractmethod
from collections.abc import Iterator
from types import TracebackType


class TraceCapture(ABC):
    @abstractmethod
    def mark(self, text: str) -> None:
        """A marker into this capture's trace."""

    @contextlib.contextmanager
    def segment(self, name: str) -> Iterator[None]:
        self.mark(f"perflab:segment:{name}:begin")
        try:
            yield
        finally:
            self.mark(f"perflab:segment:{name}:end")

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self._save()
        finally:
            self._restore()

    @abstractmethod
    def _save(self) -> None:
        """Write the trace to the capture's file (nothing when tracing never started)."""

    @abstractmethod
    def _restore(self) -> None:
        """Put back every tracer setting the capture changed."""
