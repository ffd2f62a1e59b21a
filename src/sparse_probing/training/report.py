"""The training report of the mini family, generated from the training logs: ``data/models/REPORT.md`` + a figure.

Reads every finished model's ``train_summary.json`` and ``training_log.jsonl`` (and the corpus and tokenizer
manifests), draws the loss curves and the held-out loss per domain against size
(``data/models/training_report.png``) and writes the markdown report. It states, per domain, whether the held-out
loss falls with size, and names every exception.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from .corpus import DOMAINS, corpus_dir
from .family import MINI_FAMILY, MiniModelSpec
from .trainer import LOG_FILE, SUMMARY_FILE

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["load_logs", "load_summaries", "make_report", "plot_training", "scaling_check", "training_figure"]

REPORT_FILE = "REPORT.md"
FIGURE_FILE = "training_report.png"


def _models_dir(models_dir: str | Path | None) -> Path:
    from sparse_probing.paths import MODELS_DIR

    return Path(models_dir) if models_dir is not None else MODELS_DIR


def load_summaries(models_dir: str | Path | None = None, specs: Sequence[MiniModelSpec] = MINI_FAMILY) -> pd.DataFrame:
    """One row per finished model (in size order): architecture, parameters, budget, speed, held-out losses."""
    rows = []
    for spec in specs:
        path = _models_dir(models_dir) / spec.name / SUMMARY_FILE
        if not path.exists():
            continue
        s = json.loads(path.read_text())
        row = {
            "model": spec.name,
            "layers": spec.n_layers,
            "d_model": spec.d_model,
            "heads": spec.n_heads,
            "d_mlp": spec.d_mlp,
            "params_non_embedding": s["params_non_embedding"],
            "params_total": s["params_total"],
            "lr": spec.lr,
            "tokens": s["tokens"],
            "steps": s["steps"],
            "tokens_per_second": s["tokens_per_second"],
            "train_hours": s["wall_seconds"] / 3600,
            "threads": s["torch_threads"],
        }
        row.update({f"loss_{k}": s["heldout_loss"][k] for k in (*DOMAINS, "all") if k in s["heldout_loss"]})
        rows.append(row)
    return pd.DataFrame(rows)


def load_logs(models_dir: str | Path | None = None, specs: Sequence[MiniModelSpec] = MINI_FAMILY) -> pd.DataFrame:
    """All log rows of the finished models, long format: ``model, kind, step, tokens, loss[, domain]``.

    Training rows have ``kind="train"``; each evaluation becomes one row per domain with ``kind="heldout"``.
    """
    rows: list[dict[str, Any]] = []
    for spec in specs:
        path = _models_dir(models_dir) / spec.name / LOG_FILE
        if not (path.parent / SUMMARY_FILE).exists() or not path.exists():
            continue
        for line in path.read_text().splitlines():
            r = json.loads(line)
            if r["kind"] == "train":
                rows.append(
                    {"model": spec.name, "kind": "train", "step": r["step"], "tokens": r["tokens"], "loss": r["loss"]}
                )
            else:
                for domain, loss in r["heldout"].items():
                    rows.append(
                        {
                            "model": spec.name,
                            "kind": "heldout",
                            "step": r["step"],
                            "tokens": r["tokens"],
                            "loss": loss,
                            "domain": domain,
                        }
                    )
    return pd.DataFrame(rows)


def scaling_check(summaries: pd.DataFrame) -> dict[str, list[str]]:
    """Per domain (and ``all``): the size pairs where the larger model's held-out loss is not lower (empty: falls)."""
    out: dict[str, list[str]] = {}
    ordered = summaries.sort_values("params_non_embedding")
    for domain in (*DOMAINS, "all"):
        col = f"loss_{domain}"
        if col not in ordered:
            continue
        bad = []
        for (_, a), (_, b) in zip(ordered.iloc[:-1].iterrows(), ordered.iloc[1:].iterrows(), strict=True):
            if not b[col] < a[col]:
                bad.append(f"{b['model']} ({b[col]:.3f}) is not below {a['model']} ({a[col]:.3f})")
        out[domain] = bad
    return out


