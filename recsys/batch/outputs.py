"""One model version's batch outputs, as DataFrames keyed by their contract table.

The train stage writes them to Delta and serving loads them from there; the offline evaluation builds
the very same outputs on its train split and hands them to the serving library in memory. One function,
so what is evaluated is what is published.
"""

from __future__ import annotations

from pyspark.sql import DataFrame, Window
from pyspark.sql import functions as F

from recsys.batch.als import als_factors
from recsys.batch.blocked_topk import factor_top_k
from recsys.batch.content import item_profiles
from recsys.batch.interactions import SECONDS_PER_DAY
from recsys.batch.item_knn import item_similarities
from recsys.batch.popular import popular_items
from recsys.config import AlsConfig, Settings
from recsys.contracts.tables import (
    ITEM_CONTENT,
    ITEM_FACTORS,
    POPULAR_ITEMS,
    SIMILAR_ITEMS,
    USER_CANDIDATES,
    USER_FACTORS,
    USER_HISTORY,
    TableSpec,
)


def decayed_popularity(interactions: DataFrame, as_of_s: float, half_life_days: float) -> DataFrame:
    """(item_id, popularity): the item's shoppers, each counted 0.5^(days since they first had it / half-life).

    What shoppers are taking up now: the served list shows items a shopper has not had, and the best prior
    for those is what other shoppers newly adopt this week, not what regulars keep re-ordering (counting the
    last event instead lets every repeat order refresh an old favourite). A shop's demand also moves with
    the season: an item everyone took up last winter should not outrank what is being discovered this
    month. Distinct shoppers, so one heavy buyer cannot make an item popular.
    """
    first = F.coalesce(F.col("first_ts"), F.col("last_ts")) if "first_ts" in interactions.columns \
        else F.col("last_ts")
    age = F.greatest(F.lit(as_of_s) - first.cast("double"), F.lit(0.0)) / SECONDS_PER_DAY
    return (interactions.groupBy("item_id")
            .agg(F.sum(F.pow(F.lit(0.5), age / half_life_days)).cast("double").alias("popularity")))


def user_history(interactions: DataFrame, keep: int, owned: int) -> DataFrame:
    """(user_id, item_id, last_ts, owned_ts): each user's `keep` most recent items, and the `owned` most
    recently owned ones however old: the repurchase policy must see every purchase, not only recent ones (a
    shopper with more items than `keep` was otherwise shown what they bought before)."""
    by_user = Window.partitionBy("user_id")
    newest = F.row_number().over(by_user.orderBy(F.desc("last_ts"), "item_id"))
    newest_owned = F.row_number().over(by_user.orderBy(F.desc_nulls_last("owned_ts"), "item_id"))
    kept = (F.col("_n") <= keep) | (F.col("owned_ts").isNotNull() & (F.col("_o") <= owned))
    return (interactions.withColumn("_n", newest).withColumn("_o", newest_owned).where(kept)
            .select("user_id", "item_id", "last_ts", "owned_ts"))


def als_outputs(interactions: DataFrame, als: AlsConfig, popularity: DataFrame,
                top_n: int = 0) -> dict[TableSpec, DataFrame]:
    """The tables that depend on the ALS parameters: user factors, item factors with their popularity, and
    (top_n > 0) each user's top_n items by ALS score, the batch candidates of two-stage serving."""
    user_factors, item_factors = als_factors(interactions, als)
    out = {USER_FACTORS: user_factors, ITEM_FACTORS: item_factors.join(popularity, "item_id")}
    if top_n > 0:
        out[USER_CANDIDATES] = factor_top_k(user_factors, item_factors, None, top_n)  # never recommendForAllUsers
    return out


def other_outputs(interactions: DataFrame, settings: Settings, items: DataFrame,
                  users: DataFrame) -> dict[TableSpec, DataFrame]:
    """The tables that do not depend on ALS (tuning computes them once for all its trials)."""
    similar = item_similarities(interactions, settings.outputs.similar_items).select(
        "item_id", F.col("other_id").alias("similar_id"), F.col("sim").alias("score"), "rank")
    return {
        SIMILAR_ITEMS: similar,
        POPULAR_ITEMS: popular_items(interactions, users, settings.outputs),
        ITEM_CONTENT: item_profiles(items, settings.content),
        USER_HISTORY: user_history(interactions, settings.outputs.history_items,
                                   settings.outputs.owned_items),
    }


def build_outputs(interactions: DataFrame, settings: Settings, als: AlsConfig, items: DataFrame,
                  users: DataFrame, as_of_s: float) -> dict[TableSpec, DataFrame]:
    """Fit ALS with `als` on `interactions` and derive every per-version table (lazy DataFrames).

    `interactions` needs owned_ts (build_interactions with serving.repurchase.owned_events); `as_of_s` is
    the run's end (epoch seconds), the age that popularity decays from.
    """
    popularity = decayed_popularity(interactions, as_of_s, settings.outputs.popularity_half_life_days)
    return {**als_outputs(interactions, als, popularity, settings.serving.retrieval.user_top_n),
            **other_outputs(interactions, settings, items, users)}
