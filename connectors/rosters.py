"""A roster file (``ldflow roster ID -f roster.csv|yaml``): CSV with a header row, or the YAML/JSON
the loader reads (``learners: [...]``, ``teams: [...]``).

CSV columns: ``name``, ``email`` (required), ``team``, ``manager_name``, ``manager_email``
(a manager per learner; or give a team's manager on one of its rows and leave it out on the others:
a team's manager is its rows' one manager). The rows become the mapping ``states.groups.Roster``
validates (errors name ``learners[N].field``, N counted from 0 over the data rows).
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from connectors.loader import MAX_INPUT_BYTES, load_file
from states.errors import FieldError, InvalidInput

COLUMNS = ("name", "email", "team", "manager_name", "manager_email")


def load_roster(path: str) -> tuple[dict[str, Any], str]:
    """The roster in ``path`` as a mapping, and the source's name."""
    if not path.lower().endswith(".csv"):
        return load_file(path)
    try:
        raw = Path(path).read_bytes()[:MAX_INPUT_BYTES + 1]
        text = raw.decode("utf-8-sig")
    except FileNotFoundError:
        raise InvalidInput([FieldError("file", f"{path}: no such file")]) from None
    except UnicodeDecodeError:
        raise InvalidInput([FieldError("file", f"{path} is not UTF-8 text")]) from None
    except OSError as exc:
        raise InvalidInput([FieldError("file", f"{path}: {exc.strerror or exc}")]) from None
    if len(raw) > MAX_INPUT_BYTES:
        raise InvalidInput([FieldError("file", f"{path} is larger than {MAX_INPUT_BYTES // 1_000_000} MB")])
    return parse_csv(text, path), path


def parse_csv(text: str, source: str = "") -> dict[str, Any]:
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in reader.fieldnames or []]
    missing = [c for c in ("name", "email") if c not in header]
    unknown = [h for h in header if h not in COLUMNS]
    errors = [FieldError("columns", f"the header needs a {c!r} column") for c in missing]
    errors += [FieldError("columns", f"unknown column {h!r} (known: {', '.join(COLUMNS)})") for h in unknown]
    if errors:
        raise InvalidInput(errors, source)
    reader.fieldnames = header
    learners: list[dict[str, Any]] = []
    team_managers: dict[str, dict[str, str]] = {}
    for row in reader:
        cells = {k: (v or "").strip() for k, v in row.items() if k is not None}
        learner: dict[str, Any] = {"name": cells.get("name", ""), "email": cells.get("email", "")}
        if cells.get("team"):
            learner["team"] = cells["team"]
        if cells.get("manager_email"):
            manager = {"name": cells.get("manager_name") or cells["manager_email"], "email": cells["manager_email"]}
            learner["manager"] = manager
            if cells.get("team"):
                team_managers.setdefault(cells["team"], manager)
        learners.append(learner)
    teams = [{"team": team, "manager": m} for team, m in team_managers.items()]
    for learner in learners:  # a team's manager given once stands for its other rows
        if "manager" not in learner and learner.get("team") in team_managers:
            learner["manager"] = team_managers[learner["team"]]
    return {"learners": learners, "teams": teams} if teams else {"learners": learners}
