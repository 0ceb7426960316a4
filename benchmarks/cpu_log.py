"""A campaign's invocations of a binary, each logged with its CPU seconds, kills included.

Each invocation (`run`) is one line of ``<folder>/search_invocations.jsonl``: its stage (a
label: "search", "probe"), command, return code, CPU seconds (the child's and its waited-for
children's, every thread), wall seconds, load average, when it finished and how many trials
its run directory then held. While it runs, its CPU so far is polled every ``POLL_SECONDS``
into ``<folder>/search_running.json``; a campaign killed mid-invocation leaves that file, and
`recover` (called before the run is worked on again) logs it as ``interrupted``, so a run
resumed across sessions loses at most ``POLL_SECONDS`` of CPU per kill. One campaign process
works on a folder at a time.
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import time
from typing import Any, Callable, Dict, List

LOG = "search_invocations.jsonl"
RUNNING = "search_running.json"
POLL_SECONDS = 5.0


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def process_cpu(pid: int) -> float:
    """CPU seconds so far of a running process (every thread) and its waited-for children;
    0 once it is gone."""
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as f:
            fields = f.read().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return sum(int(x) for x in fields[11:15]) / os.sysconf("SC_CLK_TCK")


def _append(folder: str, entry: Dict[str, Any]) -> None:
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, LOG), "a", encoding="utf-8") as f:
        f.write(json.dumps(entry) + "\n")


def _now() -> Dict[str, Any]:
    return {"loadavg": os.getloadavg()[0], "finished": time.strftime("%Y-%m-%dT%H:%M:%S")}


def recover(folder: str) -> None:
    """Log the invocation a killed campaign left running (its CPU as last polled) as
    ``interrupted``; nothing when there is none."""
    from nascell import _io

    path = os.path.join(folder, RUNNING)
    entry = _io.read_json_or_none(path)
    if entry is not None:
        _append(folder, {**entry, "returncode": None, "interrupted": True})
        os.remove(path)


def run(folder: str, cmd: List[str], stage: str, trials: Callable[[], int]) -> int:
    """Run ``cmd`` to its end and log it; returns its exit status. ``trials()`` counts the
    finished trials of its run directory."""
    from nascell import _io

    recover(folder)
    os.makedirs(folder, exist_ok=True)
    cpu, wall = _children_cpu(), time.time()
    entry = {"stage": stage, "command": cmd}
    proc = subprocess.Popen(cmd)
    while True:
        _io.atomic_write_json(os.path.join(folder, RUNNING), {
            **entry, "cpu_seconds": process_cpu(proc.pid), "wall_seconds": time.time() - wall,
            **_now(), "trials": trials()})
        try:
            rc = proc.wait(timeout=POLL_SECONDS)
            break
        except subprocess.TimeoutExpired:
            continue
    _append(folder, {**entry, "returncode": rc, "cpu_seconds": _children_cpu() - cpu,
                     "wall_seconds": time.time() - wall, **_now(), "trials": trials()})
    os.remove(os.path.join(folder, RUNNING))
    return rc


def entries(folder: str, stage: str = "search") -> List[Dict[str, Any]]:
    """The logged invocations of ``stage`` (a line without a stage is a search)."""
    path = os.path.join(folder, LOG)
    if not os.path.exists(path):
        return []
    with open(path, encoding="utf-8") as f:
        lines = [json.loads(line) for line in f if line.strip()]
    return [e for e in lines if e.get("stage", "search") == stage]


def cpu_seconds(folder: str, stage: str = "search") -> float:
    return float(sum(e["cpu_seconds"] for e in entries(folder, stage)))


def wall_seconds(folder: str, stage: str = "search") -> float:
    return float(sum(e["wall_seconds"] for e in entries(folder, stage)))
