"""Factor matrices to the tables' list<float> column and back."""

import numpy as np
import pyarrow as pa
import pytest

from recsys.data.factor_columns import factor_column, factor_matrix

pytestmark = pytest.mark.unit


def test_a_matrix_survives_the_column_and_its_chunks():
    matrix = np.arange(12, dtype=np.float64).reshape(4, 3)
    column = factor_column(matrix)
    assert column.type == pa.list_(pa.float32())
    assert column.to_pylist()[1] == [3.0, 4.0, 5.0]
    chunked = pa.chunked_array([column.slice(0, 1), column.slice(1)])
    back = factor_matrix(chunked)
    assert back.dtype == np.float32 and back.tolist() == matrix.tolist()


def test_no_rows_is_an_empty_matrix_and_unequal_vectors_are_refused():
    assert factor_matrix(pa.array([], pa.list_(pa.float32()))).shape == (0, 0)
    with pytest.raises(ValueError, match="unequal length: 3 values for 2 rows"):
        factor_matrix(pa.array([[1.0, 2.0], [3.0]], pa.list_(pa.float32())))
