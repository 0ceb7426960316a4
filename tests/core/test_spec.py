"""Validation, JSON round trips and tree helpers of nascell/spec.py."""

import json

import pytest

from nascell.spec import (
    FIGURE5_SPEC,
    NAS_CELL_SPEC,
    CellIndex,
    ConvLayer,
    ConvSpec,
    NodeOp,
    RNNCellSpec,
    SpecError,
    rnn_cell_spec,
    spec_from_dict,
    spec_from_json,
)


def _rnn_dict(**overrides):
    data = FIGURE5_SPEC.to_dict()
    data.update(overrides)
    return data


def _conv_dict():
    return ConvSpec(layers=(ConvLayer(), ConvLayer(inputs=(0,)),
                            ConvLayer(op="max_pool", filters=None, inputs=(0, 1)))).to_dict()


def test_spec_error_is_a_value_error():
    assert issubclass(SpecError, ValueError)


# --- recurrent cell spec: bad input ------------------------------------------------------------

def test_node_op_rejects_unknown_ops():
    for combine, activation, field in [("concat", "tanh", "combine"), ("", "tanh", "combine"),
                                       ("add", "softmax", "activation"),
                                       ("add", None, "activation")]:
        with pytest.raises(SpecError, match=f"'{field}'") as err:
            NodeOp(combine, activation)
        assert "allowed" in str(err.value)


def test_unknown_op_in_json_names_the_node():
    data = _rnn_dict()
    data["nodes"][1] = {"combine": "add", "activation": "gelu"}
    with pytest.raises(SpecError, match=r"nodes\[1\].*'activation'.*gelu"):
        RNNCellSpec.from_dict(data)
    data = _rnn_dict(cell_inject={"combine": "sub", "activation": "tanh"})
    with pytest.raises(SpecError, match=r"cell_inject.*'combine'.*sub"):
        RNNCellSpec.from_dict(data)


def test_base_must_be_a_power_of_two():
    nodes = tuple(NodeOp("add", "tanh") for _ in range(3))
    for base in [0, 1, 3, 6, 12, -4, 2.0, "4", True]:
        with pytest.raises(SpecError, match="'base'.*power of two"):
            RNNCellSpec(base=base, nodes=nodes, cell_inject=NodeOp("add", "tanh"),
                        cell_index=CellIndex(0, 1))


def test_wrong_node_count():
    for base, count in [(2, 2), (2, 4), (4, 4), (8, 14), (8, 16)]:
        with pytest.raises(SpecError, match=f"'nodes'.*exactly 2\\*base-1 = {2 * base - 1}"):
            RNNCellSpec(base=base, nodes=tuple(NodeOp("add", "tanh") for _ in range(count)),
                        cell_inject=NodeOp("add", "tanh"), cell_index=CellIndex(0, 1))


def test_cell_index_out_of_range():
    for inject, output, field in [
            (3, 1, "cell_index.inject"), (-1, 1, "cell_index.inject"),
            (0, 3, "cell_index.output"), (0, -2, "cell_index.output"),
            (0.0, 1, "cell_index.inject"), (0, "1", "cell_index.output")]:
        with pytest.raises(SpecError, match=f"'{field}'.*\\[0, 2\\]"):
            rnn_cell_spec(2, [("add", "tanh")] * 3, ("add", "tanh"), inject, output)


def test_rnn_spec_unknown_and_missing_keys():
    with pytest.raises(SpecError, match=r"unknown key\(s\) \['extra'\]"):
        RNNCellSpec.from_dict(_rnn_dict(extra=1))
    data = _rnn_dict()
    data["nodes"][0]["bias"] = True
    with pytest.raises(SpecError, match=r"nodes\[0\].*unknown key\(s\) \['bias'\]"):
        RNNCellSpec.from_dict(data)
    with pytest.raises(SpecError, match=r"'cell_index'.*unknown key\(s\) \['hidden'\]"):
        RNNCellSpec.from_dict(_rnn_dict(cell_index={"inject": 0, "output": 1, "hidden": 2}))
    data = _rnn_dict()
    del data["cell_inject"]
    with pytest.raises(SpecError, match=r"missing key\(s\) \['cell_inject'\]"):
        RNNCellSpec.from_dict(data)
    with pytest.raises(SpecError, match="'nodes'.*list"):
        RNNCellSpec.from_dict(_rnn_dict(nodes="add,tanh"))


