"""MovieLens 100k (RecBole atomic files) as shop events: a small public benchmark with known results.

Every rating becomes a `view` of the movie with context {"rating": "<r>"} (ratings are explicit
feedback; keeping the value lets training weight or filter them). Users are prefixed "u", movies "m".
The files ship inside the RecBole wheel, so `fetch_movielens_100k` takes them from there with pip.
"""

from __future__ import annotations

import csv
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.data.frames import (
    ShopData,
    age_bands,
    events_frame,
    items_frame,
    sanitize_ids,
    stable_ids,
    users_frame,
)

DATASET = "ml-100k"
FILES: tuple[str, ...] = (f"{DATASET}.inter", f"{DATASET}.item", f"{DATASET}.user")
RECBOLE_REQUIREMENT = "recbole==1.2.1"
WHEEL_MEMBER_DIR = f"recbole/dataset_example/{DATASET}/"
ID_NAMESPACE = DATASET
USER_PREFIX, ITEM_PREFIX = "u", "m"
GENDERS: dict[str, str] = {"F": "female", "M": "male"}
_PIP_TIMEOUT_S = 600
_ERROR_TAIL_CHARS = 2000


def load_movielens_100k(path: str | Path) -> ShopData:
    """Read ml-100k.inter/.item/.user from the directory `path` into ShopData."""
    directory = Path(path)
    inter = _read_atomic(directory / FILES[0])
    movies = _read_atomic(directory / FILES[1])
    people = _read_atomic(directory / FILES[2])

    seconds = pd.to_numeric(inter["timestamp"]).round().astype(np.int64)
    ratings = pd.to_numeric(inter["rating"])
    events = events_frame({
        "event_id": stable_ids(ID_NAMESPACE, inter["user_id"], inter["item_id"], inter["timestamp"]),
        "user_id": _prefixed(USER_PREFIX, inter["user_id"]),
        "item_id": _prefixed(ITEM_PREFIX, inter["item_id"]),
        "event_type": "view",
        "ts": pd.to_datetime(seconds, unit="s", utc=True),
        "session_id": None,
        "quantity": 1,
        "price": np.nan,
        "context": [{"rating": f"{rating:g}"} for rating in ratings],
    })
    as_of = events["ts"].max() if len(events) else pd.Timestamp.now(tz="UTC")

    year = movies["release_year"].where(movies["release_year"] != "")
    title = movies["movie_title"].where(year.isna(), movies["movie_title"] + " (" + year.fillna("") + ")")
    genre = movies["class"].str.split().str[0]
    items = items_frame({"item_id": _prefixed(ITEM_PREFIX, movies["item_id"]), "title": title.to_numpy(),
                         "category": genre.where(genre.notna(), None).to_numpy(), "brand": None,
                         "price": np.nan, "updated_at": as_of})
    users = users_frame({"user_id": _prefixed(USER_PREFIX, people["user_id"]),
                         "age_band": age_bands(people["age"]).to_numpy(),
                         "gender": people["gender"].map(GENDERS).astype(object).to_numpy(),
                         "location": people["zip_code"].where(people["zip_code"] != "", None).to_numpy(),
                         "updated_at": as_of})
    return ShopData(events=events, items=items, users=users)


def fetch_movielens_100k(dest_dir: str | Path) -> Path:
    """Make sure dest_dir holds the ml-100k atomic files, taking them from the RecBole wheel if missing.

    Only the wheel is downloaded (`pip download --no-deps`), nothing is installed; returns dest_dir.
    """
    dest = Path(dest_dir)
    if all((dest / name).is_file() for name in FILES):
        return dest
    dest.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="recbole-wheel-") as tmp:
        wheel = _download_wheel(Path(tmp))
        _extract_dataset(wheel, dest)
    missing = [name for name in FILES if not (dest / name).is_file()]
    if missing:
        raise RuntimeError(f"{wheel.name} has no {WHEEL_MEMBER_DIR}{{{','.join(missing)}}}")
    return dest


def _download_wheel(tmp: Path) -> Path:
    command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               RECBOLE_REQUIREMENT, "-d", str(tmp)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=_PIP_TIMEOUT_S, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise RuntimeError(f"could not run {' '.join(command)}: {error}") from error
    if done.returncode != 0:
        detail = (done.stderr or done.stdout).strip()[-_ERROR_TAIL_CHARS:]
        raise RuntimeError(f"downloading {RECBOLE_REQUIREMENT} for MovieLens 100k failed "
                           f"(exit {done.returncode}); is the package index reachable?\n{detail}")
    wheels = sorted(tmp.glob("recbole-*.whl"))
    if not wheels:
        raise RuntimeError(f"pip reported success but left no recbole wheel in {tmp}")
    return wheels[0]


def _extract_dataset(wheel: Path, dest: Path) -> None:
    """Copy the wheel's ml-100k members into dest (flat names; each file appears complete or not at all)."""
    with zipfile.ZipFile(wheel) as archive:
        for member in archive.infolist():
            name = member.filename.removeprefix(WHEEL_MEMBER_DIR)
            if not member.filename.startswith(WHEEL_MEMBER_DIR) or not name or "/" in name:
                continue
            partial = dest / f".{name}.part"
            with archive.open(member) as source, partial.open("wb") as target:
                shutil.copyfileobj(source, target)
            os.replace(partial, dest / name)


def _read_atomic(path: Path) -> pd.DataFrame:
    """A RecBole atomic file: tab-separated, header `name:type`; everything read as text."""
    frame = pd.read_csv(path, sep="\t", dtype=str, keep_default_na=False, quoting=csv.QUOTE_NONE,
                        encoding="utf-8")
    frame.columns = [column.split(":", 1)[0] for column in frame.columns]
    return frame


def _prefixed(prefix: str, tokens: pd.Series) -> np.ndarray:
    return sanitize_ids(prefix + tokens.str.strip()).to_numpy()
