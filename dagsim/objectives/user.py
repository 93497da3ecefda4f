"""User-defined objective families in one file: ``--objective-module path/to/file.py:Name`` (issue #17).

A user writes one Python file with a subclass of :class:`~dagsim.objectives.base.Objective` (usually
:class:`~dagsim.objectives.base.SeparableObjective`) giving Φ (``value``), ∇Φ (``reward``), ``curvature``
and ``is_concave_regime`` — optionally ``closed_form``, ``cvxpy_pieces`` and its own per-sample GRPO
reward, the static hooks ``count_reward_table(ctx, estimates) -> (K, G)`` (reward T[z, c] of a sample of
answer z whose G − 1 others hold c more z's; ``ctx`` a ``dagsim.grpo.rewards.RewardContext``,
``estimates.power(a)`` / ``estimates.log()`` the chosen estimator's (G,) tables) or
``group_reward(answers (B, G), ctx) -> (B, G)`` — and either decorates it with ``@register("name")``
or lets the loader register it (under the class attribute ``name`` if the class body sets one, else the
class name in lower case). No edit of the package is needed.

:func:`load_objective_module` imports the file by path (``importlib``, a module name unique to the
resolved path) or a dotted module (``module.path:Name``), takes the class ``Name`` and validates it on a
few random interior points of the simplex before anything is solved. Every failure is a
:class:`~dagsim.errors.ValidationError` naming the field (the CLI turns it into exit code 2):

* the file is missing / cannot be imported / has no class ``Name``;
* ``Name`` is not an ``Objective`` subclass (or is multi-view, not supported here), or is abstract;
* its name clashes with a built-in family (or a built-in group reward such as ``ttrl``);
* ``reward`` (∇Φ) disagrees with central finite differences of ``value`` (Φ) along the simplex's tangent
  directions ``e_z − 1/K`` (so ∇Φ is checked up to the additive constant that THEORY §4 allows);
* ``curvature`` says concave/convex but the tangent inequality of T1/T2 fails on random pairs;
* ``coordinate_response`` (separable families) does not solve β u − τ ρ'(e^u) = a;
* ``cvxpy_pieces`` does not evaluate to Φ(ν) − β KL(ν‖ν0) or is not concave (DCP);
* ``closed_form`` does not satisfy the KKT fixed point ν ∝ ν0·exp(∇Φ(ν)/β) (T1);
* ``count_reward_table`` / ``group_reward`` do not return finite arrays of the right shape.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import inspect
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from dagsim.errors import DagsimError, ValidationError
from dagsim.objectives.base import (
    CURVATURES,
    OBJECTIVES,
    MultiViewObjective,
    Objective,
    SeparableObjective,
    kl_divergence,
    make_objective,
)

#: Answers of the validation instances (K) and number of random interior points per check.
CHECK_ANSWERS = 4
CHECK_POINTS = 3
#: Random pairs of points for the tangent (concavity/convexity) inequality.
CHECK_PAIRS = 24
#: Validation points are ½·Dirichlet(1) + ½·uniform: every coordinate ≥ 1/(2K), so ν ± h·d stays inside.
INTERIOR_MIX = 0.5
#: Tangent-inequality pairs are 0.98·Dirichlet(½) + 0.02·uniform (closer to the faces, still interior).
PAIR_MIX = 0.02
#: Central-difference step along e_z − 1/K. Truncation ~h²·Φ''' (1e-12), round-off ~1e-16·|Φ|/h (1e-10).
FD_STEP = 1e-6
#: |FD − (g_z − mean g)| allowed, relative to 1 + max|g| + |Φ|: 1e5× the error budget above, far below
#: any real mistake in ∇Φ (a wrong factor or a dropped term is O(τ)).
FD_RTOL = 1e-5
#: Slack of the tangent inequality Φ(y) ≤ Φ(x) + ⟨∇Φ(x), y − x⟩ (concave): round-off of O(1) terms.
TANGENT_ATOL = 1e-9
#: |β u − τ ρ'(e^u) − a| allowed for ``coordinate_response``, relative to 1 + |a|.
RESPONSE_RTOL = 1e-8
#: |piece value − (Φ − βKL)| allowed for ``cvxpy_pieces``, relative to 1 + |Φ − βKL|.
CVXPY_RTOL = 1e-8
#: KKT residual (solvers/result.py) allowed for ``closed_form``'s answer.
CLOSED_FORM_ATOL = 1e-8
#: β of the validation instances (coordinate_response, cvxpy_pieces, closed_form).
CHECK_BETA = 0.7
#: Group size G at which a family's own GRPO reward hook is called once for its shape and finiteness.
CHECK_GROUP_SIZE = 4
#: Shifts a of the coordinate_response check: this many draws from N(0, CHECK_SHIFT_SCALE²).
CHECK_SHIFTS = 8
CHECK_SHIFT_SCALE = 2.0

#: Every name a user family has taken in this process (objective and group-reward registries): not built-in.
USER_NAMES: set[str] = set()
#: Loaded files: resolved path -> (sha1 of the content, module name, registered names).
_LOADED_FILES: dict[str, tuple[str, str, tuple[str, ...]]] = {}


@dataclass(frozen=True)
class UserFamily:
    """A validated user family: its registered name, class and which optional pieces it gives."""

    name: str
    cls: type
    source: str  # the file path or dotted module it came from
    separable: bool  # a SeparableObjective with coordinate_response: the exact dual solver applies
    has_cvxpy: bool  # overrides cvxpy_pieces: cvxpy ground truth applies
    has_closed_form: bool  # overrides closed_form
    reward_hook: str | None  # "table" (count_reward_table), "group" (group_reward) or None (plug-in)

    @classmethod
    def of_class(cls, family_cls: type, name: str, source: str) -> UserFamily:
        """The family record of a registered class (which optional pieces it overrides)."""
        return cls(name=name, cls=family_cls, source=source,
                   separable=issubclass(family_cls, SeparableObjective),
                   has_cvxpy=_overrides(family_cls, "cvxpy_pieces"),
                   has_closed_form=_overrides(family_cls, "closed_form"),
                   reward_hook=reward_hook(family_cls))

    def make(self, n_answers: int, **params: Any):
        """An instance over ``n_answers`` answers (``make_objective`` semantics: unused params must be None)."""
        return make_objective(self.name, n_answers, **params)


def builtin_names() -> set[str]:
    """Names a user family may not take: the package's objective families and group rewards."""
    import dagsim.objectives  # noqa: F401  (registers the built-in families)
    from dagsim.grpo.rewards import REWARD_OBJECTIVES

    names = {n for n, c in OBJECTIVES.items() if not getattr(c, "_dagsim_user_family", False)}
    return names | (set(REWARD_OBJECTIVES) - USER_NAMES)


