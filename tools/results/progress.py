"""Progress of long work (trials of a run, cells of a comparison): elapsed time and an estimate of the end.

Pure: the caller says how much is done and passes the clock. The estimate assumes the remaining units cost
what the finished ones did on average, which holds for trials of one scenario and roughly for a comparison's
cells; it says nothing before the first unit is done.
"""

from __future__ import annotations

from dataclasses import dataclass


def clock(seconds: float) -> str:
    """``mm:ss`` below an hour, ``h:mm:ss`` above."""
    s = max(0, round(seconds))
    h, rest = divmod(s, 3600)
    return f"{h}:{rest // 60:02d}:{rest % 60:02d}" if h else f"{rest // 60:02d}:{rest % 60:02d}"


@dataclass(frozen=True)
class Progress:
    total: int  # units of work (trials)
    started: float  # when the work began, on the caller's clock

    def eta(self, done: int, now: float) -> float | None:
        """Seconds still to go after ``done`` units, or None before any is done."""
        if done <= 0:
            return None
        return (now - self.started) / done * (self.total - done)

    def status(self, done: int, now: float, bar: bool = False, width: int = 20) -> str:
        """``3/20 · 00:42 elapsed · about 03:58 to go``, with a bar in front for a terminal."""
        eta = self.eta(done, now)
        text = f"{done}/{self.total} · {clock(now - self.started)} elapsed · " + (
            "estimating" if eta is None else f"about {clock(eta)} to go")
        if bar:
            filled = round(width * done / self.total) if self.total else width
            text = f"[{'#' * filled}{'.' * (width - filled)}] " + text
        return text
