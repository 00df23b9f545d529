"""The demo's sample data: four requests from Northwind, their diagnoses, measurement plans, the
results their checkpoint owners report and the acknowledgements that close the loop."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

OPS = "priya.ops@northwind.example"  # the L&D partner doing the human steps
DELIVERY_END = date(2026, 3, 13)
START = datetime(2026, 2, 2, 9, 0, tzinfo=UTC)


def person(name: str, email: str, role: str = "") -> dict[str, str]:
    return {"name": name, "email": email, "role": role}


def _checks(**answers: str) -> dict[str, Any]:
    defaults = {"expectations_clear": "yes", "tools_adequate": "yes", "process_adequate": "yes",
                "consequences_aligned": "yes", "simpler_way": "no", "could_do_if_life_depended": "yes",
                "used_to_do_it": "yes", "used_often": "yes", "job_aid_possible": "no"}
    defaults.update(answers)
    return {k: {"answer": v, "evidence": ""} for k, v in defaults.items()}


SALES_LEAD = person("Marco Ruiz", "marco.ruiz@northwind.example", "Sales director, EMEA")
CFO = person("Dana Whitfield", "dana.whitfield@northwind.example", "CFO")
OPS_LEAD = person("Aisha Karim", "aisha.karim@northwind.example", "Head of customer operations")
WAREHOUSE = person("Tom Becker", "tom.becker@northwind.example", "Warehouse manager")

INTAKES: dict[str, dict[str, Any]] = {
    "sales": {
        "title": "Training for the sales meeting",
        "requester": SALES_LEAD, "sponsor": person("Elena Novak", "elena.novak@northwind.example", "VP Sales"),
        "stakeholders": [person("Priya Shah", OPS, "L&D partner")],
        "requested_solution": "A half-day training at the sales kick-off on handling price objections.",
        "business_goal": {"metric": "win rate on qualified deals", "unit": "%", "current_value": 18,
                          "target_value": 24, "target_date": "2026-09-30", "data_source": "CRM win/loss report"},
        "audience": {"description": "field account executives, EMEA", "size": 36},
        "why_now": "Deals are being lost on price since the competitor's discount campaign.",
    },
    "expenses": {
        "title": "15-minute e-learning on the new expense tool",
        "requester": person("Jonas Berg", "jonas.berg@northwind.example", "Finance operations"),
        "sponsor": CFO,
        "requested_solution": "A 15-minute e-learning module everyone must complete before month end.",
        "business_goal": {"metric": "expense reports returned for correction", "unit": "%",
                          "current_value": 22, "target_value": 8, "target_date": "2026-06-30",
                          "data_source": "expense tool audit log"},
        "audience": {"description": "all staff who travel", "size": 420},
    },
    "complaints": {
        "title": "Complaints spike after the returns change",
        "requester": OPS_LEAD, "sponsor": OPS_LEAD,
        "requested_solution": "Customer-empathy training for the support team.",
        "business_goal": {"metric": "complaints per 1,000 orders", "unit": "per 1,000 orders",
                          "current_value": 9.5, "target_value": 4, "target_date": "2026-07-31",
                          "data_source": "support ticket dashboard"},
        "audience": {"description": "tier-1 support agents", "size": 55},
        "why_now": "Complaints doubled since the new returns process went live.",
    },
    "motivation": {
        "title": "Motivation workshop for the warehouse team",
        "requester": WAREHOUSE, "sponsor": WAREHOUSE,
        "requested_solution": "An outdoor team-building and motivation day.",
    },
}

DIAGNOSES: dict[str, dict[str, Any]] = {
    "sales": {
        "observable_actions": ["ask three discovery questions before discussing price",
                               "restate the customer's objection before answering it"],
        "cause_checks": _checks(could_do_if_life_depended="no", used_to_do_it="yes", used_often="no"),
        "summary": "Reps learned objection handling two years ago but rarely practise it: a practice gap.",
    },
    "expenses": {
        "observable_actions": ["submit an expense report with the right cost centre and receipt attached"],
        "cause_checks": _checks(job_aid_possible="yes", used_to_do_it="no", used_often="no"),
        "summary": "A monthly task with five fiddly steps: the knowledge belongs in a one-page job aid.",
    },
    "complaints": {
        "observable_actions": ["issue a return label during the first call"],
        "cause_checks": _checks(process_adequate="no"),
        "summary": "Agents can't issue return labels any more: the new process routes them to a 5-day queue.",
    },
}


def _item(item_id: str, metric: str, unit: str, target: float, checkpoints: list[str], *, level: int,
          baseline: float | None = None, instrument: str = "system_report", respondent: str = "manager",
          owner: dict[str, str] = SALES_LEAD, value_per_unit: float | None = None) -> dict[str, Any]:
    item: dict[str, Any] = {
        "id": item_id, "framework": "kirkpatrick", "level": level, "metric": metric, "unit": unit,
        "target": {"value": target, "date": "2026-09-30"}, "instrument": instrument, "respondent": respondent,
        "checkpoints": checkpoints, "owner": owner,
    }
    if baseline is not None:
        item["baseline"] = {"value": baseline, "date": "2026-01-31", "source": "Q4 figures"}
    if value_per_unit is not None:
        item["value_per_unit"] = value_per_unit
    return item


PLANS: dict[str, dict[str, Any]] = {
    "sales": {"items": [
        _item("relevance", "relevance of the practice sessions", "1-5", 4.2, ["P1D"], level=1,
              instrument="survey", respondent="learner"),
        _item("discovery", "discovery questions per recorded call", "questions", 3, ["P30D", "P90D"], level=3,
              baseline=1.2, instrument="observation"),
        _item("win-rate", "win rate on qualified deals", "%", 24, ["P90D"], level=4, baseline=18,
              value_per_unit=12000),
    ], "costs": {"program_cost": 30000, "currency": "EUR"}},
    "expenses": {"items": [
        _item("returned", "expense reports returned for correction", "%", 8, ["P30D", "P60D"], level=4,
              baseline=22, respondent="stakeholder", owner=CFO),
    ]},
    "complaints": {"items": [
        _item("complaints", "complaints per 1,000 orders", "per 1,000 orders", 4, ["P45D", "P90D"], level=4,
              baseline=9.5, owner=OPS_LEAD),
    ]},
}

# (request, checkpoint "<item>:<offset>") -> (value, note) recorded when it comes due.
RESULTS: dict[tuple[str, str], tuple[float, str]] = {
    ("sales", "discovery:P30D"): (2.4, "call recordings, 40 calls sampled"),
    ("sales", "discovery:P90D"): (3.1, "call recordings, 40 calls sampled"),
    ("sales", "win-rate:P90D"): (21.5, "CRM win/loss report, Q2"),
    ("expenses", "returned:P30D"): (12.0, "audit log, April"),
    ("expenses", "returned:P60D"): (7.0, "audit log, May"),
    ("complaints", "complaints:P90D"): (4.8, "ticket dashboard, June"),
}

ACKS: dict[str, dict[str, Any]] = {
    "sales": {
        "recap": ["discovery questions per call rose from 1.2 to 3.1",
                  "win rate rose from 18% to 21.5%: most of the way to 24%"],
        "action_plan": [{"step": "monthly objection-handling practice in team meetings", "owner": "Marco Ruiz",
                         "email": "marco.ruiz@northwind.example", "due": "2026-10-31"},
                        {"step": "add the discovery checklist to the CRM opportunity page", "owner": "Priya Shah"}],
        "contributions": [{"stakeholder": "Elena Novak", "contribution": "protected an hour a week for practice"},
                          {"stakeholder": "Marco Ruiz", "contribution": "coached every rep on a recorded call"}],
        "message": "Thank you for making practice part of the week.",
    },
    "expenses": {
        "recap": ["returned reports fell from 22% to 7% with a one-page job aid instead of an e-learning"],
        "action_plan": [{"step": "link the job aid from the expense tool's submit page", "owner": "Jonas Berg"}],
        "contributions": [{"stakeholder": "Dana Whitfield", "contribution": "agreed to try a job aid first"}],
    },
    "complaints": {
        "recap": ["complaints fell from 9.5 to 4.8 per 1,000 orders once agents could issue labels again"],
        "action_plan": [{"step": "review the returns queue SLA monthly", "owner": "Aisha Karim",
                         "email": "aisha.karim@northwind.example"}],
        "contributions": [{"stakeholder": "Aisha Karim", "contribution": "changed the process within a week"}],
    },
}
