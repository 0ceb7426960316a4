"""The contracts and the loop, with no TensorFlow: what every search is made of.

* `trial`: a trial and its status;
* `space`: the decisions a search space is made of (`Categorical`, `Skips`, `SearchSpace`);
* `strategy` (+ `dedupe`): the abstract `Strategy` (ask/tell, no repeated architecture) and
  the strategy registry;
* `evaluator`: the abstract `Evaluator` and `EvalResult`;
* `loop` (+ `failures`): `run_search`, which asks, evaluates, tells, checkpoints and resumes,
  the guard that stops a search whose trials all fail, and `progress`, the console line.
"""
