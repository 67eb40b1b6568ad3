"""UCI Online Retail (a UK gift shop, 2010-12 .. 2011-12) as shop events: real purchases to train on.

Usable lines (known customer, quantity > 0, not cancelled, price > 0) become `purchase` events;
cancellations of known customers become `remove_from_cart` events (a negative signal) with context
{"source": "cancellation"}. InvoiceDate is shop wall-clock time and is taken as UTC (UK time, off by one
hour during British summer time). Quantities above the contract's MAX_QUANTITY (two bulk orders and
their cancellations) are capped so every event passes validation.

Event ids hash (invoice, stock code, occurrence of that pair in the invoice), so loading the file
again yields the same ids and writes stay idempotent.
"""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.config import PROJECT_ROOT
from recsys.contracts.events import MAX_QUANTITY
from recsys.data.frames import (
    ShopData,
    check_injective,
    events_frame,
    items_frame,
    sanitize_ids,
    stable_ids,
    users_frame,
)

DEFAULT_PATH = PROJECT_ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.parquet"
ID_NAMESPACE = "online-retail"
CANCELLATION_PREFIX = "C"
CANCELLATION_CONTEXT: dict[str, str] = {"source": "cancellation"}
USER_PREFIX = "c"
SERVICE_CATEGORY = "service"  # postage, manual adjustments, fees: stock codes not starting with a digit
OTHER_CATEGORY = "other"

# Category proxy: the first rule with a word in the upper-cased description wins. Order matters:
# seasonal lines first ("CHRISTMAS CANDLE" is seasonal), containers before materials.
CATEGORY_RULES: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("christmas", ("CHRISTMAS", "XMAS", "ADVENT", "SANTA", "REINDEER", "SNOWFLAKE", "SNOWMAN", "NATIVITY")),
    ("candles_lighting", ("CANDLE", "CANDLES", "T-LIGHT", "T-LIGHTS", "TEALIGHT", "CANDLEHOLDER", "LANTERN",
                          "LAMP", "LAMPSHADE", "LIGHT", "LIGHTS", "NIGHTLIGHT", "INCENSE")),
    ("jewellery", ("NECKLACE", "NECKLAC", "BRACELET", "EARRINGS", "RING", "CHARM", "BEAD", "BEADS",
                   "DIAMANTE", "BROOCH", "PENDANT", "HAIR", "SLIDES", "BANGLE")),
    ("bags", ("BAG", "BAGS", "PURSE", "HANDBAG", "WASHBAG", "SHOPPER", "TOTE")),
    ("stationery_cards", ("CARD", "CARDS", "WRAP", "PAPER", "NOTEBOOK", "PENCILS", "PENCIL", "PEN", "PENS",
                          "STICKERS", "STICKER", "TAPE", "RIBBON", "RIBBONS", "TISSUES", "SKETCHBOOK",
                          "ENVELOPE", "ENVELOPES", "NOTEPAD", "BOOK", "TAG", "TAGS", "ERASER", "CALENDAR",
                          "DIARY", "REEL", "STAMP", "STAMPS")),
    ("kitchen_dining", ("MUG", "MUGS", "CUP", "CUPS", "PLATE", "PLATES", "BOWL", "BOWLS", "CUTLERY", "TEA",
                        "COFFEE", "JAR", "BOTTLE", "TRAY", "SAUCER", "BEAKER", "NAPKINS", "TEAPOT", "LUNCH",
                        "CAKE", "BAKING", "KITCHEN", "PANTRY", "APRON", "PLACEMATS", "COASTER", "COASTERS",
                        "EGG", "DISH", "JUG", "SPOON", "SPOONS", "CHOPSTICKS", "CASES", "TIN", "TINS",
                        "GLASS", "TUMBLER", "JELLY", "BISCUIT", "CHOCOLATE", "SWEETIE")),
    ("toys_games", ("TOY", "TOYS", "GAME", "GAMES", "JIGSAW", "PUZZLE", "DOLL", "SPACEBOY", "BALL",
                    "CHILDRENS", "PLAYING", "CRAYONS", "COLOURING", "SKIPPING", "DOMINOES", "MARBLES",
                    "TEDDY", "FELTCRAFT", "INFLATABLE", "KIT")),
    ("garden_outdoor", ("GARDEN", "PARASOL", "UMBRELLA", "WATERING", "PICNIC", "PLANT", "PLANTER", "SEED",
                        "SEEDS", "BIRD", "BIRDHOUSE", "FEEDER", "HAMMOCK", "FLOWERPOT", "POT")),
    ("party_gifts", ("PARTY", "BIRTHDAY", "GIFT", "BALLOON", "BALLOONS", "CONFETTI", "EASTER", "BUNTING",
                     "GARLAND", "WEDDING", "VALENTINE")),
    ("home_decor", ("FRAME", "MIRROR", "CLOCK", "SIGN", "CUSHION", "DOORMAT", "HOOK", "HOOKS", "HANGER",
                    "DECORATION", "DECORATIONS", "WALL", "CABINET", "DRAWER", "KNOB", "DOORSTOP", "CURTAIN",
                    "ORNAMENT", "ART", "TILE", "PLAQUE", "VASE", "STORAGE", "BOX", "BOXES", "BASKET", "THROW",
                    "QUILT", "BLANKET", "HOLDER", "RACK", "SHELF", "STAND", "WREATH", "HEART", "HEARTS",
                    "MAGNET", "MAGNETS", "PHOTO", "ALBUM", "CHAIR", "STOOL", "TOWEL", "FLANNEL", "SPONGE")),
)
_WORD_SPLIT = re.compile(r"[^A-Z0-9\-]+")


