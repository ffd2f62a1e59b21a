"""MLP weight statistics: the paper's weight fingerprint (LayerNorm folded in), activation sparsity, and which basis
is privileged in a gated MLP.

* :func:`mlp_input_stats` - per neuron, the input-weight norm and input bias with the MLP's input norm folded into
  them, as the paper read them off TransformerLens' folded weights: ``W = diag(g) W_in`` and
  ``b = b_in + beta @ W_in`` for a LayerNorm with gain ``g`` and bias ``beta``; LayerNorm's centring is folded by
  removing the mean of each neuron's input weights over the residual dimensions. RMSNorm only scales (Gemma's
  scales by ``1 + g``). Gated MLPs (Llama, Qwen2, Mistral, Gemma) have no input bias: their ``b_in`` is NaN and the
  gate's norm is reported beside the up projection's.
* :func:`fingerprint_table` - per layer: median norm and bias, share of negative biases, Spearman(norm, bias); the
  bias columns are NaN where there are no biases (then read :func:`activation_sparsity` instead).
* :func:`mlp_sites` - per-token activations of a gated MLP's parts: ``gate`` = SiLU(W_gate x), ``up`` = W_up x,
  ``post`` = ``blocks.{l}.mlp.hook_post`` (their product, the input of ``down_proj``), ``resid`` =
  ``blocks.{l}.hook_resid_pre`` (the control: no privileged basis expected), and ``pre`` (what decides whether a
  neuron fires: the gate's pre-activation, or ``W_in x + b_in`` in a GELU MLP).
* :func:`activation_sparsity` - per layer, the share of (token, neuron) pairs with positive pre-activation and the
  median excess kurtosis of the neurons' ``hook_post`` activations.
* :func:`basis_comparison` - per site and layer, the k = 1 probe on neurons against Haar-random rotations of the
  same activations, paired per task and rotation.

Shapes: N tokens, D neurons (or residual dimensions), L layers.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from scipy.stats import kurtosis, spearmanr

from ..metrics import binary_metrics
from ..models import LoadedModel
from ..probes import fit_method, random_orthogonal


def _orig(module: Any) -> Any:
    """The Hugging Face module inside a TransformerLens bridge component (or the module itself)."""
    while hasattr(module, "_original_component"):
        module = module._original_component
    return module


def _t(x: torch.Tensor | None) -> np.ndarray | None:
    return None if x is None else x.detach().to(torch.float64).cpu().numpy()


def _decoder_layers(hf: Any) -> Sequence[Any]:
    for path in ("gpt_neox.layers", "model.layers", "transformer.h"):
        obj = hf
        try:
            for part in path.split("."):
                obj = getattr(obj, part)
        except AttributeError:
            continue
        return list(obj)
    raise ValueError(f"cannot find the decoder layers of {type(hf).__name__}: supported are GPT-NeoX, GPT-2 and "
                     "Llama-style models (Llama, Qwen2, Mistral, Gemma).")  # fmt: skip


def mlp_input_weights(model: LoadedModel) -> list[dict[str, Any]]:
    """Per layer, the raw MLP input weights and the norm in front of them.

    Each dict holds ``w_in`` (d_model, d_mlp; the up projection of a gated MLP), ``b_in`` (d_mlp,) or None,
    ``w_gate`` (d_model, d_mlp) or None, ``norm_scale`` (d_model,), ``norm_bias`` (d_model,) or None, and
    ``center`` (True for LayerNorm, which subtracts the mean; False for RMSNorm).
    """
    hf = model.bridge.original_model
    out = []
    for layer in _decoder_layers(hf):
        if hasattr(layer, "mlp") and hasattr(layer.mlp, "dense_h_to_4h"):  # GPT-NeoX
            lin, norm = _orig(layer.mlp.dense_h_to_4h), _orig(layer.post_attention_layernorm)
            w_in, b_in, w_gate = _t(lin.weight).T, _t(lin.bias), None
        elif hasattr(layer, "mlp") and hasattr(layer.mlp, "c_fc"):  # GPT-2 (Conv1D: weight is (d_model, d_mlp))
            lin, norm = _orig(layer.mlp.c_fc), _orig(layer.ln_2)
            w_in, b_in, w_gate = _t(lin.weight), _t(lin.bias), None
        elif hasattr(layer, "mlp") and hasattr(layer.mlp, "gate_proj"):  # Llama, Qwen2, Mistral, Gemma
            up, gate = _orig(layer.mlp.up_proj), _orig(layer.mlp.gate_proj)
            norm = _orig(getattr(layer, "pre_feedforward_layernorm", None) or layer.post_attention_layernorm)
            w_in, b_in, w_gate = _t(up.weight).T, _t(up.bias), _t(gate.weight).T
        else:
            raise ValueError(f"unsupported MLP layout in {type(layer).__name__}: expected dense_h_to_4h (GPT-NeoX), "
                             "c_fc (GPT-2) or gate_proj/up_proj (Llama-style).")  # fmt: skip
        gemma = "gemma" in type(norm).__name__.lower()
        scale = _t(norm.weight)
        out.append({
            "w_in": w_in, "b_in": b_in, "w_gate": w_gate,
            "norm_scale": 1.0 + scale if gemma else scale,
            "norm_bias": _t(getattr(norm, "bias", None)),
            "center": isinstance(norm, torch.nn.LayerNorm),
        })  # fmt: skip
    return out


def fold_norm(
    w_in_DM: np.ndarray, b_in_M: np.ndarray | None, scale_D: np.ndarray, bias_D: np.ndarray | None, center: bool
) -> tuple[np.ndarray, np.ndarray | None]:
    """Fold a normalization ``x -> scale * x_hat + bias`` into the following linear map ``W_in^T . + b_in``.

    Returns ``(diag(scale) W_in`` (centred over the residual dimensions when ``center``, as TransformerLens' folded
    weights are), ``b_in + bias @ W_in)``; the bias stays None when there is neither a norm bias nor an input bias.
    """
    w_DM = w_in_DM * scale_D[:, None]
    if center:
        w_DM = w_DM - w_DM.mean(axis=0, keepdims=True)
    if bias_D is None:
        return w_DM, b_in_M
    b_M = bias_D @ w_in_DM + (0.0 if b_in_M is None else b_in_M)
    return w_DM, b_M


def mlp_input_stats(model: LoadedModel, *, fold: bool = True) -> pd.DataFrame:
    """Per neuron: ``layer``, ``neuron``, input-weight norm ``w_in_norm``, input bias ``b_in`` (NaN without one)
    and ``w_gate_norm`` (NaN for ungated MLPs); with ``fold`` (default) the MLP's input norm is folded in."""
    frames = []
    for layer, p in enumerate(mlp_input_weights(model)):
        w, b = p["w_in"], p["b_in"]
        if fold:
            w, b = fold_norm(w, b, p["norm_scale"], p["norm_bias"], p["center"])
        d_mlp = w.shape[1]
        gate = np.full(d_mlp, np.nan)
        if p["w_gate"] is not None:
            wg = p["w_gate"] * p["norm_scale"][:, None] if fold else p["w_gate"]
            gate = np.linalg.norm(wg, axis=0)
        frames.append(pd.DataFrame({
            "layer": layer, "neuron": np.arange(d_mlp), "w_in_norm": np.linalg.norm(w, axis=0),
            "b_in": np.full(d_mlp, np.nan) if b is None else b, "w_gate_norm": gate,
        }))  # fmt: skip
    return pd.concat(frames, ignore_index=True)


