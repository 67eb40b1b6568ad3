"""Pure logic shared by batch and serving: segment keys, model version names, tuning's search space."""

import pytest

from recsys.batch.tuning import _inside
from recsys.config import load_settings
from recsys.contracts import model_version as mv
from recsys.contracts.segments import EVERYONE, segment_keys

pytestmark = pytest.mark.unit
NAMES = ["age_band", "gender", "location"]


def test_segment_keys_go_from_most_to_least_specific():
    keys = segment_keys({"age_band": "25-34", "gender": " F ", "location": None}, NAMES)
    assert keys == ["age_band=25-34,gender=f", "age_band=25-34", "gender=f", EVERYONE]


def test_segment_keys_with_one_or_no_attribute():
    assert segment_keys({"location": "UK"}, NAMES) == ["location=uk", EVERYONE]
    assert segment_keys({"gender": "", "other": "x"}, NAMES) == [EVERYONE]


def test_version_names_count_retrains_of_a_run_date():
    assert mv.version_name("2026-11-28") == "2026-11-28.1"
    assert mv.sequence_of(mv.version_name("2026-11-28", 3)) == 3
    assert mv.sequence_of("20261128T101500-2026-11-28") == 0  # older format


def test_configured_model_is_clamped_into_the_search_space():
    tuning = load_settings("test", environ={}).tuning
    assert _inside("rank", 6, tuning) in tuning.rank
    assert _inside("rank", 8, tuning) == 8
    assert _inside("reg_param", 100.0, tuning) == tuning.reg_param[1]
    assert _inside("alpha", 0.0, tuning) == tuning.alpha[0]
