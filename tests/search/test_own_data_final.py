"""The final stage (nascell-train) on your own data: read back from the search's run directory
or given by flags; and the notebook evaluators' budget kept equal to the binaries'."""

import io
import json
import os

import numpy as np
import own_data_helpers as helpers
import pytest
from absl import app

from nascell.search.bin import child_flags, train
from nascell.search.rundir.run_dir import RunDir


def _run_dir(path, evaluator, spec):
    run = RunDir.open_or_create(str(path), {"space": {"name": "tiny_conv"},
                                            "evaluator": evaluator.config(), "m": 1})
    run.close()
    os.makedirs(os.path.join(path, "best"), exist_ok=True)
    with open(os.path.join(path, "best", "best.json"), "w") as f:
        json.dump({"trial_id": 0, "reward": 0.5, "spec": spec.to_dict()}, f)


def test_final_stage_trains_on_the_searchs_own_images(parsed_flags, tmp_path):
    from nascell.search import image_evaluator

    images = helpers.write_image_folder(str(tmp_path / "images"), per_class=8)
    space = helpers.tiny_conv_space()
    spec = space.decode(space.sample(np.random.default_rng(0)))
    _run_dir(tmp_path / "run", image_evaluator({"image_dir": images}, flip=False), spec)
    parsed_flags.run_dir = str(tmp_path / "run")
    parsed_flags.child_steps_per_epoch = 2
    parsed_flags.child_batch_size = 8
    parsed_flags.child_flip = False
    parsed_flags.epochs = 1
    record = train.final_stage(train.resolve_spec(), str(tmp_path / "final"),
                               out=io.StringIO()).record
    assert record["options"]["images"] == {"image_dir": images}
    assert record["metrics"]["model_args"]["input_shape"] == [24, 24, 1]
    assert record["metrics"]["model_args"]["num_classes"] == 3
    assert 0.0 <= record["metrics"]["test_acc"] <= 1.0


def test_final_stage_cannot_read_python_data_back(parsed_flags, tmp_path):
    from nascell.search import image_evaluator

    space = helpers.tiny_conv_space()
    spec = space.decode(space.sample(np.random.default_rng(0)))
    _run_dir(tmp_path / "run", image_evaluator(helpers.arrays()), spec)
    parsed_flags.run_dir = str(tmp_path / "run")
    with pytest.raises(app.UsageError, match="data given from Python .*--image_dir"):
        train.base_options("conv_classifier")


def test_notebook_budget_is_the_binaries_proxy_budget():
    from nascell.search.evaluators.own_data import PROXY_BUDGET

    for name, budget in PROXY_BUDGET.items():
        flags_budget = {k: v for k, v in child_flags.PROXY_DEFAULTS[name].items()
                        if k != "dataset" and k != "subset"}
        flags_budget = {k: (None if v == 0 and k in ("steps_per_epoch", "max_valid_steps")
                            else v) for k, v in flags_budget.items()}
        assert budget == flags_budget, name
