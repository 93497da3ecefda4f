"""Where the final answer of a completion is: run-on cut, think tags, then the locators in order.

Rule for run-on text (base models keep writing): the completion is cut before locating, at the first of

- a stop string (the user's ``stop_strings``, and chat end markers left in the text: ``<|im_end|>``,
  ``<|endoftext|>``, ``<|eot_id|>``, ``<|end|>``, ``</s>``);
- the start of a new question after some text: ``Q:``, ``Question:``, ``Problem:``, ``Human:``, ``User:`` at
  the start of a line or after a sentence end (``"... #### 4 Q: Tom has ..."`` keeps only ``"... #### 4"``).

Think tags: when the text has ``</think>``, the answer is looked for after the last ``</think>`` first; the
thinking is searched only when nothing follows it.

Locators (the first that finds something decides; the last occurrence of each counts):

1. ``boxed``: the last ``\\boxed{...}`` / ``\\fbox{...}`` (balanced, nested braces; ``\\boxed 5`` too);
2. ``marker``: the rest of the line after the last ``####`` (GSM8K);
3. ``answer_is``: after the last "the answer is", "final answer:", "answer:", "**Answer:**" (any case),
   to the end of its sentence (the next line when the line is empty, as after a "**Final Answer**" heading).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

LOCATORS = ("boxed", "marker", "answer_is")
END_MARKERS = ("<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|end|>", "</s>")
_NEW_QUESTION = re.compile(r"(?:^|\n|(?<=[.!?)\s]))[ \t]*(?:Q|Question|Problem|Human|User)[ \t]*\d*[ \t]*:", re.M)
_ANSWER_AT = re.compile(r"(?i)answer\s*(?:\*\*)?\s*(?:is\b\s*:?|:|：)[ \t*]*")
_FINAL_HEADING_AT = re.compile(r"(?i)answer\s*(?:\*\*)?[ \t]*(?=\n)")
_FINAL_BEFORE = re.compile(r"(?i)final\s+$")
_SENTENCE_END = re.compile(r"[.!?](?=\s|$)|;|\n")


def cut_run_on(text: str, stop_strings: Sequence[str] = ()) -> str:
    """``text`` up to its first stop string or new question (see the module docstring)."""
    end = len(text)
    stops = (*stop_strings, *END_MARKERS) if ("<|" in text or "</s>" in text) else stop_strings
    for stop in stops:
        if stop:
            i = text.find(stop)
            if 0 <= i < end:
                end = i
    if ":" not in text:  # every new-question marker ends in a colon
        return text[:end]
    m = _NEW_QUESTION.search(text, 0, end)
    while m is not None and not text[: m.start()].strip():  # a question marker at the very start: not a cut
        m = _NEW_QUESTION.search(text, m.end(), end)
    if m is not None:
        end = m.start()
    return text[:end]


def _boxed(text: str) -> str | None:
    i = max(text.rfind("\\boxed"), text.rfind("\\fbox"))
    if i < 0:
        return None
    j = i + (6 if text.startswith("\\boxed", i) else 5)
    while j < len(text) and text[j] == " ":
        j += 1
    if j >= len(text):
        return None
    if text[j] != "{":  # \boxed 5
        m = re.match(r"[^\s$]+", text[j:])
        return m.group(0) if m else None
    depth = 0
    for k in range(j, len(text)):
        c = text[k]
        if c == "{":
            depth += 1
        elif c == "}":
            depth -= 1
            if depth == 0:
                return text[j + 1 : k]
    return None  # unbalanced: truncated inside the box


def _marker(text: str) -> str | None:
    i = text.rfind("####")
    if i < 0:
        return None
    rest = text[i + 4 :].lstrip()
    return rest.split("\n", 1)[0]


def _last_answer_phrase(text: str) -> int | None:
    """End of the last "answer is" / "answer:" / "final answer" heading phrase, scanning back by ``rfind``."""
    low = text.lower()
    pos = low.rfind("answer")
    while pos >= 0:
        if pos == 0 or not low[pos - 1].isalnum():
            m = _ANSWER_AT.match(text, pos)
            if m is None and _FINAL_BEFORE.search(text, max(0, pos - 12), pos):
                m = _FINAL_HEADING_AT.match(text, pos)
            if m is not None:
                return m.end()
        pos = low.rfind("answer", 0, pos)
    return None


def _answer_is(text: str) -> str | None:
    end = _last_answer_phrase(text)
    if end is None:
        return None
    rest = text[end:]
    line = rest.split("\n", 1)
    if not line[0].strip() and len(line) > 1:  # "**Final Answer**\n$5$"
        rest = line[1].lstrip()
    if rest.startswith(("$$", "\\[")):  # a display-math answer: up to its closing delimiter
        close = rest.find("$$" if rest.startswith("$$") else "\\]", 2)
        return rest[: close + 2] if close > 0 else rest
    m = _SENTENCE_END.search(rest)
    while m is not None and m.group(0) == "." and rest.count("$", 0, m.start()) % 2 == 1:  # inside $...$
        m = _SENTENCE_END.search(rest, m.end())
    return rest[: m.start()] if m else rest


_FINDERS = {"boxed": _boxed, "marker": _marker, "answer_is": _answer_is}


def _locate(text: str, locators: Sequence[str]) -> tuple[str, str] | None:
    for name in locators:
        if name == "boxed" and "\\boxed" not in text and "\\fbox" not in text:
            continue
        if name == "marker" and "####" not in text:
            continue
        span = _FINDERS[name](text)
        if span is not None and span.strip():
            return name, span
    return None


def final_answer_span(
    text: str, locators: Sequence[str] = LOCATORS, stop_strings: Sequence[str] = ()
) -> tuple[str, str] | None:
    """``(locator, span)`` of the final answer of ``text``, or ``None`` when no locator finds one."""
    i = text.rfind("</think>")
    if i >= 0:
        found = _locate(cut_run_on(text[i + 8 :], stop_strings), locators)
        if found is not None:
            return found
        text = text[:i]
    return _locate(cut_run_on(text, stop_strings), locators)
