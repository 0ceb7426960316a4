"""Search spaces: declaration checks, decode/encode round trips, the paper's spaces."""

import csv

import numpy as np
import pytest

from nascell.search.core.space import Categorical, DepthSchedule, SearchSpace, Skips, SpaceError
from nascell.search.spaces import available_spaces, create_space, space_from_config
from nascell.spec import FIGURE5_SPEC, NAS_CELL_SPEC, ConvLayer, ConvSpec


def _user_space():
    def decode(d):
        return [(d[f"op{i}"], d[f"in{i}"]) for i in range(3)]

    def encode(layers):
        out = {}
        for i, (op, inputs) in enumerate(layers):
            out[f"op{i}"], out[f"in{i}"] = op, tuple(inputs)
        return out

    return SearchSpace("mine", [d for i in range(3) for d in (
        Categorical(f"op{i}", ["conv3", "conv5", "pool"]), Skips(f"in{i}", num_candidates=i))],
        decode=decode, encode=encode)


# (Loops rather than parametrize: conftest clears the Keras session after every test.)
def test_round_trips():
    for name in ["conv_v1", "conv_v2", "conv_v3", "rnn_cell", "nasbench201"]:
        _round_trips(name)


def _round_trips(name):
    space = create_space(name)
    rng = np.random.default_rng(0)
    for k in range(40):
        decisions = space.sample(rng, num_samples=k * 500)
        spec = space.decode(decisions)
        assert space.encode(spec) == decisions
        assert space.decode(space.encode(spec)) == spec
        tokens = space.to_tokens(decisions)
        assert space.from_tokens(tokens) == decisions
    assert space_from_config(space.config()).config() == space.config()


def test_registry():
    assert set(available_spaces()) >= {"conv_v1", "conv_v2", "conv_v3", "rnn_cell",
                                       "nasbench201"}
    with pytest.raises(ValueError, match="must be a registered search space or an alias of "
                                         r"one: .*'conv \(= conv_v3\)'.*Received: name='nope'"):
        create_space("nope")
    with pytest.raises(ValueError, match="bad options for search space 'rnn_cell'"):
        create_space("rnn_cell", bogus=1)


def test_python_and_command_line_share_one_table_of_aliases():
    from nascell.search.bin import search_flags
    from nascell.search.spaces import SPACE_ALIASES, resolve_space_name

    assert search_flags.SPACE_ALIASES is SPACE_ALIASES  # one table, the library's
    assert SPACE_ALIASES["conv"] == "conv_v3"
    for alias, target in SPACE_ALIASES.items():
        assert resolve_space_name(alias) == target
        built = create_space(alias)
        assert built.name == target and built.config() == create_space(target).config()
        rng = np.random.default_rng(0)
        assert built.decode(built.sample(rng)) == create_space(target).decode(
            create_space(target).sample(np.random.default_rng(0)))
    assert space_from_config(create_space("conv").config()).name == "conv_v3"


def test_user_space_from_parts():
    space = _user_space()
    assert space.num_architectures() == 3 ** 3 * 2 ** (0 + 1 + 2)
    d = {"op0": "conv3", "in0": [], "op1": "pool", "in1": [0], "op2": "conv5", "in2": [1, 0]}
    assert space.decode(d) == [("conv3", ()), ("pool", (0,)), ("conv5", (0, 1))]
    assert space.encode(space.decode(d)) == space.check(d)
    assert space.to_tokens(d) == [0, [], 2, [1], 1, [1, 1]]
    # the default decode is the decisions dict itself
    plain = SearchSpace("plain", [Categorical("a", [1, 2])])
    assert plain.decode({"a": 2}) == {"a": 2} and plain.encode({"a": 1}) == {"a": 1}


BAD_DECLARATIONS = [
    (lambda: SearchSpace("s", [Categorical("a", [1]), Categorical("a", [2])]),
     "duplicate decision name 'a'"),
    (lambda: Categorical("a", []), "choices are empty"),
    (lambda: Categorical("a", "abc"),
     "argument `choices` must be a list or tuple. Received: choices='abc'"),
    (lambda: Categorical("a", [1, 1]), "duplicate choices"),
    (lambda: Categorical("a", [[1, 2]]), "use JSON scalars"),
    (lambda: Categorical("", [1]), "non-empty string"),
    (lambda: Skips("s", -1),
     "argument `num_candidates` must be an integer >= 0. Received: num_candidates=-1"),
    (lambda: SearchSpace("s", [Skips("s0", 0), Skips("s1", 2)]),
     "Skips 's1' has num_candidates=2, but it is Skips decision #1 of the space, so it must "
     "have exactly 1"),
    (lambda: SearchSpace("s", [Skips("s0", 1)]), "must have exactly 0"),
    (lambda: SearchSpace("s", []), "has no decisions"),
    (lambda: SearchSpace("s", ["a"]), "expected Categorical or Skips"),
    (lambda: SearchSpace("s", [Categorical("a", [1])], schedule=DepthSchedule(
        start=1, step=1, every=10, maximum=3, decisions_per_item=1)),
     "reaches 2 items .2 decisions. but the space declares only 1"),
    (lambda: DepthSchedule(start=5, step=1, every=10, maximum=3, decisions_per_item=1),
     "start .5. exceeds maximum .3."),
    (lambda: create_space("rnn_cell", base=3),
     "argument `base` must be a power of two >= 2. Received: base=3"),
    (lambda: create_space("conv_v1", num_layers=0),
     "argument `num_layers` must be an integer >= 1. Received: num_layers=0"),
]


def test_bad_declarations():
    for make, message in BAD_DECLARATIONS:
        with pytest.raises(SpaceError, match=message):
            make()