def has_input_bias(stats: pd.DataFrame) -> bool:
    """Whether the statistics carry input biases (False for gated MLPs without biases)."""
    return bool(stats["b_in"].notna().any())


def fingerprint_table(stats: pd.DataFrame) -> pd.DataFrame:
    """Per layer: the 20th, 50th and 80th percentiles of ``||W_in|| b_in`` over neurons (the paper's statistic,
    ``{p20,median,p80}_biasxnorm``), ``median_norm``, ``median_bias``, ``share_negative_bias``,
    ``spearman_norm_bias`` (bias columns NaN where the MLP has no input bias), and ``median_gate_norm`` for gated
    MLPs."""

    def per_layer(g: pd.DataFrame) -> pd.Series:
        b = g["b_in"]
        has_b = b.notna().all() and b.nunique() > 1
        rho = spearmanr(g["w_in_norm"], b).statistic if has_b else np.nan
        bxn = g["w_in_norm"] * b
        return pd.Series({
            "median_biasxnorm": bxn.median() if b.notna().any() else np.nan,
            "p20_biasxnorm": bxn.quantile(0.2) if b.notna().any() else np.nan,
            "p80_biasxnorm": bxn.quantile(0.8) if b.notna().any() else np.nan,
            "median_norm": g["w_in_norm"].median(),
            "median_bias": b.median() if b.notna().any() else np.nan,
            "share_negative_bias": float((b < 0).mean()) if b.notna().any() else np.nan,
            "spearman_norm_bias": float(rho),
            "median_gate_norm": g["w_gate_norm"].median() if g["w_gate_norm"].notna().any() else np.nan,
        })  # fmt: skip

    return stats.groupby("layer")[["w_in_norm", "b_in", "w_gate_norm"]].apply(per_layer)


