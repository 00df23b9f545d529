"""The one formatter of mails, invites and the report: a table of cases per function."""

from __future__ import annotations

from typing import Any

import pytest

from states import wording


@pytest.mark.parametrize(("offset", "words", "after", "adjective"), [
    ("P30D", "30 days", "30 days after delivery", "30-day"),
    ("P1D", "1 day", "1 day after delivery", "1-day"),
    ("P90D", "90 days", "90 days after delivery", "90-day"),
    ("P6M", "6 months", "6 months after delivery", "6-month"),
    ("P1M", "1 month", "1 month after delivery", "1-month"),
    ("P1Y", "1 year", "1 year after delivery", "1-year"),
    ("P2Y", "2 years", "2 years after delivery", "2-year"),
    ("P2W", "2 weeks", "2 weeks after delivery", "2-week"),
    ("P1Y2M", "1 year and 2 months", "1 year and 2 months after delivery", "1 year and 2 months"),
    ("P1M2W3D", "1 month, 2 weeks and 3 days", "1 month, 2 weeks and 3 days after delivery",
     "1 month, 2 weeks and 3 days"),
    ("PT36H", "36 hours", "36 hours after delivery", "36-hour"),
    ("P0D", "0 days", "on the day of delivery", "0-day"),
    ("p30d", "30 days", "30 days after delivery", "30-day"),
    ("soon", "soon", "soon after delivery", "soon"),
    ("P", "P", "P after delivery", "P"),
])
def test_offsets_in_words(offset: str, words: str, after: str, adjective: str) -> None:
    assert wording.offset_words(offset) == words
    assert wording.after_delivery(offset) == after
    assert wording.offset_adjective(offset) == adjective


@pytest.mark.parametrize(("offsets", "expected"), [
    (["P30D", "P90D"], "30 days and 90 days after delivery"),
    (["P1D"], "1 day after delivery"),
    (["P1D", "P30D", "P6M"], "1 day, 30 days and 6 months after delivery"),
    ([], ""),
])
def test_several_offsets(offsets: list[str], expected: str) -> None:
    assert wording.offsets_after_delivery(offsets) == expected


@pytest.mark.parametrize(("value", "expected"), [
    (189000, "189,000"), (189000.0, "189,000"), (1234.5, "1,234.5"), (0.126, "0.13"), (12.0, "12"),
    (0, "0"), (-1500, "-1,500"), (1_000_000.25, "1,000,000.25"), (None, ""), ("", ""), ("42", "42"),
    ("1,500", "1,500"), ("n/a", "n/a"), (397.36, "397.36"), (-0.001, "0"),
])
def test_numbers_have_thousands_separators(value: Any, expected: str) -> None:
    assert wording.number(value) == expected


@pytest.mark.parametrize(("value", "currency", "expected"), [
    (189000, "USD", "189,000 USD"), (189000.0, "USD", "189,000 USD"), (1234.5, "EUR", "1,234.50 EUR"),
    (30000, "", "30,000"), (None, "USD", ""), (0.5, "GBP", "0.50 GBP"), ("x", "USD", "x"),
])
def test_money_with_currency(value: Any, currency: str, expected: str) -> None:
    assert wording.money(value, currency) == expected


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (4.6, "1-5", "4.6 on a 1–5 scale"), (4.6, "1–5", "4.6 on a 1–5 scale"), (7, "1 to 10", "7 on a 1–10 scale"),
    (4, "1-5 scale", "4 on a 1–5 scale"), (71, "%", "71%"), (71.5, "percent", "71.5%"),
    (3, "percentage points", "3 percentage points"),
    (4.8, "per 1,000 orders", "4.8 per 1,000 orders"), (189000, "USD", "189,000 USD"),
    (3.1, "questions", "3.1 questions"), (12, "", "12"), (None, "%", ""), (1500, "hours", "1,500 hours"),
])
def test_a_value_with_its_unit(value: Any, unit: str, expected: str) -> None:
    assert wording.quantity(value, unit) == expected


