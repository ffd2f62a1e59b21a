"""The mini family's sizes and recipe: Pythia architecture, >= 8x in non-embedding parameters, one shared schedule."""

from __future__ import annotations

import pytest

from sparse_probing.training.family import MINI_FAMILY, MiniModelSpec, TrainSpec, get_mini_spec, lr_for_width


def test_family_spans_at_least_8x_and_is_ordered():
    sizes = [s.non_embedding_params for s in MINI_FAMILY]
    assert [s.name for s in MINI_FAMILY] == ["mini-1", "mini-2", "mini-3", "mini-4"]
    assert sizes == sorted(sizes) and sizes[-1] / sizes[0] >= 8
    assert all(s.d_mlp == 4 * s.d_model and s.d_head == 32 for s in MINI_FAMILY)
    assert get_mini_spec("mini-3").n_layers == 4
    with pytest.raises(KeyError, match="mini-1"):
        get_mini_spec("mini-9")


@pytest.mark.parametrize("spec", MINI_FAMILY[:2], ids=lambda s: s.name)
def test_hf_config_is_pythia_architecture_and_counts_match(spec: MiniModelSpec):
    from transformers import GPTNeoXForCausalLM

    config = spec.hf_config(vocab_size=512)
    assert config.use_parallel_residual and config.hidden_act == "gelu" and not config.tie_word_embeddings
    assert config.rope_parameters["partial_rotary_factor"] == 0.25
    model = GPTNeoXForCausalLM(config)
    total = sum(p.numel() for p in model.parameters())
    assert total == spec.non_embedding_params + spec.embedding_params(512)
    assert model.gpt_neox.embed_in.weight.data_ptr() != model.get_output_embeddings().weight.data_ptr()


def test_schedule_warms_up_then_decays_to_the_floor():
    train = TrainSpec()
    assert train.n_steps * train.tokens_per_step == train.token_budget
    factors = [train.lr_factor(i) for i in range(train.n_steps)]
    assert factors[0] < factors[train.warmup_steps - 1] == pytest.approx(1.0)
    assert factors[-1] == pytest.approx(train.min_lr_ratio, abs=1e-3)
    assert all(a >= b for a, b in zip(factors[train.warmup_steps :], factors[train.warmup_steps + 1 :], strict=False))
    assert lr_for_width(512) == 1e-3 and lr_for_width(128) == 2e-3
    assert TrainSpec(eval_every=7).digest == train.digest != TrainSpec(data_seed=1).digest