def non_embedding_params(model: LoadedModel) -> int:
    """Parameters outside the token embedding and unembedding: the size measure of scaling studies.

    Counts each tensor once; where the bridge exposes a fused QKV projection next to its split Q, K, V copies,
    only the fused one is counted.
    """
    named = list(model.bridge.named_parameters())
    fused = any(".qkv." in name for name, _ in named)
    seen: set[int] = set()
    total = 0
    for name, p in named:
        ptr = p.untyped_storage().data_ptr()
        if ptr in seen or re.search(r"(embed|lm_head|unembed)", name):
            continue
        if fused and re.search(r"\.attention\.[qkv]\.", name):
            continue
        seen.add(ptr)
        total += p.numel()
    return total


# ---------------------------------------------------------------------------------------------- activations
SITES = ("gate", "up", "post", "resid", "pre")
"""Activation sites of :func:`mlp_sites`."""


def is_gated(model: LoadedModel) -> bool:
    """Whether the model's MLP is gated (``SiLU(gate) * up``)."""
    return "blocks.0.mlp.gate.hook_out" in model.bridge.hook_dict


class _Done(Exception):
    """Raised by the last hook to cut the forward pass short."""


def mlp_sites(
    model: LoadedModel,
    texts: Sequence[str],
    layers: Sequence[int],
    *,
    max_length: int = 64,
    batch_size: int = 8,
    sites: Sequence[str] = SITES,
) -> tuple[dict[str, dict[int, np.ndarray]], list[str]]:
    """Per-token activations (N, D) at each site and layer for the non-padding tokens of ``texts``, and the N
    token strings. ``gate`` and ``up`` exist only for gated MLPs (``gate`` is SiLU of the gate projection)."""
    unknown = set(sites) - set(SITES)
    if unknown:
        raise ValueError(f"unknown sites {sorted(unknown)}; choose from {SITES}.")
    gated = is_gated(model)
    names: dict[tuple[str, int], str] = {}
    for layer in layers:
        if not 0 <= layer < model.n_layers:
            raise ValueError(f"layer {layer} is out of range: the model has {model.n_layers} layers.")
        names[("post", layer)] = f"blocks.{layer}.mlp.hook_post"
        names[("resid", layer)] = f"blocks.{layer}.hook_resid_pre"
        names[("pre", layer)] = f"blocks.{layer}.mlp.{'gate' if gated else 'in'}.hook_out"
        if gated:
            names[("gate", layer)] = f"blocks.{layer}.mlp.gate.hook_out"
            names[("up", layer)] = f"blocks.{layer}.mlp.in.hook_out"
    wanted = {key: name for key, name in names.items() if key[0] in sites}
    tok = model.tokenizer
    out: dict[str, dict[int, list[np.ndarray]]] = {s: {layer: [] for layer in layers} for s, _ in wanted}
    tokens: list[str] = []
    for start in range(0, len(texts), batch_size):
        enc = tok(list(texts[start : start + batch_size]), return_tensors="pt", padding=True, truncation=True,
                  max_length=max_length)  # fmt: skip
        mask_BP = enc["attention_mask"].bool()
        grabbed: dict[str, torch.Tensor] = {}
        hook_names = sorted(set(wanted.values()), key=lambda h: (int(h.split(".")[1]), h))
        last = max(hook_names, key=lambda h: int(h.split(".")[1]))
        remaining = {h for h in hook_names if int(h.split(".")[1]) == int(last.split(".")[1])}

        def grabber(key: str, grabbed: dict = grabbed, remaining: set = remaining) -> Any:
            # keyed by the requested name: some hook names (e.g. a gated MLP's hook_post) are aliases
            def grab(acts: torch.Tensor, hook: Any) -> None:
                grabbed[key] = acts.detach().float()
                remaining.discard(key)
                if not remaining:
                    raise _Done

            return grab

        with torch.inference_mode():
            try:
                model.bridge.run_with_hooks(enc["input_ids"], attention_mask=enc["attention_mask"], return_type=None,
                                            fwd_hooks=[(h, grabber(h)) for h in hook_names])  # fmt: skip
            except _Done:
                pass
        for (site, layer), name in wanted.items():
            if name not in grabbed:
                raise RuntimeError(f"hook {name} never fired: is it a hook of this model?")
            x = grabbed[name]
            if site == "gate":
                x = torch.nn.functional.silu(x)
            out[site][layer].append(x[mask_BP].numpy())
        tokens.extend(tok.convert_ids_to_tokens(enc["input_ids"][mask_BP].tolist()))
    return {s: {layer: np.concatenate(v) for layer, v in d.items()} for s, d in out.items()}, tokens


