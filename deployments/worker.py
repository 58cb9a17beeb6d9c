"""`reportrunner worker`: a Prefect process worker for the `reports` pool, with sane limits.

Prefect's own default is no limit on concurrent flow runs; a worker here runs at
most one flow run per core (each chunk already renders on several processes).

`reportrunner worker` supervises Prefect's worker as a child process instead of
becoming it. Prefect's own stop on SIGTERM (it sends itself SIGINT) is unbounded: it
waits for the API and for its flow runs. And it did nothing at all where the worker
inherited SIGINT ignored (a CI runner, `cmd &` in a script), so the child gets SIGINT
back to default. One SIGTERM ends the worker and its flow runs within `STOP_GRACE_S`
plus about a second, whatever the worker does.

The child is Prefect's own `worker start`, with two changes for latency (measured in
docs/BENCHMARKS.md, "Click to PDF"):

- it asks for scheduled runs every `DEFAULT_QUERY_S` second instead of Prefect's 10
  (PREFECT_WORKER_QUERY_SECONDS in the environment wins);
- it starts flow runs warm (`flows.warm_start`): a process that has imported Prefect,
  pandas, WeasyPrint and the flows once forks each flow-run process, instead of two
  new interpreters importing all of it per run. REPORTRUNNER_WARM_START=0 turns that
  off (Prefect's own start: its workspace supervisor, then `python -m prefect.engine`).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from deployments.processes import descendants, kill_pids, kill_tree, service_preexec
from deployments.topology import WORK_POOL

# SIGTERM → SIGKILL for the worker and its flow runs: a stop completes well within 15 s.
STOP_GRACE_S = 10.0
# Exit status when the grace ran out and the worker was killed (timeout(1)'s convention).
EXIT_FORCED_STOP = 124
_POLL_S = 0.2
# Seconds between the worker's queries for scheduled runs (Prefect's default: 10). One
# query covers every queue of the pool; an idle worker makes one request per interval.
DEFAULT_QUERY_S = 1
QUERY_VARIABLE = "PREFECT_WORKER_QUERY_SECONDS"
WARM_START_VARIABLE = "REPORTRUNNER_WARM_START"
WARM_START_SCRIPT = Path(__file__).resolve().parents[1] / "flows" / "warm_start.py"


def worker_command(
    *, name: str | None, limit: int | None, pool: str = WORK_POOL, healthcheck: bool = True
) -> list[str]:
    """`python -m deployments.worker …`: Prefect's `worker start` with these options (`main`)."""
    command = [
        sys.executable,
        "-m",
        "deployments.worker",
        "--pool",
        pool,
        "--type",
        "process",
        "--limit",
        str(limit or os.cpu_count() or 1),
    ]
    if name:
        command += ["--name", name]
    if healthcheck:
        command.append("--with-healthcheck")
    return command


def worker_environment(healthcheck_port: int) -> dict[str, str]:
    # Each worker's health endpoint needs its own port when several share a host.
    # Flow runs inherit this environment, and with it their heartbeat interval.
    return {
        QUERY_VARIABLE: str(DEFAULT_QUERY_S),
        **os.environ,
        "PREFECT_WORKER_WEBSERVER_HOST": "127.0.0.1",
        "PREFECT_WORKER_WEBSERVER_PORT": str(healthcheck_port),
        HEARTBEAT_VARIABLE: str(heartbeat_seconds()),
    }


def supervise(
    command: list[str],
    env: dict[str, str],
    *,
    grace_s: float = STOP_GRACE_S,
    say: Callable[[str], None],
) -> int:
    """Run the worker `command` as a child until it exits; return its exit status.

    The first SIGTERM or SIGINT is passed on as SIGINT, Prefect's graceful path (stop
    polling, end the runs it holds, deregister). If the worker has not exited `grace_s`
    later, or on a second signal, the worker and every process it started are killed;
    runs it held then stop sending heartbeats and the zombie automation below marks them
    Crashed. The child shares stdout and stderr, so its log reads as before.
    """
    requests: list[int] = []

    def request_stop(signum: int, frame: object) -> None:
        requests.append(signum)

    # Installed before the child starts, so no signal is lost in between.
    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        child = subprocess.Popen(
            command,
            env=env,
            start_new_session=True,  # its own group: reachable as a whole, out of a tty's ^C
            preexec_fn=service_preexec(parent_death_signal=signal.SIGKILL),
        )
        return _run_until_stopped(child, requests, grace_s, say)
    finally:
        for sig, handler in previous.items():
            if handler is not None:  # None: installed outside Python, cannot be restored
                signal.signal(sig, handler)


