"""The epoch loop of a language model trained with its state carried (truncated BPTT).

`fit_language_model` trains for ``epochs`` epochs with a per-epoch learning-rate schedule,
measures validation perplexity after every epoch, keeps the best-validation weights, and at the
end loads them and evaluates the test split once. With ``checkpoint_dir`` every finished epoch
is checkpointed (`EpochCheckpoints`) and a training started again in the same folder resumes
after its last finished epoch; without it, the best weights are kept in memory.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable, Dict, List, Optional

import numpy as np
from absl import logging

from nascell.search.training.checkpoints import EpochCheckpoints
from nascell.search.training.stateful_lm import StatefulLMTrainer, check_batch


def learning_rate(epoch: int, lr: float, decay: float = 1.0,
                  decay_epoch: Optional[int] = None) -> float:
    """The rate of epoch ``epoch`` (1-based): ``lr`` before ``decay_epoch``, then multiplied by
    ``decay`` every epoch from ``decay_epoch`` on (Zaremba's small model: ``lr=1, decay=0.5,
    decay_epoch=5`` gives 1, 1, 1, 1, 0.5, 0.25, ...)."""
    if decay_epoch is None or epoch < int(decay_epoch):
        return float(lr)
    return float(lr) * float(decay) ** (epoch - int(decay_epoch) + 1)


@dataclasses.dataclass
class FitResult:
    """What `fit_language_model` measured. ``history``: one dict per epoch (``epoch``, ``lr``,
    ``train_ppl``, ``valid_ppl``, ``seconds``, ``wall_seconds``); ``best_weights_path``: the
    best epoch's weights on disk (with a checkpoint folder), else None."""

    history: List[Dict[str, Any]]
    best_epoch: int
    best_valid_ppl: float
    test_ppl: Optional[float] = None
    test_tokens: int = 0
    best_weights_path: Optional[str] = None
    resumed_after_epoch: int = 0
    train_seconds: float = 0.0


def fit_language_model(model, optimizer, ids: Dict[str, np.ndarray], *, epochs: int,
                       lr: float, lr_decay: float = 1.0, lr_decay_epoch: Optional[int] = None,
                       batch_size: int = 20, seq_len: int = 20,
                       steps_per_epoch: Optional[int] = None,
                       max_valid_steps: Optional[int] = None, evaluate_test: bool = False,
                       test_batch_size: Optional[int] = None,
                       checkpoint_dir: Optional[str] = None,
                       fingerprint: Optional[Dict[str, Any]] = None,
                       sum_over_time: bool = True, jit_compile: bool = False,
                       on_epoch: Optional[Callable[[Dict[str, Any]], None]] = None,
                       strategy: Any = None) -> FitResult:
    """Train ``model`` (``[ids, *states] -> [logits, *states]``) on ``ids["train"]``.

    Args:
        model, optimizer: see `StatefulLMTrainer`.
        ids: int token ids per split ("train", "valid", and "test" with ``evaluate_test``).
        epochs: epochs in all (a resumed training runs only the rest).
        lr, lr_decay, lr_decay_epoch: the schedule (`learning_rate`).
        batch_size, seq_len: Zaremba's layout of the training and validation batches.
        steps_per_epoch: cap on training batches per epoch (None or 0: a full pass).
        max_valid_steps: cap on validation batches (None or 0: the whole split).
        evaluate_test: after training, load the best weights and measure the test split once.
        test_batch_size: rows of the test stream (default ``batch_size``; 1: one stream).
        checkpoint_dir: checkpoint every epoch there, and resume from it (see the module
            docstring); ``fingerprint`` guards it against other settings.
        sum_over_time, jit_compile: see `StatefulLMTrainer`.
        on_epoch: called with each epoch's record (e.g. to log it).
        strategy: the `tf.distribute.Strategy` ``model`` and ``optimizer`` were made under
            (default: the one in scope); each replica carries the state of its rows of every
            batch (`StatefulLMTrainer`), so ``batch_size`` must be a multiple of its replicas.

    Returns the `FitResult`; ``model`` holds the best epoch's weights.
    """
    from nascell.search.data.text import batchify

    if epochs < 1:
        raise ValueError(f"Argument `epochs` must be a positive integer. Received: "
                         f"epochs={epochs}")
    trainer = StatefulLMTrainer(model, optimizer, sum_over_time=sum_over_time,
                                jit_compile=jit_compile, strategy=strategy)
    check_batch(int(batch_size), trainer.replicas)
    checkpoints = (EpochCheckpoints(checkpoint_dir, fingerprint)
                   if checkpoint_dir is not None else None)
    history: List[Dict[str, Any]] = []
    best_epoch, best_ppl, best_weights = 0, math.inf, None
    done = 0
    if checkpoints is not None:
        progress = checkpoints.restore(model, optimizer)
        if progress is not None:
            history = list(progress["history"])
            done = int(progress["epoch"])
            best_epoch, best_ppl = int(progress["best_epoch"]), float(progress["best_valid_ppl"])
    resumed = done
    x, y = batchify(ids["train"], batch_size, seq_len)
    start = time.time()
    for epoch in range(done + 1, epochs + 1):
        rate = learning_rate(epoch, lr, lr_decay, lr_decay_epoch)
        train = trainer.train_pass(x, y, rate, steps_per_epoch)
        valid = trainer.evaluate(ids["valid"], batch_size, seq_len, max_valid_steps)
        if not math.isfinite(valid.loss):
            from nascell.search.evaluators._child import ChildDiverged

            raise ChildDiverged(f"the validation loss is not finite ({valid.loss}) after "
                                f"epoch {epoch}")
        record = {"epoch": epoch, "lr": rate, "train_ppl": train.ppl, "valid_ppl": valid.ppl,
                  "train_steps": train.steps, "seconds": train.seconds + valid.seconds,
                  "words_per_second": train.tokens / max(train.seconds, 1e-9),
                  "wall_seconds": (history[-1]["wall_seconds"] if history else 0.0)
                  + train.seconds + valid.seconds}
        history.append(record)
        is_best = valid.ppl < best_ppl
        if is_best:
            best_epoch, best_ppl = epoch, valid.ppl
        logging.info("epoch %d/%d: lr %.4g, train ppl %.2f, valid ppl %.2f%s (%.0fs)", epoch,
                     epochs, rate, train.ppl, valid.ppl, " (best)" if is_best else "",
                     record["seconds"])
        if checkpoints is not None:
            checkpoints.save(epoch, model, optimizer, is_best,
                             {"history": history, "best_epoch": best_epoch,
                              "best_valid_ppl": best_ppl})
        elif is_best and epoch < epochs:
            best_weights = [np.array(w) for w in model.get_weights()]
        if on_epoch is not None:
            on_epoch(record)

    last_epoch = history[-1]["epoch"] if history else 0
    if checkpoints is not None:
        if best_epoch != last_epoch:
            checkpoints.load_best(model)
        best_path = checkpoints.finish()
    else:
        if best_weights is not None and best_epoch != last_epoch:
            model.set_weights(best_weights)
        best_path = None
    result = FitResult(history=history, best_epoch=best_epoch, best_valid_ppl=best_ppl,
                       best_weights_path=best_path, resumed_after_epoch=resumed,
                       train_seconds=time.time() - start)
    if evaluate_test:
        test = trainer.evaluate(ids["test"], int(test_batch_size or batch_size), seq_len)
        result.test_ppl, result.test_tokens = test.ppl, test.tokens
        logging.info("test ppl %.2f (best epoch %d, valid ppl %.2f)", test.ppl, best_epoch,
                     best_ppl)
    return result