def activation_sparsity(sites: Mapping[str, Mapping[int, np.ndarray]]) -> pd.DataFrame:
    """Per layer: ``frac_active`` (share of token-neuron pairs with positive pre-activation), ``median_kurtosis``
    (median over neurons of the excess kurtosis of ``post``) and ``frac_near_zero`` (share of ``post`` values below
    1% of the layer's largest |value|). Needs the ``pre`` and ``post`` sites of :func:`mlp_sites`."""
    missing = {"pre", "post"} - set(sites)
    if missing:
        raise ValueError(f"activation_sparsity needs the sites {sorted(missing)} from mlp_sites.")
    rows = []
    for layer, post_ND in sites["post"].items():
        pre_ND = sites["pre"][layer]
        kurt_D = kurtosis(post_ND.astype(np.float64), axis=0, fisher=True, nan_policy="omit")
        scale = float(np.abs(post_ND).max()) or 1.0
        rows.append({
            "layer": layer, "frac_active": float((pre_ND > 0).mean()),
            "median_kurtosis": float(np.nanmedian(kurt_D)),
            "frac_near_zero": float((np.abs(post_ND) < 0.01 * scale).mean()),
        })  # fmt: skip
    return pd.DataFrame(rows)


TOKEN_PROPERTIES: dict[str, str] = {
    "leading_space": r"^[ Ġ▁]",
    "capitalized": r"^[ Ġ▁]?[A-Z][a-z]",
    "all_digits": r"^[ Ġ▁]?[0-9]+$",
    "punctuation": r"^[ Ġ▁]?[^\w\s]+$",
    "short_word": r"^[ Ġ▁]?[a-z]{1,3}$",
}
"""Token-level regex properties (the paper's text-feature family) used as probing tasks in the basis comparison."""


