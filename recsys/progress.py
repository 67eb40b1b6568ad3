"""Progress lines a job prints for whoever runs it; `make demo` turns them into a progress bar.

A job prints `@progress {"pct": 35.0, "what": "starting Spark"}` on stdout (one line, flushed); every other
line is ordinary log. The reader needs no knowledge of the job beyond this prefix.
"""

from __future__ import annotations

import json
import sys
from typing import TextIO

PREFIX = "@progress "


def progress_line(pct: float, what: str) -> str:
    return PREFIX + json.dumps({"pct": round(min(max(pct, 0.0), 100.0), 1), "what": what})


def report(pct: float, what: str, out: TextIO | None = None) -> None:
    """Print one progress line (percent done of the whole job, and what it is doing now)."""
    print(progress_line(pct, what), file=out or sys.stdout, flush=True)


def parse_progress(line: str) -> tuple[float, str] | None:
    """(percent, what) of a progress line, None for any other line (or a garbled one)."""
    start = line.find(PREFIX)  # spark-submit may prefix nothing, a log layout could prefix a time stamp
    if start < 0:
        return None
    try:
        data = json.loads(line[start + len(PREFIX):])
        return float(data["pct"]), str(data["what"])
    except (ValueError, KeyError, TypeError):
        return None
