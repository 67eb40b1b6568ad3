"""UCI Online Retail (a UK gift shop, 2010-12 .. 2011-12) as shop events: real purchases to train on.

One column mapping of the file loader (conf/mappings/online-retail.yaml, recsys.data.file_loader):
usable lines (known customer, quantity > 0, not cancelled, price > 0) become `purchase` events;
cancellations of known customers become `remove_from_cart` events (a negative signal) with context
{"source": "cancellation"}. InvoiceDate is shop wall-clock time and is taken as UTC (UK time, off by one
hour during British summer time). Quantities above the contract's MAX_QUANTITY (two bulk orders and
their cancellations) are capped so every event passes validation. Lines without a customer and
purchases at price 0 are rejects (`load_online_retail_files` returns them).

Event ids hash (invoice, stock code, occurrence of that pair in the invoice), so loading the file
again yields the same ids and writes stay idempotent.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from recsys.config import PROJECT_ROOT
from recsys.data.file_catalogue import categorize as _categorize
from recsys.data.file_loader import FileSources, LoadResult, TimeBounds, load_files
from recsys.data.frames import ShopData
from recsys.data.mapping import MAPPINGS_DIR, read_mapping

DEFAULT_PATH = PROJECT_ROOT.parent / "shared" / "datasets" / "online-retail" / "online_retail.parquet"
MAPPING_PATH = MAPPINGS_DIR / "online-retail.yaml"
CANCELLATION_CONTEXT: dict[str, str] = {"source": "cancellation"}
SERVICE_CATEGORY = "service"  # postage, manual adjustments, fees: stock codes not starting with a digit
OTHER_CATEGORY = "other"


def load_online_retail_files(path: str | Path, bounds: TimeBounds | None = None) -> LoadResult:
    """The Online Retail file through its mapping: shop data and the rejected lines with reasons."""
    return load_files(FileSources(events=Path(path)), read_mapping(MAPPING_PATH), bounds)


def load_online_retail(path: str | Path) -> ShopData:
    """Read the Online Retail parquet and return its purchases and cancellations as ShopData."""
    return load_online_retail_files(path).shop


def categorize(description: pd.Series, stock_code: pd.Series) -> pd.Series:
    """Coarse category proxy from the description's words (the shop publishes no categories)."""
    spec = read_mapping(MAPPING_PATH).items.category
    raw = pd.DataFrame({"StockCode": stock_code.to_numpy()}, index=description.index)
    return _categorize(description, raw, spec)
