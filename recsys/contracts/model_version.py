"""What a model version is and how every layer finds the current one.

A model version is a string `<run_date>.<n>`: the n-th model trained on the events up to run_date
(n > 1 when the run date is retrained on purpose or an earlier attempt was superseded). It names one partition of every
per-version table (factors, similar items, popular items, content profiles) and one row of
model_registry. A version moves `training` (a batch run claimed it and is writing its outputs) ->
`candidate` (written, not served) -> `approved` (passed the gate) -> `published`, or to `rejected`. Each
training attempt claims a version of its own (the next n), so two runs of one date never write the same
partitions. Only an `approved` or `published` version can be activated (made current).
The *current* version is the published row with the latest
`published_at`: publishing or rolling back is a single Delta commit to the registry, so readers see
the old or the new version, never a mix.
"""

from __future__ import annotations

TRAINING = "training"
CANDIDATE = "candidate"
APPROVED = "approved"
PUBLISHED = "published"
REJECTED = "rejected"
STATUSES = (TRAINING, CANDIDATE, APPROVED, PUBLISHED, REJECTED)
FINISHED = (PUBLISHED, REJECTED)  # a run date with a version in one of these has been decided
ACTIVATABLE = (APPROVED, PUBLISHED)  # passed the gate: the only versions a rollback or roll-forward may make current

# What a version may look like where it goes into a query (a Delta predicate); version_name's output matches.
VERSION_PATTERN = r"^[A-Za-z0-9_.:\-]+$"


def version_name(run_date: str, n: int = 1) -> str:
    return f"{run_date}.{n}"


def sequence_of(version: str) -> int:
    """The n of `<run_date>.<n>`; versions in another format count as 0."""
    tail = version.rsplit(".", 1)[-1]
    return int(tail) if tail.isdigit() else 0


def current_version(rows: list[dict]) -> str | None:
    """Pick the current version from registry rows (dicts with status, published_at, model_version)."""
    published = [r for r in rows if r.get("status") == PUBLISHED and r.get("published_at") is not None]
    if not published:
        return None
    return max(published, key=lambda r: (r["published_at"], r["model_version"]))["model_version"]
