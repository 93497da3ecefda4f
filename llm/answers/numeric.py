"""Exact numbers: a surface form (``1,000``, ``\\frac{1}{2}``, ``−3``, ``$12.50``, ``45%``) to a canonical key.

The **numeric key** of a rational number ``q`` (a :class:`fractions.Fraction`) is

- an integer: its decimal digits, ``"42"``, ``"-3"``, ``"0"`` (so integer answers keep the keys they always had);
- a terminating decimal (denominator ``2^a 5^b``): its shortest exact decimal, ``"0.5"``, ``"-2.25"``;
- otherwise the reduced fraction ``"p/q"``, ``"1/3"``, ``"-10/3"``.

The map is one-to-one, so equal keys <=> equal numbers: ``0.5``, ``1/2``, ``\\frac{1}{2}``, ``\\dfrac12`` and
are one key. A percent sign is read as a unit (``45%`` -> ``"45"``, the GSM8K convention), not as ``0.45``.
This module is pure Python (regular expressions and ``fractions``): the fast path that never touches sympy.
"""

from __future__ import annotations

import re
from fractions import Fraction

# Characters read as a minus sign, and spaces read as thousands separators (thin, narrow no-break, no-break,
# figure space), or as nothing around a number.
_MINUS = "\u2212\u2012\u2013\ufe63\uff0d"
_THIN_SPACES = "\u2009\u202f\u00a0\u2007\u200a"
_TRANSLATE = str.maketrans({**{c: "-" for c in _MINUS}, **{c: "\u2009" for c in _THIN_SPACES}})

# One unsigned decimal number. Thousands groups: ``1,000``, ``1{,}000``, ``1\,000``, ``1\ 000``, ``1 000`` with
# a thin space (normalised to U+2009 above); a plain space never groups digits ("12 345" is two numbers).
_SEP = r"(?:,|\{,\}|\\,|\\ |\\;|\u2009|\\thinspace\s?)"
_UNSIGNED = rf"(?:\d{{1,3}}(?:{_SEP}\d{{3}})+|\d+)(?:\.\d+)?|\.\d+"
_NUM = rf"(?:[+-]\s?)?(?:{_UNSIGNED})(?:[eE][+-]?\d{{1,4}})?"
# A numeric token: a fraction (``a/b``, ``\frac{a}{b}``, ``\frac12``, signed outside or inside), or a number.
_LATEX_FRAC = r"\\(?:d|t|c)?frac"
_TOKEN = re.compile(
    rf"(?P<sign>[+-]\s?)?(?:"
    rf"{_LATEX_FRAC}\s*\{{\s*(?P<fn>{_NUM})\s*\}}\s*\{{\s*(?P<fd>{_NUM})\s*\}}"
    rf"|{_LATEX_FRAC}\s*(?P<sn>\d)\s*(?P<sd>\d)(?!\d)"
    rf"|(?P<n>{_NUM})(?:\s?/\s?(?P<d>{_NUM}))?"
    rf")"
)
_CURRENCY = re.compile(r"(?:\\\$|\$|US\$|USD\s?|€|£|¥|\\euro|\\pounds|Rs\.?\s?)\s*")
# What may surround a number and still leave it "a plain number": math delimiters, bold, a leading
# ``x =`` assignment, units (``\text{ cm}``, words), percent and degree signs, closing punctuation.
_OPENERS = re.compile(r"^(?:\s|\$|\\\(|\\\[|\*\*|\\displaystyle|\\mathbf\{|\\textbf\{)*")
_ASSIGN = re.compile(r"^[A-Za-z](?:_\{?\w+\}?)?\s*=\s*(?=[^=]*$)")
_UNIT = (
    r"(?:\s*(?:\\%|%|°|\^\s*\{?\\circ\}?|\\circ|\\text\s*\{[^{}]*\}|\\mathrm\s*\{[^{}]*\}|\\mbox\s*\{[^{}]*\}"
    r"|\\,|\\;|\\!|\\quad|\\ |\$|\\\)|\\\]|\*\*|\}))*"
)
_TAIL_OK = re.compile(_UNIT + r"(?:\s*$|\s*[.;:?](?!\d)|\s*,(?!\s*\d)|\s+(?=[A-Za-z]))")


