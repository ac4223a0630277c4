"""Peak memory of a child process tree, for the benchmarks that run the product in a child."""

from __future__ import annotations

import threading
import time

import psutil


class PeakPss:
    """Peak of the summed PSS (proportional set size: pages shared by ``fork()``ed pool
    processes are split between them, not counted twice) of a process and all its children,
    sampled in a thread every ``every_s`` seconds (RSS where PSS is not available).

    >>> # with PeakPss(proc) as peak: proc.wait()   # then peak.bytes
    """

    def __init__(self, proc: psutil.Process, every_s: float = 0.05) -> None:
        self.proc = proc
        self.every_s = every_s
        self.bytes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.is_set():
            try:
                total = 0
                for p in [self.proc, *self.proc.children(recursive=True)]:
                    try:
                        total += getattr(p.memory_full_info(), "pss", 0) or p.memory_info().rss
                    except psutil.Error:
                        pass
                self.bytes = max(self.bytes, total)
            except psutil.Error:
                pass
            time.sleep(self.every_s)

    def __enter__(self) -> PeakPss:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
