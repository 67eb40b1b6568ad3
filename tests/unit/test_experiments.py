import subprocess
import sys

import pytest

from recsys.config import PROJECT_ROOT, ConfigError, ExperimentsConfig, MergeWeights, Variant, load_settings
from recsys.contracts.served import OFF
from recsys.serving.experiments import NO_VARIANT, assign_variant, bucket, experiment_name, merge_weights

pytestmark = pytest.mark.unit

USERS = [f"u{n:06d}" for n in range(100_000)]


def _cfg(name: str = "exp-a", shares: tuple[float, ...] = (0.5, 0.3, 0.2), enabled: bool = True) -> ExperimentsConfig:
    base = load_settings("test", environ={}).experiments
    variants = [Variant(name=f"v{i}", share=share) for i, share in enumerate(shares)]
    return base.model_copy(update={"enabled": enabled, "name": name, "variants": variants})


def test_assignment_is_deterministic_and_stable_across_processes():
    cfg = _cfg()
    first = [assign_variant(u, cfg).name for u in USERS[:1000]]
    assert first == [assign_variant(u, cfg).name for u in USERS[:1000]]
    # another interpreter with another hash seed agrees (Python's hash() would not)
    code = "from recsys.serving.experiments import bucket; print(repr(bucket('exp-a', 'u000042')))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT,
                         env={"PYTHONHASHSEED": "123", "PATH": ""}).stdout.strip()
    assert float(out) == bucket("exp-a", "u000042")
    assert 0.0 <= bucket("exp-a", "u000042") < 1.0


def test_shares_are_respected_on_100k_users():
    cfg = _cfg(shares=(0.5, 0.3, 0.2))
    counts: dict[str, int] = {}
    for user in USERS:
        name = assign_variant(user, cfg).name
        counts[name] = counts.get(name, 0) + 1
    for variant in cfg.variants:  # binomial sd at n=100k is < 0.0016; 0.01 is over 6 sd
        assert abs(counts[variant.name] / len(USERS) - variant.share) < 0.01


def test_a_new_experiment_name_reshuffles_users():
    a, b = _cfg(name="exp-a", shares=(0.5, 0.5)), _cfg(name="exp-b", shares=(0.5, 0.5))
    same = sum(assign_variant(u, a).name == assign_variant(u, b).name for u in USERS[:10_000])
    assert 0.45 < same / 10_000 < 0.55  # independent: about half agree by chance


def test_off_gives_everyone_no_variant():
    cfg = _cfg(enabled=False)
    assert assign_variant("u1", cfg) is NO_VARIANT and NO_VARIANT.name == OFF
    assert experiment_name(cfg) == OFF and experiment_name(_cfg()) == "exp-a"


def test_merge_overrides_replace_only_their_weights():
    base = load_settings("test", environ={}).serving.merge
    weights = merge_weights(base, Variant(name="t", share=1.0, merge={"recent": 0.9}))
    assert isinstance(weights, MergeWeights) and weights.recent == 0.9
    assert weights.model_dump(exclude={"recent"}) == base.model_dump(exclude={"recent"})
    assert merge_weights(base, Variant(name="c", share=1.0)) is base


@pytest.mark.parametrize(("variants", "message"), [
    ("[{name: a, share: 0.5}, {name: b, share: 0.4}]", "sum to 1"),
    ("[{name: a, share: 0.5}, {name: a, share: 0.5}]", "unique"),
    ("[{name: 'off', share: 1.0}]", "reserved"),
    ("[{name: a, share: 1.0, merge: {recnet: 1.0}}]", "recnet"),
    ("[{name: a, share: 1.0, merge: {recent: -1.0}}]", "recent"),
    ("[{name: a, share: 1.0, colour: red}]", "colour"),
    ("[{name: 'a b', share: 1.0}]", "name"),
    ("[]", "variants"),
])
def test_invalid_variants_are_configuration_errors(variants, message):
    with pytest.raises(ConfigError, match=message):
        load_settings("test", environ={"RECSYS__EXPERIMENTS__VARIANTS": variants})


def test_shares_within_rounding_are_accepted():
    settings = load_settings("test", environ={
        "RECSYS__EXPERIMENTS__VARIANTS": "[{name: a, share: 0.1}, {name: b, share: 0.2}, {name: c, share: 0.7}]"})
    assert [v.name for v in settings.experiments.variants] == ["a", "b", "c"]
