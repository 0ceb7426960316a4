"""An ENAS recurrent cell as the rnn_lm child's cell: built, counted, sized to a parameter
target and trained with its one state (h) carried, through the tree cells' code path."""

import numpy as np
import pytest

from nascell.enas_cells import ENASRNNCell
from nascell.enas_spec import ENASConvCellSpec, ENASConvNode, enas_rnn_cell_spec
from nascell.search.evaluators.rnn_lm import (
    RNNLanguageModelEvaluator,
    build_language_model,
    cell_base,
    language_model_params,
    units_for_params,
)
from nascell.spec import SpecError

# Six nodes, two of them loose ends, every activation: a cell of the enas_rnn space's form.
SPEC = enas_rnn_cell_spec(inputs=[0, 1, 1, 3, 2],
                          activations=["tanh", "relu", "sigmoid", "identity", "tanh", "relu"])
ZAREMBA_SMALL = language_model_params(10_000, 200, "lstm", 2, tie_weights=False)


@pytest.mark.parametrize("tie", [True, False])
@pytest.mark.parametrize("return_state", [False, True])
def test_model_builds_and_its_count_is_the_formula(tie, return_state):
    model = build_language_model(SPEC.to_json(), vocab_size=23, units=5, tie_weights=tie,
                                 embedding_dim=None if tie else 7, return_state=return_state)
    assert model.count_params() == language_model_params(23, 5, SPEC, tie_weights=tie,
                                                         embedding_dim=None if tie else 7)
    # by hand: kernel [in, 2u] + recurrent [u, 2u] + 5 node kernels [u, 2u], no biases
    embedding = 5 if tie else 7
    cells = 2 * 5 * (embedding + 6 * 5) + 2 * 5 * (5 + 6 * 5)
    softmax = 23 if tie else 6 * 23
    assert model.count_params() == 23 * embedding + cells + softmax
    rnns = [layer for layer in model.layers if layer.name.startswith("rnn_")]
    assert [type(r.cell) for r in rnns] == [ENASRNNCell, ENASRNNCell]
    assert [r.cell.spec for r in rnns] == [SPEC, SPEC]
    if return_state:  # one state a layer: [ids, h_0, h_1] -> [logits, h_0, h_1]
        assert [i.name for i in model.inputs] == ["tokens", "h_0", "h_1"]
        assert [tuple(o.shape) for o in model.outputs] == [(None, None, 23), (None, 5),
                                                          (None, 5)]
        out = model([np.zeros((2, 3), np.int32), np.zeros((2, 5)), np.zeros((2, 5))])
        assert len(out) == 3


def test_units_for_a_target_are_the_closest_count():
    """At Zaremba-small's 4,651,600 parameters the solved width is the one whose count is
    closest to the target (as for tree cells), and the evaluator sizes its model with it."""
    units = units_for_params(ZAREMBA_SMALL, 10_000, SPEC, 2, tie_weights=False)

    def miss(u):
        return abs(language_model_params(10_000, u, SPEC, 2, tie_weights=False) - ZAREMBA_SMALL)

    assert miss(units) <= miss(units - 1) and miss(units) <= miss(units + 1)
    assert miss(units) < language_model_params(10_000, units + 1, SPEC, 2, False) - \
        language_model_params(10_000, units, SPEC, 2, False)
    evaluator = RNNLanguageModelEvaluator(target_params=ZAREMBA_SMALL, tie_weights=False)
    assert evaluator.units_for(SPEC.to_dict(), 10_000) == units
    # more nodes, more weights per unit: a narrower cell at the same budget
    wide = enas_rnn_cell_spec(inputs=list(range(11)), activations=["tanh"] * 12)
    assert units_for_params(ZAREMBA_SMALL, 10_000, wide, 2, tie_weights=False) < units


