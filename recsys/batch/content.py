"""Content-based model: item profiles from catalogue attributes and words, user profiles from interactions.

Item profile = L2-normalised TF-IDF of hashed tokens (category, brand, price band, description words);
user profile = the strength-weighted sum of the profiles of the user's items; score = their cosine
(the classic content-based formula). It needs no interactions with an item, so it ranks new items
that ALS has not seen: serving ranks those by the cosine between their profile and the profiles of
the user's recent views (item_content table).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from pyspark.ml import Pipeline
from pyspark.ml.feature import IDF, HashingTF, Normalizer, RegexTokenizer, StopWordsRemover
from pyspark.ml.functions import vector_to_array
from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from scipy import sparse

from recsys.config import ContentConfig

CHUNK_CELLS = 20_000_000  # user x item scores held at once by one scoring task (80 MB of float32)


def price_band(items: DataFrame, bands: int) -> Column:
    """The price quantile band (0..bands-1) of each item; null when the catalogue has no prices."""
    priced = items.where(F.col("price").isNotNull())
    edges = sorted(set(priced.approxQuantile("price", [i / bands for i in range(1, bands)], 0.01)))
    band = sum((F.when(F.col("price") >= e, 1).otherwise(0) for e in edges), F.lit(0))
    return F.when(F.col("price").isNotNull(), band)


def _attribute_token(name: str, value: Column) -> Column:
    return F.when(value.isNotNull(), F.concat(F.lit(f"{name}="), F.lower(value.cast("string"))))


def item_profiles(items: DataFrame, cfg: ContentConfig) -> DataFrame:
    """(item_id, indices, weights): each catalogue item's sparse, L2-normalised content profile.

    An empty catalogue gives no profiles (IDF cannot be fitted on nothing).
    """
    if items.isEmpty():
        return items.sparkSession.createDataFrame([], "item_id string, indices array<int>, weights array<float>")
    with_text = items.select(
        "item_id", F.coalesce("title", F.lit("")).alias("title"),
        F.array_compact(F.array(_attribute_token("category", F.col("category")),
                                _attribute_token("brand", F.col("brand")),
                                _attribute_token("price_band", price_band(items, cfg.price_bands)))).alias("attrs"))
    pipeline = Pipeline(stages=[
        RegexTokenizer(inputCol="title", outputCol="raw_words", pattern="[^\\p{L}\\p{N}]+",
                       minTokenLength=cfg.min_token_length),
        StopWordsRemover(inputCol="raw_words", outputCol="words"),
    ])
    words = pipeline.fit(with_text).transform(with_text).withColumn("tokens", F.concat("attrs", "words"))
    weighting = Pipeline(stages=[
        HashingTF(inputCol="tokens", outputCol="tf", numFeatures=cfg.num_features),
        IDF(inputCol="tf", outputCol="tfidf"),
        Normalizer(inputCol="tfidf", outputCol="profile", p=2.0),
    ])
    dense = weighting.fit(words).transform(words).where(F.size("tokens") > 0).select(
        "item_id", vector_to_array("profile", "float32").alias("v"))
    nonzero = F.filter(F.transform("v", lambda w, i: F.struct(i.alias("i"), w.alias("w"))), lambda x: x["w"] != 0)
    return dense.select("item_id", nonzero.alias("nz")).select(
        "item_id", F.col("nz.i").cast("array<int>").alias("indices"), F.col("nz.w").alias("weights"))


def profile_matrix(profiles: pd.DataFrame, num_features: int) -> sparse.csr_matrix:
    """Rows of (indices, weights) as a CSR matrix, one row per profile in order."""
    lengths = profiles["indices"].map(len).to_numpy()
    indptr = np.concatenate([[0], np.cumsum(lengths)])
    idx = np.concatenate([np.asarray(v, dtype=np.int32) for v in profiles["indices"]] or [np.empty(0, np.int32)])
    val = np.concatenate([np.asarray(v, dtype=np.float32) for v in profiles["weights"]]
                         or [np.empty(0, np.float32)])
    return sparse.csr_matrix((val, idx, indptr), shape=(len(profiles), num_features))


def top_content_items(user_items: list[list[str]], user_strengths: list[list[float]], item_ids: np.ndarray,
                      matrix: sparse.csr_matrix, n: int) -> list[list[str]]:
    """Each user's n items with the highest cosine between the item and the user's profile, best first."""
    position = {item: i for i, item in enumerate(item_ids)}
    rows, cols, vals = [], [], []
    for u, (items, strengths) in enumerate(zip(user_items, user_strengths, strict=True)):
        for item, strength in zip(items, strengths, strict=True):
            if item in position:
                rows.append(u)
                cols.append(position[item])
                vals.append(strength)
    weights = sparse.csr_matrix((vals, (rows, cols)), shape=(len(user_items), len(item_ids)), dtype=np.float32)
    users = weights @ matrix  # profiles; their norm does not change a user's ranking
    scores = (users @ matrix.T).toarray()
    n = min(n, len(item_ids))
    out = []
    for u, row in enumerate(scores):
        if weights.indptr[u] == weights.indptr[u + 1]:
            out.append([])  # nothing known about this user's taste
            continue
        top = np.argpartition(-row, n - 1)[:n] if n < len(row) else np.arange(len(row))
        out.append(item_ids[top[np.lexsort((item_ids[top], -row[top]))]].tolist())
    return out


def content_candidates(interactions: DataFrame, profiles: DataFrame, n: int, num_features: int) -> DataFrame:
    """(user_id, items): every user's n best items by content, scored next to the data.

    The catalogue's profiles are broadcast once; users are scored in chunks on the executors.
    """
    catalogue = profiles.select("item_id", "indices", "weights").orderBy("item_id").toPandas()
    spark = interactions.sparkSession
    shared = spark.sparkContext.broadcast((catalogue["item_id"].to_numpy(), profile_matrix(catalogue, num_features)))
    chunk = max(1, CHUNK_CELLS // max(len(catalogue), 1))

    def score(batches):
        item_ids, matrix = shared.value
        for batch in batches:
            for start in range(0, len(batch), chunk):
                part = batch.iloc[start:start + chunk]
                yield pd.DataFrame({"user_id": part["user_id"].to_numpy(), "items": top_content_items(
                    list(part["items"]), list(part["strengths"]), item_ids, matrix, n)})

    per_user = interactions.groupBy("user_id").agg(F.collect_list("item_id").alias("items"),
                                                   F.collect_list("strength").alias("strengths"))
    return per_user.mapInPandas(score, "user_id string, items array<string>")
