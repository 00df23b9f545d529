"""Diagnosis rules: is training the answer?

Environment first (expectations, tools, process, consequences, a simpler
way), then the individual (could they do it if their life depended on it?
did they use to? often?). The result is a *list* of recommendations: one
request may need a redirect and a small designed piece at once.
"""

from __future__ import annotations

from states.models import Answer, Diagnosis, Recommendation, RedirectKind

DESIGN = "design"


def _is(diagnosis: Diagnosis, check: str, answer: Answer) -> bool:
    found = diagnosis.cause_checks.get(check)
    return found is not None and found.answer == answer


def _evidence(diagnosis: Diagnosis, check: str) -> str:
    found = diagnosis.cause_checks.get(check)
    return f" (evidence: {found.evidence})" if found and found.evidence else ""


def has_skill_gap(diagnosis: Diagnosis) -> bool:
    """A knowledge/skill gap: they could not do it even if their life depended on it."""
    return _is(diagnosis, "could_do_if_life_depended", Answer.NO)


def recommend(diagnosis: Diagnosis) -> list[Recommendation]:
    """Recommended paths, most fundamental first, each with its reasons."""
    found: dict[str, list[str]] = {}

    def add(path: str, reason: str) -> None:
        found.setdefault(path, []).append(reason)

    no, yes = Answer.NO, Answer.YES
    if _is(diagnosis, "expectations_clear", no):
        add(RedirectKind.EXPECTATIONS_FEEDBACK.value,
            "expectations or feedback are unclear" + _evidence(diagnosis, "expectations_clear"))
    if _is(diagnosis, "tools_adequate", no):
        add(RedirectKind.TOOL_FIX.value, "the tools or information are inadequate"
            + _evidence(diagnosis, "tools_adequate"))
    if _is(diagnosis, "process_adequate", no):
        add(RedirectKind.PROCESS_CHANGE.value, "the process or the time available gets in the way"
            + _evidence(diagnosis, "process_adequate"))
    if _is(diagnosis, "consequences_aligned", no):
        add(RedirectKind.INCENTIVE_CHANGE.value, "consequences reward the wrong behaviour"
            + _evidence(diagnosis, "consequences_aligned"))
    if _is(diagnosis, "simpler_way", yes):
        add(RedirectKind.TASK_SIMPLIFICATION.value, "the task can be simplified"
            + _evidence(diagnosis, "simpler_way"))
    if _is(diagnosis, "job_aid_possible", yes):
        add(RedirectKind.JOB_AID.value, "the knowledge can live in a job aid"
            + _evidence(diagnosis, "job_aid_possible"))

    if has_skill_gap(diagnosis):
        if _is(diagnosis, "used_to_do_it", yes):
            if _is(diagnosis, "used_often", yes):
                add(RedirectKind.COACHING.value,
                    "they used to do it, and often, yet no longer can, so feedback and coaching come first")
            else:
                add(DESIGN, "they used to do it but rarely do, so they need practice")
        else:
            add(DESIGN, "they never could do it, so they need formal training")
    elif _is(diagnosis, "could_do_if_life_depended", yes) and not found:
        add(RedirectKind.EXPECTATIONS_FEEDBACK.value,
            "they can do it when they must, so look at expectations, feedback and obstacles, not training")

    return [Recommendation(path=path, reasons=reasons) for path, reasons in found.items()]
