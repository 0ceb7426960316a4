"""How the language-model child trains: with Keras fit (the state reset at every batch), or
with the recurrent state carried across batches (truncated BPTT).

`LanguageModelTraining` is the training half of
`nascell.search.evaluators.rnn_lm.RNNLanguageModelEvaluator`: it reads the evaluator's options
(the attributes its ``__init__`` sets and checks; the module docstring of `rnn_lm` says what
each path does and why) and reports through the evaluator's `_pack` (its weights) and
`_result` (its `EvalResult`). `train_model` is the path of the final stage and of
``carry_state=True`` children (`nascell.search.training.lm_fit`); `_train` is a search
child's, run isolated by `RNNLanguageModelEvaluator.evaluate`.
"""

from __future__ import annotations

import math
import time
from typing import Any, Dict, Optional

from nascell.search.core.evaluator import EvalResult
from nascell.search.evaluators import _child
from nascell.search.evaluators.lm_parts import as_cell_spec, build_language_model
from nascell.search.evaluators.lm_scoring import reward_of


class LanguageModelTraining:
    """The training methods of `RNNLanguageModelEvaluator` (its options are attributes)."""

    def _lr_schedule(self):
        def schedule(epoch, lr):  # epoch is 0-based
            if self.lr_decay_epoch is None or epoch + 1 < int(self.lr_decay_epoch):
                return self.lr
            return self.lr * self.lr_decay ** (epoch + 2 - int(self.lr_decay_epoch))
        return schedule

    def _build(self, spec, vocab_size: int, return_state: bool = False):
        """``(model, optimizer, units)`` for ``spec`` (seeded; not compiled)."""
        import keras

        units = self.units_for(spec, vocab_size)
        _child.seed_everything(self.seed)
        model = build_language_model(
            spec, vocab_size, units, self.num_layers, self.tie_weights, self.embedding_dim,
            self.embedding_dropout, self.dropout, self.recurrent_dropout, self.seed,
            return_state=return_state)
        optimizer_class = {"sgd": keras.optimizers.SGD,
                           "adam": keras.optimizers.Adam}[self.optimizer]
        optimizer = optimizer_class(learning_rate=self.lr, global_clipnorm=self.clipnorm,
                                    weight_decay=self.weight_decay or None)
        return model, optimizer, units

    def train_model(self, spec: Any, checkpoint_dir: Optional[str] = None,
                    evaluate_test: bool = True, on_epoch=None):
        """Train ``spec``'s model with the state carried across batches (truncated BPTT) and
        return it: ``(model, metrics)``, the model (``return_state=True``) holding the
        best-validation weights. Nothing is cleared afterwards; failures raise.

        With ``checkpoint_dir`` every epoch is checkpointed there and a second call resumes
        after the last finished epoch (`nascell.search.training.checkpoints`); the best
        weights end in ``<checkpoint_dir>/best.weights.h5``, which a model from
        ``build_language_model(**metrics["model_args"])`` (with or without ``return_state``)
        loads.
        """
        from nascell.search.training.lm_fit import fit_language_model

        vocab, ids = self.load_data()
        spec = as_cell_spec(spec)
        start = time.time()
        strategy = _child.distribution_strategy()  # every device, as the children
        with strategy.scope():
            model, optimizer, units = self._build(spec, len(vocab), return_state=True)
        fingerprint = {k: v for k, v in self.config().items()
                       if k not in ("data_dir", "epochs")}
        if "data" in fingerprint:  # the data, wherever it lives now
            from nascell.search.data.provenance import identity

            fingerprint["data"] = identity(fingerprint["data"])
        fingerprint["model_args"] = self.model_args(spec, len(vocab))
        fit = fit_language_model(
            model, optimizer, ids, epochs=self.epochs, lr=self.lr,
            lr_decay=self.lr_decay if self.lr_decay_epoch is not None else 1.0,
            lr_decay_epoch=self.lr_decay_epoch, batch_size=self.batch_size,
            seq_len=self.seq_len, steps_per_epoch=self.steps_per_epoch,
            max_valid_steps=self.max_valid_steps, evaluate_test=evaluate_test,
            test_batch_size=self.test_batch_size, checkpoint_dir=checkpoint_dir,
            fingerprint=fingerprint, on_epoch=on_epoch, strategy=strategy)
        history = fit.history
        metrics: Dict[str, Any] = {
            "valid_ppl": fit.best_valid_ppl,
            "reward": reward_of(fit.best_valid_ppl),
            "valid_ppl_history": [h["valid_ppl"] for h in history],
            "train_ppl": history[-1]["train_ppl"],
            "train_loss": math.log(history[-1]["train_ppl"]),
            "params": int(model.count_params()),
            "units": units,
            "epochs": len(history),
            "steps": sum(h["train_steps"] for h in history),
            "best_epoch": fit.best_epoch,
            "history": history,
            "carry_state": True,
            "resumed_after_epoch": fit.resumed_after_epoch,
            "model_args": self.model_args(spec, len(vocab)),
            "best_weights": fit.best_weights_path,
            "replicas": _child.num_replicas(strategy),
        }
        if evaluate_test:
            metrics["test_ppl"] = fit.test_ppl
            metrics["test_tokens"] = fit.test_tokens
        metrics["seconds"] = time.time() - start
        return model, metrics

    def _train(self, spec, vocab, ids, evaluate_test: bool) -> EvalResult:
        if self.carry_state:
            model, metrics = self.train_model(spec, evaluate_test=evaluate_test)
            weights = self._pack(model, lambda: metrics["model_args"],
                                 metrics["valid_ppl"], metrics["best_epoch"])
            del model  # run_isolated clears the session
            return self._result(metrics, weights)
        import keras

        from nascell.search.data.text import lm_dataset, num_lm_batches

        start = time.time()
        spec = as_cell_spec(spec)
        strategy = _child.distribution_strategy()
        with strategy.scope():
            model, optimizer, units = self._build(spec, len(vocab))
            model.compile(optimizer=optimizer,
                          loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
        params = int(model.count_params())

        full_epoch = num_lm_batches(len(ids["train"]), self.batch_size, self.seq_len)
        steps = int(self.steps_per_epoch or full_epoch)
        train = lm_dataset(ids["train"], self.batch_size, self.seq_len).repeat()
        valid_steps = num_lm_batches(len(ids["valid"]), self.batch_size, self.seq_len)
        if self.max_valid_steps:
            valid_steps = min(valid_steps, int(self.max_valid_steps))
        valid = lm_dataset(ids["valid"], self.batch_size, self.seq_len, max_batches=valid_steps)

        best = _child.best_epoch_weights("val_loss", "min")
        callbacks = _child.nan_callbacks() + [best]
        if self.lr_decay_epoch is not None:
            callbacks.append(keras.callbacks.LearningRateScheduler(self._lr_schedule()))
        history = model.fit(train, epochs=self.epochs, steps_per_epoch=steps,
                            validation_data=valid, validation_steps=valid_steps,
                            callbacks=callbacks, shuffle=False, verbose=0).history
        train_losses = _child.history_values(history, "loss")
        _child.check_finite("training loss", train_losses)
        valid_losses = _child.history_values(history, "val_loss")
        if len(valid_losses) < len(train_losses):  # the last epoch stopped early
            valid_losses.append(float(model.evaluate(valid, steps=valid_steps, verbose=0)))
        _child.check_finite("validation loss", valid_losses)

        valid_ppls = [math.exp(min(v, 700.0)) for v in valid_losses]
        valid_ppl = min(valid_ppls)
        metrics: Dict[str, Any] = {
            "valid_ppl": valid_ppl,
            "valid_ppl_history": valid_ppls,
            "train_loss": train_losses[-1],
            "train_ppl": math.exp(min(train_losses[-1], 700.0)),
            "params": params,
            "units": units,
            "epochs": len(train_losses),
            "steps": steps * len(train_losses),
            "replicas": _child.num_replicas(strategy),
        }
        best.restore()  # the weights of the best epoch: those the reward comes from
        if evaluate_test:
            test = lm_dataset(ids["test"], self.batch_size, self.seq_len)
            test_loss = float(model.evaluate(test, verbose=0))
            _child.check_finite("test loss", [test_loss])
            metrics["test_ppl"] = math.exp(min(test_loss, 700.0))
        weights = self._pack(model, lambda: self.model_args(spec, len(vocab)), valid_ppl,
                             best.epoch)
        metrics["seconds"] = time.time() - start
        return self._result(metrics, weights)
