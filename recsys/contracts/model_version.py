"""What a model version is and how every layer finds the current one.

A model version is a string `<UTC yyyymmddTHHMMSS>-<run_date>`; it names one partition of
user_factors and item_factors and one row of model_registry. A version moves from `candidate`
(written, not served) to `published` or `rejected`. The *current* version is the published row
with the latest `published_at`: publishing or rolling back is a single Delta commit to the
registry, so readers see the old or the new version, never a mix.
"""

from __future__ import annotations

from datetime import UTC, datetime

CANDIDATE = "candidate"
PUBLISHED = "published"
REJECTED = "rejected"
STATUSES = (CANDIDATE, PUBLISHED, REJECTED)


def new_version(run_date: str, now: datetime | None = None) -> str:
    now = now or datetime.now(UTC)
    return f"{now.strftime('%Y%m%dT%H%M%S')}-{run_date}"


def current_version(rows: list[dict]) -> str | None:
    """Pick the current version from registry rows (dicts with status, published_at, model_version)."""
    published = [r for r in rows if r.get("status") == PUBLISHED and r.get("published_at") is not None]
    if not published:
        return None
    return max(published, key=lambda r: (r["published_at"], r["model_version"]))["model_version"]
