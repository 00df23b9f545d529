"""A scale-out installation on this machine, as an operator builds it (README "Scale-out"): a Prefect
server on PostgreSQL, the work pool and `prefect deploy --all`, `ldflow prefect-setup`, process
workers started by `ldflow worker`, one ldflow PostgreSQL database, mail to a loopback SMTP sink.

Used by tests/scaleout (pytest) and by tests/scaleout/e2e.py (the bounded end-to-end check of
`.ci/run`). Every process it starts is in its own process group and is stopped by ``close()`` (and
dies with this process: PR_SET_PDEATHSIG); every database it creates is dropped.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from sqlalchemy import make_url

REPO = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _dies_with_parent() -> None:  # preexec_fn: SIGTERM when the parent dies (Linux)
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGTERM))


@dataclass
class Cluster:
    admin_url: str  # a PostgreSQL URL with the right to create databases
    root: Path  # scratch: Prefect's home, ldflow's home, logs
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    databases: list[str] = field(default_factory=list)
    port: int = 0
    smtp_port: int = 0

    # --- set-up ----------------------------------------------------------------------------------

    def _database(self, purpose: str) -> str:
        import psycopg

        name = f"ldflow_scaleout_{purpose}_{secrets.token_hex(4)}"
        with psycopg.connect(self.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        self.databases.append(name)
        return name

    def url(self, database: str, driver: str = "postgresql") -> str:
        return make_url(self.admin_url).set(drivername=driver, database=database).render_as_string(
            hide_password=False)

    def start(self, smtp_port: int) -> None:
        """The Prefect server on its own PostgreSQL database, and ldflow's database migrated."""
        self.smtp_port = smtp_port
        self.prefect_db = self._database("prefect")
        self.ldflow_db = self._database("ldflow")
        self.port = free_port()
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        env = {**self.base_env(), "PREFECT_API_DATABASE_CONNECTION_URL": self.url(self.prefect_db,
                                                                                  "postgresql+asyncpg")}
        env.pop("PREFECT_API_URL")
        self.spawn("server", [str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                              "--port", str(self.port)], env)
        self.wait_healthy(timeout=120)
        self.ldflow(["db", "upgrade"])

    @property
    def api(self) -> str:
        return f"http://127.0.0.1:{self.port}/api"

    def base_env(self) -> dict[str, str]:
        keep = {k: v for k, v in os.environ.items() if not k.startswith(("LDFLOW_", "PREFECT_"))}
        return {**keep, "PREFECT_HOME": str(self.root / "prefect-home"), "PREFECT_API_URL": self.api,
                "PREFECT_SERVER_ANALYTICS_ENABLED": "false", "PREFECT_LOGGING_LEVEL": "WARNING",
                "PREFECT_CLI_PROMPT": "false", "LDFLOW_REPO_DIR": str(REPO),
                "LDFLOW_DATABASE_URL": self.url(getattr(self, "ldflow_db", "none")),
                "LDFLOW_HOME": str(self.root / "ldflow-home"), "LDFLOW_SIMULATED_CLOCK": str(self.root / "clock.json"),
                "LDFLOW_SMTP_HOST": "127.0.0.1", "LDFLOW_SMTP_PORT": str(self.smtp_port),
                "LDFLOW_SMTP_SECURITY": "none", "LDFLOW_MAIL_FROM": "ld-team@example.org",
                "LDFLOW_OPS_ADDRESS": "ops@example.org"}

    def spawn(self, name: str, args: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
        log = (self.root / "logs" / f"{name}.log").open("ab")
        proc = subprocess.Popen(args, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True, preexec_fn=_dies_with_parent)
        self.procs[name] = proc
        return proc

    def wait_healthy(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.procs["server"].poll() is not None:
                raise RuntimeError(f"the Prefect server stopped; see {self.root / 'logs' / 'server.log'}")
            with contextlib.suppress(OSError), urllib.request.urlopen(f"{self.api}/health", timeout=2) as answer:
                if answer.status == 200:
                    return
            time.sleep(0.5)
        raise RuntimeError("the Prefect server did not answer")

    def run(self, args: list[str], timeout: float = 180, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(args, cwd=REPO, env=self.base_env(), capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise RuntimeError(f"{' '.join(args[:3])} exited {done.returncode}:\n{done.stdout[-3000:]}\n"
                               f"{done.stderr[-3000:]}")
        return done

    def prefect(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run([str(BIN / "prefect"), *args], **kw)

    def ldflow(self, args: list[str], **kw: Any) -> subprocess.CompletedProcess[str]:
        return self.run([str(BIN / "ldflow"), *args], **kw)

    def deploy(self) -> subprocess.CompletedProcess[str]:
        """As the README says: the work pool, `prefect deploy --all`, `ldflow prefect-setup`."""
        self.prefect(["work-pool", "create", "ldflow", "--type", "process"])
        done = self.prefect(["--no-prompt", "deploy", "--all"])
        self.ldflow(["prefect-setup"])
        return done

    def start_worker(self, name: str, limit: int = 4) -> subprocess.Popen[bytes]:
        return self.spawn(name, [str(BIN / "ldflow"), "worker", "--pool", "ldflow", "--limit", str(limit),
                                 "--name", name], self.base_env())

    def kill(self, name: str, sig: int = signal.SIGKILL) -> None:
        """Kill a process and everything it started (its process group: a machine that died)."""
        proc = self.procs.pop(name)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, sig)
        proc.wait(timeout=30)

    # --- the API -----------------------------------------------------------------------------------

    def post(self, path: str, body: Any) -> Any:
        request = urllib.request.Request(f"{self.api}{path}", data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json"}, method="POST")
        with urllib.request.urlopen(request, timeout=30) as answer:
            text = answer.read()
        return json.loads(text) if text else None

    def get(self, path: str) -> Any:
        with urllib.request.urlopen(f"{self.api}{path}", timeout=30) as answer:
            return json.loads(answer.read())

    def deployments(self) -> dict[str, Any]:
        return {d["name"]: d for d in self.post("/deployments/filter", {})}

    def automations(self) -> list[Any]:
        return list(self.post("/automations/filter", {}))

    def flow_runs(self, states: list[str] | None = None) -> list[Any]:
        body: dict[str, Any] = {"limit": 200}
        if states:
            body["flow_runs"] = {"state": {"type": {"any_": states}}}
        return list(self.post("/flow_runs/filter", body))

    def run_deployment(self, name: str, parameters: dict[str, Any] | None = None) -> str:
        deployment = self.deployments()[name]
        run = self.post(f"/deployments/{deployment['id']}/create_flow_run", {"parameters": parameters or {}})
        return str(run["id"])

    def wait_run(self, run_id: str, timeout: float, final: tuple[str, ...] = ("COMPLETED",)) -> Any:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            run = self.get(f"/flow_runs/{run_id}")
            kind = (run.get("state") or {}).get("type")
            if kind in final:
                return run
            if kind in ("FAILED", "CRASHED", "CANCELLED", "COMPLETED"):
                raise RuntimeError(f"flow run {run['name']} ended {kind}: {(run.get('state') or {}).get('message')}")
            time.sleep(1)
        raise RuntimeError(f"flow run {run_id} not finished after {timeout} s")

    def pause_schedules(self) -> None:
        """No scheduled runs: the check starts each run itself (the triggers stay on)."""
        for deployment in self.deployments().values():
            for schedule in deployment["schedules"]:
                request = urllib.request.Request(
                    f"{self.api}/deployments/{deployment['id']}/schedules/{schedule['id']}",
                    data=json.dumps({"active": False}).encode(), headers={"Content-Type": "application/json"},
                    method="PATCH")
                urllib.request.urlopen(request, timeout=30).close()

    # --- tear-down ---------------------------------------------------------------------------------

    def close(self) -> None:
        """Drop the databases, then stop every process group: SIGTERM to all, SIGKILL after 10 s."""
        import psycopg

        for name in self.databases:
            with contextlib.suppress(Exception), psycopg.connect(self.admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.databases.clear()
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + 10
        for name, proc in list(self.procs.items()):
            with contextlib.suppress(subprocess.TimeoutExpired):
                proc.wait(timeout=max(0.1, deadline - time.monotonic()))
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)  # the group: what the process started, too
            proc.wait(timeout=10)
            self.procs.pop(name)