def test_rnn_spec_wrong_kind():
    with pytest.raises(SpecError, match="'kind'.*'conv'"):
        RNNCellSpec.from_dict(_rnn_dict(kind="conv"))
    with pytest.raises(SpecError, match="'kind'.*expects kind 'rnn_cell'"):
        RNNCellSpec.from_json(json.dumps(_conv_dict()))
    with pytest.raises(SpecError, match="'kind'.*expects kind 'conv'"):
        ConvSpec.from_json(FIGURE5_SPEC.to_json())
    with pytest.raises(SpecError, match="'kind'.*known kinds"):
        spec_from_json(json.dumps(_rnn_dict(kind="transformer")))
    with pytest.raises(SpecError, match="needs a 'kind' field"):
        spec_from_dict({"base": 2})


def test_malformed_json():
    for text in ["{bad json", "", "[1, 2]", "42", '{"kind": "rnn_cell",}']:
        with pytest.raises(SpecError, match="malformed spec JSON"):
            spec_from_json(text)
        with pytest.raises(SpecError, match="malformed spec JSON"):
            RNNCellSpec.from_json(text)
    with pytest.raises(SpecError, match="must be a string"):
        spec_from_json({"kind": "rnn_cell"})


# --- recurrent cell spec: round trips and tree helpers ----------------------------------------

def test_rnn_spec_json_round_trip():
    extended = rnn_cell_spec(
        4, [("max", "sin"), ("mult", "identity"), ("add", "relu"), ("add", "sigmoid"),
            ("max", "tanh"), ("mult", "sin"), ("add", "identity")], ("max", "sin"), 6, 2)
    for spec in [FIGURE5_SPEC, NAS_CELL_SPEC, extended]:
        text = spec.to_json()
        assert json.loads(text)["kind"] == "rnn_cell"
        assert RNNCellSpec.from_json(text) == spec
        assert spec_from_json(text) == spec
        assert spec_from_json(spec.to_json(indent=2)) == spec
        assert RNNCellSpec.from_json(text.encode("utf-8")) == spec
        assert spec_from_dict(spec.to_dict()) == spec
        assert hash(RNNCellSpec.from_json(text)) == hash(spec)
    assert spec_from_json(extended.to_json()) != FIGURE5_SPEC


def test_kind_is_optional_in_typed_from_dict():
    data = FIGURE5_SPEC.to_dict()
    del data["kind"]
    assert RNNCellSpec.from_dict(data) == FIGURE5_SPEC


def test_is_extended():
    assert not NAS_CELL_SPEC.is_extended
    assert not FIGURE5_SPEC.is_extended
    assert rnn_cell_spec(2, [("add", "tanh")] * 3, ("max", "tanh"), 0, 1).is_extended
    assert rnn_cell_spec(2, [("add", "tanh"), ("add", "sin"), ("add", "tanh")],
                         ("add", "tanh"), 0, 1).is_extended


def test_figure5_and_nas_cell_specs():
    assert FIGURE5_SPEC.base == 2 and FIGURE5_SPEC.cell_index == CellIndex(0, 1)
    assert FIGURE5_SPEC.nodes[2] == NodeOp("mult", "sigmoid")
    assert NAS_CELL_SPEC.base == 8 and NAS_CELL_SPEC.num_nodes == 15
    assert NAS_CELL_SPEC.cell_index == CellIndex(inject=8, output=12)
    assert NAS_CELL_SPEC.cell_inject == NodeOp("add", "tanh")
    assert NAS_CELL_SPEC.nodes[3] == NodeOp("mult", "relu")
    assert NAS_CELL_SPEC.nodes[12] == NodeOp("mult", "identity")