def load_online_retail(path: str | Path) -> ShopData:
    """Read the Online Retail parquet and return its purchases and cancellations as ShopData."""
    raw = pd.read_parquet(path, columns=["InvoiceNo", "StockCode", "Description", "Quantity", "InvoiceDate",
                                         "UnitPrice", "CustomerID", "Country"])
    raw["InvoiceNo"] = raw["InvoiceNo"].astype(str)
    raw["StockCode"] = raw["StockCode"].astype(str)
    # occurrence of (invoice, stock code) in file order: tells duplicate lines apart in the event id
    occurrence = raw.groupby(["InvoiceNo", "StockCode"], sort=False).cumcount()

    known = raw["CustomerID"].notna()
    cancelled = raw["InvoiceNo"].str.startswith(CANCELLATION_PREFIX)
    is_purchase = known & ~cancelled & (raw["Quantity"] > 0) & (raw["UnitPrice"] > 0)
    is_cancellation = known & cancelled & (raw["Quantity"] != 0)
    lines = raw[is_purchase | is_cancellation].assign(occurrence=occurrence, purchase=is_purchase)

    item_ids = sanitize_ids(lines["StockCode"])
    check_injective(lines["StockCode"], item_ids, "StockCode")
    user_ids = USER_PREFIX + lines["CustomerID"].astype(np.int64).astype(str)
    lines = lines.assign(item_id=item_ids, user_id=user_ids, ts=lines["InvoiceDate"].dt.tz_localize("UTC"))
    events = _events(lines)
    as_of = lines["ts"].max()
    return ShopData(events=events, items=_items(lines, as_of), users=_users(lines, as_of))


def _events(lines: pd.DataFrame) -> pd.DataFrame:
    purchase = lines["purchase"].to_numpy()
    price = lines["UnitPrice"].where(lines["UnitPrice"] >= 0)
    return events_frame({
        "event_id": stable_ids(ID_NAMESPACE, lines["InvoiceNo"], lines["StockCode"], lines["occurrence"]),
        "user_id": lines["user_id"].to_numpy(),
        "item_id": lines["item_id"].to_numpy(),
        "event_type": np.where(purchase, "purchase", "remove_from_cart").astype(object),
        "ts": lines["ts"].array,
        "session_id": sanitize_ids(lines["InvoiceNo"]).to_numpy(),
        "quantity": lines["Quantity"].abs().clip(upper=MAX_QUANTITY).to_numpy(),
        "price": price.to_numpy(),
        "context": [None if bought else dict(CANCELLATION_CONTEXT) for bought in purchase],
    })


def categorize(description: pd.Series, stock_code: pd.Series) -> pd.Series:
    """Coarse category proxy from the description's words (the shop publishes no categories)."""
    words = description.fillna("").str.upper().map(lambda text: set(_WORD_SPLIT.split(text)))
    result = pd.Series(OTHER_CATEGORY, index=description.index, dtype=object)
    for category, keywords in reversed(CATEGORY_RULES):  # earlier rules overwrite later ones
        result[words.map(lambda found, keys=frozenset(keywords): not found.isdisjoint(keys))] = category
    result[~stock_code.str.match(r"^\d")] = SERVICE_CATEGORY
    return result


def _mode_per(frame: pd.DataFrame, key: str, value: str) -> pd.Series:
    """Most frequent value per key; ties go to the alphabetically first value (deterministic)."""
    counts = frame.groupby([key, value]).size().reset_index(name="n")
    counts = counts.sort_values([key, "n", value], ascending=[True, False, True])
    return counts.drop_duplicates(key).set_index(key)[value]


def _items(lines: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    described = lines.assign(Description=lines["Description"].str.strip())
    title = _mode_per(described, "item_id", "Description")
    stock_code = lines.drop_duplicates("item_id").set_index("item_id")["StockCode"]
    # catalogue price from purchases; items only ever cancelled fall back to their cancellation lines
    price = (lines[lines["purchase"]].groupby("item_id")["UnitPrice"].median()
             .combine_first(lines[lines["UnitPrice"] > 0].groupby("item_id")["UnitPrice"].median()))
    ids = title.index
    return items_frame({"item_id": ids.to_numpy(), "title": title.to_numpy(),
                        "category": categorize(title, stock_code.reindex(ids)).to_numpy(),
                        "brand": None, "price": price.reindex(ids).to_numpy(), "updated_at": as_of})


def _users(lines: pd.DataFrame, as_of: pd.Timestamp) -> pd.DataFrame:
    country = _mode_per(lines, "user_id", "Country")
    return users_frame({"user_id": country.index.to_numpy(), "age_band": None, "gender": None,
                        "location": country.to_numpy(), "updated_at": as_of})