def _run_until_stopped(
    child: subprocess.Popen, requests: list[int], grace_s: float, say: Callable[[str], None]
) -> int:
    deadline: float | None = None
    held: dict[int, int] = {}  # the child's descendants, as last seen while it stopped
    while True:
        try:
            child.wait(_POLL_S)
            break
        except subprocess.TimeoutExpired:
            pass
        if not requests:
            continue
        if deadline is None:
            deadline = time.monotonic() + grace_s
            os.kill(child.pid, signal.SIGINT)
        held = descendants(child.pid)
        if len(requests) > 1 or time.monotonic() >= deadline:
            others = max(kill_tree(child.pid) - 1, 0)
            child.wait()
            why = "a second signal" if len(requests) > 1 else f"{grace_s:.0f} s"
            what = f" and {others} process(es) it started" if others else ""
            say(
                f"reportrunner worker: forced stop after {why}: killed the Prefect worker{what}; "
                "runs it held are marked Crashed once their heartbeats stop"
            )
            return EXIT_FORCED_STOP
    # Flow-run processes the worker left behind when it exited are orphans now: end them.
    kill_pids(held)
    code = child.returncode
    return code if code >= 0 else 128 - code


# ---- the Prefect worker, starting flow runs warm ---------------------------------------


def warm_start_enabled() -> bool:
    return os.environ.get(WARM_START_VARIABLE, "1").strip().lower() not in {"0", "false", "off"}


def main(argv: list[str] | None = None) -> None:
    """Prefect's `prefect worker start ARGV…`, its process worker starting runs warm."""
    if warm_start_enabled():
        _register_warm_worker()
    from prefect.cli import app

    sys.argv = [sys.argv[0], "worker", "start", *(sys.argv[1:] if argv is None else argv)]
    app()


class WarmProcess:
    """The worker's pre-imported process (`flows.warm_start serve`), renewed when it retires.

    It is started with the worker, imports for a few seconds (runs start cold until its
    socket appears), and retires by itself when the project's code on disk changes; the
    next run then starts a new one. It exits with the worker.
    """

    def __init__(self) -> None:
        self.folder = Path(tempfile.mkdtemp(prefix="reportrunner-warm-"))
        self.generation = 0
        self.process: subprocess.Popen | None = None
        self.ready = False
        self.retiring: list[subprocess.Popen] = []

    @property
    def socket_path(self) -> Path:
        return self.folder / f"warm-{self.generation}.sock"

    def start(self) -> None:
        from prefect.settings import get_current_settings

        self.generation += 1
        self.ready = False
        # The environment a flow-run process gets from the worker, less its own keys.
        env = {
            **os.environ,
            **get_current_settings().to_environment_variables(exclude_unset=True),
        }
        serve = ["serve", str(self.socket_path), str(os.getpid())]
        self.process = subprocess.Popen(
            [sys.executable, "-m", "flows.warm_start", *serve],
            env={k: v for k, v in env.items() if v is not None},
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # signals to the worker's group are not for it
        )

    def command(self) -> str | None:
        """The flow-run command: the client of the current warm process (started if needed)."""
        from prefect.utilities.processutils import command_to_string

        self.retiring = [p for p in self.retiring if p.poll() is None]
        process = self.process
        retired = process is not None and self.ready and not self.socket_path.exists()
        if process is None or process.poll() is not None or retired:
            if process is not None and process.poll() is None:
                self.retiring.append(process)  # exits once its last run has
            self.start()
        self.ready = self.ready or self.socket_path.exists()
        script = [sys.executable, "-I", "-S", str(WARM_START_SCRIPT)]
        return command_to_string([*script, "connect", str(self.socket_path)])

    def stop(self) -> None:
        for process in [self.process, *self.retiring]:
            if process is not None and process.poll() is None:
                process.terminate()
        import shutil

        shutil.rmtree(self.folder, ignore_errors=True)


