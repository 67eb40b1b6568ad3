"""What `make demo` prints: numbered, timed steps, progress bars and a shopper's list."""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from tqdm import tqdm


class DemoError(RuntimeError):
    """A demo step failed; the message says which, why and where its log is."""


@dataclass
class Steps:
    """Numbered, timed steps; a failure names its step."""

    total: int
    started: float  # time.time() the demo started (make demo's start when known)
    done: list[tuple[str, float]] = field(default_factory=list)

    @contextmanager
    def step(self, name: str) -> Iterator[None]:
        number = len(self.done) + 1
        print(f"\n[{number}/{self.total}] {name}", flush=True)
        began = time.monotonic()
        try:
            yield
        except (DemoError, KeyboardInterrupt):
            raise
        except Exception as exc:  # any failure becomes the step's failure
            raise DemoError(f"step {number}/{self.total} '{name}' failed after "
                            f"{time.monotonic() - began:.1f}s: {exc}") from exc
        seconds = time.monotonic() - began
        self.done.append((name, seconds))
        print(f"    done in {seconds:.1f}s (demo at {time.time() - self.started:.0f}s)", flush=True)

    def summary(self) -> str:
        return "\n".join(f"    {seconds:7.1f}s  {name}" for name, seconds in self.done)


class Bar:
    """A tqdm bar on a terminal; elsewhere (a log, a CI job) a plain line per change of what is done."""

    def __init__(self, total: float, unit: str, tty: bool | None = None) -> None:
        self.tty = sys.stdout.isatty() if tty is None else tty
        self.started = time.monotonic()
        self.what = ""
        self.done = 0.0
        self.total, self.unit = total, unit
        width = min(shutil.get_terminal_size((100, 24)).columns, 120)  # a pty may report 0 columns: no bar
        self._bar = tqdm(total=total, unit=unit, file=sys.stdout, disable=not self.tty, ncols=width, desc=" " * 48,
                         bar_format="    {desc} |{bar}| {n:.0f}/{total:.0f} {unit} [{elapsed}]")

    def set(self, done: float, what: str) -> None:
        if done != self.done:
            self._bar.update(done - self.done)
            self.done = done
        if what != self.what:
            self.what = what
            self._bar.set_description_str(what[:48].ljust(48))
            if not self.tty:
                print(f"    {time.monotonic() - self.started:6.1f}s  {self.done:5.0f}/{self.total:.0f} "
                      f"{self.unit}  {what}", flush=True)

    def note(self, text: str) -> None:
        if self.tty:
            self._bar.write(f"    {text}", file=sys.stdout)
        else:
            print(f"    {time.monotonic() - self.started:6.1f}s  {text}", flush=True)

    def tick(self) -> None:
        self._bar.refresh()  # the elapsed time moves while a phase runs

    def close(self) -> None:
        self._bar.close()


def show(title: str, recs: dict) -> None:
    print(f"    {title} (model {recs['model_version']}, degraded={recs['degraded']}):")
    for rank, item in enumerate(recs["items"], 1):
        print(f"      {rank:2d}. {item['item_id']:<10} {item['score']:7.3f}  {'; '.join(item['reasons'])}")
