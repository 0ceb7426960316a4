"""The conv child builder: building rules on hand-computed cases, random specs from the
paper's conv spaces (build, forward, one SGD step), and serialization."""

import json
import os
import subprocess
import sys
import textwrap

import keras
import numpy as np
import pytest
import tensorflow as tf
from hypothesis import HealthCheck, given, settings
from tolerance import skip_float16_if_onednn_capped

from nascell.conv import ConvNet, build_conv_classifier, plan_conv_shapes
from nascell.spec import ConvLayer, ConvSpec, SpecError
from tests.core.strategies import conv_specs


def conv(filters, size=3, stride=1, inputs=(), height=None, stride_width=None):
    return ConvLayer(filter_height=height or size, filter_width=size, filters=filters,
                     stride_height=stride, stride_width=stride_width or stride,
                     inputs=tuple(inputs))


def pool(size=2, stride=2, inputs=()):
    return ConvLayer(filter_height=size, filter_width=size, filters=None, stride_height=stride,
                     stride_width=stride, inputs=tuple(inputs), op="max_pool")


def images(shape=(2, 32, 32, 3), seed=0):
    return np.random.default_rng(seed).normal(size=shape).astype("float32")


def run(net, x, training=False):
    """Build `net` on x and return its intermediates as numpy arrays."""
    maps = net.intermediates(x, training=training)
    return {"inputs": [keras.ops.convert_to_numpy(t) for t in maps["inputs"]],
            "outputs": [keras.ops.convert_to_numpy(t) for t in maps["outputs"]],
            "features": keras.ops.convert_to_numpy(maps["features"])}


# --- building rules on small hand-computed cases -------------------------------------------------


def test_layer_without_inputs_reads_the_image():
    # Layer 0 is a 1x1, stride-1 max pool: the identity, so its output *is* what it read.
    spec = ConvSpec(layers=(pool(size=1, stride=1), conv(4, inputs=(0,)), conv(5, size=1)))
    x = images()
    maps = run(ConvNet(spec), x)
    np.testing.assert_array_equal(maps["inputs"][0], x)
    np.testing.assert_array_equal(maps["outputs"][0], x)
    np.testing.assert_array_equal(maps["inputs"][2], x)  # no inputs: the image again
    np.testing.assert_array_equal(maps["inputs"][1], x)  # reads layer 0 = the image
    # Loose ends are layers 1 and 2: 4 + 5 channels.
    assert maps["features"].shape == (2, 32, 32, 9)


def test_smaller_map_is_zero_padded_bottom_right_before_concat():
    # Odd image sides check ceil(n / stride): 31x29 -> stride 2 -> 16x15.
    spec = ConvSpec(layers=(conv(4, stride=2), conv(5, size=1), conv(6, inputs=(0, 1))))
    x = images((2, 31, 29, 3))
    net = ConvNet(spec)
    maps = run(net, x)
    assert maps["outputs"][0].shape == (2, 16, 15, 4)
    assert maps["outputs"][1].shape == (2, 31, 29, 5)
    merged = maps["inputs"][2]
    assert merged.shape == (2, 31, 29, 4 + 5)  # channels in input order: layer 0, then 1
    np.testing.assert_array_equal(merged[:, :16, :15, :4], maps["outputs"][0])
    assert np.all(merged[:, 16:, :, :4] == 0) and np.all(merged[:, :, 15:, :4] == 0)
    np.testing.assert_array_equal(merged[..., 4:], maps["outputs"][1])
    assert net.plan.input_pads[2] == ((15, 14), (0, 0))
    # Only layer 2 is a loose end.
    assert maps["features"].shape == (2, 31, 29, 6)
    np.testing.assert_array_equal(maps["features"], maps["outputs"][2])


