"""Peak memory of a child process tree, for the benchmarks that run the product in a child.

:class:`PeakPss` samples the PSS of a process tree; :func:`run_child` runs one command and
reads its exact peak RSS from the kernel (``os.wait4``). Linux counts in a child's
``ru_maxrss`` the pages it shared with the process that forked it, up to its ``exec``: a
parent that has grown (generated data) should run its children through :func:`serve_children`
in a small process started early.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
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


def run_child(cmd: list[str]) -> tuple[float, float, int, str]:
    """Run ``cmd`` (stdout discarded, stderr to a file: a chatty run cannot block on a pipe);
    its wall seconds, peak RSS in MB (``ru_maxrss``), exit code and stderr text."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        code = proc.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        err.seek(0)
        text = err.read().decode(errors="replace")
    return wall, usage.ru_maxrss / 1024.0, code, text


def serve_children() -> None:
    """In a small launcher process: run each JSON command line of stdin with :func:`run_child`,
    answering with its result as one JSON line."""
    for line in sys.stdin:
        print(json.dumps(run_child(json.loads(line))), flush=True)


class ChildLauncher:
    """A small process (:func:`serve_children`) that runs commands for a benchmark that grows:
    their ``ru_maxrss`` is then theirs, not the benchmark's. Start it before the benchmark grows."""

    def __init__(self) -> None:
        code = "from benchmarks.procmem import serve_children; serve_children()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
        )

    def run(self, cmd: list[str]) -> tuple[float, float, int, str]:
        """:func:`run_child` of ``cmd``, in the launcher."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write(json.dumps(cmd) + "\n")
        self.proc.stdin.flush()
        wall, rss, code, text = json.loads(self.proc.stdout.readline())
        return wall, rss, code, text

    def close(self) -> None:
        if self.proc.stdin is not None:
            self.proc.stdin.close()
        self.proc.wait()