def test_bad_decisions():
    space = _user_space()
    good = {"op0": "conv3", "in0": [], "op1": "pool", "in1": [0], "op2": "conv5", "in2": [1]}
    with pytest.raises(SpaceError, match=r"missing decision\(s\) \['in2'\]"):
        space.decode({k: v for k, v in good.items() if k != "in2"})
    with pytest.raises(SpaceError, match=r"unknown decision\(s\) \['extra'\]"):
        space.decode({**good, "extra": 1})
    with pytest.raises(SpaceError, match="'conv7' is not one of its choices"):
        space.decode({**good, "op1": "conv7"})
    with pytest.raises(SpaceError, match="index 2 out of range; the candidates are 0..1"):
        space.decode({**good, "in2": [2]})
    with pytest.raises(SpaceError, match="has no candidates"):
        space.decode({**good, "in0": [0]})
    with pytest.raises(SpaceError, match="repeated index"):
        space.decode({**good, "in2": [1, 1]})
    with pytest.raises(SpaceError, match=r"must be a list of earlier item indices in \[0, 0\]\. "
                                         r"Received: value=0"):
        space.decode({**good, "in1": 0})
    with pytest.raises(SpaceError, match=r"argument `decisions` must be a dict \{name: value\}\. "
                                         r"Received: decisions of type list"):
        space.decode([1, 2])
    with pytest.raises(SpaceError, match="token 3 out of range"):
        space.from_tokens([0, [], 3, [1], 1, [1, 1]])
    with pytest.raises(SpaceError, match="has no encode function"):
        SearchSpace("s", [Categorical("a", [1])], decode=lambda d: d["a"]).encode(1)
    with pytest.raises(SpaceError, match="conv_v1 has none"):
        create_space("conv_v1").encode(ConvSpec((ConvLayer(stride_height=2),)))
    with pytest.raises(SpaceError, match="conv_v2 has no pooling"):
        create_space("conv_v2").encode(ConvSpec((ConvLayer(op="max_pool", filters=None),)))
    with pytest.raises(SpaceError, match="node 2 needs 2 edges"):
        create_space("nasbench201").encode("|none~0|+|none~0|+|none~0|none~1|none~2|")


def test_conv_depth_schedule_and_decode():
    space = create_space("conv_v1")
    assert len(space.decisions) == 15 * 4
    depths = [space.num_active(n) // 4 for n in (0, 1599, 1600, 3200, 4800, 6400, 10 ** 6)]
    assert depths == [6, 6, 8, 10, 12, 14, 15]
    assert space.decisions_at(0) == space.decisions[:24]
    assert space.valid_lengths() == [24, 32, 40, 48, 56, 60]
    d = space.sample(np.random.default_rng(1), num_samples=0)
    spec = space.decode(d)
    assert isinstance(spec, ConvSpec) and spec.num_layers == 6
    assert spec.layers[3].inputs == tuple(d["layer3/inputs"])
    assert {layer.filters for layer in spec.layers} <= {24, 36, 48, 64}
    with pytest.raises(SpaceError, match="missing decision"):  # 7 layers: not a stage
        space.decode({k: v for k, v in space.sample(np.random.default_rng(0),
                                                    num_samples=1600).items()
                      if not k.startswith("layer7/")})
    fixed = create_space("conv_v2", depth_schedule=False, num_layers=3)
    assert fixed.num_active(0) == 3 * 6 and fixed.num_architectures() == (4 * 4 * 4 * 9) ** 3 * 8


def test_conv_v3_pooling_and_dense():
    space = create_space("conv_v3", depth_schedule=False, num_layers=2)
    spec = ConvSpec((ConvLayer(filters=24, stride_height=2),
                     ConvLayer(op="max_pool", filters=None, filter_height=3, filter_width=3,
                               inputs=(0,))))
    d = space.encode(spec)
    assert d["layer1/filters"] == "max_pool" and space.decode(d) == spec
    dense = create_space("conv_v1", dense=True)
    assert dense["layer0/filters"].choices == (6, 12, 24, 36)


def test_rnn_cell_space():
    space = create_space("rnn_cell")  # base 8: 15 nodes x 2 + 4
    assert len(space.decisions) == 34
    assert space.decode(space.encode(NAS_CELL_SPEC)) == NAS_CELL_SPEC
    small = create_space("rnn_cell", base=2)
    assert small.decode(small.encode(FIGURE5_SPEC)) == FIGURE5_SPEC
    assert small.num_architectures() == (2 * 4) ** 4 * 3 * 3
    ext = create_space("rnn_cell", base=2, extended=True)
    assert ext["node0/combine"].choices == ("add", "mult", "max")
    assert "sin" in ext["node0/activation"].choices
    with pytest.raises(SpaceError, match="not one of its choices"):
        small.encode(ext.decode({**ext.sample(np.random.default_rng(0)),
                                 "node0/combine": "max"}))


def test_nasbench201_strings(shared_data):
    space = create_space("nasbench201")
    assert space.num_architectures() == 15625
    arch = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|"
            "skip_connect~2|")
    d = space.encode(arch)
    assert d["edge_0_1"] == "nor_conv_3x3" and d["edge_2_3"] == "skip_connect"
    assert space.decode(d) == arch
    with open(shared_data("nasbench201", "nb201_cifar10.csv"), newline="") as f:
        archs = [row["arch"] for row in csv.DictReader(f)]
    assert len(set(archs)) == 15625
    assert all(space.decode(space.encode(a)) == a for a in archs)
    assert {space.decode(space.from_tokens(list(t))) for t in np.ndindex(*(5,) * 6)} == set(archs)
