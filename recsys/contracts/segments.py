"""Cold-start user segments: how user attributes name a row group of the popular_items table.

Batch (which writes popular items per segment) and serving (which looks a new user's segment up)
both build keys with this one function, so they cannot disagree.
"""

from __future__ import annotations

from collections.abc import Mapping

EVERYONE = "*"


def segment_keys(attributes: Mapping[str, object], names: list[str]) -> list[str]:
    """Keys from the most specific (all known attributes) to the least (EVERYONE).

    {"age_band": "25-34", "gender": "F"} with names [age_band, gender, location] gives
    ["age_band=25-34,gender=f", "age_band=25-34", "gender=f", "*"].
    """
    known = [(n, str(attributes[n]).strip().lower()) for n in names
             if attributes.get(n) is not None and str(attributes[n]).strip()]
    keys = []
    if len(known) > 1:
        keys.append(",".join(f"{n}={v}" for n, v in known))
    keys.extend(f"{n}={v}" for n, v in known)
    keys.append(EVERYONE)
    return keys
