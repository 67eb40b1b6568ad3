"""MovieLens 100k atomic files become view events with ratings; fetching never downloads when files exist."""

from __future__ import annotations

import subprocess
import zipfile
from pathlib import Path

import pandas as pd
import pytest

from recsys.contracts.events import ID_PATTERN
from recsys.data import movielens
from recsys.data.frames import EVENT_COLUMNS, ITEM_COLUMNS, USER_COLUMNS, iter_events
from recsys.data.movielens import FILES, WHEEL_MEMBER_DIR, fetch_movielens_100k, load_movielens_100k

pytestmark = pytest.mark.unit

INTER = ("user_id:token\titem_id:token\trating:float\ttimestamp:float\n"
         "196\t242\t3\t881250949\n"
         "186\t302\t3.5\t891717742\n"
         "22\t377\t1\t878887116\n"
         "196\t1\t5\t881250950\n")
ITEM = ("item_id:token\tmovie_title:token_seq\trelease_year:token\tclass:token_seq\n"
        "1\tToy Story\t1995\tAnimation Children's Comedy\n"
        "242\tKolya\t1996\tComedy\n"
        "302\tL.A. Confidential\t1997\tCrime Film-Noir Mystery Thriller\n"
        "377\tHeavyweights \"Tall\"\t\tChildren's Comedy\n"
        "999\tNever Rated\t1990\t\n")
USER = ("user_id:token\tage:token\tgender:token\toccupation:token\tzip_code:token\n"
        "196\t49\tM\twriter\t55105\n"
        "186\t39\tF\texecutive\t00000\n"
        "22\t17\tM\twriter\tT8H1N\n")


def write_atomic_files(directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in zip(FILES, (INTER, ITEM, USER), strict=True):
        (directory / name).write_text(text, encoding="utf-8")
    return directory


@pytest.fixture()
def shop(tmp_path):
    return load_movielens_100k(write_atomic_files(tmp_path / "ml-100k"))


def test_ratings_become_view_events(shop):
    events = shop.events
    assert tuple(events.columns) == EVENT_COLUMNS and len(events) == 4
    assert (events["event_type"] == "view").all()
    assert events["ts"].is_monotonic_increasing and str(events["ts"].dt.tz) == "UTC"
    first = events.iloc[0]  # the earliest rating: user 22 gave movie 377 one star
    assert (first["user_id"], first["item_id"], first["context"]) == ("u22", "m377", {"rating": "1"})
    assert first["ts"] == pd.Timestamp(878887116, unit="s", tz="UTC")
    assert events.set_index("item_id").loc["m302", "context"] == {"rating": "3.5"}
    assert (events["quantity"] == 1).all() and events["price"].isna().all()
    assert events["session_id"].isna().all()


def test_events_satisfy_contract(shop):
    events = shop.events
    validated = list(iter_events(events))
    assert [event.user_id for event in validated] == events["user_id"].tolist()
    assert all(event.price is None for event in validated)
    for column in ("event_id", "user_id", "item_id"):
        assert events[column].str.fullmatch(ID_PATTERN).all()


def test_event_ids_unique_and_stable(shop, tmp_path):
    assert shop.events["event_id"].is_unique
    again = load_movielens_100k(tmp_path / "ml-100k")
    assert again.events["event_id"].tolist() == shop.events["event_id"].tolist()


def test_items_take_first_genre_and_year(shop):
    items = shop.items.set_index("item_id")
    assert tuple(shop.items.columns) == ITEM_COLUMNS
    assert items.loc["m1", "category"] == "Animation" and items.loc["m302", "category"] == "Crime"
    assert items.loc["m1", "title"] == "Toy Story (1995)"
    assert items.loc["m377", "title"] == 'Heavyweights "Tall"'  # no year, quotes kept verbatim
    assert items.loc["m999", "category"] is None
    assert set(shop.events["item_id"]) <= set(items.index)
    assert items["brand"].isna().all() and items["price"].isna().all()


def test_users_get_age_bands(shop):
    users = shop.users.set_index("user_id")
    assert tuple(shop.users.columns) == USER_COLUMNS
    assert users.loc["u196"].tolist()[:3] == ["45-54", "male", "55105"]
    assert users.loc["u186", "age_band"] == "35-44" and users.loc["u186", "gender"] == "female"
    assert users.loc["u186", "location"] == "00000"  # zip codes stay text
    assert users.loc["u22", "age_band"] == "0-17"
    assert set(shop.events["user_id"]) <= set(users.index)


def test_fetch_returns_existing_files_without_running_pip(tmp_path, monkeypatch):
    directory = write_atomic_files(tmp_path / "data")

    def forbidden(*args, **kwargs):
        raise AssertionError("pip must not run when the files are present")

    monkeypatch.setattr(movielens.subprocess, "run", forbidden)
    assert fetch_movielens_100k(directory) == directory


def test_fetch_extracts_dataset_members_from_the_wheel(tmp_path, monkeypatch):
    calls = []

    def fake_pip(command, **kwargs):
        calls.append(command)
        download_dir = Path(command[command.index("-d") + 1])
        with zipfile.ZipFile(download_dir / "recbole-1.2.1-py3-none-any.whl", "w") as wheel:
            for name, text in zip(FILES, (INTER, ITEM, USER), strict=True):
                wheel.writestr(WHEEL_MEMBER_DIR + name, text)
            wheel.writestr("recbole/__init__.py", "")
        return subprocess.CompletedProcess(command, 0, "", "")

    monkeypatch.setattr(movielens.subprocess, "run", fake_pip)
    dest = fetch_movielens_100k(tmp_path / "new")
    assert sorted(path.name for path in dest.iterdir()) == sorted(FILES)
    assert calls[0][1:4] == ["-m", "pip", "download"] and "--no-deps" in calls[0]
    assert "recbole==1.2.1" in calls[0]
    assert len(load_movielens_100k(dest).events) == 4


def test_fetch_failure_is_reported_clearly(tmp_path, monkeypatch):
    def failing_pip(command, **kwargs):
        return subprocess.CompletedProcess(command, 1, "", "ERROR: No matching distribution found")

    monkeypatch.setattr(movielens.subprocess, "run", failing_pip)
    with pytest.raises(RuntimeError, match=r"(?s)recbole==1.2.1.*failed.*No matching distribution") as error:
        fetch_movielens_100k(tmp_path / "offline")
    assert "exit 1" in str(error.value)
