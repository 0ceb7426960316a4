r"""nascell-export: compile a spec, or a search run's best trial, into an export folder.

    nascell-export --run_dir=runs/ptb                    # best trial -> runs/ptb/export/best
                                                         # (after nascell-train: its final
                                                         # model -> runs/ptb/export/final)
    nascell-export --run_dir=runs/ptb --trial=17 --out=exports/t17
    nascell-export --spec_json=cell.json --units=256 --input_dim=128 --out=exports/cell
    nascell-export --spec_json=conv.json --input_shape=32,32,3 --out=exports/conv
    nascell-export --spec_json=enas_cell.json --units=64 --input_dim=64 --out=exports/enas
    nascell-export --run_dir=runs/enas_ptb              # an ENAS run's derived cell
    nascell-export --run_dir=runs/ptb --tflite          # + runs/ptb/export/best/step.tflite

The folder holds spec.json, weights.npz, layer.keras, saved_model/ (endpoints ``sequence``,
``sequence_with_state`` and ``step`` for cells (state ``h, c`` for a tree cell, ``h`` alone
for an ENAS cell), ``features`` for conv, ENAS micro and macro nets), architecture.png/.svg
(and their Graphviz source, architecture.dot) and metadata.json (see
`nascell.export.exporter`); with --tflite, also ``step.tflite`` (a cell) or
``features.tflite`` (an image net), see `nascell.export.tflite`. Every flag is checked before
any work; a bad one stops the program with a usage message saying what to pass. Accepts
--flagfile.

``--run_dir`` needs a search run read: the export imports nothing of `nascell.search`, so
`main` takes a `RunSource` that does it, and the ``nascell-export`` console script is
`nascell.search.handover.exporting.run`, which passes the search's. Run as
``python -m nascell.export.bin.export``, this module exports specs only.

The flags live in this module's own `FlagValues` (parsed first; absl's own flags such as
--verbosity go to the global ones), so the module can be imported beside other binaries that
also define --run_dir or --out, and tests can drive `main` in-process.
"""

from __future__ import annotations

import abc
import dataclasses
import functools
import os
import sys
from typing import Any, Dict, List, Optional, Tuple

from absl import app, flags

import _nascell_launch as _quiet
from nascell._args import as_flags

FLAGS = flags.FlagValues()

_ = dict(flag_values=FLAGS)
flags.DEFINE_string("run_dir", None, "A search run directory: export its best trial (or --trial) "
                    "into <run_dir>/export/best (or trial_<id>) unless --out is given.", **_)
flags.DEFINE_integer("trial", None, "With --run_dir: the trial id to export, not the best.", **_)
flags.DEFINE_boolean("final", None, "With --run_dir: export the final stage's model "
                     "(<run_dir>/final, written by nascell-train) into <run_dir>/export/final; "
                     "--nofinal: the search's best trial. Default: the final model where the "
                     "run has one and --trial is not given.", **_)
flags.DEFINE_string("spec_json", None, "A spec to export: the path of a JSON file (or the JSON "
                    "text itself). Needs --out.", **_)
flags.DEFINE_integer("units", None, "Recurrent cells: the cell width (c and tree nodes).", **_)
flags.DEFINE_integer("input_dim", None, "Recurrent cells: the size of each input vector.", **_)
flags.DEFINE_integer("projection", None, "Recurrent cells: project h_t to this size.", **_)
flags.DEFINE_boolean("use_bias", None, "Recurrent cells: give the recurrent products a bias "
                     "(TreeCell's default: yes).", **_)
flags.DEFINE_string("input_shape", None, "Conv specs: image height,width,channels, e.g. "
                    "32,32,3.", **_)
flags.DEFINE_string("out", None, "The export folder to write.", **_)
flags.DEFINE_boolean("overwrite", False, "Replace --out if it exists.", **_)
flags.DEFINE_boolean("tflite", False, "Also write <out>/<endpoint>.tflite beside the "
                     "SavedModel: TensorFlow Lite with builtin ops, checked against the "
                     "SavedModel on random inputs.", **_)
flags.DEFINE_string("tflite_endpoint", None, "With --tflite: the endpoint to convert (default: "
                    "step for a cell, features for an image net).", **_)
flags.DEFINE_boolean("tflite_select_tf_ops", False, "With --tflite: allow TensorFlow ops that "
                     "have no TensorFlow Lite builtin (the model then needs the Flex delegate); "
                     "what the sequence endpoints need.", **_)
del _


@dataclasses.dataclass
class RunPlan:
    """What ``--run_dir`` resolves to: the ``spec`` to export, the ``sizes`` the run trained
    it at (`export_spec` keyword arguments) and the default ``folder`` under
    ``<run_dir>/export/`` (``best``, ``trial_<id>`` or ``final``)."""

    spec: Any
    sizes: Dict[str, Any]
    folder: str


