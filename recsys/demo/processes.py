"""The demo's child processes: each in its own process group, logged under .local/run/, stopped as a group."""

from __future__ import annotations

import os
import queue
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

from recsys.config import PROJECT_ROOT

RUN_DIR = PROJECT_ROOT / ".local" / "run"
POLL_S = 0.1


def stop(proc: subprocess.Popen, timeout_s: float = 20.0) -> None:
    """SIGTERM the process's whole group (it leads its own session), SIGKILL what is left after timeout_s."""
    if proc.poll() is not None:
        _kill_group(proc.pid, signal.SIGKILL)  # children that outlived their leader
        return
    _kill_group(proc.pid, signal.SIGTERM)
    with suppress(subprocess.TimeoutExpired):
        proc.wait(timeout_s)
    _kill_group(proc.pid, signal.SIGKILL)
    proc.wait()


def _kill_group(pgid: int, sig: int) -> None:
    with suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)


def run_logged(command: list[str], log: Path, on_line: Callable[[str], None], tick: Callable[[], None],
               running: list[subprocess.Popen], env: dict[str, str] | None = None) -> int:
    """Run a job in its own process group to completion: every line goes to `log` and to on_line."""
    with log.open("w") as out:
        proc = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                                errors="replace", bufsize=1, cwd=PROJECT_ROOT, start_new_session=True,
                                env={**os.environ, **(env or {})})
        running.append(proc)
        lines: queue.Queue[str | None] = queue.Queue()

        def read() -> None:
            for line in proc.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=read, daemon=True).start()
        try:
            while (line := _next_line(lines, tick)) is not None:
                out.write(line)
                out.flush()
                on_line(line)
            return proc.wait()
        finally:
            if proc.poll() is None:
                print(f"    stopping {log.stem} (process group {proc.pid})", flush=True)
            stop(proc)
            running.remove(proc)


def _next_line(lines: queue.Queue, tick: Callable[[], None]) -> str | None:
    while True:
        try:
            return lines.get(timeout=0.5)
        except queue.Empty:
            tick()


def tail(log: Path, n: int = 15) -> str:
    text = log.read_text(errors="replace").splitlines() if log.exists() else []
    return "\n".join(f"      | {line}" for line in text[-n:])


def start_background(name: str, command: list[str]) -> subprocess.Popen:
    log = (RUN_DIR / f"{name}.log").open("w")
    return subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, cwd=PROJECT_ROOT,
                            start_new_session=True)


def wait_until(check: Callable[[], bool], timeout_s: float, what: str, procs: dict[str, subprocess.Popen]) -> float:
    started = time.monotonic()
    while time.monotonic() - started < timeout_s:
        for name, proc in procs.items():
            if proc.poll() is not None:
                log = RUN_DIR / f"{name}.log"
                raise RuntimeError(f"the {name} process exited with {proc.returncode} while waiting for {what}; "
                                   f"last lines of {log}:\n{tail(log)}")
        if check():
            return time.monotonic() - started
        time.sleep(POLL_S)
    raise TimeoutError(f"{what} not seen within {timeout_s:.0f}s; logs in {RUN_DIR}")


def port_free(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) != 0
