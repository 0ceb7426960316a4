"""A language model's scores: the paper's reward of a perplexity, and a trained model's
validation perplexity measured as its child's was.

`reward_of` is Zoph & Le's ``80 / ppl^2`` (section 4.2), what every language-model child and
the final stage report. An export of a trained child (or a kept child) is checked by putting
its layer back and scoring the validation data again (`validation_perplexity`); the figure only
matches the child's when it is measured the same way: batches of ``seq_len`` tokens each from
a zero state (the Keras-fit children), or Zaremba's layout with the recurrent state carried
from one batch to the next (children trained with ``carry_state``,
`nascell.search.training.stateful_lm`).
"""

from __future__ import annotations

import math
from typing import Optional, Sequence

REWARD_CONSTANT = 80.0


def reward_of(valid_ppl: float) -> float:
    """The paper's reward ``80 / ppl^2``; 0 for a perplexity too large to square in floating
    point (a run that blew up without turning NaN)."""
    if not math.isfinite(valid_ppl) or valid_ppl > 1e150:
        return 0.0
    return REWARD_CONSTANT / valid_ppl ** 2


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
