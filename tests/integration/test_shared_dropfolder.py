"""Two machines' intake passes at once on one drop folder on shared storage (the README's fleet
section: `LDFLOW_HOME` on storage every worker mounts), on SQLite and PostgreSQL (``db_url``).

Two processes run the code the `intake` task runs (``flows.steps.take_in``) over the same folder and
database, started together: every file becomes one request, none twice, none lost, and each file
ends in ``processed/`` once.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from sqlalchemy import text

from connectors.db.engine import make_engine
from tests.builders import intake_data
from tests.integration.test_followups_concurrency import _env

FILES = 60

TAKE_IN = textwrap.dedent("""
    import json, sys, time
    from flows import bootstrap
    from flows.settings import Settings
    from flows.steps import take_in

    url, home, start_at = sys.argv[1], sys.argv[2], float(sys.argv[3])
    rt = bootstrap.build(Settings(home=home, database_url=url), migrate=False)
    rt.engine.connect().close()
    while time.time() < start_at:  # both passes start together
        time.sleep(0.001)
    summary = take_in(rt)
    print(json.dumps(summary.as_dict()))
""")


def test_two_intake_passes_on_one_shared_drop_folder_take_each_file_once(db_url: str, tmp_path: Path) -> None:
    home = tmp_path / "shared-home"
    drop = home / "dropbox"
    drop.mkdir(parents=True)
    for i in range(FILES):
        data = intake_data(title=f"Shared request {i:03}")
        (drop / f"intake-{i:03}.json").write_text(json.dumps(data), encoding="utf-8")
    script = tmp_path / "take_in_once.py"
    script.write_text(TAKE_IN, encoding="utf-8")
    start_at = time.time() + 4
    procs = [subprocess.Popen([sys.executable, str(script), db_url, str(home), str(start_at)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(tmp_path))
             for _ in range(2)]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    print("intake passes:", [(r["counts"], r["errors"]) for r in results])

    assert all(r["errors_total"] == 0 for r in results), results
    assert sum(r["counts"].get("processed", 0) for r in results) == FILES, results
    assert sum(r["counts"].get("quarantined", 0) for r in results) == 0, results
    engine = make_engine(db_url)
    with engine.connect() as conn:
        titles = conn.execute(text("SELECT title FROM requests")).scalars().all()
    engine.dispose()
    assert sorted(titles) == [f"Shared request {i:03}" for i in range(FILES)]  # each once
    assert sorted(p.name for p in (drop / "processed").iterdir()) == [f"intake-{i:03}.json" for i in range(FILES)]
    assert not [p for p in drop.iterdir() if p.is_file()]  # nothing left behind
