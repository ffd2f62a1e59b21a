from sparse_probing.book import for_reading


def test_for_reading_shows_the_parameters_once_and_hides_the_code():
    nb = {"cells": [
        {"cell_type": "markdown", "source": "# Title", "metadata": {}},
        {"cell_type": "code", "source": 'model = "tiny"  # the model\nn = 3\nks = [1, 2]  # sparsity',
         "metadata": {"tags": ["parameters"]}},
        {"cell_type": "code", "source": '# Parameters\nmodel = "smollm2-135m"\nks = [1, 2, 4]\nextra = {"a": 1}\n',
         "metadata": {"tags": ["injected-parameters"]}},
        {"cell_type": "code", "source": "run()", "metadata": {}},
        {"cell_type": "code", "source": "plot()", "metadata": {"tags": ["remove-input"]}},
    ]}  # fmt: skip
    out = for_reading(nb)["cells"]
    assert len(out) == 4
    assert (
        out[1]["source"] == 'model = "smollm2-135m"  # the model\nn = 3\nks = [1, 2, 4]  # sparsity\nextra = {"a": 1}'
    )
    assert out[2]["metadata"]["tags"] == ["hide-input"]
    assert out[3]["metadata"]["tags"] == ["remove-input"]
    assert out[1]["metadata"]["tags"] == ["parameters", "hide-input"]


def test_for_reading_puts_the_parameters_under_the_verdict_box():
    nb = {"cells": [
        {"cell_type": "markdown", "source": "# Title", "metadata": {}},
        {"cell_type": "code", "source": "n = 3", "metadata": {"tags": ["parameters"]}},
        {"cell_type": "code", "source": "import x", "metadata": {}},
        {"cell_type": "code", "source": ["display(Markdown(", "verdicts.verdict_box(claims)))"], "metadata": {}},
        {"cell_type": "markdown", "source": "## Data", "metadata": {}},
    ]}  # fmt: skip
    out = for_reading(nb)["cells"]
    assert [c["source"] for c in out[2:4]] == [["display(Markdown(", "verdicts.verdict_box(claims)))"], "n = 3"]
    assert out[3]["metadata"]["tags"] == ["parameters", "hide-input"]
    assert out[2]["metadata"]["tags"] == ["remove-input"]  # the box shows without a code toggle
    assert out[4]["source"] == "## Data"
    import copy

    assert for_reading(copy.deepcopy(nb)) == nb  # idempotent


def test_for_reading_leaves_the_parameters_in_place_without_a_box():
    nb = {"cells": [
        {"cell_type": "code", "source": "n = 3", "metadata": {"tags": ["parameters"]}},
        {"cell_type": "code", "source": "run()", "metadata": {}},
    ]}  # fmt: skip
    out = for_reading(nb)["cells"]
    assert [c["source"] for c in out] == ["n = 3", "run()"]
