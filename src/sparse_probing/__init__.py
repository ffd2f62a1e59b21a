"""Sparse probing of MLP neurons in language models.

A reproducible study of "Finding Neurons in a Haystack: Case Studies with Sparse Probing"
(Gurnee et al., 2023). Data flows one way:

    text dataset (tokenizer-agnostic) -> model (TransformerLens bridge) -> activation cache
    -> sparse probes (scikit-learn estimators) -> results JSON -> figures -> chapter notebooks.

Shape suffixes used throughout the package:

    B  batch (documents in one forward pass)
    P  token position within a (padded) sequence
    N  examples (probing windows: a token, an entity span or a whole document)
    D  neurons (MLP width, ``d_mlp``)
    L  layers
    K  neurons kept by a sparse probe
"""

__version__ = "0.1.0"


def _table_defaults() -> None:
    """Tables rendered with pandas' Styler (every table of the book) escape their cells as HTML: dataset text, a
    user's own included, is shown as text, never run as markup or script. Numbers without a format of their own show
    three decimals (not pandas' six)."""
    import pandas as pd

    pd.set_option("styler.format.escape", "html")
    pd.set_option("styler.format.precision", 3)


_table_defaults()