def _register_warm_worker() -> None:
    """Make `--type process` start `WarmProcessWorker`: defining it takes over Prefect's key."""
    import warnings

    from prefect.workers.process import ProcessWorker

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "… the existing type will be overridden": intended

        class WarmProcessWorker(ProcessWorker):
            type = "process"

            async def setup(self) -> None:
                await super().setup()
                self._warm = WarmProcess()
                self._warm.start()

            async def teardown(self, *exc_info) -> None:
                try:
                    await super().teardown(*exc_info)
                finally:
                    self._warm.stop()

            async def run(self, flow_run, configuration, task_status=None):
                # A command set in the deployment's job variables is its own choice.
                if not configuration._command_configured:
                    configuration.command = self._warm.command()
                    configuration._command_configured = True
                return await super().run(flow_run, configuration, task_status)


# ---- runs a dead worker leaves behind -------------------------------------------------
#
# A worker killed with its flow runs (SIGKILL, lost machine) cannot report anything: its
# runs stay Running for ever. Each flow run sends a heartbeat event every
# `PREFECT_FLOWS_HEARTBEAT_FREQUENCY` seconds; this automation marks a run Crashed when
# its heartbeats stop for three intervals without a final state, so the failure
# alert, `reportrunner status` and a retry all see it (Prefect's documented recipe for
# "zombie" flow runs; the server has no built-in service for it).
#
# A worker killed after it took a run (Pending) but before the run's process began
# (Running) leaves a run that never sent a heartbeat: the same silence after Pending
# crashes it too. A healthy start takes seconds, far within three heartbeat intervals.

ZOMBIE_AUTOMATION = "reportrunner-unresponsive-runs"
MISSED_HEARTBEATS = 3
HEARTBEAT_VARIABLE = "PREFECT_FLOWS_HEARTBEAT_FREQUENCY"
# Prefect's default is 180 s (9 minutes to detect a dead run); its minimum is 30 s.
DEFAULT_HEARTBEAT_S = 60
_FINAL_EVENTS = (
    "prefect.flow-run.Completed",
    "prefect.flow-run.Failed",
    "prefect.flow-run.Cancelled",
    "prefect.flow-run.Crashed",
)


def heartbeat_seconds() -> int:
    """The flow runs' heartbeat interval: the environment's, else one minute."""
    return int(os.environ.get(HEARTBEAT_VARIABLE) or DEFAULT_HEARTBEAT_S)


def ensure_zombie_detection(client, heartbeat_s: int | None = None) -> str:
    """Create or update the automation that crashes runs whose heartbeats stopped."""
    desired = _zombie_automation(heartbeat_s or heartbeat_seconds())
    existing = client.read_automations_by_name(ZOMBIE_AUTOMATION)
    for extra in existing[1:]:
        client.delete_automation(extra.id)
    if not existing:
        client.create_automation(desired)
        return f"created    automation {ZOMBIE_AUTOMATION}"
    if _comparable(existing[0]) == _comparable(desired) and len(existing) == 1:
        return f"unchanged  automation {ZOMBIE_AUTOMATION}"
    client.update_automation(existing[0].id, desired)
    return f"updated    automation {ZOMBIE_AUTOMATION}"


def _comparable(automation) -> dict:
    data = automation.model_dump(mode="json", include={"name", "description", "trigger", "actions"})
    for key in ("after", "expect", "for_each"):
        data["trigger"][key] = sorted(data["trigger"][key])
    return data


def _zombie_automation(heartbeat_s: int):
    from datetime import timedelta

    from prefect.client.schemas.objects import StateType
    from prefect.events.actions import ChangeFlowRunState
    from prefect.events.schemas.automations import AutomationCore, EventTrigger, Posture

    silence = heartbeat_s * MISSED_HEARTBEATS
    return AutomationCore(
        name=ZOMBIE_AUTOMATION,
        description=(
            f"Marks a flow run Crashed when it sent no heartbeat for {silence} s, or "
            f"stayed Pending that long (its worker or machine died). Created by "
            "`reportrunner deploy`."
        ),
        trigger=EventTrigger(
            after={"prefect.flow-run.heartbeat", "prefect.flow-run.Pending"},
            expect={"prefect.flow-run.heartbeat", "prefect.flow-run.Running", *_FINAL_EVENTS},
            match={"prefect.resource.id": ["prefect.flow-run.*"]},
            for_each={"prefect.resource.id"},
            posture=Posture.Proactive,
            threshold=1,
            within=timedelta(seconds=silence),
        ),
        actions=[
            ChangeFlowRunState(
                state=StateType.CRASHED,
                message=(
                    f"no heartbeat for {silence} s, or Pending that long: its worker or "
                    "machine stopped"
                ),
            )
        ],
    )


if __name__ == "__main__":
    from deployments.worker import main as _main  # the module, not a second copy as __main__

    _main()
