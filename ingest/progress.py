"""A one-line progress bar redrawn in place, for commands that run long on a terminal."""

from __future__ import annotations

from typing import TextIO

WIDTH = 24


class Bar:
    """Redraws `label: [#####.....] detail` on one line; `close()` ends the line."""

    def __init__(self, stream: TextIO):
        self.stream = stream
        self.drawn = False

    def draw(self, label: str, fraction: float, detail: str) -> None:
        bar = "#" * round(min(max(fraction, 0.0), 1.0) * WIDTH)
        self.stream.write(f"\r{label}: [{bar:<{WIDTH}}] {detail}")
        self.stream.flush()
        self.drawn = True

    def close(self) -> None:
        """End the bar's line so what follows starts on its own."""
        if self.drawn:
            self.stream.write("\n")
            self.stream.flush()