class RunSource(abc.ABC):
    """Reads a search run for ``--run_dir`` (`nascell.search.handover.exporting` has the
    search's); ``errors``: the exceptions that mean a bad run directory (a usage error)."""

    errors: Tuple[type, ...] = (ValueError,)

    @abc.abstractmethod
    def plan(self, run_dir: str, trial: Optional[int], final: Optional[bool]) -> RunPlan:
        """The trial (or final stage) of ``run_dir`` to export and its sizes."""

    @abc.abstractmethod
    def export(self, run_dir: str, trial: Optional[int], directory: str,
               final: Optional[bool], **kwargs: Any) -> str:
        """Export it into ``directory`` (``kwargs``: `export_spec`'s); returns the folder."""


def _positive(name: str) -> Optional[int]:
    value = getattr(FLAGS, name)
    if value is not None and value < 1:
        raise app.UsageError(f"Argument `--{name}` must be a positive integer. Received: "
                             f"--{name}={value}")
    return value


def _input_shape() -> Optional[tuple]:
    text = FLAGS.input_shape
    if text is None:
        return None
    parts = [p.strip() for p in text.replace("x", ",").split(",") if p.strip()]
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        shape = ()
    if len(shape) != 3 or min(shape) < 1:
        raise app.UsageError(f"Argument `--input_shape` must be three positive integers "
                             f"height,width,channels (e.g. 32,32,3). Received: "
                             f"--input_shape={text!r}")
    return shape


def _read_spec(text: str):
    from nascell.spec import SpecError, spec_from_json
    is_json = text.lstrip().startswith("{")
    if not is_json and not os.path.isfile(text):
        raise app.UsageError(f"--spec_json {text}: no such file (pass a JSON file or JSON text)")
    try:
        content = text
        if not is_json:
            with open(text, "r", encoding="utf-8") as f:
                content = f.read()
        return spec_from_json(content)
    except (SpecError, ValueError, OSError) as e:
        raise app.UsageError(f"--spec_json {'(JSON text)' if is_json else text}: {e}") from None


def _check_sizes(spec, sizes: Dict[str, Any], from_run: bool) -> None:
    """The spec's kind checks the sizes (`nascell.kinds`); its argument errors become flag
    errors (``Argument `units``` -> ``Argument `--units```)."""
    from nascell import kinds
    kind = kinds.kind_of(spec)
    if sizes.get("use_bias") is not None and "use_bias" not in kind.layer_options:
        raise app.UsageError(f"--use_bias is for tree cells (rnn_cell specs); a spec of kind "
                             f"{spec.kind!r} has no such option")
    given = {k: v for k, v in sizes.items() if k in ("units", "input_dim", "projection",
                                                      "input_shape")}
    try:
        kind.shapes(spec, given)
    except ValueError as e:
        message = as_flags(str(e), ("units", "input_dim", "projection", "input_shape"))
        if from_run and "=None" in str(e):
            message += " (the run does not record it: pass the flag)"
        raise app.UsageError(message) from None


def _plan(run_source: Optional[RunSource]) -> Dict[str, Any]:
    """Check every flag and resolve what to export; raises app.UsageError before any work."""
    if (FLAGS.run_dir is None) == (FLAGS.spec_json is None):
        raise app.UsageError("pass exactly one of --run_dir (export a search's best trial) or "
                             "--spec_json (export a spec file)")
    if FLAGS.trial is not None and FLAGS.run_dir is None:
        raise app.UsageError("--trial needs --run_dir")
    if FLAGS.trial is not None and FLAGS.trial < 0:
        raise app.UsageError(f"Argument `--trial` must be a trial id >= 0. "
                             f"Received: --trial={FLAGS.trial}")
    sizes = {name: _positive(name) for name in ("units", "input_dim", "projection")}
    sizes["input_shape"] = _input_shape()
    sizes["use_bias"] = FLAGS.use_bias
    explicit = {k: v for k, v in sizes.items() if v is not None}

    if FLAGS.spec_json is not None:
        if FLAGS.out is None:
            raise app.UsageError("--out is required with --spec_json (the folder to write)")
        spec = _read_spec(FLAGS.spec_json)
        _check_sizes(spec, sizes, from_run=False)
        out, from_run = FLAGS.out, False
    else:
        if run_source is None:
            raise app.UsageError("--run_dir exports a search run, which this module does not "
                                 "read: run the nascell-export command (or python -m "
                                 "nascell.search.handover.exporting)")
        if FLAGS.final and FLAGS.trial is not None:
            raise app.UsageError("pass --trial (a search trial) or --final (the final "
                                 "stage's model), not both")
        try:
            plan = run_source.plan(FLAGS.run_dir, FLAGS.trial, FLAGS.final)
        except run_source.errors as e:
            raise app.UsageError(f"--run_dir {FLAGS.run_dir}: {e}") from None
        spec = plan.spec
        merged = {**plan.sizes, **explicit}
        _check_sizes(spec, merged, from_run=True)
        explicit = merged
        out = FLAGS.out or os.path.join(FLAGS.run_dir, "export", plan.folder)
        from_run = True
    if os.path.exists(out) and not FLAGS.overwrite:
        raise app.UsageError(f"--out {out} already exists; pass --overwrite to replace it")
    for name in ("tflite_endpoint", "tflite_select_tf_ops"):
        if FLAGS[name].present and not FLAGS.tflite:
            raise app.UsageError(f"--{name} needs --tflite")
    return {"spec": spec, "out": out, "sizes": explicit, "from_run": from_run}


