"""The math-verify worker process (``python _mv_worker.py``): JSON lines on stdin -> JSON lines on stdout.

Runs apart from the trainer so that sympy work is bounded on every platform and from any thread: math-verify's
own timeouts (``signal.alarm``) are disabled, this process bounds each operation with ``setitimer`` (pure-Python
slowness), and the parent kills it when an answer does not come back in time (work stuck in C, e.g. a huge
integer power). It imports nothing from ``llm`` so that it starts from the file's path alone.

Requests: ``{"id", "op": "parse", "s": LATEX, "t": SECONDS}`` -> ``{"id", "r": "rational", "p", "q"}`` |
``{"id", "r": "expr"}`` | ``{"id", "r": "none"}`` | ``{"id", "r": "timeout"}``;
``{"id", "op": "parse_many", "items": [LATEX, ...], "t"}`` -> ``{"id", "results": [parse reply, ...]}``;
``{"id", "op": "cluster", "items": [LATEX, ...], "t": SECONDS}`` -> ``{"id", "classes": [int, ...]}`` (class
-1 = timed out); ``{"id", "op": "stats"}`` -> ``{"id", "cpu_seconds"}``. Clusters are built greedily: an item
joins the first class whose representative it is verified equal to (pairs whose numeric fingerprints differ
are ruled out without ``verify``), and its comparisons together get ``t`` seconds.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import sys
import time

DIFFERENT_RELATIVE = 1e-6
"""Fingerprints further apart than this (relative) rule equality out without calling ``verify`` (math-verify
itself compares numbers rounded to 6 decimals, so nothing it would call equal is ruled out)."""


class _Deadline(BaseException):  # BaseException: math-verify and sympy catch Exception
    pass


def _on_alarm(signum, frame):
    raise _Deadline


def _bounded(seconds: float, fn, *args):
    if not hasattr(signal, "setitimer"):  # no interval timers (Windows): the parent's deadline alone bounds it
        return fn(*args)
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
    # This file's folder is sys.path[0] when run by path: drop it, so that its siblings never shadow a module.
    here = os.path.dirname(os.path.abspath(__file__))
    sys.path[:] = [p for p in sys.path if p and os.path.abspath(p) != here]
    logging.disable(logging.WARNING)  # math-verify warns once that its timeouts are off: we bound time here
    try:
        import resource

        cap = 4 << 30  # a runaway integer stops at 4 GiB with MemoryError (-> no answer)
        resource.setrlimit(resource.RLIMIT_AS, (cap, cap))
    except (ImportError, ValueError, OSError):
        pass
    try:
        import sympy
        from math_verify import LatexExtractionConfig, parse, verify
        from sympy.core.relational import Relational
    except Exception as exc:  # noqa: BLE001 - report why, the parent falls back to string keys
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return
    if hasattr(signal, "SIGALRM"):
        signal.signal(signal.SIGALRM, _on_alarm)
    config = [LatexExtractionConfig()]
    cache: dict[str, object] = {}

    def parsed(latex: str):
        if latex not in cache:
            if len(cache) > 4096:
                cache.clear()
            out = parse(f"${latex}$", extraction_config=config, parsing_timeout=None, fallback_mode="no_fallback")
            cache[latex] = out[0] if out else None
        return cache[latex]

    def classify(latex: str):
        expr = parsed(latex)
        if expr is None:
            return {"r": "none"}
        value = expr
        if isinstance(expr, sympy.Expr) and not expr.free_symbols and not isinstance(expr, sympy.Rational):
            value = expr.doit()  # \sqrt{4} -> 2, 2^{10} -> 1024 (bounded by the alarm / the parent)
        if isinstance(value, sympy.Rational):
            return {"r": "rational", "p": str(value.p), "q": str(value.q)}
        return {"r": "expr"}

    verdicts: dict[tuple[str, str], bool] = {}
    prints: dict[str, tuple | None] = {}
    points = (0.5772156649015329, 1.3247179572447460, 2.6854520010653064, 0.9159655941772190)

    def fingerprint(latex: str):
        """A cheap numeric signature that can only *rule out* equality: an expression's value at fixed points
        (symbols sorted by name), an interval's end points and openness; None when there is none."""
        if latex not in prints:
            expr, out = parsed(latex), None
            try:
                if isinstance(expr, sympy.Interval):
                    out = ("interval", complex(expr.start.evalf(20)), complex(expr.end.evalf(20)),
                           bool(expr.left_open), bool(expr.right_open))
                elif isinstance(expr, sympy.Expr) and not isinstance(expr, Relational):
                    syms = sorted(expr.free_symbols, key=str)
                    subs = {s: points[i % len(points)] for i, s in enumerate(syms)}
                    value = complex(expr.evalf(20, subs=subs))
                    out = ("expr", value) if value == value and abs(value) < 1e300 else None
            except Exception:  # noqa: BLE001 - no fingerprint: the oracle decides
                out = None
            prints[latex] = out
        return prints[latex]

    def surely_different(a: str, b: str) -> bool:
        fa, fb = fingerprint(a), fingerprint(b)
        if fa is None or fb is None:
            return False
        if fa[0] != fb[0]:  # an interval is never a number or an expression
            return True
        for x, y in zip(fa[1:], fb[1:], strict=True):
            if isinstance(x, complex):
                if abs(x - y) > DIFFERENT_RELATIVE * max(1.0, abs(x), abs(y)):
                    return True
            elif x != y:
                return True
        return False

    def equal(a: str, b: str) -> bool:
        if (a, b) not in verdicts:
            if len(verdicts) > 65536:
                verdicts.clear()
                prints.clear()
            if surely_different(a, b):
                verdicts[(a, b)] = False
                return False
            x, y = parsed(a), parsed(b)
            verdicts[(a, b)] = (
                x is not None
                and y is not None
                and (bool(verify(x, y, timeout_seconds=None)) or bool(verify(y, x, timeout_seconds=None)))
            )
        return verdicts[(a, b)]

    for warm in (r"x^2+3x", r"x(x+3)", r"(1,2]", r"\frac{\pi}{2}", r"\sqrt{12}", r"2\sqrt{3}"):  # warm caches
        try:
            _bounded(5.0, parsed, warm)
        except _Deadline:
            pass
    try:
        _bounded(5.0, equal, r"\sqrt{12}", r"2\sqrt{3}")
    except _Deadline:
        pass
    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        out: dict = {"id": req["id"]}
        try:
            if req["op"] == "stats":
                out["cpu_seconds"] = time.process_time()
            elif req["op"] == "parse":
                out.update(_bounded(req["t"], classify, req["s"]))
            elif req["op"] == "parse_many":
                results = []
                for item in req["items"]:
                    try:
                        results.append(_bounded(req["t"], classify, item))
                    except _Deadline:
                        results.append({"r": "timeout"})
                    except Exception:  # noqa: BLE001 - one bad answer is "no answer"
                        results.append({"r": "none"})
                out["results"] = results
            elif req["op"] == "cluster":
                reps: list[str] = []
                classes = []
                for item in req["items"]:
                    deadline = time.monotonic() + req["t"]
                    try:
                        _bounded(req["t"], parsed, item)
                        cls = None
                        for k, rep in enumerate(reps):
                            left = deadline - time.monotonic()
                            if left <= 0:
                                raise _Deadline
                            if _bounded(left, equal, rep, item):
                                cls = k
                                break
                        if cls is None:
                            reps.append(item)
                            cls = len(reps) - 1
                    except _Deadline:
                        cls = -1
                    classes.append(cls)
                out["classes"] = classes
        except _Deadline:
            out["r"] = "timeout"
        except MemoryError:
            out["r"] = "none"
        except Exception:  # noqa: BLE001 - a parse error is "no answer", never a crash
            out["r"] = "none"
        print(json.dumps(out), flush=True)


if __name__ == "__main__":
    main()