def test_loose_ends_are_padded_and_concatenated_into_the_output():
    spec = ConvSpec(layers=(conv(8), conv(12, stride=2, inputs=(0,)), conv(6, inputs=(0,)),
                            conv(10, inputs=(1,))))
    assert spec.loose_ends() == [2, 3]
    net = ConvNet(spec)
    maps = run(net, images())
    features = maps["features"]
    assert features.shape == (2, 32, 32, 6 + 10)
    assert net.compute_output_shape((None, 32, 32, 3)) == (None, 32, 32, 16)
    np.testing.assert_array_equal(features[..., :6], maps["outputs"][2])
    np.testing.assert_array_equal(features[:, :16, :16, 6:], maps["outputs"][3])
    assert np.all(features[:, 16:, :, 6:] == 0) and np.all(features[:, :, 16:, 6:] == 0)
    # The padding really is the only zero area: conv maps after ReLU are mostly positive.
    assert np.mean(maps["outputs"][3] > 0) > 0.2


def test_last_layer_is_always_an_output_even_if_alone():
    spec = ConvSpec(layers=(conv(7),))
    assert ConvNet(spec).compute_output_shape((None, 8, 8, 3)) == (None, 8, 8, 7)


def test_pooling_keeps_channels_and_takes_the_window_max():
    spec = ConvSpec(layers=(conv(8), pool(size=2, stride=2, inputs=(0,))))
    maps = run(ConvNet(spec), images())
    before, after = maps["outputs"]
    assert after.shape == (2, 16, 16, 8)
    expected = before.reshape(2, 16, 2, 16, 2, 8).max(axis=(2, 4))
    np.testing.assert_allclose(after, expected)


def test_strides_shrink_maps_per_axis():
    spec = ConvSpec(layers=(conv(6, stride=3, stride_width=2), conv(6, stride=2, inputs=(0,)),
                            pool(size=3, stride=3, inputs=(1,)), conv(6, stride=3, inputs=(2,)),
                            conv(6, size=7, stride=3, inputs=(3,))))
    plan = plan_conv_shapes(spec, (32, 32, 3))
    # 32x32 -> 11x16 -> 6x8 -> 2x3 -> 1x1 -> 1x1: "same" padding never goes below 1x1.
    assert [s[:2] for s in plan.output_shapes] == [(11, 16), (6, 8), (2, 3), (1, 1), (1, 1)]
    maps = run(ConvNet(spec), images())
    assert [m.shape[1:3] for m in maps["outputs"]] == [s[:2] for s in plan.output_shapes]
    assert maps["features"].shape == (2, 1, 1, 6)


def test_conv_block_is_conv_then_batchnorm_then_relu():
    spec = ConvSpec(layers=(conv(5, size=3, stride=2),))
    net = ConvNet(spec, bn_epsilon=1e-2)
    x = images()
    net.build(x.shape)
    conv_layer, norm = net.ops[0], net.norms[0]
    assert len(conv_layer.weights) == 1, "conv layers carry no bias"
    rng = np.random.default_rng(1)
    gamma, beta, mean, var = (rng.uniform(0.5, 1.5, 5).astype("float32") for _ in range(4))
    norm.set_weights([gamma, beta, mean, var])
    assert norm.epsilon == 1e-2
    y = keras.ops.convert_to_numpy(keras.ops.conv(x, conv_layer.kernel, strides=2,
                                                  padding="same"))
    expected = np.maximum((y - mean) / np.sqrt(var + 1e-2) * gamma + beta, 0)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(net(x)), expected, rtol=1e-4,
                               atol=1e-5)


def test_weight_decay_regularizes_every_kernel():
    spec = ConvSpec(layers=(conv(4), pool(inputs=(0,)), conv(6, inputs=(1,))))
    model = build_conv_classifier(spec, input_shape=(16, 16, 3), num_classes=3,
                                  weight_decay=1e-4, dropout=0.5)
    model(images((1, 16, 16, 3)))
    kernels = [v for v in model.trainable_weights if "kernel" in v.path]
    assert len(kernels) == 3 and len(model.losses) == 3
    expected = sum(1e-4 * np.sum(keras.ops.convert_to_numpy(k) ** 2) for k in kernels)
    np.testing.assert_allclose(sum(float(loss) for loss in model.losses), expected, rtol=1e-5)
    assert model.get_layer("dropout").rate == 0.5
    with pytest.raises(ValueError, match="not both"):
        ConvNet(spec, weight_decay=1e-4, kernel_regularizer="l2")