def token_property_labels(tokens: Sequence[str], *, min_positives: int = 20) -> dict[str, np.ndarray]:
    """0/1 labels per token for each :data:`TOKEN_PROPERTIES` entry with at least ``min_positives`` positives and
    negatives."""
    out = {}
    for name, pattern in TOKEN_PROPERTIES.items():
        y_N = np.array([bool(re.search(pattern, t)) for t in tokens], dtype=np.int64)
        if min_positives <= y_N.sum() <= y_N.size - min_positives:
            out[name] = y_N
    return out


def basis_comparison(
    sites: Mapping[str, Mapping[int, np.ndarray]],
    labels: Mapping[str, np.ndarray],
    *,
    n_rotations: int = 3,
    method: str = "mean_diff",
    train_fraction: float = 0.7,
    seed: int = 0,
) -> pd.DataFrame:
    """k = 1 probe on the neurons against ``n_rotations`` Haar rotations, per (site, layer, task).

    Rows are split at random into train and test (the same split for every site). Returns one row per (site,
    layer, task) with ``f1_neurons``, ``f1_rotated`` (mean over rotations) and ``diff`` (neurons minus rotated).
    """
    if not labels:
        raise ValueError("labels is empty: no task has enough positives and negatives; use more text.")
    n = len(next(iter(labels.values())))
    rng = np.random.default_rng(seed)
    order = rng.permutation(n)
    tr, te = order[: int(train_fraction * n)], order[int(train_fraction * n) :]
    rows = []
    rotations_by_dim: dict[int, list[np.ndarray]] = {}
    for site, by_layer in sites.items():
        for layer, X_ND in by_layer.items():
            X_ND = np.asarray(X_ND, dtype=np.float32)
            D = X_ND.shape[1]
            if D not in rotations_by_dim:  # one set of rotations per width, shared by sites and layers
                rotations_by_dim[D] = [
                    random_orthogonal(D, seed + 1 + r).astype(np.float32) for r in range(n_rotations)
                ]
            rotated = [X_ND @ R_DD for R_DD in rotations_by_dim[D]]  # once per (site, layer), not per task
            for task, y_N in labels.items():
                (fit,) = fit_method(method, X_ND[tr], y_N[tr], [1], random_state=seed)
                f1 = binary_metrics(y_N[te], (fit.decision_function(X_ND[te]) > 0).astype(int))["f1"]
                rot = []
                for Xr_ND in rotated:
                    (fr,) = fit_method(method, Xr_ND[tr], y_N[tr], [1], random_state=seed)
                    rot.append(binary_metrics(y_N[te], (fr.decision_function(Xr_ND[te]) > 0).astype(int))["f1"])
                rows.append({"site": site, "layer": layer, "task": task, "f1_neurons": f1,
                             "f1_rotated": float(np.mean(rot)), "diff": f1 - float(np.mean(rot))})  # fmt: skip
    return pd.DataFrame(rows)


def plot_fingerprint(stats: pd.DataFrame, *, title: str) -> Any:
    """Box plots per layer of the input-weight norm (and gate norm) and, only where the MLP has input biases, of the
    bias; a gated MLP without biases gets the norm panel alone (read :func:`activation_sparsity` instead)."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    with_bias = has_input_bias(stats)
    fig, axes = plt.subplots(1, 2 if with_bias else 1, figsize=(11 if with_bias else 6.5, 3.4), squeeze=False)
    long = stats.melt(id_vars=["layer"], value_vars=["w_in_norm", "w_gate_norm"], var_name="matrix",
                      value_name="norm").dropna()  # fmt: skip
    sns.boxplot(data=long, x="layer", y="norm", hue="matrix" if long["matrix"].nunique() > 1 else None,
                ax=axes[0, 0], showfliers=False)  # fmt: skip
    axes[0, 0].set(title="input-weight norm (norm folded in)", ylabel="‖W[:, j]‖")
    if with_bias:
        sns.boxplot(data=stats, x="layer", y="b_in", ax=axes[0, 1], showfliers=False, color="C1")
        axes[0, 1].axhline(0, color="grey", lw=1)
        axes[0, 1].set(title="input bias (norm folded in)", ylabel="b[j]")
    fig.suptitle(title, y=1.02)
    fig.tight_layout()
    return fig