def _overrides(cls: type, attr: str, base: type = Objective) -> bool:
    return getattr(cls, attr, None) is not getattr(base, attr, None)


def parse_spec(spec: str) -> tuple[str, str]:
    """``"path/to/file.py:Name"`` or ``"module.path:Name"`` -> (target, Name)."""
    if not isinstance(spec, str) or ":" not in spec:
        raise ValidationError(f"--objective-module: expected path/to/file.py:ClassName or module.path:ClassName, "
                              f"got {spec!r}")
    target, name = spec.rsplit(":", 1)
    if not target or not name.isidentifier():
        raise ValidationError(f"--objective-module: expected path/to/file.py:ClassName or module.path:ClassName, "
                              f"got {spec!r} (class name {name!r})")
    return target, name


def _is_path(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def _unregister(names: tuple[str, ...]) -> None:
    for n in names:
        cls = OBJECTIVES.get(n)
        if cls is not None and getattr(cls, "_dagsim_user_family", False):
            del OBJECTIVES[n]


def _import_file(target: str):
    path = Path(target).expanduser()
    if not path.is_file():
        raise ValidationError(f"--objective-module: file {target!r} does not exist")
    resolved = str(path.resolve())
    digest = hashlib.sha1(path.read_bytes()).hexdigest()  # the file's content: a rewrite is a new version
    previous = _LOADED_FILES.get(resolved)
    if previous is not None and previous[0] == digest and previous[1] in sys.modules:
        return sys.modules[previous[1]]
    if previous is not None:  # the file changed: forget what its previous version registered
        _unregister(previous[2])
        sys.modules.pop(previous[1], None)
    module_name = "dagsim_user_objective_" + hashlib.sha1(resolved.encode()).hexdigest()[:16]
    spec = importlib.util.spec_from_file_location(module_name, resolved)
    if spec is None or spec.loader is None:
        raise ValidationError(f"--objective-module: cannot import {target!r} as a Python file")
    module = importlib.util.module_from_spec(spec)
    # Families of other user files are hidden while this one runs: a later file may take a name an
    # earlier one used (it replaces it); only the built-in names are reserved.
    hidden = {n: c for n, c in OBJECTIVES.items() if getattr(c, "_dagsim_user_family", False)}
    _unregister(tuple(hidden))
    reserved = builtin_names()
    before = set(OBJECTIVES)
    sys.modules[module_name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException as exc:
        sys.modules.pop(module_name, None)
        _unregister(tuple(set(OBJECTIVES) - before))
        OBJECTIVES.update(hidden)
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise _import_error(target, exc) from None
    added = tuple(set(OBJECTIVES) - before)
    clash = sorted(set(added) & reserved)
    if clash:  # e.g. @register("ttrl"): free among the families, taken by a built-in group reward
        sys.modules.pop(module_name, None)
        _unregister(added)
        OBJECTIVES.update(hidden)
        raise ValidationError(f"--objective-module {target!r}: name clash: {clash} is a built-in family or group "
                              "reward; register the class under another name")
    USER_NAMES.update(added)
    for n, c in hidden.items():
        if n not in OBJECTIVES:
            OBJECTIVES[n] = c
        else:  # replaced: the other file's module is stale now
            for other, entry in list(_LOADED_FILES.items()):
                if n in entry[2]:
                    sys.modules.pop(entry[1], None)
                    del _LOADED_FILES[other]
    for n in added:
        OBJECTIVES[n]._dagsim_user_family = True
    _LOADED_FILES[resolved] = (digest, module_name, added)
    return module


def _import_error(target: str, exc: BaseException) -> ValidationError:
    msg = str(exc)
    if isinstance(exc, ValueError) and "is already registered" in msg:
        return ValidationError(f"--objective-module {target!r}: name clash: {msg} (a built-in family or an "
                               f"already loaded one); register the class under another name")
    return ValidationError(f"--objective-module: importing {target!r} failed: {type(exc).__name__}: {msg}")


def _import_module(target: str):
    reserved = builtin_names()
    before = set(OBJECTIVES)
    try:
        module = importlib.import_module(target)
    except ModuleNotFoundError as exc:
        raise ValidationError(f"--objective-module: no module {target!r} ({exc})") from None
    except Exception as exc:
        raise _import_error(target, exc) from None
    added = set(OBJECTIVES) - before
    if added & reserved:
        _unregister(tuple(added))
        raise ValidationError(f"--objective-module {target!r}: name clash: {sorted(added & reserved)} is a built-in "
                              "family or group reward; register the class under another name")
    for n in added:
        OBJECTIVES[n]._dagsim_user_family = True
        USER_NAMES.add(n)
    return module


def load_objective_module(spec: str, *, params: dict | None = None, rng: np.random.Generator | None = None
                          ) -> UserFamily:
    """Import ``spec`` (``path.py:Name`` | ``module.path:Name``), register and validate the family.

    ``params``: the family parameters the run will use (``tau``, ``order``: ``None`` = the family's
    default), so that the finite-difference and consistency checks see the instance that will be solved.
    ``rng``: the generator of the validation points (default: a fixed seed, so a load is reproducible).
    """
    target, class_name = parse_spec(spec)
    module = _import_file(target) if _is_path(target) else _import_module(target)
    cls = getattr(module, class_name, None)
    if cls is None:
        classes = sorted(n for n, v in vars(module).items()
                         if inspect.isclass(v) and issubclass(v, Objective) and v.__module__ == module.__name__)
        raise ValidationError(f"--objective-module: {target!r} has no class {class_name!r}; Objective subclasses "
                              f"defined there: {classes}")
    if not inspect.isclass(cls):
        raise ValidationError(f"--objective-module: {target}:{class_name} is a {type(cls).__name__}, not a class")
    if issubclass(cls, MultiViewObjective):
        raise ValidationError(f"--objective-module: {class_name} is a MultiViewObjective; user families must be "
                              "single-view Objective subclasses")
    if not issubclass(cls, Objective):
        raise ValidationError(f"--objective-module: {class_name} is not a subclass of "
                              "dagsim.objectives.base.Objective (or SeparableObjective)")
    if inspect.isabstract(cls):
        missing = sorted(getattr(cls, "__abstractmethods__", ()))
        raise ValidationError(f"--objective-module: {class_name} does not implement the abstract method(s) "
                              f"{missing} of {cls.__mro__[1].__name__}")
    name = _register_class(cls, class_name, target)
    family = UserFamily.of_class(cls, name, target)
    cls._dagsim_user_source = target
    try:
        validate_family(family, params=params, rng=rng)
    except BaseException:
        _unregister((name,))  # an invalid family is not left registered
        raise
    return family


def family_of(obj) -> UserFamily | None:
    """The :class:`UserFamily` of an objective instance loaded by :func:`load_objective_module`, else None."""
    cls = type(obj)
    if not getattr(cls, "_dagsim_user_family", False) or OBJECTIVES.get(getattr(cls, "name", None)) is not cls:
        return None
    return UserFamily.of_class(cls, cls.name, getattr(cls, "_dagsim_user_source", cls.__module__))


def _register_class(cls: type, class_name: str, target: str) -> str:
    for n, c in OBJECTIVES.items():
        if c is cls:
            if n in builtin_names():
                raise ValidationError(f"--objective-module: {class_name} is the built-in family {n!r}")
            return n
    name = cls.__dict__.get("name") or class_name.lower()
    if not isinstance(name, str) or not name:
        raise ValidationError(f"--objective-module: {class_name}.name must be a non-empty string, got {name!r}")
    if name in builtin_names():
        raise ValidationError(f"--objective-module {target!r}: name clash: {class_name} would be registered as "
                              f"{name!r}, a built-in family; set another name (class attribute 'name' or "
                              "@register)")
    if name in OBJECTIVES and not getattr(OBJECTIVES[name], "_dagsim_user_family", False):
        raise ValidationError(f"--objective-module {target!r}: name clash: {name!r} is already registered by "
                              f"{OBJECTIVES[name].__name__}")
    cls.name = name
    cls._dagsim_user_family = True
    OBJECTIVES[name] = cls
    USER_NAMES.add(name)
    return name


# ---------------------------------------------------------------------- validation
def _interior(rng: np.random.Generator, k: int, mix: float = INTERIOR_MIX, alpha: float = 1.0) -> np.ndarray:
    return (1.0 - mix) * rng.dirichlet(np.full(k, alpha)) + mix / k


def _fail(family: UserFamily, field: str, msg: str) -> ValidationError:
    return ValidationError(f"--objective-module: {family.cls.__name__} ({family.name!r}): field {field!r}: {msg}")


def _call(family: UserFamily, field: str, fn, *args):
    try:
        return fn(*args)
    except DagsimError:
        raise
    except Exception as exc:
        raise _fail(family, field, f"raised {type(exc).__name__}: {exc}") from None


def validate_family(family: UserFamily, *, params: dict | None = None, rng: np.random.Generator | None = None
                    ) -> None:
    """The checks of the module docstring; raises :class:`ValidationError` naming the first failing field."""
    rng = np.random.default_rng(20261) if rng is None else rng
    k = CHECK_ANSWERS
    r = rng.normal(size=k)
    kwargs = {key: v for key, v in (params or {}).items() if v is not None}
    try:
        obj = family.make(k, reward=r, **kwargs)
    except DagsimError as exc:
        raise _fail(family, "__init__", str(exc)) from None
    except Exception as exc:
        raise _fail(family, "__init__", f"{family.cls.__name__}(n_answers, reward=..., ...) raised "
                                        f"{type(exc).__name__}: {exc}") from None
    curvature = _call(family, "curvature", lambda: obj.curvature)
    if curvature not in CURVATURES:
        raise _fail(family, "curvature", f"must be one of {CURVATURES}, got {curvature!r}")
    concave = _call(family, "is_concave_regime", obj.is_concave_regime, CHECK_BETA)
    if not isinstance(concave, (bool, np.bool_)):
        raise _fail(family, "is_concave_regime", f"must return a bool, got {concave!r}")
    _check_gradient(family, obj, rng)
    _check_tangents(family, obj, curvature, rng)
    if family.separable:
        _check_coordinate_response(family, obj, rng)
    if family.has_cvxpy:
        _check_cvxpy(family, obj, rng)
    if family.has_closed_form:
        _check_closed_form(family, obj, rng)
    if family.reward_hook is not None:
        _check_reward_hook(family, obj, rng)


def _value(family: UserFamily, obj, nu: np.ndarray) -> float:
    v = _call(family, "value", obj.value, nu)
    try:
        v = float(v)
    except (TypeError, ValueError):
        raise _fail(family, "value", f"must return a number, got {v!r}") from None
    if not np.isfinite(v):
        raise _fail(family, "value", f"is not finite ({v!r}) at the interior point {np.round(nu, 6).tolist()}")
    return v


def _gradient(family: UserFamily, obj, nu: np.ndarray) -> np.ndarray:
    g = np.asarray(_call(family, "reward", obj.reward, nu), dtype=np.float64)
    if g.shape != nu.shape:
        raise _fail(family, "reward", f"must return shape {nu.shape}, got {g.shape}")
    if not np.all(np.isfinite(g)):
        raise _fail(family, "reward", f"is not finite at the interior point {np.round(nu, 6).tolist()}: {g.tolist()}")
    return g


def tangent_fd_gradient(value, nu: np.ndarray, step: float = FD_STEP) -> np.ndarray:
    """Central differences of ``value`` along d_z = e_z − 1/K: equals g_z − mean(g) for g = ∇Φ(ν), (K,)."""
    k = nu.size
    out = np.empty(k)
    for z in range(k):
        d = -np.full(k, 1.0 / k)
        d[z] += 1.0
        out[z] = (value(nu + step * d) - value(nu - step * d)) / (2.0 * step)
    return out


def _check_gradient(family: UserFamily, obj, rng: np.random.Generator) -> None:
    for _ in range(CHECK_POINTS):
        nu = _interior(rng, obj.n_answers)
        phi = _value(family, obj, nu)
        g = _gradient(family, obj, nu)
        fd = tangent_fd_gradient(lambda x: _value(family, obj, x), nu)
        err = np.abs(fd - (g - g.mean()))
        scale = 1.0 + float(np.abs(g).max()) + abs(phi)
        z = int(err.argmax())
        if err[z] > FD_RTOL * scale:
            raise _fail(family, "reward", f"∇Φ disagrees with finite differences of 'value' (Φ) at "
                                          f"ν = {np.round(nu, 6).tolist()}: along e_{z} − 1/K the reward gives "
                                          f"{g[z] - g.mean():.8g}, Φ's central difference gives {fd[z]:.8g} "
                                          f"(error {err[z]:.2e} > {FD_RTOL:g}·{scale:.3g})")


def _check_tangents(family: UserFamily, obj, curvature: str, rng: np.random.Generator) -> None:
    if curvature == "linear" and getattr(obj, "tau", 0) == 0:
        return
    sign = 1.0 if curvature in ("concave", "linear") else -1.0  # concave: Φ(y) ≤ tangent at x
    worst, where = 0.0, None
    for _ in range(CHECK_PAIRS):
        x = _interior(rng, obj.n_answers, PAIR_MIX, 0.5)
        y = _interior(rng, obj.n_answers, PAIR_MIX, 0.5)
        gap = sign * (_value(family, obj, x) + float(_gradient(family, obj, x) @ (y - x)) - _value(family, obj, y))
        if gap < worst:
            worst, where = gap, (x, y)
    if where is not None and worst < -TANGENT_ATOL:
        word = "concave" if sign > 0 else "convex"
        raise _fail(family, "curvature", f"says {curvature!r} but Φ is not {word}: the tangent at "
                                         f"x = {np.round(where[0], 4).tolist()} is violated at "
                                         f"y = {np.round(where[1], 4).tolist()} by {-worst:.3g}")


def _check_coordinate_response(family: UserFamily, obj, rng: np.random.Generator) -> None:
    beta = CHECK_BETA
    if not _call(family, "dual_is_exact", obj.dual_is_exact, beta) or obj.tau == 0:
        return
    a = rng.normal(scale=CHECK_SHIFT_SCALE, size=CHECK_SHIFTS)  # (CHECK_SHIFTS,)
    out = _call(family, "coordinate_response", obj.coordinate_response, a, beta)
    try:
        u, du = (np.asarray(x, dtype=np.float64) for x in out)
    except (TypeError, ValueError):
        raise _fail(family, "coordinate_response", "must return a pair (u, du/da) of arrays") from None
    if u.shape != a.shape or du.shape != a.shape:
        raise _fail(family, "coordinate_response", f"must return two arrays of shape {a.shape}, got "
                                                   f"{u.shape}, {du.shape}")
    resid = np.abs(beta * u - obj.tau * np.asarray(obj.drho(np.exp(u)), dtype=np.float64) - a)
    boxed = (u >= 0) & (du == 0)  # a box clip at ν = 1 (documented in SeparableObjective)
    resid = np.where(boxed, 0.0, resid)
    bad = ~(resid <= RESPONSE_RTOL * (1.0 + np.abs(a)))
    if np.any(bad):
        i = int(np.flatnonzero(bad)[0])
        raise _fail(family, "coordinate_response", f"u = {u[i]:.8g} does not solve β u − τ ρ'(e^u) = a at "
                                                   f"a = {a[i]:.6g}, β = {beta}: residual {resid[i]:.3g}")


def _check_cvxpy(family: UserFamily, obj, rng: np.random.Generator) -> None:
    import cvxpy as cp

    k, beta = obj.n_answers, CHECK_BETA
    nu0, nu = _interior(rng, k), _interior(rng, k)
    x = cp.Variable(k, nonneg=True)
    pieces = _call(family, "cvxpy_pieces", obj.cvxpy_pieces, x, np.arange(k), nu0, beta)
    if not isinstance(pieces, (list, tuple)) or not pieces:
        raise _fail(family, "cvxpy_pieces", f"must return a non-empty list of cvxpy expressions, got {pieces!r}")
    for p in pieces:
        if not isinstance(p, cp.Expression) or p.size != 1 or not p.is_concave():
            raise _fail(family, "cvxpy_pieces", f"each piece must be a scalar DCP-concave expression, got {p!r}")
    x.value = nu
    value = max(float(p.value) for p in pieces)
    want = _value(family, obj, nu) - beta * kl_divergence(nu, nu0)
    if not abs(value - want) <= CVXPY_RTOL * (1.0 + abs(want)):
        raise _fail(family, "cvxpy_pieces", f"evaluates to {value:.10g} at ν = {np.round(nu, 6).tolist()} but "
                                            f"Φ(ν) − β KL(ν‖ν0) = {want:.10g} (β = {beta})")


def _check_closed_form(family: UserFamily, obj, rng: np.random.Generator) -> None:
    from dagsim.solvers.result import kkt_residual

    nu0 = _interior(rng, obj.n_answers)
    nu = _call(family, "closed_form", obj.closed_form, nu0, CHECK_BETA)
    if nu is None:
        return
    nu = np.asarray(nu, dtype=np.float64)
    if nu.shape != nu0.shape:
        raise _fail(family, "closed_form", f"must return shape {nu0.shape} or None, got {nu.shape}")
    res = kkt_residual(obj, nu, nu0, CHECK_BETA)
    if not res <= CLOSED_FORM_ATOL:
        raise _fail(family, "closed_form", f"its answer is not the (E2) optimum: KKT residual {res:.3g} > "
                                           f"{CLOSED_FORM_ATOL:g} (ν ∝ ν0·exp(∇Φ(ν)/β) fails)")


def reward_hook(cls: type) -> str | None:
    """Which per-sample GRPO reward a family class declares: "table", "group" or None (plug-in ∇Φ(q̂))."""
    if getattr(cls, "count_reward_table", None) is not None:
        return "table"
    if getattr(cls, "group_reward", None) is not None:
        return "group"
    return None


def reward_context(obj, group_size: int, estimator: str = "plugin"):
    """A ``RewardContext`` for ``obj`` (its K, τ, r, order) at group size G, no no-answer index."""
    from dagsim.grpo.rewards import RewardContext

    return RewardContext(n_answers=obj.n_answers, group_size=int(group_size), tau=float(obj.tau),
                         task_reward=np.asarray(obj.task_reward, dtype=np.float64),
                         order=getattr(obj, "order", None), estimator=estimator)


def _check_reward_hook(family: UserFamily, obj, rng: np.random.Generator) -> None:
    from dagsim.plugins import count_estimates

    g = CHECK_GROUP_SIZE
    ctx = reward_context(obj, g)
    if family.reward_hook == "table":
        field = "count_reward_table"
        out = _call(family, field, family.cls.count_reward_table, ctx, count_estimates(ctx))
        shape = (obj.n_answers, g)
    else:
        field = "group_reward"
        answers = rng.integers(0, obj.n_answers, size=(3, g))
        out = _call(family, field, family.cls.group_reward, answers, ctx)
        shape = answers.shape
    t = np.asarray(out, dtype=np.float64)
    if t.shape != shape or not np.all(np.isfinite(t)):
        raise _fail(family, field, f"must return a finite array of shape {shape}, got shape {t.shape}")
