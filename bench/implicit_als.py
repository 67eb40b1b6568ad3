"""The `implicit` library's ALS as a candidate model, for benchmarks against Spark's ALS (not used in production)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from implicit.als import AlternatingLeastSquares
from pyspark.sql import DataFrame
from scipy import sparse
from threadpoolctl import threadpool_limits

from recsys.config import AlsConfig


def implicit_candidates(als: AlsConfig, regularization: float):
    """A CandidateModel fitting implicit's ALS on the driver with the same rank, iterations and alpha.

    implicit's regularization is not scaled by counts as Spark's regParam is, hence its own value.
    """

    def fit_and_recommend(train: DataFrame, n: int) -> DataFrame:
        pdf = train.select("user_id", "item_id", "strength").toPandas()
        users, user_codes = np.unique(pdf["user_id"], return_inverse=True)
        items, item_codes = np.unique(pdf["item_id"], return_inverse=True)
        matrix = sparse.csr_matrix((pdf["strength"].to_numpy(np.float32), (user_codes, item_codes)),
                                   shape=(len(users), len(items)))
        model = AlternatingLeastSquares(factors=als.rank, regularization=regularization, alpha=als.alpha,
                                        iterations=als.max_iter, random_state=als.seed)
        with threadpool_limits(1, "blas"):  # implicit parallelises itself; BLAS threads would oversubscribe
            model.fit(matrix, show_progress=False)
        ids, _ = model.recommend(np.arange(len(users)), matrix, N=min(n, len(items)),
                                 filter_already_liked_items=False)
        recs = pd.DataFrame({"user_id": users, "items": [items[row].tolist() for row in ids]})
        return train.sparkSession.createDataFrame(recs, "user_id string, items array<string>")

    return fit_and_recommend
