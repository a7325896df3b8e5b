"""One progress line for long work (decoding a dataset, writing batches): on a terminal it
rewrites itself in place at most twice a second; in logs and pipes it prints a plain line every
15 seconds and at the end, so a log file does not fill with carriage returns."""

import sys
import time


class ProgressLine:
    def __init__(self, what: str, total: int, unit: str = "images", bar: bool = False,
                 stream=None, enabled: bool = True):
        self.what, self.total, self.unit, self.bar = what, total, unit, bar
        self.stream = stream or sys.stderr
        self.enabled = enabled
        self.start, self.last = time.time(), 0.0

    def update(self, done: int, final: bool = False) -> None:
        if not self.enabled:
            return
        now = time.time()
        tty = self.stream.isatty()
        if not final and now - self.last < (0.5 if tty else 15.0):
            return
        rate = done / max(now - self.start, 1e-9)
        text = f"{self.what}: "
        if self.bar:
            filled = int(30 * done / max(self.total, 1))
            text += f"[{'#' * filled}{'.' * (30 - filled)}] "
        text += f"{done}/{self.total} {self.unit} ({rate:.0f} {self.unit}/s)"
        if tty:
            print("\r" + text, end="\n" if final else "", file=self.stream, flush=True)
        else:
            print(text, file=self.stream, flush=True)
        self.last = now