def number_key(value: Fraction) -> str:
    """Canonical key of a rational number (see the module docstring): ``"42"``, ``"0.5"``, ``"1/3"``."""
    n, d = value.numerator, value.denominator
    if d == 1:
        return str(n)
    twos = fives = 0
    rest = d
    while rest % 2 == 0:
        rest //= 2
        twos += 1
    while rest % 5 == 0:
        rest //= 5
        fives += 1
    if rest != 1:
        return f"{n}/{d}"
    k = max(twos, fives)
    scaled = abs(n) * (10**k // d)  # exact: d divides 10^k
    whole, frac = divmod(scaled, 10**k)
    digits = str(frac).rjust(k, "0").rstrip("0")
    return f"{'-' if n < 0 else ''}{whole}.{digits}"


def _fraction(text: str) -> Fraction:
    cleaned = re.sub(_SEP + r"|\s", "", text)
    return Fraction(cleaned)


def _token_value(m: re.Match) -> Fraction | None:
    g = m.groupdict()
    try:
        if g["fn"] is not None:
            num, den = _fraction(g["fn"]), _fraction(g["fd"])
        elif g["sn"] is not None:
            num, den = Fraction(int(g["sn"])), Fraction(int(g["sd"]))
        else:
            num = _fraction(g["n"])
            den = _fraction(g["d"]) if g["d"] is not None else Fraction(1)
    except (ValueError, ZeroDivisionError, OverflowError):
        return None
    if den == 0:
        return None
    value = num / den
    return -value if (g["sign"] or "").strip() == "-" else value


def leading_number(span: str) -> tuple[Fraction | None, bool]:
    """``(value, plain)`` of the number a span starts with.

    ``plain`` is True when the span is *just* that number, up to currency, ``x =``, units, percent, closing
    math delimiters, and prose that follows (``"42 apples because ..."``); False when an operator, a digit
    group or other LaTeX follows (``"1/2x"``, ``"3\\sqrt{2}"``, ``"1,2"``): then the span is not a number.
    """
    s = span.translate(_TRANSLATE)
    s = _OPENERS.sub("", s, count=1)
    s = _ASSIGN.sub("", s, count=1)
    s = _CURRENCY.sub("", s, count=1) if s[:1] in "\\$UR€£¥" else s
    m = _TOKEN.match(s)
    if m is None:
        return None, False
    value = _token_value(m)
    if value is None:
        return None, False
    return value, _TAIL_OK.match(s, m.end()) is not None


_SIMPLE = re.compile(r"\s*(-?)(\d{1,3}(?:,\d{3})+|\d+)(?:\.(\d+))?\s*\.?\s*")


def _simple_key(m: re.Match) -> str:
    """:func:`number_key` of a plain decimal ``-1,234.50`` without building a Fraction (same result)."""
    sign, whole, frac = m.groups()
    whole = str(int(whole.replace(",", "")))
    frac = (frac or "").rstrip("0")
    if whole == "0" and not frac:
        return "0"
    return f"{sign}{whole}.{frac}" if frac else f"{sign}{whole}"


def span_number_key(span: str) -> str | None:
    """Numeric key of ``span`` when it is a plain number (see :func:`leading_number`), else ``None``."""
    if span.isdigit():  # the common cases, kept cheap
        return str(int(span))
    m = _SIMPLE.fullmatch(span)
    if m is not None:
        return _simple_key(m)
    value, plain = leading_number(span)
    return number_key(value) if plain and value is not None else None


_STRICT = re.compile(rf"\s*{_NUM}\s*")


def canonicalize_number(text: str) -> str | None:
    """Canonical key of a bare number (no units, no fractions): ``"1,000" -> "1000"``, ``"32.0" -> "32"``,
    ``"-0" -> "0"``, ``"0.50" -> "0.5"``, ``"+7" -> "7"``; ``None`` if ``text`` is not a number."""
    s = text.translate(_TRANSLATE)
    if _STRICT.fullmatch(s) is None:
        return None
    try:
        return number_key(_fraction(s))
    except (ValueError, ZeroDivisionError, OverflowError):
        return None


NUMERIC_KEY = re.compile(r"-?\d+(?:\.\d+)?(?:/\d+)?")
_END = r"-?\\infty|-?\d[^,]*|-?\.\d[^,]*|-?\\frac[^,]*|-?\\[dt]frac[^,]*"
_INTERVAL = re.compile(rf"\s*(?:\\left)?\s*([(\[])\s*({_END})\s*,\s*({_END})\s*(?:\\right)?\s*([)\]])\s*")
INTERVAL_KEY = re.compile(r"[(\[](?:-?oo|-?\d+(?:\.\d+)?(?:/\d+)?),(?:-?oo|-?\d+(?:\.\d+)?(?:/\d+)?)[)\]]")
"""Keys of intervals (or pairs) with numeric end points, ``(1,2]``, ``[-oo,0.5)``: exact, compared as strings."""


def interval_key(span: str) -> str | None:
    """``(a, b]``-style span with numeric (or ``\\infty``) end points -> ``"(a,b]"`` of their keys, else None."""
    m = _INTERVAL.fullmatch(span)
    if m is None:
        return None
    ends = []
    for end in (m.group(2), m.group(3)):
        if end.endswith("\\infty"):
            ends.append("-oo" if end.startswith("-") else "oo")
            continue
        key = span_number_key(end)
        if key is None:
            return None
        ends.append(key)
    return f"{m.group(1)}{ends[0]},{ends[1]}{m.group(4)}"


def is_numeric_key(key: str) -> bool:
    """True for keys made by :func:`number_key` (so they compare by string equality, no oracle needed)."""
    return NUMERIC_KEY.fullmatch(key) is not None


def is_exact_key(key: str) -> bool:
    """Numeric and numeric-interval keys: equal numbers <=> equal strings, no oracle needed."""
    return NUMERIC_KEY.fullmatch(key) is not None or INTERVAL_KEY.fullmatch(key) is not None