@pytest.mark.parametrize(("before", "after", "unit", "expected"), [
    (62, 71, "%", "from 62% to 71%"), (3.1, 4.6, "1-5", "from 3.1 to 4.6 on a 1–5 scale"),
    (None, 4.6, "1-5", "to 4.6 on a 1–5 scale"), (9.5, 4.8, "per 1,000 orders", "from 9.5 to 4.8 per 1,000 orders"),
    (10000, 12500, "USD", "from 10,000 USD to 12,500 USD"), (1.2, 3, "", "from 1.2 to 3"),
    (18, 24, "%", "from 18% to 24%"),
])
def test_a_change(before: Any, after: Any, unit: str, expected: str) -> None:
    assert wording.change(before, after, unit) == expected


@pytest.mark.parametrize(("value", "unit", "expected"), [
    (75, "%", "75%"), (4.2, "1-5", "4.2"), (4, "per 1,000 orders", "4"), (8000, "EUR", "8,000 EUR"),
])
def test_a_value_said_again(value: Any, unit: str, expected: str) -> None:
    assert wording.brief_quantity(value, unit) == expected


@pytest.mark.parametrize(("metric", "unit", "expected"), [
    ("complaints per 1,000 orders", "per 1,000 orders", "complaints per 1,000 orders"),
    ("Complaints per 1,000 Orders", "per 1,000 orders", "Complaints per 1,000 Orders"),
    ("relevance rating", "1-5", "relevance rating (1–5 scale)"),
    ("satisfaction on a 1–5 scale", "1-5", "satisfaction on a 1–5 scale"),
    ("first-call resolution", "%", "first-call resolution (%)"),
    ("win rate", "", "win rate"),
    ("handle time", "minutes", "handle time (minutes)"),
])
def test_a_metric_says_its_unit_once(metric: str, unit: str, expected: str) -> None:
    assert wording.metric_label(metric, unit) == expected


@pytest.mark.parametrize(("unit", "expected"), [
    ("1-5", "on a 1–5 scale"), ("%", "in %"), ("hours", "in hours"), ("", ""),
])
def test_how_a_question_names_its_unit(unit: str, expected: str) -> None:
    assert wording.unit_phrase(unit) == expected


@pytest.mark.parametrize(("path", "expected"), [
    ("design", "Design a learning solution"), ("job_aid", "A job aid"), ("process_change", "Change the process"),
    ("coaching", "Coaching and feedback"), ("system_report", "System report"), ("survey", "Survey"), ("", ""),
])
def test_paths_in_words(path: str, expected: str) -> None:
    assert wording.path_label(path) == expected


@pytest.mark.parametrize(("people", "expected"), [
    ([("Dana Smith", "dana@example.org")], "Dana"),
    ([("Smith, Dana", "dana@example.org")], "Dana"),
    ([("Dr. Dana Smith", "dana@example.org")], "Dana"),
    ([("Zoë Ñandú", "z@example.org")], "Zoë"),
    ([("Southern Region Sales", "southern-sales@example.org")], "team"),
    ([("Customer Support", "help@example.org")], "team"),
    ([("Finance Team", "fin@example.org")], "team"),
    ([("", "sales@example.org")], "team"),
    ([("", "ld-team@example.org")], "team"),
    ([("Priya", "all-staff@example.org")], "team"),
    ([("", "dana@example.org")], "there"),
    ([("Priya Shah", "priya.ops@northwind.example")], "Priya"),  # a person, though "ops" is in the address
    ([("", "emea.sales@example.org")], "team"),
    ([("Marco Ruiz", "marco.ruiz@example.org")], "Marco"),
    ([("HR", "people@example.org")], "team"),
    ([("Olu", "olu@example.org")], "Olu"),
    ([("Dana Smith", "dana@example.org"), ("Sam Lee", "sam@example.org")], "team"),
    ([("Dana Smith", "dana@example.org"), ("Dana S", "DANA@example.org")], "Dana"),  # one person twice
    ([], "there"),
])
def test_greetings(people: list[tuple[str, str]], expected: str) -> None:
    assert wording.greeting_name(people) == expected
