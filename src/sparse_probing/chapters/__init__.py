"""One module per chapter: a frozen config built from the notebook's parameters, ``run(config)`` and its result.

A chapter notebook holds narrative, its ``parameters`` cell (plain values), one call to build the config
(:meth:`ChapterConfig.from_params`, which refuses unknown or ill-typed parameters with a one-line error), one call
to ``run`` and the figures. Everything that computes lives here, where it is tested.
"""

from ..plots import use_column_figures
from ._config import ChapterConfig, ConfigError

__all__ = ["ChapterConfig", "ConfigError"]

use_column_figures()  # in a chapter's kernel, every displayed figure fits the book's column
