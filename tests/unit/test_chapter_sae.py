"""The SAE chapter: the TopK trainer recovers planted features, its weights are cached by content, the claims go
through the verdict rules, and a bad config is refused in one line."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from sparse_probing.analysis.sae import (
    SAEConfig,
    activations_digest,
    load_or_train,
    sae_key,
    sae_quality,
    train_sae,
    unit_dedication,
)
from sparse_probing.analysis.verdicts import verdict, verdict_and_reason
from sparse_probing.chapters import sae as ch
from sparse_probing.chapters import sae_report as report
from sparse_probing.chapters._config import ConfigError
from sparse_probing.paths import UnsafePathError


def planted(n: int = 6000, n_features: int = 16, d: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Rows that are sparse non-negative sums of ``n_features`` unit directions in ``d`` dimensions (two active on
    average), and the directions."""
    rng = np.random.default_rng(seed)
    dirs_FD = rng.normal(size=(n_features, d))
    dirs_FD /= np.linalg.norm(dirs_FD, axis=1, keepdims=True)
    active_NF = (rng.random((n, n_features)) < 2 / n_features) * rng.uniform(0.5, 1.5, (n, n_features))
    return (active_NF @ dirs_FD).astype(np.float32), dirs_FD


SMALL = SAEConfig(n_latents=32, k=3, n_steps=1500, batch_size=256, lr=3e-3, aux_k=8, dead_after=3000, seed=0)


@pytest.fixture(scope="module")
def trained() -> tuple:
    x, dirs = planted()
    return train_sae(x[:5000], SMALL), x, dirs


def test_trainer_recovers_planted_features(trained):
    sae, x, dirs_FD = trained
    W_LD = sae.module.W_dec.detach().numpy()
    assert np.allclose(np.linalg.norm(W_LD, axis=1), 1.0, atol=1e-4)  # unit-norm decoder rows
    best_cos_F = np.abs(dirs_FD @ W_LD.T).max(axis=1)
    assert (best_cos_F > 0.9).mean() >= 0.9, best_cos_F
    q = sae_quality(sae, x[5000:])
    assert q["fve"] > 0.8
    assert 0 < q["l0"] <= SMALL.k
    assert 0 <= q["dead"] <= SMALL.n_latents and q["n_rows"] == 1000


def test_training_is_seeded(trained):
    sae, x, _ = trained
    again = train_sae(x[:5000], SMALL)
    for name, value in sae.module.state_dict().items():
        assert torch.equal(value, again.module.state_dict()[name]), name


def test_weights_are_cached_by_content(tmp_path):
    x, _ = planted(n=800)
    config = SAEConfig(n_latents=16, k=2, n_steps=20, batch_size=64, seed=0)
    first = load_or_train(x, config, root=tmp_path)
    assert not first.cached
    files = list(tmp_path.glob("*.pt"))
    assert [f.name for f in files] == [f"{first.key}.pt"]
    second = load_or_train(x.copy(), config, root=tmp_path)
    assert second.cached and second.key == first.key
    for name, value in first.module.state_dict().items():
        assert torch.equal(value, second.module.state_dict()[name])
    # other activations, or other hyperparameters, are another entry
    y = x.copy()
    y[0, 0] += 1.0
    assert activations_digest(y) != activations_digest(x)
    assert sae_key(activations_digest(y), config) != first.key
    assert sae_key(activations_digest(x), SAEConfig(n_latents=16, k=2, n_steps=21, batch_size=64)) != first.key
    third = load_or_train(y, config, root=tmp_path)
    assert not third.cached and len(list(tmp_path.glob("*.pt"))) == 2
    # a damaged entry is trained again and replaced
    (tmp_path / f"{first.key}.pt").write_bytes(b"not a torch file")
    fourth = load_or_train(x, config, root=tmp_path)
    assert not fourth.cached
    assert load_or_train(x, config, root=tmp_path).cached


def test_cache_never_writes_through_a_link(tmp_path):
    x, _ = planted(n=300)
    config = SAEConfig(n_latents=8, k=2, n_steps=5, batch_size=32)
    key = sae_key(activations_digest(x), config)
    outside = tmp_path / "outside.txt"
    outside.write_text("keep")
    root = tmp_path / "cache"
    root.mkdir()
    (root / f"{key}.pt").symlink_to(outside)
    with pytest.raises(UnsafePathError, match="leads outside"):
        load_or_train(x, config, root=root)
    assert outside.read_text() == "keep"
    # a link that stays inside the cache is neither read nor written through: it is replaced by the entry
    (root / f"{key}.pt").unlink()
    (root / "other.pt").write_text("keep")
    (root / f"{key}.pt").symlink_to(root / "other.pt")
    assert not load_or_train(x, config, root=root).cached
    assert (root / "other.pt").read_text() == "keep" and not (root / f"{key}.pt").is_symlink()


