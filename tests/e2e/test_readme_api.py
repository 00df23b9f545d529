"""The README's API example, run as written: its ``sh`` block in one bash, with a scratch
``LDFLOW_HOME``, ``ldflow web`` on a free loopback port instead of 8000, and each ``curl`` made to
fail on an HTTP error (``--fail-with-body``) and checked."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
VENV_BIN = Path(sys.executable).parent


def api_block(readme: str) -> list[str]:
    """The commands of the first ``sh`` block of the "API" section (continued lines joined)."""
    lines = readme.splitlines()
    start = lines.index("## API")
    begin = next(i for i in range(start, len(lines)) if lines[i].strip() == "```sh")
    end = next(i for i in range(begin + 1, len(lines)) if lines[i].strip() == "```")
    commands: list[str] = []
    pending = ""
    for line in lines[begin + 1:end]:
        text = line.split("  #", 1)[0].rstrip() if not line.rstrip().endswith("\\") else line.rstrip()
        if text.endswith("\\"):
            pending += text[:-1] + " "
            continue
        commands.append((pending + text).strip())
        pending = ""
    return [c for c in commands if c]


def test_the_api_example_runs_as_written(tmp_path: Path) -> None:
    commands = api_block((ROOT / "README.md").read_text(encoding="utf-8"))
    assert [c.split()[0] for c in commands][:3] == ["TOKEN=$(ldflow", "ldflow", "curl"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    script = ["set -u", f"cd {ROOT}", "trap 'kill $WEB 2>/dev/null' EXIT"]
    for c in commands:
        c = c.replace("127.0.0.1:8000", f"127.0.0.1:{port}")
        if c.startswith("ldflow web &"):
            script += ["ldflow web > \"$LDFLOW_HOME/web.log\" 2>&1 & WEB=$!",
                       f"for i in $(seq 200); do curl -s -o /dev/null http://127.0.0.1:{port}/healthz && break; "
                       "sleep 0.1; done"]
            continue
        if c.startswith("curl "):
            c = "curl -sS --fail-with-body " + c[len("curl "):]
        script += [c, f'__rc=$?; [ "$__rc" -eq 0 ] || {{ echo "failed ($__rc): "{json.dumps(c)} >&2; exit 97; }}',
                   "echo"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("LDFLOW_", "PREFECT_"))}
    env.update({"PATH": f"{VENV_BIN}{os.pathsep}{env.get('PATH', '')}", "LDFLOW_HOME": str(tmp_path / "home"),
                "LDFLOW_WEB_PORT": str(port), "PREFECT_HOME": str(tmp_path / "prefect"), "COLUMNS": "120"})
    run = subprocess.run(["bash", "-c", "\n".join(script)], capture_output=True, text=True, env=env, timeout=240)
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-3000:]
    assert "Traceback" not in run.stdout + run.stderr
    out = run.stdout
    assert '"state":"diagnosed"' in out and '"total":1' in out, out[-2000:]
    assert "ci-reports" in out and "token 'ci-reports' revoked" in out
