"""An export's endpoint as a TensorFlow Lite model, for phones and microcontrollers.

    from nascell.export.tflite import to_tflite, run_tflite
    path = to_tflite("exports/nas")                  # exports/nas/step.tflite
    out = run_tflite(path, x=x, h=h, c=c)            # {"output": ..., "h": ..., "c": ...}

What converts with TensorFlow Lite's builtin ops (no Flex delegate), checked by the tests to
match the SavedModel within 1e-5:

* ``step`` of every recurrent cell (tree cells with every combine and activation, projection
  or not; ENAS cells): one time step, batch size free. On a device, the app loops over time
  and feeds the state back, the usual way to run a recurrent model there.
* ``features`` of every image net (conv, ENAS micro and macro nets), batch size free.

The ``sequence`` endpoints do not: the time loop of ``keras.layers.RNN`` keeps its per-step
outputs in a TensorList (``tf.TensorListReserve``) whose element shape has an unknown batch
size, and TensorFlow Lite lowers tensor lists to builtin ops only for static shapes. The error
says so; ``select_tf_ops=True`` converts them anyway, as TensorFlow ops that need the Flex
delegate at run time.

Only the SavedModel is read, so this works on an export folder (``<dir>/saved_model``) or on a
bare SavedModel folder, without nascell's layers.
"""

from __future__ import annotations

import os
import re
import warnings
from typing import Any, Dict, List, Optional

import numpy as np

import _nascell_launch as _quiet
from nascell import _io

SAVED_MODEL_DIR = "saved_model"
DEFAULT_ENDPOINTS = ("step", "features")

__all__ = ["TFLiteConversionError", "to_tflite", "run_tflite", "compare_with_saved_model",
           "saved_model_dir", "default_endpoint"]

# Ops that fail for a known reason, and what that reason is.
_TENSOR_LIST_REASON = (
    "the endpoint loops over time (the tf.while_loop of keras.layers.RNN) and keeps each "
    "step's output in a TensorList whose element shape has an unknown batch size; TensorFlow "
    "Lite lowers tensor lists to builtin ops only when that shape is static")
_KNOWN_REASONS = {op: _TENSOR_LIST_REASON for op in (
    "tf.TensorListReserve", "tf.TensorListSetItem", "tf.TensorListGetItem",
    "tf.TensorListStack", "tf.TensorListFromTensor", "tf.TensorListLength")}


class TFLiteConversionError(RuntimeError):
    """An endpoint did not convert; the message names the TensorFlow ops and why."""

    def __init__(self, message: str, ops: List[str]):
        super().__init__(message)
        self.ops = ops


def saved_model_dir(path: str) -> str:
    """The SavedModel folder of an export folder (or ``path`` itself if it is one)."""
    path = os.fspath(path)
    if os.path.isfile(os.path.join(path, "saved_model.pb")):
        return path
    inner = os.path.join(path, SAVED_MODEL_DIR)
    if os.path.isfile(os.path.join(inner, "saved_model.pb")):
        return inner
    raise FileNotFoundError(f"no SavedModel in {path} (looked for {inner}/saved_model.pb); "
                            f"pass an export folder written by nascell.export.export_spec or "
                            f"nascell-export, or a SavedModel folder")


def _signatures(sm_dir: str):
    import tensorflow as tf
    return tf.saved_model.load(sm_dir).signatures


def default_endpoint(path: str) -> str:
    """``step`` for a recurrent cell export, ``features`` for an image net."""
    names = [k for k in _signatures(saved_model_dir(path)) if k != "serving_default"]
    return _pick_default(names, path)


def _pick_default(names, path: str) -> str:
    for name in DEFAULT_ENDPOINTS:
        if name in names:
            return name
    raise ValueError(f"{path} has no 'step' or 'features' endpoint (it has {sorted(names)}); "
                     f"pass endpoint=... to pick one")


def _failed_ops(message: str) -> List[str]:
    found = re.findall(r"'(tf\.[A-Za-z0-9_]+)' op|operation '(tf\.[A-Za-z0-9_]+)'", message)
    ops = []
    for a, b in found:
        op = a or b
        if op not in ops:
            ops.append(op)
    return ops


def _explain(error: Exception, endpoint: str, sm_dir: str) -> TFLiteConversionError:
    message = str(error)
    ops = _failed_ops(message)
    head = f"endpoint {endpoint!r} of {sm_dir} does not convert to TensorFlow Lite builtin ops"
    if not ops:
        lines = [ln.strip() for ln in message.splitlines() if "error" in ln.lower()]
        detail = lines[0] if lines else message.strip().splitlines()[-1]
        return TFLiteConversionError(f"{head}: {detail}", [])
    reasons = []
    for op in ops:
        reason = _KNOWN_REASONS.get(op)
        if reason is None:
            lines = [ln for ln in message.splitlines() if op in ln and "error" in ln]
            reason = (lines[0].split("error:")[-1].strip() if lines
                      else "TensorFlow Lite has no builtin kernel for it")
        reasons.append(f"{op}: {reason}")
    fix = ("convert the 'step' endpoint instead and loop over time on the device"
           if any(op in _KNOWN_REASONS for op in ops) else
           "change the layer to avoid these ops")
    return TFLiteConversionError(
        f"{head}. {'; '.join(reasons)}. To fix: {fix}, or pass select_tf_ops=True "
        f"(nascell-export --tflite_select_tf_ops) to keep them as TensorFlow ops, which then "
        f"need the TensorFlow Lite Flex delegate at run time.", ops)