def test_bad_training_input_is_refused_in_one_line():
    with pytest.raises(ValueError, match="must be an integer >= 1"):
        SAEConfig(n_latents=0, k=1)
    with pytest.raises(ValueError, match="cannot exceed"):
        SAEConfig(n_latents=4, k=5)
    with pytest.raises(ValueError, match=r"\(N, D\) array"):
        train_sae(np.zeros(10, dtype=np.float32), SAEConfig(n_latents=4, k=1))
    x = np.ones((10, 3), dtype=np.float32)
    x[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        train_sae(x, SAEConfig(n_latents=4, k=1))


def test_unit_dedication_applies_the_ground_truth_rule():
    # unit 0 carries half 0 only; unit 1 carries halves 1 and 2; unit 2 responds only to an unrepresented half
    response_HU = np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0], [0.0, 0.8, 0.0], [0.0, 0.0, 1.0]])
    represented_H = np.array([True, True, True, False])
    assert unit_dedication(response_HU, represented_H).tolist() == [0, -1, -1, -1]
    with pytest.raises(ValueError, match="response must be"):
        unit_dedication(response_HU, represented_H[:2])


# ---------------------------------------------------------------------------------------------- claims
def broad_fixture(gain: float, noise: float, *, n: int = 21, targets: int = 40, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    neuron = rng.uniform(0.2, 0.5, n)
    latent = np.clip(neuron + gain + rng.normal(0, noise, n), 0, 1)
    rotation = np.clip(neuron - 0.1 + rng.normal(0, 0.02, n), 0, 1)
    rows = []
    for basis, values in (("neurons", neuron), ("SAE latents", latent), ("random rotation", rotation)):
        for i, v in enumerate(values):
            rows.append({"model": "m", "basis": basis, "task": f"b{i}", "unit": i, "val_ap": v, "ap": v,
                         "precision_at_n": v, "fire_rate": 0.01, "recall": 1.0, "n_targets": targets,
                         "n_positions": 50_000})  # fmt: skip
    return pd.DataFrame(rows)


QUALITY = pd.DataFrame([{"model": "m", "layer": 3, "d": 8, "n_latents": 16, "k": 2, "fve": 0.8, "l0": 2.0, "dead": 1,
                         "recovered": 0.9}])  # fmt: skip
PROBES = pd.DataFrame([{"model": "m", "basis": b, "task": "b0", "scorer": ch.SINGLE, "k": 1, "f1_test": 0.9,
                        "roc_auc_test": 0.95, "test_positives": 40} for b in ch.BASES])  # fmt: skip


@pytest.mark.parametrize(
    ("gain", "noise", "targets", "expected"),
    [
        (0.35, 0.03, 40, "reproduced"),
        (0.02, 0.03, 40, "not reproduced"),
        (0.10, 0.40, 40, "inconclusive"),
        (-0.30, 0.03, 40, "differs"),
        (0.35, 0.03, 12, "inconclusive"),
    ],
)
def test_real_claim_follows_the_verdict_rules(gain, noise, targets, expected):
    claim = ch.real_claim(broad_fixture(gain, noise, targets=targets), QUALITY, PROBES)
    assert claim.claim == ch.CLAIM_REAL and claim.chapter == ch.CHAPTER
    assert claim.minimal_effect > 0 and claim.minimal_effect_source
    assert claim.n_tasks == 21 and claim.min_test_positives == targets and claim.mde is not None
    assert claim.ci_low <= claim.estimate <= claim.ci_high
    assert verdict(claim) == expected, verdict_and_reason(claim)
    assert "random rotation" in claim.control and "FVE 0.80" in claim.control


def test_real_claim_has_one_part_per_model():
    two = pd.concat([broad_fixture(0.35, 0.03), broad_fixture(0.02, 0.03).assign(model="other")], ignore_index=True)
    claim = ch.real_claim(two, QUALITY, PROBES)
    assert [p.claim.split(": ")[1].split(",")[0] for p in claim.parts] == ["m", "other"]
    assert verdict(claim) == "differs in part"


def toy_fixture(gain: float, noise: float, *, n: int = 24, positives: int = 200, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    neuron = rng.uniform(0.3, 0.6, n)
    rows = []
    for i in range(n):
        status = "superposed" if i < n - 2 else "dedicated"
        rows.append({"toy": i % 4, "half": i, "status": status, "positives": positives,
                     "neuron_unit": 0, "neuron_auc": 0.96 if i % 3 == 0 else 0.8,
                     "neuron_rule": i % 3 == 0, "neuron_true": status == "dedicated", "neuron_ap": neuron[i],
                     "latent_unit": i, "latent_auc": 0.97, "latent_rule": True, "latent_true": i % 2 == 0,
                     "latent_ap": float(np.clip(neuron[i] + gain + rng.normal(0, noise), 0, 1))})  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize(
    ("gain", "noise", "expected"),
    [(0.3, 0.03, "reproduced"), (0.0, 0.03, "not reproduced"), (0.1, 0.5, "inconclusive")],
)
def test_toy_claim_follows_the_verdict_rules(gain, noise, expected):
    claim = ch.toy_claim(toy_fixture(gain, noise))
    assert claim.claim == ch.CLAIM_TOY and claim.n_tasks == 22  # the superposed half-features only
    assert verdict(claim) == expected, verdict_and_reason(claim)


def test_toy_claim_without_superposed_features_is_not_testable():
    features = toy_fixture(0.3, 0.03).assign(status="dedicated")
    assert verdict(ch.toy_claim(features)) == "not testable here"


def test_false_positive_rates_count_rules_that_name_a_non_dedicated_unit():
    rates = ch.false_positive_rates(toy_fixture(0.3, 0.03))
    sup = toy_fixture(0.3, 0.03).query("status == 'superposed'")
    assert rates["neurons"] == pytest.approx(sup["neuron_rule"].mean())
    assert rates["SAE latents"] == pytest.approx((~sup["latent_true"]).mean())
    table = ch.toy_table(toy_fixture(0.3, 0.03))
    assert set(table["status"]) == {"dedicated", "superposed"} and set(table["basis"]) == {"neurons", "SAE latents"}


def test_tables_summarise_the_bases():
    broad = broad_fixture(0.35, 0.03)
    summary = ch.broad_table(broad).set_index("basis")
    assert summary.loc["SAE latents", "AP"] > summary.loc["neurons", "AP"] > summary.loc["random rotation", "AP"]
    per = report.bigram_table(broad, "m")
    assert list(per.columns[:4]) == ["bigram", *ch.BASES] and per["latent minus neuron"].is_monotonic_decreasing
    probes = pd.concat([PROBES, PROBES.assign(scorer="mean_diff k=2", k=2, f1_test=0.95)], ignore_index=True)
    pivot = report.k_pivot(probes, ks=(1, 2))
    assert list(pivot.columns) == ["model", "basis", 1, 2] and (pivot[2] == 0.95).all()


# ---------------------------------------------------------------------------------------------- config
@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"models": ["a"], "layers": {}}, "layers gives no layer for"),
        ({"sae_k": 0}, "sae_k must be at least 1"),
        ({"ks": [2, 5]}, "ks must start at 1"),
        ({"method": "nope"}, "method must be a ranker"),
        ({"toy_activations": ["tanh"]}, "toy_activations must be among"),
        ({"cache_layers": {"smollm2-135m": [0, 1]}}, "must include its layer 3"),
        ({"no_such": 1}, "has no parameter 'no_such'"),
        ({"sae_steps": "many"}, "parameter 'sae_steps' must be int"),
    ],
)
def test_bad_config_is_one_line_config_error(params, message):
    with pytest.raises(ConfigError, match=message) as err:
        ch.SAEChapterConfig.from_params(params)
    assert "\n" not in str(err.value)


