"""Does the model use a neuron? Next-token loss with the neuron ablated (zero or mean), per text, and how specific the
loss increase is to the neuron's own context.

:func:`ablation_effect` runs the ablation exactly (one forward pass per neuron and group of texts).
:func:`attribution_effects` estimates it for every neuron of some layers at once (attribution patching, Nanda 2023;
Syed et al. 2023): the first-order change of each text's loss when a neuron is moved from its activation to a
value ``v`` is ``sum over positions of dL/da * (v - a)``, so one forward and one backward pass per batch of texts give
the estimate for every neuron, for mean and zero ablation alike. It serves as the null distribution a chosen neuron is
ranked against; check it against :func:`ablation_effect` on a sample.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from .._progress import tqdm
from ..models import LoadedModel

__all__ = ["AttributionEffects", "ablated_losses", "ablation_effect", "ablation_specificity", "attribution_effects"]


def _mean_losses(model: LoadedModel, texts: Sequence[str], max_length: int, hooks: list, batch_size: int) -> np.ndarray:
    """Mean next-token loss per text (padding excluded), with the given forward hooks active."""
    tok = model.tokenizer
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tok(
            list(texts[i : i + batch_size]), return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )
        ids, mask = enc["input_ids"], enc["attention_mask"]
        with torch.inference_mode():
            logits = model.bridge.run_with_hooks(ids, attention_mask=mask, return_type="logits", fwd_hooks=hooks)
        logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
        nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
        m = mask[:, 1:].float()
        out.append(((nll * m).sum(1) / m.sum(1).clamp(min=1)).numpy())
    return np.concatenate(out)


def ablated_losses(
    model: LoadedModel,
    layer: int,
    values: dict[int, float],
    texts: Sequence[str],
    *,
    max_length: int = 128,
    batch_size: int = 8,
) -> np.ndarray:
    """Mean next-token loss per text with each neuron of ``values`` (at ``blocks.{layer}.mlp.hook_post``) set to its
    value at every position."""
    if model.tokenizer.pad_token is None:
        model.tokenizer.pad_token = model.tokenizer.eos_token
    index = torch.tensor(sorted(values), dtype=torch.long)
    fill = torch.tensor([values[int(i)] for i in index.tolist()])

    def ablate(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        acts[..., index] = fill.to(acts.dtype)
        return acts

    return _mean_losses(model, texts, max_length, [(f"blocks.{layer}.mlp.hook_post", ablate)], batch_size)


def ablation_effect(
    model: LoadedModel,
    layer: int,
    neurons: Sequence[int],
    texts: dict[str, Sequence[str]],
    *,
    max_length: int = 128,
    batch_size: int = 8,
    mode: str = "zero",
    values: dict[int, float] | None = None,
) -> pd.DataFrame:
    """Loss increase per text when one neuron is ablated, for each neuron and each group of texts.

    ``mode="zero"`` sets the neuron to 0 (the paper's ablation); ``mode="mean"`` sets it to its mean activation
    over every token of all the given texts (a neuron whose resting value is far from 0 is then not mistaken for
    an important one), or to ``values[neuron]`` when given (e.g. the means of :func:`attribution_effects`, so the
    exact and the estimated ablation move the neuron to the same value). Returns one row per (neuron, group, text):
    ``loss`` (clean), ``ablated``, ``delta = ablated - loss`` and ``mode``. Compare the group the neuron is said to encode with the others, and
    with random neurons of the same layer (:func:`ablation_specificity` gives the CIs over texts).
    """
    if mode not in ("zero", "mean"):
        raise ValueError(f"mode must be 'zero' or 'mean', got {mode!r}.")
    if model.tokenizer.pad_token is None:
        model.tokenizer.pad_token = model.tokenizer.eos_token
    name = f"blocks.{layer}.mlp.hook_post"
    if values is not None:
        missing = sorted(set(int(n) for n in neurons) - set(values))
        if missing:
            raise ValueError(f"values has no entry for neurons {missing}: give one value per ablated neuron.")
        values = {int(n): float(values[int(n)]) for n in neurons}
    elif mode == "zero":
        values = {int(n): 0.0 for n in neurons}
    else:
        all_texts = [t for group_texts in texts.values() for t in group_texts]
        values = _mean_activations(model, name, [int(n) for n in neurons], all_texts, max_length, batch_size)
    rows = []
    for group, group_texts in texts.items():
        clean = _mean_losses(model, group_texts, max_length, [], batch_size)
        for neuron in neurons:
            ablated = ablated_losses(model, layer, {int(neuron): values[int(neuron)]}, group_texts,
                                     max_length=max_length, batch_size=batch_size)  # fmt: skip
            for j in range(len(group_texts)):
                rows.append({"neuron": int(neuron), "group": group, "text": j, "loss": clean[j], "ablated": ablated[j]})
    df = pd.DataFrame(rows)
    df["delta"] = df["ablated"] - df["loss"]
    return df.assign(mode=mode)


@dataclass(frozen=True, eq=False)
class AttributionEffects:
    """First-order loss changes of mean and zero ablation for every neuron of some layers, per text."""

    loss: np.ndarray
    """Clean mean next-token loss per text, (T,)."""
    mean: dict[int, np.ndarray]
    """Layer -> mean activation of each neuron over every token of the texts, (d_mlp,)."""
    grad_sum: dict[int, np.ndarray]
    """Layer -> per text, the sum over positions of dL/da, (T, d_mlp)."""
    grad_act: dict[int, np.ndarray]
    """Layer -> per text, the sum over positions of dL/da * a, (T, d_mlp)."""

    def delta(self, layer: int, mode: str = "mean") -> np.ndarray:
        """Estimated loss change per text and neuron, (T, d_mlp), when each neuron alone is set to its mean
        (``mode="mean"``) or to 0 (``mode="zero"``) at every position."""
        if mode == "mean":
            return self.mean[layer][None, :] * self.grad_sum[layer] - self.grad_act[layer]
        if mode == "zero":
            return -self.grad_act[layer]
        raise ValueError(f"mode must be 'mean' or 'zero', got {mode!r}.")


def attribution_effects(
    model: LoadedModel, layers: Sequence[int], texts: Sequence[str], *, max_length: int = 128, batch_size: int = 8
) -> AttributionEffects:
    """Attribution patching of every neuron of ``layers`` (``blocks.{l}.mlp.hook_post``) on every text: one forward
    and one backward pass per batch. The mean used for mean ablation is taken over every real token of ``texts``
    (pass the same value to :func:`ablation_effect` through ``values`` to compare)."""
    if not texts:
        raise ValueError("texts is empty: pass the texts to attribute the loss on.")
    layers = sorted({int(x) for x in layers})
    bad = [x for x in layers if not 0 <= x < model.n_layers]
    if bad:
        raise ValueError(f"layers {bad} are not layers of this {model.n_layers}-layer model.")
    tok = model.tokenizer
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    names = {f"blocks.{x}.mlp.hook_post": x for x in layers}
    losses: list[np.ndarray] = []
    g_sum = {x: [] for x in layers}
    g_act = {x: [] for x in layers}
    a_sum = {x: torch.zeros(model.d_mlp, dtype=torch.float64) for x in layers}
    count = 0.0
    for i in tqdm(range(0, len(texts), batch_size), desc="attribution patching", unit="batch", leave=False):
        enc = tok(list(texts[i : i + batch_size]), return_tensors="pt", padding=True, truncation=True,
                  max_length=max_length)  # fmt: skip
        ids, mask = enc["input_ids"], enc["attention_mask"]
        kept: dict[int, torch.Tensor] = {}

        def keeper(layer: int, kept: dict[int, torch.Tensor] = kept) -> Any:
            def keep(acts: torch.Tensor, hook: Any) -> torch.Tensor:
                acts = acts.detach().requires_grad_(True)
                kept[layer] = acts
                return acts

            return keep

        with torch.enable_grad():
            logits = model.bridge.run_with_hooks(ids, attention_mask=mask, return_type="logits",
                                                 fwd_hooks=[(n, keeper(x)) for n, x in names.items()])  # fmt: skip
            logp = torch.log_softmax(logits[:, :-1].float(), dim=-1)
            nll = -logp.gather(-1, ids[:, 1:, None])[..., 0]
            m = mask[:, 1:].float()
            per_text = (nll * m).sum(1) / m.sum(1).clamp(min=1)
            grads = torch.autograd.grad(per_text.sum(), [kept[x] for x in layers])
        real = mask.bool()
        for x, g in zip(layers, grads, strict=True):
            a = kept[x].detach().double()
            g = g.double() * real[..., None]
            g_sum[x].append(g.sum(1).numpy())
            g_act[x].append((g * a).sum(1).numpy())
            a_sum[x] += a[real].sum(0)
        count += float(real.sum())
        losses.append(per_text.detach().numpy())
    return AttributionEffects(
        loss=np.concatenate(losses),
        mean={x: (a_sum[x] / max(count, 1.0)).numpy() for x in layers},
        grad_sum={x: np.concatenate(g_sum[x]) for x in layers},
        grad_act={x: np.concatenate(g_act[x]) for x in layers},
    )


def _mean_activations(
    model: LoadedModel, hook_name: str, neurons: list[int], texts: Sequence[str], max_length: int, batch_size: int
) -> dict[int, float]:
    """Mean activation of each neuron at ``hook_name`` over every non-padding token of ``texts``."""
    tok = model.tokenizer
    total, count = torch.zeros(len(neurons), dtype=torch.float64), 0.0
    seen: dict[str, torch.Tensor] = {}

    def record(acts: torch.Tensor, hook: Any) -> torch.Tensor:
        seen["acts"] = acts[..., neurons].detach().double()
        return acts

    for i in range(0, len(texts), batch_size):
        enc = tok(
            list(texts[i : i + batch_size]), return_tensors="pt", padding=True, truncation=True, max_length=max_length
        )
        mask = enc["attention_mask"].bool()
        with torch.inference_mode():
            model.bridge.run_with_hooks(
                enc["input_ids"],
                attention_mask=enc["attention_mask"],
                return_type="logits",
                fwd_hooks=[(hook_name, record)],
            )
        total += seen["acts"][mask].sum(dim=0)
        count += float(mask.sum())
    return {n: float(v) for n, v in zip(neurons, (total / max(count, 1.0)).tolist(), strict=True)}


def ablation_specificity(
    effects: pd.DataFrame,
    neuron: int,
    *,
    target: str = "target",
    n_boot: int = 1000,
    confidence: float = 0.95,
    random_state: int = 0,
) -> dict[str, float]:
    """Is zeroing ``neuron`` specific to the ``target`` texts? A summary of an :func:`ablation_effect` table.

    The table's other neurons are the baseline (their deltas are averaged per text). Mean loss increases, each with
    a percentile-bootstrap interval over texts (keys ``<name>``, ``<name>_low``, ``<name>_high``): ``target`` and
    ``other`` (the neuron on the target texts / on the texts of every other group), ``random_target`` and
    ``random_other`` (the baseline neurons), ``target_minus_other`` (texts resampled within each group) and
    ``target_minus_random`` (paired on the target texts). ``frac_above_random`` is the share of target texts on
    which the neuron's delta exceeds the baseline's; ``specific`` is 1.0 when both contrasts have a lower bound
    above zero, else 0.0.
    """
    by_text = effects.pivot_table(index=["group", "text"], columns="neuron", values="delta", aggfunc="mean")
    if neuron not in by_text.columns:
        raise KeyError(f"neuron {neuron} is not in this ablation table (neurons {list(by_text.columns)})")
    is_target = by_text.index.get_level_values("group") == target
    if not is_target.any():
        raise KeyError(f"no texts of group {target!r} in this ablation table")
    own = by_text[neuron].to_numpy(dtype=float)
    others = [c for c in by_text.columns if c != neuron]
    base = by_text[others].mean(axis=1).to_numpy(dtype=float) if others else np.full(len(own), np.nan)
    rng = np.random.default_rng(random_state)
    q = [(1 - confidence) / 2, (1 + confidence) / 2]

    def resampled_means(x: np.ndarray) -> np.ndarray:
        x = x[np.isfinite(x)]
        if x.size == 0:
            return np.full(n_boot, np.nan)
        return x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)

    parts = {
        "target": (own[is_target], None),
        "other": (own[~is_target], None),
        "random_target": (base[is_target], None),
        "random_other": (base[~is_target], None),
        "target_minus_other": (own[is_target], own[~is_target]),
        "target_minus_random": (own[is_target] - base[is_target], None),
    }
    out: dict[str, float] = {}
    for name, (a, b) in parts.items():
        point = np.nanmean(a) - (np.nanmean(b) if b is not None else 0.0) if np.isfinite(a).any() else np.nan
        boot = resampled_means(a) - (resampled_means(b) if b is not None else 0.0)
        finite = np.isfinite(boot)
        low, high = np.quantile(boot[finite], q) if finite.any() else (np.nan, np.nan)
        out.update({name: float(point), f"{name}_low": float(low), f"{name}_high": float(high)})
    paired = own[is_target] - base[is_target]
    out["frac_above_random"] = float(np.mean(paired > 0)) if np.isfinite(paired).all() and others else np.nan
    out["specific"] = float(out["target_minus_other_low"] > 0 and out["target_minus_random_low"] > 0)
    return out