def to_tflite(path: str, endpoint: Optional[str] = None, output: Optional[str] = None, *,
              select_tf_ops: bool = False) -> str:
    """Convert one SavedModel endpoint of an export to a ``.tflite`` file; returns its path.

    Args:
        path: an export folder (or a SavedModel folder).
        endpoint: the signature to convert; default ``step`` (a cell) or ``features`` (an
            image net).
        output: the file to write; default ``<path>/<endpoint>.tflite``.
        select_tf_ops: allow TensorFlow ops that have no TensorFlow Lite builtin (the model
            then needs the Flex delegate at run time).

    Raises:
        FileNotFoundError: no SavedModel at ``path``.
        ValueError: ``endpoint`` is not one of the SavedModel's.
        TFLiteConversionError: the endpoint does not convert (the message names the ops).
    """
    import tensorflow as tf
    sm_dir = saved_model_dir(path)
    names = sorted(k for k in _signatures(sm_dir) if k != "serving_default")
    endpoint = endpoint or _pick_default(names, path)
    if endpoint not in names:
        raise ValueError(f"Argument `endpoint` must be one of {names}. "
                         f"Received: endpoint={endpoint!r}")
    converter = tf.lite.TFLiteConverter.from_saved_model(sm_dir, signature_keys=[endpoint])
    if select_tf_ops:
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS,
                                               tf.lite.OpsSet.SELECT_TF_OPS]
        converter._experimental_lower_tensor_list_ops = False  # keep the loop's TensorLists
    try:
        data = converter.convert()
    except Exception as e:  # the converter raises ConverterError (or others on older TFs)
        raise _explain(e, endpoint, sm_dir) from None
    if output is None:
        # Beside the SavedModel: in the export folder, or next to a bare SavedModel folder.
        sm_norm = os.path.normpath(sm_dir)
        base = path if sm_norm != os.path.normpath(path) else os.path.dirname(sm_norm)
        output = os.path.join(base, f"{endpoint}.tflite")
    _io.atomic_write_bytes(output, data)
    return output


def _interpreter(path: str):
    """LiteRT's interpreter when installed (``ai-edge-litert``), else TensorFlow's."""
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        import tensorflow as tf
        with warnings.catch_warnings():  # tf.lite.Interpreter warns that LiteRT replaces it
            warnings.simplefilter("ignore")
            return tf.lite.Interpreter(model_path=path)
    return Interpreter(model_path=path)


def run_tflite(path: str, endpoint: Optional[str] = None, **inputs: Any) -> Dict[str, np.ndarray]:
    """Run a ``.tflite`` file's signature (its only one by default) on named inputs."""
    interpreter = _interpreter(path)
    signatures = interpreter.get_signature_list()
    if endpoint is None:
        if len(signatures) != 1:
            raise ValueError(f"{path} has {len(signatures)} signatures ({sorted(signatures)}); "
                             f"pass endpoint=...")
        endpoint = next(iter(signatures))
    runner = interpreter.get_signature_runner(endpoint)
    feeds = {k: np.asarray(v, np.float32) for k, v in inputs.items()}
    with _quiet.muted_if_quiet():  # the first call logs "Created ... XNNPACK delegate"
        outputs = runner(**feeds)
    return {k: np.asarray(v) for k, v in outputs.items()}


def compare_with_saved_model(path: str, tflite_path: str, endpoint: Optional[str] = None,
                             batch_size: int = 2, time_steps: int = 5,
                             seed: int = 0) -> float:
    """The largest absolute difference between the ``.tflite`` model and the SavedModel
    endpoint on random normal inputs (unknown batch / time sizes set as given)."""
    import tensorflow as tf
    sm_dir = saved_model_dir(path)
    endpoint = endpoint or default_endpoint(path)
    fn = tf.saved_model.load(sm_dir).signatures[endpoint]
    rng = np.random.RandomState(seed)
    feeds = {}
    for name, spec in fn.structured_input_signature[1].items():
        dims = spec.shape.as_list()
        shape = [batch_size if i == 0 and d is None else time_steps if d is None else d
                 for i, d in enumerate(dims)]
        feeds[name] = rng.randn(*shape).astype(np.float32)
    expected = {k: v.numpy() for k, v in fn(**{k: tf.constant(v) for k, v in feeds.items()})
                .items()}
    got = run_tflite(tflite_path, endpoint, **feeds)
    if sorted(got) != sorted(expected):
        raise ValueError(f"{tflite_path} outputs {sorted(got)}, the SavedModel endpoint "
                         f"{endpoint!r} outputs {sorted(expected)}")
    return max(float(np.max(np.abs(got[k] - expected[k]))) for k in expected)
