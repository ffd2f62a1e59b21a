"""Progress bars: widgets in Jupyter when ipywidgets is installed, text otherwise (without tqdm's warning about it)."""

import warnings

from tqdm import TqdmWarning

with warnings.catch_warnings():
    warnings.simplefilter("ignore", TqdmWarning)
    from tqdm.auto import tqdm

__all__ = ["tqdm"]