def test_spec_may_be_a_dict_or_json():
    spec = ConvSpec(layers=(conv(4), conv(6, inputs=(0,))))
    for form in (spec.to_dict(), spec.to_json()):
        assert ConvNet(form).spec == spec
    with pytest.raises(SpecError):
        ConvNet({"kind": "conv", "layers": [{"filters": 0}]})
    with pytest.raises(ValueError, match="Argument `spec` must be a ConvSpec"):
        ConvNet([conv(4)])


# --- helpful errors ----------------------------------------------------------------------------


def test_wrong_rank_or_unknown_sizes_raise_value_error_with_a_fix():
    spec = ConvSpec(layers=(conv(4),))
    with pytest.raises(ValueError, match="channel axis.*rank 3"):
        ConvNet(spec).build((None, 32, 32))
    with pytest.raises(ValueError, match="rank 2"):
        build_conv_classifier(spec, input_shape=(32, 32))
    with pytest.raises(ValueError, match="known image height.*static size"):
        ConvNet(spec).build((None, None, None, 3))
    with pytest.raises(ValueError, match="channels"):
        ConvNet(spec).build((None, 32, 32, None))
    with pytest.raises(ValueError, match="at least 1 pixel"):
        plan_conv_shapes(spec, (0, 32, 3))


def test_call_with_other_image_shape_than_built_raises():
    net = ConvNet(ConvSpec(layers=(conv(4, stride=2), conv(4, inputs=()), conv(4, inputs=(0, 1)))))
    net(images((1, 32, 32, 3)))
    with pytest.raises(ValueError, match="height differs.*build a new ConvNet"):
        net(images((1, 28, 32, 3)))
    with pytest.raises(ValueError, match="channels differs"):
        net(images((1, 32, 32, 1)))
    with pytest.raises(ValueError, match="batch axis.*rank 3"):
        ConvNet(net.spec)(images((32, 32, 3)))


@skip_float16_if_onednn_capped
def test_mixed_precision_keeps_the_softmax_in_float32():
    spec = ConvSpec(layers=(conv(4, stride=2), conv(4, inputs=()), conv(4, inputs=(0, 1))))
    keras.config.set_dtype_policy("mixed_float16")
    try:
        model = build_conv_classifier(spec, input_shape=(8, 8, 3), num_classes=3)
        net = model.get_layer("convnet")
        assert net.ops[0].compute_dtype == "float16" and net.ops[0].kernel.dtype == "float32"
        probs = model(images((2, 8, 8, 3)))
    finally:
        keras.config.set_dtype_policy("float32")
    assert probs.dtype == "float32"
    np.testing.assert_allclose(keras.ops.convert_to_numpy(keras.ops.sum(probs, -1)), 1, rtol=1e-5)


# --- random specs from the paper's spaces ------------------------------------------------------

_X = images((2, 32, 32, 3), seed=3)
_Y = np.array([1, 7])


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(spec=conv_specs(min_layers=1, max_layers=8))
@pytest.mark.slow
def test_random_paper_specs_build_run_and_train_one_step(spec):
    keras.backend.clear_session()
    model = build_conv_classifier(spec, weight_decay=1e-4)
    net = model.get_layer("convnet")
    plan = plan_conv_shapes(spec, (32, 32, 3))
    expected_channels = sum(plan.output_shapes[i][2] for i in spec.loose_ends())
    assert plan.output_shape[2] == expected_channels
    features = keras.ops.convert_to_numpy(net(_X))
    assert features.shape == (2,) + plan.output_shape
    assert np.all(np.isfinite(features))

    optimizer = keras.optimizers.SGD(0.01, momentum=0.9, nesterov=True)
    before = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    with tf.GradientTape() as tape:
        probs = model(_X, training=True)
        loss = keras.ops.mean(keras.losses.sparse_categorical_crossentropy(_Y, probs))
        loss = loss + keras.ops.sum(model.losses)
    grads = tape.gradient(loss, model.trainable_variables)
    assert np.isfinite(float(loss))
    # Every layer feeds the output, so every variable gets a gradient.
    assert all(g is not None for g in grads)
    assert all(np.all(np.isfinite(keras.ops.convert_to_numpy(g))) for g in grads)
    optimizer.apply_gradients(zip(grads, model.trainable_variables))
    after = [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]
    assert all(np.all(np.isfinite(a)) for a in after)
    assert any(not np.array_equal(a, b) for a, b in zip(after, before))


