"""The conv child: a CIFAR-10 classifier (or one for your own images) built from a sampled
`ConvSpec`.

Zoph & Le 2017, section 4.1: each sampled network is trained on 45,000 training images and
scored on the 5,000 held out; the reward is the maximum validation accuracy of the last 5
epochs, cubed. Training uses Nesterov momentum SGD (learning rate 0.1, momentum 0.9) with L2
weight decay on every kernel; the data pipeline (whitening with training statistics, random
crops of the zero-padded image, horizontal flips) is `nascell.search.data.cifar10`.

Learning-rate schedule: constant ``lr``, multiplied by ``lr_decay`` at every multiple of
``lr_decay_epoch`` epochs (a step schedule; none when ``lr_decay_epoch`` is None).

A child returns the weights of its reward's epoch with its result (``EvalResult.weights``,
`nascell.search.rundir.weights`), with the image shape, classes and pixel whitening it was
trained with; the test split, if asked for, is measured with those weights.
"""

from __future__ import annotations

import time
from typing import Any, Dict, Optional, Tuple

from absl import logging

from nascell.search.core.evaluator import EvalResult, Evaluator
from nascell.search.evaluators import _child
from nascell.search.rundir import weights as run_weights

REWARD_EPOCHS = 5  # the reward uses the best of the last 5 epochs
REWARD_POWER = 3

# Loaded and split data, per source and split settings (shared by the trials of a process).
_SPLITS: Dict[Tuple[Any, ...], Any] = {}


def load_splits(data_dir: Optional[str] = None, cifar_npz: Optional[str] = None,
                subset: Optional[int] = None, validation_fraction: Optional[float] = None,
                seed: int = 0, download: bool = False):
    """The whitened CIFAR-10 `ImageSplits` for these settings (cached)."""
    from nascell.search.data import cifar10

    fraction = cifar10.VALIDATION_FRACTION if validation_fraction is None else validation_fraction
    key = (data_dir, cifar_npz, subset, fraction, seed, bool(download))
    if key not in _SPLITS:
        arrays = cifar10.load_cifar10(data_dir=data_dir, npz=cifar_npz, download=download)
        _SPLITS[key] = cifar10.split_cifar10(arrays, subset=subset, validation_fraction=fraction,
                                             seed=seed)
    return _SPLITS[key]


def image_splits(images, subset: Optional[int] = None,
                 validation_fraction: Optional[float] = None, seed: int = 0):
    """The whitened `ImageSplits` of an evaluator's own images (`nascell.search.data.sources`
    value), cached per process like `load_splits`."""
    from nascell.search.data import images as images_lib
    from nascell.search.data import sources

    data = sources.load_images(images)
    fraction = (images_lib.VALIDATION_FRACTION if validation_fraction is None
                else validation_fraction)
    key = ("images", data.record["fingerprint"], subset, fraction, seed)
    if key not in _SPLITS:
        _SPLITS[key] = data.split(fraction, seed=seed, subset=subset)
    return _SPLITS[key]


def conv_reward(valid_accuracies) -> Tuple[float, float]:
    """``(reward, accuracy)``: the best validation accuracy of the last 5 epochs, and its cube."""
    accuracy = max(float(a) for a in list(valid_accuracies)[-REWARD_EPOCHS:])
    return accuracy ** REWARD_POWER, accuracy


