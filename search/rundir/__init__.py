"""Every file a run directory holds, with its path named in one place.

* `run_dir`: the directory itself (``config.json``, the strategy checkpoints, ``best/``), how
  it is created, checked and resumed;
* `store`: ``trials.sqlite``, every trial and state change;
* `weights`: ``weights/trial_<id>/``, the trained weights of the best trials (and ENAS'
  supernet bytes);
* `summaries`: ``tensorboard/``, scalars and one HParams session per trial;
* `plots`: ``rewards.png``.
"""