def test_compiled_train_step_with_default_jit():
    # The way the child trainer uses it: compile() with its defaults (XLA on TensorFlow).
    spec = ConvSpec(layers=(conv(24, stride=2), conv(36, size=5, inputs=()),
                            pool(size=3, stride=1, inputs=(0, 1)), conv(12, size=1, inputs=(2,)),
                            conv(6, size=7, stride=3, inputs=(0, 2))))
    model = build_conv_classifier(spec, weight_decay=1e-4, dropout=0.2)
    model.compile(optimizer=keras.optimizers.SGD(0.1, momentum=0.9, nesterov=True),
                  loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    logs = model.train_on_batch(_X, _Y, return_dict=True)
    assert np.isfinite(logs["loss"])
    assert model.predict(_X, verbose=0).shape == (2, 10)


# --- serialization -----------------------------------------------------------------------------

_SPEC = ConvSpec(layers=(conv(6, stride=2), conv(5, size=5, inputs=()), pool(size=3, inputs=(0, 1)),
                         conv(4, size=1, stride=1, inputs=(0,))))


def test_get_config_from_config_round_trip():
    net = ConvNet(_SPEC, kernel_regularizer=keras.regularizers.L2(3e-4),
                  kernel_initializer="glorot_uniform", bn_momentum=0.8, bn_epsilon=1e-4,
                  name="features")
    config = net.get_config()
    json.dumps(config)  # plain JSON
    assert config["spec"] == _SPEC.to_dict()
    clone = ConvNet.from_config(config)
    assert clone.get_config() == config
    assert clone.spec == _SPEC and clone.bn_epsilon == 1e-4 and clone.bn_momentum == 0.8
    assert isinstance(clone.kernel_regularizer, keras.regularizers.L2)
    assert isinstance(clone.kernel_initializer, keras.initializers.GlorotUniform)
    decay = ConvNet.from_config(ConvNet(_SPEC, weight_decay=1e-4).get_config())
    assert decay.weight_decay == 1e-4 and decay.kernel_regularizer.l2 == pytest.approx(1e-4)
    x = images((1, 32, 32, 3))
    # Loose ends: layer 2 (16x16, 6 + 5 channels pooled) and layer 3 (16x16x4).
    assert clone(x).shape == net(x).shape == (1, 16, 16, 6 + 5 + 4)


_LOAD_SCRIPT = textwrap.dedent("""
    import sys
    import numpy as np
    import keras
    import nascell
    model = keras.models.load_model(sys.argv[1])
    np.save(sys.argv[3], model.predict(np.load(sys.argv[2]), verbose=0))
""")


@pytest.mark.slow
def test_keras_file_round_trip_in_a_fresh_process(tmp_path):
    model = build_conv_classifier(_SPEC, input_shape=(16, 16, 3), num_classes=4,
                                  weight_decay=1e-4, dropout=0.1)
    model.compile(optimizer=keras.optimizers.SGD(0.05), loss="sparse_categorical_crossentropy")
    x = images((4, 16, 16, 3), seed=5)
    model.train_on_batch(x, np.array([0, 1, 2, 3]))  # move BN statistics off their init
    path, x_path, out = tmp_path / "child.keras", tmp_path / "x.npy", tmp_path / "y.npy"
    model.save(path)
    np.save(x_path, x)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL="3", KERAS_BACKEND="tensorflow")
    result = subprocess.run([sys.executable, "-c", _LOAD_SCRIPT, str(path), str(x_path), str(out)],
                            capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr[-3000:]
    np.testing.assert_allclose(np.load(out), model.predict(x, verbose=0), rtol=1e-5, atol=1e-6)
