from dataclasses import dataclass, field
from typing import Literal

import pytest

from sparse_probing.chapters import ChapterConfig, ConfigError


@dataclass(frozen=True)
class Example(ChapterConfig):
    model: str = "smollm2-135m"
    variant: Literal["smoke", "default", "paper"] = "default"
    layers: tuple[int, ...] | None = None
    n_documents: dict[str, int] = field(default_factory=dict)
    seed: int = 0
    alpha: float = 0.5
    plot: bool = True


def test_plain_values_become_a_frozen_config():
    cfg = Example.from_params({"layers": [1, 2], "n_documents": {"code": 10}, "alpha": 1})
    assert cfg.layers == (1, 2) and cfg.alpha == 1.0 and cfg.n_documents["code"] == 10
    with pytest.raises(TypeError):
        cfg.n_documents["code"] = 3  # read-only mapping
    assert cfg.to_dict()["layers"] == [1, 2] and cfg.to_dict()["n_documents"] == {"code": 10}
    assert Example.from_params(layers=None).layers is None


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"modle": "x"}, r"no parameter 'modle'; its parameters: model, variant"),
        ({"seed": "3"}, r"parameter 'seed' must be int, got '3'"),
        ({"seed": True}, r"parameter 'seed' must be int"),
        ({"variant": "big"}, r"parameter 'variant' must be one of 'smoke', 'default', 'paper'"),
        ({"layers": "1,2"}, r"parameter 'layers' must be"),
        ({"layers": [1, "a"]}, r"parameter 'layers' must be"),
        ({"n_documents": [1]}, r"parameter 'n_documents' must be"),
        ({"n_documents": {"code": 1.5}}, r"parameter 'n_documents\['code'\]' must be int"),
        ({"plot": 1}, r"parameter 'plot' must be bool"),
    ],
)
def test_unknown_or_ill_typed_parameters_are_refused_in_one_line(params, message):
    with pytest.raises(ConfigError, match=message) as err:
        Example.from_params(params)
    assert "\n" not in str(err.value)