def test_config_builds_the_sae_of_a_layer():
    config = ch.SAEChapterConfig.from_params(sae_expansion=1.5, sae_k=8, sae_steps=10)
    sae_config = config.sae_config(100)
    assert (sae_config.n_latents, sae_config.k, sae_config.n_steps, sae_config.seed) == (150, 8, 10, 0)
    assert config.toy_sae.n_latents == config.toy_latents


def test_report_renders_a_result():
    probes = pd.concat(
        [PROBES.assign(task=f"b{i}", f1_test=0.8 + 0.01 * i) for i in range(3)]
        + [PROBES.assign(task=f"b{i}", scorer="mean_diff k=2", k=2, f1_test=0.9) for i in range(3)],
        ignore_index=True,
    )
    quality = QUALITY.assign(n_latents=16, clean=3.0, spliced=3.2, mean_ablated=4.0, test_positions=100)
    result = ch.SAEResult(
        config=ch.SAEChapterConfig(),
        quality=quality,
        probes=probes,
        broad=broad_fixture(0.35, 0.03),
        toys=pd.DataFrame([{"toy": 0}]),
        toy_features=toy_fixture(0.3, 0.03),
        frequencies={"m": np.linspace(0, 0.5, 16)},
    )
    for fig in (report.plot_quality(result), report.plot_k(result), report.plot_broad(result),
                report.plot_toys(result)):  # fmt: skip
        assert fig.axes
    assert "FVE 0.80" in report.caption_quality(result)
    rates = ch.false_positive_rates(result.toy_features)
    assert "SAE latents 0.70" in report.caption_broad(result)
    assert f"{rates['neurons']:.2f} of superposed" in report.caption_toys(result)
    claims = result.claims()
    text = report.findings(result, claims)
    assert "reliably higher" in text and "0.90 of the site's loss recovered" in text
    assert "3.200 with the reconstruction spliced in" in text
    assert set(report.quality_table(quality).columns) >= {"FVE", "L0", "dead latents", "loss, SAE spliced in"}
    metrics = result.metrics(claims)
    assert [c["claim"] for c in metrics["claims"]] == [ch.CLAIM_REAL, ch.CLAIM_TOY]