def training_figure(summaries: pd.DataFrame, logs: pd.DataFrame, smooth: int = 50) -> Figure:
    """Three panels: training loss (rolling mean over ``smooth`` steps), held-out loss curves (mean over domains)
    against tokens, and the final held-out loss per domain against non-embedding parameters."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    sns.set_theme(style="whitegrid", context="paper")
    fig, axes = plt.subplots(1, 3, figsize=(14, 4.2))
    palette = dict(zip(summaries["model"], sns.color_palette("viridis", len(summaries)), strict=True))
    train = logs[logs["kind"] == "train"].copy()
    if not train.empty:
        train["smoothed"] = train.groupby("model")["loss"].transform(lambda s: s.rolling(smooth, min_periods=1).mean())
        sns.lineplot(train, x="tokens", y="smoothed", hue="model", palette=palette, ax=axes[0], legend=True)
    axes[0].set(title=f"training loss (rolling mean, {smooth} steps)", xlabel="tokens", ylabel="nats / token")
    held = logs[logs["kind"] == "heldout"]
    if not held.empty:
        mean = held.groupby(["model", "step", "tokens"], as_index=False)["loss"].mean()
        sns.lineplot(mean, x="tokens", y="loss", hue="model", palette=palette, marker="o", ax=axes[1], legend=False)
    axes[1].set(title="held-out loss during training (mean of domains)", xlabel="tokens", ylabel="nats / token")
    long = summaries.melt(
        id_vars=["model", "params_non_embedding"],
        value_vars=[f"loss_{d}" for d in (*DOMAINS, "all") if f"loss_{d}" in summaries],
        var_name="domain",
        value_name="loss",
    )
    long["domain"] = long["domain"].str.removeprefix("loss_")
    sns.lineplot(long, x="params_non_embedding", y="loss", hue="domain", style="domain", marker="o", ax=axes[2])
    axes[2].set_xscale("log")
    axes[2].minorticks_off()
    axes[2].set_xticks(
        summaries["params_non_embedding"],
        [f"{m}\n{n / 1e6:.2f}M" for m, n in zip(summaries["model"], summaries["params_non_embedding"], strict=True)],
    )
    axes[2].set(title="final held-out loss by size", xlabel="non-embedding parameters", ylabel="nats / token")
    sns.move_legend(axes[2], "upper left", bbox_to_anchor=(1.0, 1.0), frameon=False)
    fig.tight_layout()
    return fig


def plot_training(summaries: pd.DataFrame, logs: pd.DataFrame, path: str | Path, smooth: int = 50) -> Path:
    """Write :func:`training_figure` to ``path`` (PNG) and close it."""
    import matplotlib.pyplot as plt

    fig = training_figure(summaries, logs, smooth)
    path = Path(path)
    fig.savefig(path, dpi=130)
    plt.close(fig)
    return path


def markdown_table(df: pd.DataFrame, floatfmt: str = ".4f") -> str:
    """A GitHub markdown table (no extra dependency)."""

    def cell(v: Any) -> str:
        return format(v, floatfmt) if isinstance(v, float) else str(v)

    head = "| " + " | ".join(str(c) for c in df.columns) + " |"
    rule = "|" + "|".join("---" for _ in df.columns) + "|"
    body = ["| " + " | ".join(cell(v) for v in row) + " |" for row in df.itertuples(index=False)]
    return "\n".join([head, rule, *body])


def _fmt_params(n: float) -> str:
    return f"{n / 1e6:.2f}M"


def make_report(models_dir: str | Path | None = None, specs: Sequence[MiniModelSpec] = MINI_FAMILY) -> Path:
    """Write ``REPORT.md`` and ``training_report.png`` into the models directory; returns the report's path."""
    root = _models_dir(models_dir)
    summaries = load_summaries(root, specs)
    missing = [s.name for s in specs if s.name not in set(summaries.get("model", []))]
    lines = [
        "# Training report: the mini model family",
        "",
        "Generated by `python -m sparse_probing.training report` from the training logs "
        "(`<model>/train_summary.json`, `<model>/training_log.jsonl`). The plan and the recipe are in "
        "[README.md](README.md).",
        "",
    ]
    if summaries.empty:
        lines += ["No model is trained yet: run `python -m sparse_probing.training train`.", ""]
        path = root / REPORT_FILE
        path.write_text("\n".join(lines))
        return path
    logs = load_logs(root, specs)
    figure = plot_training(summaries, logs, root / FIGURE_FILE)
    table = pd.DataFrame(
        {
            "model": summaries["model"],
            "layers": summaries["layers"],
            "d_model": summaries["d_model"],
            "d_mlp": summaries["d_mlp"],
            "heads": summaries["heads"],
            "non-emb. params": summaries["params_non_embedding"].map(_fmt_params),
            "total params": summaries["params_total"].map(_fmt_params),
            "peak lr": summaries["lr"].map("{:.3g}".format),
            "tokens": summaries["tokens"].map("{:,}".format),
            "tokens/s": summaries["tokens_per_second"].map("{:,.0f}".format),
            "hours": summaries["train_hours"].map("{:.2f}".format),
        }
    )
    losses = summaries[["model", *[c for c in summaries if c.startswith("loss_")]]].copy()
    losses.columns = [c.removeprefix("loss_") for c in losses.columns]
    lines += [
        "## Models",
        "",
        markdown_table(table),
        "",
        f"Total training time {summaries['train_hours'].sum():.2f} h "
        f"(torch threads: {', '.join(str(t) for t in sorted(set(summaries['threads'])))}).",
        "",
        "## Held-out loss (nats per token)",
        "",
        "On the corpus's held-out split (whole groups never trained on; every source of a domain interleaved), "
        "`all` is the token-weighted mean over domains. Computed from the saved fp16 weights, as the registry "
        "loads them.",
        "",
        markdown_table(losses),
        "",
    ]
    check = scaling_check(summaries)
    if len(summaries) < 2:
        lines += ["Only one model is trained: no size comparison yet.", ""]
    elif all(not v for v in check.values()):
        lines += ["**The held-out loss falls with size in every domain.**", ""]
    else:
        lines += ["**The held-out loss does not fall with size everywhere:**", ""]
        lines += [f"- {domain}: {'; '.join(v)}" for domain, v in check.items() if v]
        lines += [
            "",
            "Possible reasons to examine: the token budget is the same for every size and small (larger models are "
            "further from convergence); the peak learning rate follows a width rule and was not tuned per size; "
            "the held-out slice of a small domain is short. The loss curves below show whether the ordering is "
            "still changing at the end of training.",
            "",
        ]
    if missing:
        lines += [f"Not trained yet: {', '.join(missing)}.", ""]
    lines += [f"![training curves and held-out loss by size]({figure.name})", ""]
    lines += _corpus_section(root)
    path = root / REPORT_FILE
    path.write_text("\n".join(lines))
    return path


