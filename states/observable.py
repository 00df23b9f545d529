"""Observable actions: what people will *do* on the job, not what they will know or feel.

An action (a diagnosis's observable action, a design objective) is refused when it starts with a vague
verb ("Understand objections", "Learners will know the policy") or uses a vague phrase anywhere
("Demonstrate an understanding of objections", "Gain awareness of …", "Feel confident …", "Be familiar
with …", "Appreciate …"). The message names the phrase and suggests the observable alternative.

A vague verb in a purpose clause after an observable one is not the action: "Ask three questions to
understand the need", "Explain the bill so customers understand it" pass.
"""

from __future__ import annotations

import re
from typing import Final

# The verbs refused at the start of an action (after a lead-in such as "Learners will be able to").
VAGUE_VERBS: Final = ("understand", "know", "appreciate", "be aware of", "learn about", "be familiar with",
                      "comprehend", "realize", "realise", "grasp", "be exposed to")

# What to write instead, by the kind of vagueness.
_UNDERSTANDING: Final = ("how it shows: they explain it in their own words or apply it to a case "
                         "('explain the three pricing tiers to a customer')")
_AWARENESS: Final = ("what they notice and then do: spot, flag, check "
                     "('flag a suspicious invoice to finance the same day')")
_CONFIDENCE: Final = "what they do unaided ('handle a price objection without calling the manager in')"
_FAMILIARITY: Final = "what they find or use ('find the returns policy in the knowledge base in under a minute')"
_APPRECIATION: Final = "how it shows in what they do ('restate the customer's concern before answering')"
_KNOWING: Final = "what they state, list or apply ('state the three escalation criteria')"
_EXPOSURE: Final = "what they do with it afterwards ('set up a customer account in the new CRM')"

_SUGGESTION: Final[dict[str, str]] = {
    "understand": _UNDERSTANDING, "understanding": _UNDERSTANDING, "comprehend": _UNDERSTANDING,
    "comprehension": _UNDERSTANDING, "grasp": _UNDERSTANDING,
    "aware": _AWARENESS, "be aware of": _AWARENESS, "awareness": _AWARENESS, "conscious": _AWARENESS,
    "realize": _AWARENESS, "realise": _AWARENESS,
    "confident": _CONFIDENCE, "comfortable": _CONFIDENCE, "empowered": _CONFIDENCE, "ready": _CONFIDENCE,
    "prepared": _CONFIDENCE, "at ease": _CONFIDENCE,
    "familiar": _FAMILIARITY, "be familiar with": _FAMILIARITY, "familiarity": _FAMILIARITY,
    "knowledge": _FAMILIARITY,
    "appreciate": _APPRECIATION, "appreciation": _APPRECIATION,
    "know": _KNOWING,
    "learn about": _EXPOSURE, "be exposed to": _EXPOSURE,
}

_LEAD_IN: Final = re.compile(r"^(?:(?:learners|participants|they|people|staff|reps|managers|agents)\s+)?"
                             r"(?:(?:will|should|must|can|shall)\s+)?(?:be\s+able\s+to\s+)?(?:to\s+)?", re.I)
_AT_START: Final = re.compile(r"^(?:" + "|".join(re.escape(v) for v in VAGUE_VERBS) + r")\b", re.I)

# Vague phrases anywhere in the action; the named group is the word that makes it vague.
_ANYWHERE: Final = tuple(re.compile(p, re.I) for p in (
    r"\b(?:demonstrat|show|gain|develop|build|hav|acquir|deepen|increas|rais|get|improv)(?:e|es|ed|ing|s)?\s+"
    r"(?:(?:an?|the|their|some|more)\s+)?(?:(?:good|clear|basic|deep|deeper|better|solid|full|working|general|"
    r"greater|thorough)\s+)?(?P<word>understanding|awareness|knowledge|familiarity|appreciation|comprehension)\b",
    r"\bfeel(?:s|ing)?\s+(?:more\s+|fully\s+)?(?P<word>confident|comfortable|empowered|ready|prepared|at ease)\b",
    r"\b(?:be|become|becoming|get|getting)\s+(?:more\s+|fully\s+)?"
    r"(?P<word>aware|familiar|comfortable|confident|conscious)\b",
    r"\b(?P<word>learn(?:s|ing)?\s+about|(?:be|become|get)\s+exposed\s+to)\b",
))
# A bare vague verb anywhere: refused, unless it only states the purpose of the observable action before it.
_VERB: Final = re.compile(r"\b(?P<word>understand|comprehend|grasp|appreciate|realize|realise)(?:s|d)?\b", re.I)
_PURPOSE: Final = re.compile(r"(?:\bto|\bso(?:\s+that)?|\buntil|\bhelps?|\bhelping)\s+(?:\S+\s+){0,3}$", re.I)


def _key(word: str) -> str:
    word = " ".join(word.lower().split())
    if word.startswith("learn"):
        return "learn about"
    return "be exposed to" if word.endswith("exposed to") else word


def vague_phrase(action: str) -> tuple[str, str] | None:
    """The vague phrase of ``action`` as written and what to write instead, or None when it is observable."""
    core = _LEAD_IN.sub("", action.strip(), count=1)
    start = _AT_START.match(core)
    if start:
        return start.group(0), _SUGGESTION[start.group(0).lower()]
    for pattern in _ANYWHERE:
        match = pattern.search(core)
        if match:
            return match.group(0), _SUGGESTION[_key(match.group("word"))]
    for match in _VERB.finditer(core):
        if not _PURPOSE.search(core[:match.start()]):  # "ask three questions to understand the need" passes
            return match.group(0), _SUGGESTION[match.group("word").lower()]
    return None


def check_observable(action: str) -> str:
    """``action`` when it says what someone observably does; ``ValueError`` naming the vague phrase."""
    found = vague_phrase(action)
    if found is None:
        return action
    phrase, instead = found
    raise ValueError(f"{action!r} uses the vague verb {' '.join(phrase.lower().split())!r}: say what people will "
                     f"observably do on the job, {instead}")
