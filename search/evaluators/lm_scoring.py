"""A trained language model's validation perplexity, measured as its child's was.

An export of a trained child (or a kept child) is checked by putting its layer back and scoring
the validation data again; the figure only matches the child's when it is measured the same
way: batches of ``seq_len`` tokens each from a zero state (the Keras-fit children), or
Zaremba's layout with the recurrent state carried from one batch to the next (children trained
with ``carry_state``, `nascell.search.training.stateful_lm`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence


def validation_perplexity(model, valid_ids: Sequence[int], batch_size: int, seq_len: int,
                          max_valid_steps: Optional[int] = None,
                          carry_state: bool = False) -> float:
    """Perplexity of ``model`` on ``valid_ids``: over at most ``max_valid_steps`` batches
    (None or 0: all), as a child with these settings measures it.

    Args:
      model: ``ids -> logits``; with ``carry_state``, the stateful form ``[ids, *states] ->
        [logits, *states]`` (e.g. `nascell.search.handover.load_model(folder,
        return_state=True)`).
      carry_state: carry the state across batches, as children trained with it were scored.
    """
    import keras

    if carry_state:
        from nascell.search.training.stateful_lm import StatefulLMTrainer

        if len(model.inputs) < 2:
            raise ValueError("Argument `model` must take [ids, *states] to be scored with the "
                             "state carried (carry_state=True); rebuild it with "
                             "return_state=True (handover.load_model(folder, "
                             "return_state=True)). Received: a model of one input")
        trainer = StatefulLMTrainer(model, keras.optimizers.SGD(1.0))
        return float(trainer.evaluate(valid_ids, batch_size, seq_len,
                                      max_batches=max_valid_steps or None).ppl)

    from nascell.search.data.text import lm_dataset, num_lm_batches

    steps = num_lm_batches(len(valid_ids), batch_size, seq_len)
    steps = min(steps, int(max_valid_steps)) if max_valid_steps else steps
    model.compile(loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    loss = model.evaluate(lm_dataset(valid_ids, batch_size, seq_len, max_batches=steps),
                          steps=steps, verbose=0)
    return math.exp(min(float(loss), 700.0))
