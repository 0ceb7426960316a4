"""Training loops shared by the child evaluators, the final stage and the benchmarks.

* `stateful_lm`: truncated back-propagation through time for language models, the recurrent
  state carried from one batch to the next (Zaremba et al. 2014; Zoph & Le 2017).
* `checkpoints`: per-epoch, crash-safe checkpoints (weights, optimizer, progress) and the
  best-validation weights, so a killed training resumes from its last finished epoch.
* `lm_fit`: the epoch loop that ties both together (learning-rate schedule, validation,
  best weights, the one test evaluation).
"""