def test_bad_specs_get_clear_errors():
    conv = ENASConvCellSpec(normal=(ENASConvNode((0, 1), ("identity", "identity")),),
                            reduction=(ENASConvNode((0, 1), ("identity", "identity")),))
    with pytest.raises(ValueError, match=r"Argument `spec` must be 'lstm' or the spec of a "
                                         r"recurrent cell .*'enas_rnn_cell'.*'rnn_cell'.*"
                                         r"Received: spec of kind 'enas_conv_cell'"):
        build_language_model(conv, vocab_size=10, units=4)
    with pytest.raises(ValueError, match="kind 'enas_conv_cell'"):
        language_model_params(10, 4, conv.to_dict())
    broken = SPEC.to_dict()
    broken["nodes"][2]["input"] = 5  # a later node
    with pytest.raises(SpecError, match=r"nodes\[2\]\.input"):
        build_language_model(broken, vocab_size=10, units=4)
    with pytest.raises(ValueError, match=r"Argument `recurrent_dropout` must be 0 for a cell of "
                                         r"kind 'enas_rnn_cell'.*Received: "
                                         r"recurrent_dropout=0.25"):
        build_language_model(SPEC, vocab_size=10, units=4, recurrent_dropout=0.25)
    with pytest.raises(ValueError, match="Argument `spec` must be a tree cell's spec"):
        cell_base(SPEC)


def test_carried_state_child_trains_an_enas_cell(shared_data):
    """carry_state=True on real PTB: the child trains the ENAS cell alone, sized to a target,
    its metrics of the usual form and its model rebuildable from its model_args."""
    evaluator = RNNLanguageModelEvaluator(
        data_dir=str(shared_data("ptb")), target_params=120_000, tie_weights=False, epochs=1,
        steps_per_epoch=3, batch_size=4, seq_len=5, max_valid_steps=2, carry_state=True)
    model, metrics = evaluator.train_model(SPEC, evaluate_test=False)
    assert metrics["units"] == units_for_params(120_000, 10_000, SPEC, 2, tie_weights=False)
    assert metrics["params"] == model.count_params() == language_model_params(
        10_000, metrics["units"], SPEC, 2, tie_weights=False)
    assert metrics["steps"] == 3 and 1.0 < metrics["valid_ppl"] < 1e5
    assert metrics["model_args"]["spec"] == SPEC.to_dict()
    rebuilt = build_language_model(**metrics["model_args"], return_state=True)
    rebuilt.set_weights(model.get_weights())
    assert [i.name for i in rebuilt.inputs] == ["tokens", "h_0", "h_1"]


def test_a_seeded_enas_cell_starts_with_distinct_kernels():
    """A seeded initializer draws each kernel of its own (Keras 3 repeats a seeded initializer's
    values), and the same seed gives the same layer."""
    import keras

    init = keras.initializers.RandomUniform(-0.1, 0.1, seed=7)
    cells = [ENASRNNCell(SPEC, units=5, kernel_initializer=init) for _ in range(2)]
    for cell in cells:
        cell.build((None, 5))
    square = [cells[0].recurrent_kernel] + cells[0].node_kernels[1:]
    values = [np.asarray(w) for w in square]
    assert len(values) >= 3
    for i in range(len(values)):
        for j in range(i):
            assert not np.array_equal(values[i], values[j])
    for a, b in zip(cells[0].weights, cells[1].weights):
        np.testing.assert_array_equal(np.asarray(a), np.asarray(b))


def test_a_cell_spec_without_kind_is_a_tree_cell_and_a_kind_is_kept():
    """Older records hold tree-cell dicts without ``"kind"``: as a dict and as JSON text they
    read as an `RNNCellSpec`; a spec that names its kind stays that kind."""
    import json

    from nascell.search.evaluators.lm_parts import as_cell_spec
    from nascell.spec import FIGURE5_SPEC, RNNCellSpec

    bare = {k: v for k, v in FIGURE5_SPEC.to_dict().items() if k != "kind"}
    assert as_cell_spec(bare) == FIGURE5_SPEC
    assert as_cell_spec(json.dumps(bare)) == FIGURE5_SPEC
    assert isinstance(as_cell_spec(FIGURE5_SPEC.to_json()), RNNCellSpec)
    assert as_cell_spec(SPEC.to_dict()) == SPEC and as_cell_spec(SPEC.to_json()) == SPEC
