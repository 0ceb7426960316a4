"""Search your own data from Python: evaluators built from a data set object.

    from nascell.search import create_space, create_strategy, image_evaluator, run_search

    space = create_space("conv")
    strategy = create_strategy("reinforce", space, seed=0)
    evaluator = image_evaluator((x_train, y_train, x_test, y_test), epochs=3)
    run_search(space, strategy, evaluator, "runs/my_images", num_trials=20)

`image_evaluator` takes NumPy arrays, `tf.data` datasets of ``(image, label)``, an `ImageData`
or a folder's / tensorflow-datasets name's options; `text_evaluator` a `TextCorpus`, a text
folder or file, or a dict of strings; `enas_evaluator` either, for ``create_strategy("enas",
...)`` on an ENAS space. Each returns the evaluator that trains (or, for ENAS, scores) children
on that data with the proxy budget of ``nascell-search`` (`PROXY_BUDGET`: minutes per search on
a laptop CPU) unless keyword arguments say otherwise; any argument of the evaluator may be
given. The data's provenance record goes into the run directory's config, so a resumed search
on other data is refused, and the export knows its input shape or vocabulary.
"""

from __future__ import annotations

from typing import Any

from nascell.search.core.evaluator import Evaluator

# The proxy budget of the children, here and in nascell-search: the flags' defaults
# (`nascell.search.bin.child_flags.PROXY_DEFAULTS`) are built from it, with the data arguments.
PROXY_BUDGET = {
    "rnn_lm": dict(units=64, num_layers=2, tie_weights=True, epochs=1, steps_per_epoch=400,
                   batch_size=20, seq_len=35, optimizer="adam", lr=3e-3, clipnorm=5.0,
                   dropout=0.0, recurrent_dropout=0.0, embedding_dropout=0.0,
                   weight_decay=0.0, max_valid_steps=20, seed=0),
    "conv_classifier": dict(epochs=5, steps_per_epoch=None, batch_size=64, lr=0.05,
                            momentum=0.9, weight_decay=1e-4, bn_epsilon=1e-3,
                            max_valid_steps=None, seed=0),
}


def text_evaluator(data: Any, **options: Any) -> Evaluator:
    """An `RNNLanguageModelEvaluator` training recurrent-cell children on your text.

    Args:
        data: a `nascell.search.data.TextCorpus`; a path of a text folder or file; a dict of
            texts ``{"train": str, "valid": str, "test": str}`` (valid / test optional: cut
            from train); or a dict of ``text_corpus`` options (``{"path": ..., "level":
            "char", "vocab_size": ...}``).
        **options: `RNNLanguageModelEvaluator` arguments (over `PROXY_BUDGET`).
    """
    from nascell.search.evaluators.rnn_lm import RNNLanguageModelEvaluator

    if data is None:
        raise ValueError("Argument `data` must be your text (a TextCorpus, a path or a dict of "
                         "texts). Received: data=None")
    if "units" not in options and "target_params" in options:
        options = dict(options, units=None)
    return RNNLanguageModelEvaluator(**{**PROXY_BUDGET["rnn_lm"], **options, "corpus": data})


def image_evaluator(data: Any, **options: Any) -> Evaluator:
    """A `ConvClassifierEvaluator` training conv children on your images.

    Args:
        data: ``(x_train, y_train, x_test, y_test)`` or ``(x_train, y_train)`` arrays (images
            ``(N, H, W[, C])``, integer labels; without a test split 10 % is held out); a dict
            of them; a `tf.data.Dataset` of ``(image, label)`` (or a tuple ``(train, test)``
            of them); a `nascell.search.data.ImageData`; or ``{"image_dir": ...}`` /
            ``{"tfds_name": ..., "tfds_data_dir": ...}`` options.
        **options: `ConvClassifierEvaluator` arguments (over `PROXY_BUDGET`), e.g. ``epochs``,
            ``batch_size``, ``flip=False`` for images whose mirror image is another class.
    """
    from nascell.search.evaluators.conv_classifier import ConvClassifierEvaluator

    if data is None:
        raise ValueError("Argument `data` must be your images (arrays, tf.data, ImageData or "
                         "options). Received: data=None")
    return ConvClassifierEvaluator(**{**PROXY_BUDGET["conv_classifier"], **options,
                                      "images": data})


def _is_text(data: Any) -> bool:
    import os

    from nascell.search.data import TextCorpus
    if isinstance(data, (TextCorpus, str, os.PathLike)):
        return True
    return isinstance(data, dict) and ("train" in data or "path" in data)


def enas_evaluator(data: Any, **options: Any) -> Evaluator:
    """A `SupernetEvaluator` (ENAS, shared weights) on your text (for ``enas_rnn``) or images
    (``enas_conv``, ``enas_macro``): ``data`` as for `text_evaluator` or `image_evaluator`;
    ``options`` are `SupernetEvaluator` arguments (``units``, ``batch_size``, ...)."""
    from nascell.search.enas.evaluator import SupernetEvaluator

    key = "corpus" if _is_text(data) else "images"
    return SupernetEvaluator(**options, **{key: data})