class ConvClassifierEvaluator(Evaluator):
    """Trains the CIFAR-10 child of a conv spec; reward ``(max val acc of last 5 epochs)^3``.

    Args:
        data_dir: folder with ``cifar-10-batches-py/`` or a prepared tfds ``cifar10/``.
        cifar_npz: an ``.npz`` with x_train, y_train, x_test, y_test (wins over data_dir).
        download: allow tensorflow-datasets to download CIFAR-10.
        images: your own images instead of CIFAR-10: a `nascell.search.data.ImageData`, arrays
            ``(x_train, y_train[, x_test, y_test])``, `tf.data` dataset(s) of ``(image,
            label)``, or a dict of `nascell.search.data.load_images` options (``{"image_dir":
            ...}`` or ``{"tfds_name": ..., "tfds_data_dir": ...}``); see
            `nascell.search.data.sources`. Any image size, channel count and number of classes;
            ``subset`` and ``validation_fraction`` apply to it alike. Its provenance record goes
            into `config` (``"data"``), so a resumed search on other images is refused.
        subset: train on this many training images (10 % of them held out for validation).
        validation_fraction: share held out (default: the paper's 5,000 / 50,000).
        epochs, steps_per_epoch: training budget (``steps_per_epoch=None``: a full pass).
        batch_size: global batch size.
        lr, momentum, nesterov, weight_decay: the optimizer (the paper: 0.1, 0.9, Nesterov,
            1e-4 L2 on the kernels).
        lr_decay, lr_decay_epoch: step schedule, see the module docstring.
        bn_epsilon, bn_momentum: batch normalization settings of the child.
        dropout: dropout before the classifier.
        augment: random crops and flips of the training images.
        flip: with ``augment``, flip training images left-right at random (turn it off for
            images whose mirror image is another class, e.g. digits or text).
        max_valid_steps: cap on validation batches per epoch (None: all of them).
        seed: seeds the data split, the weights and the augmentation.
        num_gpus: GPUs one evaluation asks an executor for.
    """

    name = "conv_classifier"
    score_metric = "valid_acc"

    def __init__(self, data_dir: Optional[str] = None, cifar_npz: Optional[str] = None,
                 download: bool = False, subset: Optional[int] = None,
                 validation_fraction: Optional[float] = None, epochs: int = 50,
                 steps_per_epoch: Optional[int] = None, batch_size: int = 128, lr: float = 0.1,
                 momentum: float = 0.9, nesterov: bool = True, weight_decay: float = 1e-4,
                 lr_decay: float = 0.1, lr_decay_epoch: Optional[int] = None,
                 bn_epsilon: float = 1e-3, bn_momentum: float = 0.9, dropout: float = 0.0,
                 augment: bool = True, max_valid_steps: Optional[int] = None,
                 seed: Optional[int] = 0, num_gpus: float = 0, images: Any = None,
                 flip: bool = True):
        for name, value in (("epochs", epochs), ("batch_size", batch_size)):
            if int(value) < 1:
                raise ValueError(f"Argument `{name}` must be >= 1. Received: {name}={value}")
        if lr <= 0:
            raise ValueError(f"Argument `lr` must be > 0. Received: lr={lr}")
        if weight_decay < 0:
            raise ValueError(f"Argument `weight_decay` must be >= 0. "
                             f"Received: weight_decay={weight_decay}")
        if images is not None:
            from nascell.search.data import sources

            if data_dir is not None or cifar_npz is not None:
                raise ValueError("Arguments `images` and `data_dir` / `cifar_npz` name two data "
                                 "sets: pass one of them")
            images = sources.image_arg(images)
        self.images = images
        self.flip = bool(flip)
        self.data_dir = data_dir
        self.cifar_npz = cifar_npz
        self.download = bool(download)
        self.subset = subset
        self.validation_fraction = validation_fraction
        self.epochs = int(epochs)
        self.steps_per_epoch = steps_per_epoch
        self.batch_size = int(batch_size)
        self.lr = float(lr)
        self.momentum = float(momentum)
        self.nesterov = bool(nesterov)
        self.weight_decay = float(weight_decay)
        self.lr_decay = float(lr_decay)
        self.lr_decay_epoch = lr_decay_epoch
        self.bn_epsilon = float(bn_epsilon)
        self.bn_momentum = float(bn_momentum)
        self.dropout = float(dropout)
        self.augment = bool(augment)
        self.max_valid_steps = max_valid_steps
        self.seed = seed
        self.num_gpus = num_gpus

    # --- Evaluator API ----------------------------------------------------------------------------

    def config(self) -> Dict[str, Any]:
        keys = ("data_dir", "cifar_npz", "subset", "validation_fraction", "epochs",
                "steps_per_epoch", "batch_size", "lr", "momentum", "nesterov", "weight_decay",
                "lr_decay", "lr_decay_epoch", "bn_epsilon", "bn_momentum", "dropout", "augment",
                "max_valid_steps", "seed")
        out = {"name": self.name, **{k: getattr(self, k) for k in keys}}
        if not self.flip:  # recorded only when set, so earlier run directories still match
            out["flip"] = False
        if self.images is not None:  # the data's provenance record (loads it, once)
            from nascell.search.data import sources

            out["data"] = sources.record_of(self.images, sources.load_images(self.images))
        return out

    def resources(self) -> Dict[str, float]:
        out = {"num_cpus": 1}
        if self.num_gpus:
            out["num_gpus"] = self.num_gpus
        return out

    def _splits(self):
        if self.images is not None:
            return image_splits(self.images, self.subset, self.validation_fraction,
                                self.seed or 0)
        return load_splits(self.data_dir, self.cifar_npz, self.subset, self.validation_fraction,
                           self.seed or 0, self.download)

    def evaluate(self, spec: Any, trial_id: int = 0) -> EvalResult:
        splits = self._splits()  # a missing data set raises: not the child's fault
        self._check_batch(splits)
        return _child.run_isolated("conv_classifier", trial_id,
                                   lambda: self._train(spec, splits, evaluate_test=False))

    def train_and_test(self, spec: Any, trial_id: int = 0) -> EvalResult:
        """Like `evaluate`, then the test split is evaluated once (``metrics["test_acc"]``)."""
        splits = self._splits()
        self._check_batch(splits)
        return _child.run_isolated("conv_classifier", trial_id,
                                   lambda: self._train(spec, splits, evaluate_test=True))

    def check_data(self) -> None:
        """Load the images (CIFAR-10, an image folder, tensorflow-datasets, your arrays: each
        source checks its classes, labels and shapes as it loads, and holds out at least one
        validation image) and check that the training split holds one batch; raises
        `DataError` naming the split and the fix."""
        self._check_batch(self._splits())

    def _check_batch(self, splits) -> None:
        """Too little data for one batch is the data's problem, not a failed child."""
        from nascell.search.data.provenance import DataError
        if len(splits.x_train) < self.batch_size:
            raise DataError(f"{len(splits.x_train)} training images are fewer than one batch of "
                            f"{self.batch_size}: use a smaller batch_size (--child_batch_size) "
                            "or more images")

    # --- training ---------------------------------------------------------------------------------

    def _lr_schedule(self):
        def schedule(epoch, lr):  # epoch is 0-based
            if not self.lr_decay_epoch:
                return self.lr
            return self.lr * self.lr_decay ** (epoch // int(self.lr_decay_epoch))
        return schedule

    def _setup(self, spec, splits):
        """The compiled model, the datasets and the fit arguments of one training."""
        import keras

        from nascell.conv import build_conv_classifier
        from nascell.search.data.cifar10 import cifar_datasets
        from nascell.search.data.images import image_pipelines

        _child.seed_everything(self.seed)
        if self.flip:
            train, valid, test = cifar_datasets(splits, self.batch_size,
                                                augment_train=self.augment, seed=self.seed or 0)
        else:
            train, valid, test = image_pipelines(splits, self.batch_size, self.augment,
                                                 flip=False, seed=self.seed or 0)
        strategy = _child.distribution_strategy()
        with strategy.scope():
            model = build_conv_classifier(
                spec, input_shape=splits.image_shape, num_classes=splits.num_classes,
                dropout=self.dropout, weight_decay=self.weight_decay,
                bn_epsilon=self.bn_epsilon, bn_momentum=self.bn_momentum)
            optimizer = keras.optimizers.SGD(learning_rate=self.lr, momentum=self.momentum,
                                             nesterov=self.nesterov)
            model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy",
                          metrics=["accuracy"])

        full_epoch = len(splits.x_train) // self.batch_size
        steps = int(self.steps_per_epoch or full_epoch)
        valid_steps = -(-len(splits.x_valid) // self.batch_size)
        if self.max_valid_steps:
            valid_steps = min(valid_steps, int(self.max_valid_steps))
            valid = valid.take(valid_steps)
        callbacks = _child.nan_callbacks()
        if self.lr_decay_epoch:
            callbacks.append(keras.callbacks.LearningRateScheduler(self._lr_schedule()))
        fit_kwargs = dict(x=train.repeat(), epochs=self.epochs, steps_per_epoch=steps,
                          validation_data=valid, validation_steps=valid_steps,
                          callbacks=callbacks, shuffle=False, verbose=0)
        return model, strategy, test, fit_kwargs

    def model_args(self, spec, splits=None) -> Dict[str, Any]:
        """The `nascell.conv.build_conv_classifier` arguments of this evaluator's model (JSON-able:
        the spec as a dict), so the model can be rebuilt to load its weights."""
        splits = splits or self._splits()
        return {"spec": spec.to_dict(), "input_shape": list(splits.image_shape),
                "num_classes": int(splits.num_classes), "dropout": self.dropout,
                "weight_decay": self.weight_decay, "bn_epsilon": self.bn_epsilon,
                "bn_momentum": self.bn_momentum}

    def train_model(self, spec: Any, checkpoint_dir: str, evaluate_test: bool = True,
                    on_epoch=None):
        """Train ``spec``'s classifier with a checkpoint every epoch in ``checkpoint_dir`` (a
        second call resumes after the last finished epoch) and return ``(model, metrics)``,
        the model holding the best-validation-accuracy weights, also in
        ``<checkpoint_dir>/best.weights.h5``. Nothing is cleared afterwards; failures raise.
        ``on_epoch`` is accepted for symmetry with the language models and not called."""
        from nascell.search.training.keras_fit import fit_with_checkpoints

        del on_epoch
        splits = self._splits()
        start = time.time()
        model, strategy, test, fit_kwargs = self._setup(spec, splits)
        fingerprint = {k: v for k, v in self.config().items()
                       if k not in ("data_dir", "cifar_npz", "epochs")}
        if "data" in fingerprint:  # the data, wherever it lives now
            from nascell.search.data.provenance import identity

            fingerprint["data"] = identity(fingerprint["data"])
        fingerprint["model_args"] = self.model_args(spec, splits)
        epochs = fit_kwargs.pop("epochs")
        history, best_epoch, resumed, best_path = fit_with_checkpoints(
            model, checkpoint_dir, fingerprint, monitor="val_accuracy", mode="max",
            epochs=epochs, **fit_kwargs)
        if len(history) < epochs:  # TerminateOnNaN stopped it
            raise _child.ChildDiverged(f"the training loss is not finite after epoch "
                                       f"{len(history)} of {epochs}")
        _child.check_finite("training loss", [h.get("loss") for h in history])
        accuracies = [h["val_accuracy"] for h in history]
        reward, accuracy = conv_reward(accuracies)
        metrics: Dict[str, Any] = {
            "valid_acc": accuracy, "valid_acc_history": accuracies,
            "best_valid_acc": max(accuracies), "best_epoch": best_epoch,
            "train_loss": history[-1]["loss"], "params": int(model.count_params()),
            "epochs": len(history), "history": history, "resumed_after_epoch": resumed,
            "replicas": _child.num_replicas(strategy),
            "model_args": self.model_args(spec, splits), "best_weights": best_path,
            "reward": reward, "preprocessing": self.preprocessing(splits),
            "input_shape": list(splits.image_shape),
        }
        if evaluate_test:
            test_loss, test_acc = model.evaluate(test, verbose=0)
            metrics["test_acc"], metrics["test_loss"] = float(test_acc), float(test_loss)
        metrics["seconds"] = time.time() - start
        return model, metrics

    def preprocessing(self, splits=None) -> Dict[str, Any]:
        """How the child's images were prepared from pixels, ``(x / pixel_scale - mean) / std``
        per channel (what a model served on raw pixels must do first)."""
        splits = splits or self._splits()
        return {"pixel_scale": float(getattr(splits, "pixel_scale", 255.0)),
                "mean": [float(v) for v in splits.mean], "std": [float(v) for v in splits.std]}

    def validation_score(self, model) -> Dict[str, float]:
        """``{"valid_acc": ...}`` of ``model`` on this evaluator's validation images, measured
        as a child's is."""
        from nascell.search.data.cifar10 import cifar_datasets

        splits = self._splits()
        _, valid, _ = cifar_datasets(splits, self.batch_size, augment_train=self.augment,
                                     seed=self.seed or 0)
        steps = -(-len(splits.x_valid) // self.batch_size)
        if self.max_valid_steps:
            steps = min(steps, int(self.max_valid_steps))
            valid = valid.take(steps)
        model.compile(loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        _, accuracy = model.evaluate(valid, steps=steps, verbose=0)
        return {"valid_acc": float(accuracy)}

    def _train(self, spec, splits, evaluate_test: bool) -> EvalResult:
        start = time.time()
        model, strategy, test, fit_kwargs = self._setup(spec, splits)
        params = int(model.count_params())
        steps = fit_kwargs["steps_per_epoch"]
        # The reward's epoch: the best validation accuracy of the last REWARD_EPOCHS epochs.
        best = _child.best_epoch_weights("val_accuracy", "max",
                                         first_epoch=max(0, self.epochs - REWARD_EPOCHS))
        fit_kwargs["callbacks"] = list(fit_kwargs["callbacks"]) + [best]
        history = model.fit(**fit_kwargs).history
        train_losses = _child.history_values(history, "loss")
        _child.check_finite("training loss", train_losses)
        accuracies = _child.history_values(history, "val_accuracy")
        if len(accuracies) < len(train_losses):
            raise _child.ChildDiverged("training stopped before validation")
        valid_losses = _child.history_values(history, "val_loss")
        _child.check_finite("validation loss", valid_losses)  # NaN outputs still "predict"
        reward, accuracy = conv_reward(accuracies)
        metrics: Dict[str, Any] = {
            "valid_acc": accuracy,
            "valid_acc_history": accuracies,
            "valid_loss": valid_losses[-1],
            "train_loss": train_losses[-1],
            "train_acc": _child.history_values(history, "accuracy")[-1],
            "params": params,
            "epochs": len(train_losses),
            "steps": steps * len(train_losses),
            "replicas": _child.num_replicas(strategy),
            # what an export of this network needs to know (nascell.kinds: sizes_from_run)
            "input_shape": list(splits.image_shape),
            "num_classes": int(splits.num_classes),
        }
        best.restore()  # the weights of the reward's epoch
        if evaluate_test:
            test_loss, test_acc = model.evaluate(test, verbose=0)
            metrics["test_acc"] = float(test_acc)
            metrics["test_loss"] = float(test_loss)
        weights = _child.pack_weights(self, model, lambda: run_weights.describe(
            self.name, self.model_args(spec, splits),
            {"valid_acc": float(accuracy), "epoch": best.epoch}, self.preprocessing(splits)))
        seconds = time.time() - start
        metrics["seconds"] = seconds
        logging.info("conv child: valid acc %.4f, reward %.4g, %d params, %.1fs", accuracy,
                     reward, params, seconds)
        return EvalResult(reward=reward, metrics=metrics, seconds=seconds, weights=weights)
