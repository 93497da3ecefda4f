"""Symbolic answers: LaTeX normalization and the math-verify equivalence oracle, bounded in time.

``math-verify`` (with ``latex2sympy2_extended``) parses a LaTeX answer to sympy and decides equivalence. It
runs in one long-lived worker process (:mod:`llm.answers._mv_worker`), reached through pipes, because

- its own timeouts use ``signal.alarm``, which fails off the main thread (TRL reward functions, data loaders);
- some sympy work is stuck in C where no signal reaches it (``10^{10^{8}}``).

Each operation on one answer gets :data:`TIMEOUT_SECONDS` (the worker's ``setitimer`` for Python code); if no
reply comes ``KILL_GRACE_SECONDS`` later, the worker is killed and restarted on the next request. Either way
the answer lands in the no-answer bucket and :attr:`Oracle.timeouts` is incremented (metrics report it as
``n_answer_timeouts``). A worker that cannot start (math-verify not installed) is reported once as a
warning; symbolic answers then compare by their normalized strings only.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import re
import subprocess
import sys
import threading
import warnings
from fractions import Fraction
from pathlib import Path

TIMEOUT_SECONDS = 1.0
"""Time allowed for one answer's parse, and for one answer's comparisons when a group is clustered."""
KILL_GRACE_SECONDS = 1.0
"""Extra wait for a reply before the worker is presumed stuck in C and killed."""
STARTUP_SECONDS = 120.0
"""Time allowed for the worker to import sympy and math-verify (once per process, not an answer timeout)."""

_WORKER = Path(__file__).with_name("_mv_worker.py")

# ---------------------------------------------------------------------------------------- normalization

_MATH_SEGMENT = re.compile(r"\$\$(.+?)\$\$|\$(.+?)\$|\\\((.+?)\\\)|\\\[(.+?)\\\]", re.S)
_DROP = re.compile(r"\\left\b|\\right\b|\\displaystyle|\\!|\\,|\\;|\\:|\\quad|\\qquad|~|\\%|%|\^\s*\{?\\circ\}?|°")
_TRAILING_UNIT = re.compile(r"(?:\s*\\(?:text|mathrm|mbox)\s*\{[^{}]*\})+\s*$")
_ASSIGN = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=[^=]*$)")
_TEXT_WRAP = re.compile(r"^\\(?:text|textbf|mathrm|mbox|mathbf)\s*\{([^{}]*)\}$")
_SPACES = re.compile(r"\s*([^A-Za-z\s])\s*")
WORD_KEY = re.compile(r"[A-Za-z]+(?: [A-Za-z]+)*")
"""Keys that are plain words (``yes``, ``B``): compared by string equality, never by the oracle."""
_PROSE = re.compile(r"(?<![\\A-Za-z])[A-Za-z]{3,}")


def normalize_latex(span: str, *, allow_prose: bool) -> str | None:
    """The key of a non-numeric answer span: its math (first ``$..$`` segment if any) without spacing
    commands, ``\\left``/``\\right``, trailing units, a leading ``x =``; ``\\dfrac``/``\\tfrac`` read as
    ``\\frac``; spaces dropped except between letters. ``None`` if nothing is left, or when the span reads
    as prose (a word of >= 3 letters outside LaTeX commands) and ``allow_prose`` is False (the
    ``####``/"the answer is" spans: a sentence there is not an answer; a ``\\boxed{}`` may hold words)."""
    m = _MATH_SEGMENT.search(span)
    s = next(g for g in m.groups() if g is not None) if m else span
    s = s.replace("\\dfrac", "\\frac").replace("\\tfrac", "\\frac").replace("\\cfrac", "\\frac")
    s = _DROP.sub(" ", s)
    s = _TRAILING_UNIT.sub("", s) if not _TEXT_WRAP.match(s.strip()) else s
    s = s.strip().rstrip(".,;:!?").strip()
    wrapped = _TEXT_WRAP.match(s)
    if wrapped:
        s = wrapped.group(1).strip()
        s = s[1:-1].strip() if len(s) == 3 and s[0] == "(" and s[-1] == ")" else s  # "(B)" -> "B"
    s = _ASSIGN.sub("", s)
    s = _SPACES.sub(r"\1", " ".join(s.split()))
    if not s:
        return None
    if not allow_prose and not m and _PROSE.search(re.sub(r"\\[A-Za-z]+", " ", s)):
        return None
    return s


# ------------------------------------------------------------------------------------------------ oracle


class Oracle:
    """The math-verify worker: ``parse`` one normalized answer, ``cluster`` a group's distinct answers.

    Thread safe (one lock); never raises on answers; counts timeouts (:attr:`timeouts`) and worker restarts.
    """

    def __init__(self, timeout_seconds: float = TIMEOUT_SECONDS, worker: str | Path = _WORKER):
        self.timeout_seconds = timeout_seconds
        self.worker = str(worker)
        self.timeouts = 0
        self.restarts = 0
        self.available: bool | None = None  # None: not tried yet
        self._lock = threading.Lock()
        self._proc: subprocess.Popen | None = None
        self._lines: queue.Queue | None = None
        self._next_id = 0
        self._pid = os.getpid()
        self._parse_cache: dict[str, tuple[str, str | None]] = {}

    # --- process management
    def _start(self) -> bool:
        env = dict(os.environ, PYTHONWARNINGS="ignore")
        try:
            proc = subprocess.Popen(
                [sys.executable, "-u", self.worker],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
                env=env,
            )
        except OSError as exc:
            self._unavailable(f"cannot start the math-verify worker ({exc})")
            return False
        lines: queue.Queue = queue.Queue()

        def pump(stream=proc.stdout, out=lines):
            for line in stream:
                out.put(line)
            out.put(None)  # EOF

        threading.Thread(target=pump, daemon=True).start()
        self._proc, self._lines = proc, lines
        try:
            hello = lines.get(timeout=STARTUP_SECONDS)
        except queue.Empty:
            hello = None
        ready = json.loads(hello) if hello else {"ready": False, "error": "no reply"}
        if not ready.get("ready"):
            self._kill()
            self._unavailable(f"the math-verify worker did not start ({ready.get('error')})")
            return False
        self.available = True
        return True

    def _unavailable(self, why: str) -> None:
        if self.available is None:
            warnings.warn(f"{why}; symbolic answers compare by their normalized strings only "
                          "(pip install math-verify)", RuntimeWarning, stacklevel=4)
        self.available = False

    def _kill(self) -> None:
        proc, self._proc, self._lines = self._proc, None, None
        if proc is not None:
            proc.kill()
            proc.wait()

    def close(self) -> None:
        with self._lock:
            self._kill()

    def _request(self, payload: dict, seconds: float) -> dict | None:
        """Send one request and wait ``seconds``; ``None`` (worker killed) when no reply comes in time."""
        if self._pid != os.getpid():  # a forked child: the worker and its pipes belong to the parent
            self._proc, self._lines, self._pid = None, None, os.getpid()
        if self._proc is None or self._proc.poll() is not None:
            if self.available is False or not self._start():
                return None
        self._next_id += 1
        payload["id"] = self._next_id
        try:
            self._proc.stdin.write(json.dumps(payload) + "\n")
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            self._kill()
            return None
        while True:
            try:
                line = self._lines.get(timeout=seconds)
            except queue.Empty:
                line = None
            if line is None:  # stuck (or died): kill; restarted by the next request
                self._kill()
                self.restarts += 1
                return None
            reply = json.loads(line)
            if reply.get("id") == payload["id"]:
                return reply

    # --- operations
    def parse(self, latex: str) -> tuple[str, str | None]:
        """``("rational", key)`` | ``("expr", latex)`` | ``("none", None)`` | ``("timeout", None)``."""
        from llm.answers.numeric import number_key

        hit = self._parse_cache.get(latex)
        if hit is not None:
            if hit[0] == "timeout":
                self.timeouts += 1
            return hit
        with self._lock:
            if self.available is False:
                return ("expr", latex)
            reply = self._request({"op": "parse", "s": latex, "t": self.timeout_seconds},
                                  self.timeout_seconds + KILL_GRACE_SECONDS)
            if self.available is False:
                return ("expr", latex)
            r = "timeout" if reply is None else reply.get("r", "none")
            if r == "timeout":
                out = ("timeout", None)  # cached too: a repeated pathological answer costs its bound once
            elif r == "rational":
                out = ("rational", number_key(Fraction(int(reply["p"]), int(reply["q"]))))
            else:
                out = ("expr", latex) if r == "expr" else ("none", None)
            if len(self._parse_cache) > 100_000:
                self._parse_cache.clear()
            self._parse_cache[latex] = out
            self.timeouts += out[0] == "timeout"
            return out

    def parse_many(self, items: list[str]) -> list[tuple[str, str | None]]:
        """:meth:`parse` of every item, the uncached ones in one request (each still bounded on its own: if the
        batch does not come back in time, the items are retried one by one so only the culprit times out)."""
        from llm.answers.numeric import number_key

        if len(self._parse_cache) > 100_000:
            self._parse_cache.clear()
        todo = [s for s in dict.fromkeys(items) if s not in self._parse_cache]
        if len(todo) > 1 and self.available is not False:
            with self._lock:
                reply = self._request({"op": "parse_many", "items": todo, "t": self.timeout_seconds},
                                      len(todo) * self.timeout_seconds + KILL_GRACE_SECONDS)
            results = reply.get("results") if reply else None
            if results is not None and len(results) == len(todo):
                for latex, r in zip(todo, results, strict=True):
                    kind = r.get("r", "none")
                    if kind == "rational":
                        self._parse_cache[latex] = ("rational", number_key(Fraction(int(r["p"]), int(r["q"]))))
                    elif kind in ("expr", "timeout"):
                        self._parse_cache[latex] = (kind, latex if kind == "expr" else None)
                    else:
                        self._parse_cache[latex] = ("none", None)
                out = [self._parse_cache[s] for s in items]
                self.timeouts += sum(h[0] == "timeout" for h in out)  # each completion counts, as in parse()
                return out
        return [self.parse(s) for s in items]

    def cpu_seconds(self) -> float:
        """CPU time the worker has used (0 when none runs): benchmarks add it to the caller's own."""
        with self._lock:
            if self._proc is None:
                return 0.0
            reply = self._request({"op": "stats"}, STARTUP_SECONDS)
            return float(reply.get("cpu_seconds", 0.0)) if reply else 0.0

    def cluster(self, items: list[str]) -> list[int]:
        """Class index of each distinct normalized answer (-1 = timed out, counted)."""
        if len(items) <= 1:
            return list(range(len(items)))
        with self._lock:
            if self.available is not False:
                reply = self._request({"op": "cluster", "items": items, "t": self.timeout_seconds},
                                      len(items) * self.timeout_seconds + KILL_GRACE_SECONDS)
            if self.available is False:
                return list(range(len(items)))  # distinct strings, distinct classes
            if reply is None:
                self.timeouts += len(items)
                return [-1] * len(items)
            classes = reply.get("classes")
            if classes is None:  # the worker failed as a whole: keep the strings apart
                return list(range(len(items)))
            self.timeouts += sum(c < 0 for c in classes)
            return classes


ORACLE = Oracle()
atexit.register(ORACLE.close)