def test_tree_levels_children_parent():
    assert FIGURE5_SPEC.levels() == [[0, 1], [2]]
    assert NAS_CELL_SPEC.levels() == [list(range(8)), [8, 9, 10, 11], [12, 13], [14]]
    assert NAS_CELL_SPEC.root == 14
    for leaf in range(8):
        assert NAS_CELL_SPEC.children(leaf) is None
        assert NAS_CELL_SPEC.parent(leaf) == 8 + leaf // 2
    assert NAS_CELL_SPEC.children(8) == (0, 1)
    assert NAS_CELL_SPEC.children(11) == (6, 7)
    assert NAS_CELL_SPEC.children(12) == (8, 9)
    assert NAS_CELL_SPEC.children(13) == (10, 11)
    assert NAS_CELL_SPEC.children(14) == (12, 13)
    assert NAS_CELL_SPEC.parent(13) == 14
    assert NAS_CELL_SPEC.parent(14) is None
    with pytest.raises(SpecError, match="node 15"):
        NAS_CELL_SPEC.children(15)
    spec16 = rnn_cell_spec(16, [("add", "tanh")] * 31, ("add", "tanh"), 0, 30)
    assert [len(level) for level in spec16.levels()] == [16, 8, 4, 2, 1]
    # Every non-root node has exactly one parent, and parent/children agree.
    for node in range(spec16.num_nodes - 1):
        assert node in spec16.children(spec16.parent(node))


# --- conv spec ---------------------------------------------------------------------------------

def test_conv_layer_reading_itself_or_later():
    with pytest.raises(SpecError, match=r"'layers\[1\].inputs'.*earlier layers \(indices 0..0\)"):
        ConvSpec(layers=(ConvLayer(), ConvLayer(inputs=(1,))))
    with pytest.raises(SpecError, match=r"'layers\[0\].inputs'"):
        ConvSpec(layers=(ConvLayer(inputs=(2,)), ConvLayer(), ConvLayer()))
    data = _conv_dict()
    data["layers"][1]["inputs"] = [0, 2]
    with pytest.raises(SpecError, match=r"layers\[1\].inputs"):
        ConvSpec.from_dict(data)


def test_conv_filters_and_sizes_must_be_positive():
    for filters in [0, -24, None, 2.5, "36"]:
        with pytest.raises(SpecError, match="'filters'"):
            ConvLayer(filters=filters)
    for field in ["filter_height", "filter_width", "stride_height", "stride_width"]:
        for bad in [0, -1]:
            with pytest.raises(SpecError, match=f"'{field}'"):
                ConvLayer(**{field: bad})


def test_pooling_with_filters():
    with pytest.raises(SpecError, match="'filters'.*max_pool.*None"):
        ConvLayer(op="max_pool", filters=24)
    assert ConvLayer(op="max_pool", filters=None).filters is None


def test_conv_misc_errors():
    with pytest.raises(SpecError, match="'op'.*allowed"):
        ConvLayer(op="avg_pool")
    with pytest.raises(SpecError, match="'inputs'.*once"):
        ConvLayer(inputs=(0, 0))
    with pytest.raises(SpecError, match="'inputs'"):
        ConvLayer(inputs=(-1,))
    with pytest.raises(SpecError, match="'inputs'"):
        ConvLayer(inputs="0")
    with pytest.raises(SpecError, match="'layers'.*at least one"):
        ConvSpec(layers=())
    data = _conv_dict()
    data["layers"][0]["padding"] = "same"
    with pytest.raises(SpecError, match=r"layers\[0\].*unknown key\(s\) \['padding'\]"):
        ConvSpec.from_dict(data)
    with pytest.raises(SpecError, match=r"unknown key\(s\) \['extra'\]"):
        ConvSpec.from_dict(dict(_conv_dict(), extra=[]))
    with pytest.raises(SpecError, match=r"layers\[2\].*'filters'"):
        data = _conv_dict()
        data["layers"][2]["filters"] = 12
        ConvSpec.from_dict(data)


def test_conv_json_round_trip_and_loose_ends():
    spec = ConvSpec.from_dict(_conv_dict())
    assert ConvSpec.from_json(spec.to_json()) == spec
    assert spec_from_json(spec.to_json()) == spec
    assert spec.layers[2].inputs == (0, 1)
    assert spec.num_layers == 3
    assert spec.loose_ends() == [2]
    unsorted = ConvSpec(layers=(ConvLayer(), ConvLayer(), ConvLayer(inputs=[1, 0])))
    assert unsorted.layers[2].inputs == (0, 1)
    spec = ConvSpec(layers=(ConvLayer(), ConvLayer(), ConvLayer(inputs=(1,))))
    assert spec.loose_ends() == [0, 2]
