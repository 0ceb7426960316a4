"""Runs the steps of tests/docs_blocks.py in one process, in the current (temporary) folder.

    python docs_driver.py PLAN.json RESULTS.json

The prelude writes what the blocks name (files under the folder, Python placeholders), then
every step runs in order: a Python block is executed in one namespace shared by all blocks
(the prelude's names, then whatever earlier blocks defined); a command runs the binary's
``main`` after parsing its flags, as its console script would. A step that raises or exits
non-zero is recorded with its error and the next step runs. RESULTS.json lists, per step,
``where``, ``ok``, ``seconds`` and ``error``.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import signal
import sys
import time
import traceback

import numpy as np

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

CORPUS = ("the cat sat on the mat\nthe dog sat on the log\na cat and a dog met on a mat\n"
          "the mat was red and the log was brown\n")


def _write(path: str, text: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def _images(n: int, size: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8)
    y = (np.arange(n) % 2).astype(np.int64)
    return x, y


def prelude() -> dict:
    """Files the bash blocks name, and the namespace the Python blocks start from."""
    from PIL import Image

    # text: a corpus folder with its three splits, and one file
    for split, repeat in (("train", 30), ("valid", 6), ("test", 6)):
        _write(os.path.join("my_corpus", f"{split}.txt"), CORPUS * repeat)
    _write("novel.txt", CORPUS * 60)
    # images: a folder of class sub-folders
    x, y = _images(24, 12, 0)
    for i, (img, label) in enumerate(zip(x, y)):
        folder = os.path.join("photos", f"class_{label}")
        os.makedirs(folder, exist_ok=True)
        Image.fromarray(img).save(os.path.join(folder, f"{i}.png"))
    # a CIFAR-10-shaped subset
    xc, yc = _images(60, 32, 1)
    xt, yt = _images(20, 32, 2)
    np.savez("cifar10_subset.npz", x_train=xc, y_train=yc % 10, x_test=xt, y_test=yt % 10)
    # a NAS-Bench-201 table over the whole space (made-up accuracies)
    import itertools

    from nascell.search.spaces import nasbench201 as nb
    names = [nb.edge_name(i, j) for i, j in nb.EDGES]
    rows = ["arch,cifar10_test_acc"]
    for k, ops in enumerate(itertools.product(nb.OPS, repeat=len(names))):
        rows.append(f"{nb.decode(dict(zip(names, ops)))},{50 + (k * 7919) % 4400 / 100:.2f}")
    _write("nb201_cifar10.csv", "\n".join(rows) + "\n")
    # spec files for nascell-export
    from nascell import FIGURE5_SPEC, ConvLayer, ConvSpec
    _write("cell.json", FIGURE5_SPEC.to_json())
    _write("conv.json", ConvSpec((ConvLayer(3, 3, 8), ConvLayer(3, 3, 8, inputs=(0,)))).to_json())
    # the flagfiles the docs name
    if not os.path.exists("configs"):
        os.symlink(os.path.join(REPO, "configs"), "configs")

    import keras
    import tensorflow as tf

    import nascell
    from nascell import NASCell

    def my_train_and_score(spec):
        """A stand-in for your training: a reward from the decisions."""
        return float(spec["width"]) / 64.0 + (0.1 if spec["act"] == "relu" else 0.0)

    def build_model(hp):
        """A KerasTuner hypermodel."""
        model = keras.Sequential([
            keras.Input((4,)),
            keras.layers.Dense(hp.Choice("units", [4, 8]), activation="relu"),
            keras.layers.Dense(2, activation="softmax")])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"])
        return model

    # docs/kinds.md's ToyKind is the one of tests/export/test_kinds.py, over its ToySpec
    import importlib.util
    location = os.path.join(REPO, "tests", "export", "test_kinds.py")
    module_spec = importlib.util.spec_from_file_location("docs_test_kinds", location)
    toy = importlib.util.module_from_spec(module_spec)
    module_spec.loader.exec_module(toy)

    rng = np.random.default_rng(3)
    x_train, y_train = _images(80, 8, 4)  # 72 after the validation split: one batch of 64
    x_test, y_test = _images(10, 8, 5)
    return {"__name__": "__docs__", "np": np, "keras": keras, "tf": tf, "nascell": nascell,
            "NASCell": NASCell, "my_train_and_score": my_train_and_score,
            "build_model": build_model, "x_train": x_train, "y_train": y_train,
            "x_test": x_test, "y_test": y_test, "kinds": toy.kinds, "ToySpec": toy.ToySpec,
            "ToyDense": toy.ToyDense,
            "x": rng.normal(size=(20, 4)).astype("float32"), "y": np.arange(20) % 2}


def _run_command(doc_argv, run: bool):
    """The binary's main on ``doc_argv`` with its budget substituted (``run``), or only its
    flags checked; raises on a non-zero exit or a bad flag."""
    import docs_blocks
    from absl import flags

    argv = docs_blocks.budgeted(doc_argv, os.getcwd())
    binary = argv[0]
    flags.FLAGS.unparse_flags()
    try:
        if binary == "nascell-export":
            from nascell.export.bin import export
            from nascell.search.handover import exporting  # what the binary runs
            export.FLAGS.unparse_flags()
            rest = export.parse_flags(argv)
            code = exporting.main(rest) if run else None
        else:
            from nascell.search.bin import search, train
            rest = flags.FLAGS(argv)
            if run:
                code = (search if binary == "nascell-search" else train).main(rest)
            else:  # nascell-train reads --run_dir to check further: only its flags here
                code = None
                if binary == "nascell-search":
                    search.resolve(rest)
    except SystemExit as e:
        code = e.code
    if code not in (None, 0):
        raise RuntimeError(f"{' '.join(doc_argv)} exited with {code!r} (run as "
                           f"{' '.join(argv)})")


class _Timeout(Exception):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def main() -> None:
    plan_path, results_path = sys.argv[1], sys.argv[2]
    with open(plan_path, encoding="utf-8") as f:
        plan = json.load(f)
    namespace = prelude()
    results = []
    signal.signal(signal.SIGALRM, _alarm)
    for step in plan["steps"]:
        start, error = time.time(), None
        log = io.StringIO()
        signal.alarm(int(plan["timeout_s"]))
        try:
            with contextlib.redirect_stdout(log):
                if step["kind"] == "python":
                    exec(compile(step["code"], step["where"], "exec"), namespace)
                else:
                    _run_command(step["argv"], step["run"])
        except _Timeout:
            error = f"took over {plan['timeout_s']} s (the docs test's limit for one step)"
        except BaseException as e:  # noqa: BLE001 - every failure of a doc block is reported
            error = "".join(traceback.format_exception_only(type(e), e)).strip()
            error += "\n" + traceback.format_exc(limit=-3)
        finally:
            signal.alarm(0)
        results.append({"where": step["where"], "ok": error is None, "error": error,
                        "seconds": round(time.time() - start, 1),
                        "what": step.get("argv") and ("" if step["run"] else "(flags checked) ")
                        + " ".join(step["argv"])})
        with open(results_path, "w", encoding="utf-8") as f:  # written as it goes
            json.dump(results, f, indent=1)


if __name__ == "__main__":
    main()
