"""A tiny shop with two tastes, shared by the Spark, integration and Airflow tests."""

from datetime import UTC, datetime, timedelta

import pandas as pd

START = datetime(2026, 11, 1, tzinfo=UTC)


def two_taste_events() -> pd.DataFrame:
    """Users 0-19 buy from the a* items, users 20-39 from the b* items."""
    rows = []
    for u in range(40):
        group = "a" if u < 20 else "b"
        for i in range(8):
            if (u + i) % 4 == 0:  # leave gaps to recommend
                continue
            rows.append({"event_id": f"e{u}-{i}", "user_id": f"u{u}", "item_id": f"{group}{i}",
                         "event_type": "purchase" if i % 2 else "view", "quantity": 1,
                         "ts": START + timedelta(minutes=u * 10 + i)})
    return pd.DataFrame(rows)


def two_taste_catalogue() -> tuple[pd.DataFrame, pd.DataFrame]:
    """(items, users): a* items are red garden things, b* blue kitchen things; a-users are young women."""
    items = pd.DataFrame([{"item_id": f"{g}{i}", "title": f"{colour} {thing} number {i}", "category": category,
                           "brand": f"brand-{g}", "price": 5.0 + i if g == "a" else 50.0 + i,
                           "updated_at": START}
                          for g, colour, thing, category in (("a", "red", "garden hose", "garden"),
                                                             ("b", "blue", "kitchen knife", "kitchen"))
                          for i in range(8)])
    users = pd.DataFrame([{"user_id": f"u{u}", "age_band": "18-24" if u < 20 else "45-54",
                           "gender": "f" if u < 20 else "m", "location": "uk", "updated_at": START}
                          for u in range(40)])
    return items, users