def _corpus_section(root: Path) -> list[str]:
    manifest_path = corpus_dir() / "MANIFEST.json"
    tok_path = root / "tokenizer" / "training.json"
    if not manifest_path.exists() or not tok_path.exists():
        return []
    manifest = json.loads(manifest_path.read_text())
    tok = json.loads(tok_path.read_text())
    rows = []
    for domain in DOMAINS:
        d, t = manifest["domains"][domain], tok["train_split"][domain]
        rows.append(
            {
                "domain": domain,
                "languages": ", ".join(d["languages"]),
                "train chars": f"{d['train_chars']:,}",
                "share of chars": f"{d['train_share']:.1%}",
                "train tokens": f"{t['tokens']:,}",
                "chars/token": f"{t['chars_per_token']:.2f}",
                "held-out chars": f"{d['heldout_chars']:,}",
            }
        )
    return [
        "## Corpus",
        "",
        f"`data/corpus/{manifest['file']['name']}` (sha256 `{manifest['file']['sha256'][:16]}…`), "
        f"tokenizer: byte-level BPE, {tok['vocab_size']:,} tokens. Exclusion of probing text: "
        f"`{manifest['exclusion']['policy']}` (see data/corpus/MANIFEST.json).",
        "",
        markdown_table(pd.DataFrame(rows)),
        "",
    ]