def _status(line: str) -> None:
    """A long step says what it is doing, in one line."""
    print(f"nascell-export: {line}", file=sys.stderr, flush=True)


def _write_tflite(path: str) -> int:
    """``<path>/<endpoint>.tflite``, compared with the SavedModel; 1 if it does not convert."""
    from nascell.export import tflite
    endpoint = FLAGS.tflite_endpoint or tflite.default_endpoint(path)
    _status(f"converting endpoint {endpoint!r} to TensorFlow Lite ...")
    try:
        out = tflite.to_tflite(path, endpoint, select_tf_ops=FLAGS.tflite_select_tf_ops)
    except (tflite.TFLiteConversionError, ValueError) as e:
        message = str(e).replace("`endpoint`", "`--tflite_endpoint`").replace(
            "endpoint=", "--tflite_endpoint=")
        print(f"nascell-export: the export is written, but --tflite failed: {message}",
              file=sys.stderr)
        return 1
    if FLAGS.tflite_select_tf_ops:
        print(f"wrote {out} (TensorFlow Lite with TensorFlow ops: run it with the Flex "
              f"delegate)")
        return 0
    diff = tflite.compare_with_saved_model(path, out, endpoint)
    print(f"wrote {out} (TensorFlow Lite; largest difference from the SavedModel on random "
          f"inputs: {diff:.1e})")
    return 0


def main(argv: List[str], run_source: Optional[RunSource] = None) -> int:
    """Export what the (parsed) flags say; ``run_source`` serves ``--run_dir``."""
    _quiet.quiet_python_logs()
    if len(argv) > 1:
        raise app.UsageError(f"unexpected arguments: {' '.join(argv[1:])}")
    plan = _plan(run_source)
    from nascell.export.exporter import export_spec
    _status(f"exporting {plan['spec'].kind} spec (SavedModel, layer.keras, picture) ...")
    sizes = dict(plan["sizes"])
    use_bias = sizes.pop("use_bias", None)
    layer_config = dict(sizes.pop("layer_config", None) or {})  # from an ENAS run's config
    if use_bias is not None:
        layer_config["use_bias"] = use_bias
    layer_config = layer_config or None
    if not plan["from_run"]:
        path = export_spec(plan["spec"], plan["out"], overwrite=FLAGS.overwrite,
                           layer_config=layer_config, **sizes)
    else:
        path = run_source.export(FLAGS.run_dir, FLAGS.trial, plan["out"], FLAGS.final,
                                 overwrite=FLAGS.overwrite, layer_config=layer_config, **sizes)
    from nascell.export.loader import load_metadata
    training = load_metadata(path)["weights"].get("training")
    how = "untrained weights (a fresh initialization)"
    if training:
        trial = training.get("trial_id")
        how = (f"trained weights ({training.get('stage')} stage"
               f"{'' if trial is None else f', trial {trial}'})")
    print(f"exported {plan['spec'].kind} spec to {path}, with {how}", file=sys.stdout,
          flush=True)
    return _write_tflite(path) if FLAGS.tflite else 0


def parse_flags(argv: List[str]) -> List[str]:
    """absl ``flags_parser``: this binary's flags first, then absl's own (logging, help)."""
    if any(a in ("--help", "-h", "--helpshort", "-?") for a in argv[1:]):
        print(__doc__ + "\nflags:\n" + FLAGS.get_help(), file=sys.stdout)
        sys.exit(0)
    try:
        rest = FLAGS(argv, known_only=True)
        return flags.FLAGS(rest)
    except flags.Error as e:
        print(f"FATAL Flags parsing error: {e}\nPass --help for usage.", file=sys.stderr)
        sys.exit(1)


def run(run_source: Optional[RunSource] = None) -> None:
    """Parse the flags and run `main` (``run_source``: what serves ``--run_dir``)."""
    app.run(functools.partial(main, run_source=run_source), flags_parser=parse_flags)


if __name__ == "__main__":  # python -m: quiet as the binary, past TensorFlow's import
    _quiet.start("nascell-export")
    run()
