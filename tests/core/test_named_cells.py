"""The registry of named cells: every card loads, builds a layer that trains, and exports."""

import json

import numpy as np
import pytest

import nascell
from nascell.named_cells import CellCard


def test_the_papers_cells_are_registered_with_their_specs():
    assert {"nas", "figure5"} <= set(nascell.available_cells())
    assert nascell.cell_card("nas").spec == nascell.NAS_CELL_SPEC
    assert nascell.cell_card("figure5").spec == nascell.FIGURE5_SPEC


def test_every_card_states_where_it_comes_from_and_a_results_table():
    for name in nascell.available_cells():
        card = nascell.cell_card(name)
        assert card.summary and card.source
        assert "| LSTM" in card.results, f"card {name!r} has no comparison with the LSTM"


def test_an_unknown_name_says_which_names_exist():
    with pytest.raises(ValueError, match=r"Argument `name` must be a registered cell, one of "
                                         r"\[.*'nas'.*\]\. Received: name='lstm2'"):
        nascell.named_cell("lstm2", units=8)


def test_a_card_round_trips_and_rejects_unknown_fields():
    card = nascell.cell_card("nas")
    assert CellCard.from_dict(json.loads(json.dumps(card.to_dict()))) == card
    data = card.to_dict()
    data["colour"] = "red"
    with pytest.raises(ValueError, match="unknown keys \\['colour'\\]"):
        CellCard.from_dict(data)


def test_register_refuses_a_taken_name():
    with pytest.raises(ValueError, match="overwrite=True"):
        nascell.register_cell(nascell.cell_card("nas"))


@pytest.mark.parametrize("name", ["nas", "figure5"])
@pytest.mark.slow
def test_a_named_cell_builds_a_layer_that_trains_and_exports(name, tmp_path):
    import keras

    from nascell.export import export_spec, load

    keras.utils.set_random_seed(0)
    layer = nascell.RNN(nascell.named_cell(name, units=8), return_sequences=True)
    model = keras.Sequential([keras.Input((5, 4)), layer, keras.layers.Dense(1)])
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    x = np.random.default_rng(0).normal(size=(16, 5, 4)).astype("float32")
    y = x.sum(axis=-1, keepdims=True)
    before = model.evaluate(x, y, verbose=0)
    model.fit(x, y, epochs=5, verbose=0)
    assert model.evaluate(x, y, verbose=0) < before

    path = export_spec(layer, str(tmp_path / name))
    loaded = load(path)
    # The loaded layer is the same cell with the trained weights: same ops on the same
    # inputs through the same fast path, up to float32 rounding.
    out = loaded(x)
    out = out[0] if isinstance(out, (list, tuple)) else out  # the export returns the states too
    np.testing.assert_allclose(out, layer(x), rtol=1e-5, atol=1e-6)
    assert (tmp_path / name / "architecture.dot").exists()


def test_a_card_draws_its_picture(tmp_path):
    files = nascell.cell_card("nas").picture(str(tmp_path / "new"))  # made as needed
    assert any(f.endswith(".png") for f in files)
