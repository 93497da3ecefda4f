"""The math-verify worker process (``python _mv_worker.py``): JSON lines on stdin -> JSON lines on stdout.

Runs apart from the trainer so that sympy work is bounded on every platform and from any thread: math-verify's
own timeouts (``signal.alarm``) are disabled, this process bounds each operation with ``setitimer`` (pure-Python
slowness), and the parent kills it when an answer does not come back in time (work stuck in C, e.g. a huge
integer power). It imports nothing from ``llm`` so that it starts from the file's path alone.

Requests: ``{"id", "op": "parse", "s": LATEX, "t": SECONDS}`` -> ``{"id", "r": "rational", "p", "q"}`` |
``{"id", "r": "expr"}`` | ``{"id", "r": "none"}`` | ``{"id", "r": "timeout"}``;
``{"id", "op": "cluster", "items": [LATEX, ...], "t": SECONDS}`` -> ``{"id", "classes": [int, ...]}`` (class
-1 = timed out). Clusters are built greedily: an item joins the first class whose representative it is
verified equal to, and its comparisons together get ``t`` seconds.
"""

from __future__ import annotations

import sys

# This file's folder is sys.path[0] when run by path: drop it, so that its siblings never shadow a module.
sys.path[:] = [p for p in sys.path if p and __file__.rsplit("/", 1)[0] not in (p, p.rstrip("/"))]

import json  # noqa: E402
import logging  # noqa: E402
import signal  # noqa: E402
import time  # noqa: E402


class _Deadline(BaseException):  # BaseException: math-verify and sympy catch Exception
    pass


def _on_alarm(signum, frame):
    raise _Deadline


def _bounded(seconds: float, fn, *args):
    signal.setitimer(signal.ITIMER_REAL, max(seconds, 1e-3))
    try:
        return fn(*args)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def main() -> None:
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
    except Exception as exc:  # noqa: BLE001 - report why, the parent falls back to string keys
        print(json.dumps({"ready": False, "error": f"{type(exc).__name__}: {exc}"}), flush=True)
        return
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

    def equal(a: str, b: str) -> bool:
        if (a, b) not in verdicts:
            if len(verdicts) > 65536:
                verdicts.clear()
            x, y = parsed(a), parsed(b)
            verdicts[(a, b)] = (
                x is not None
                and y is not None
                and (bool(verify(x, y, timeout_seconds=None)) or bool(verify(y, x, timeout_seconds=None)))
            )
        return verdicts[(a, b)]

    print(json.dumps({"ready": True}), flush=True)
    for line in sys.stdin:
        req = json.loads(line)
        out: dict = {"id": req["id"]}
        try:
            if req["op"] == "parse":
                out.update(_bounded(req["t"], classify, req["s"]))
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
