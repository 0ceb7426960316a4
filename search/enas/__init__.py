"""ENAS (Pham et al., 2018): weight-sharing supernets and the alternating training loop.

* `rnn_supernet.RNNSupernet`: the recurrent supernet (shared weights for every node pair and
  activation); `conv_supernet.ConvSupernet`: the micro (conv cell) supernet.
* `trainer.run_enas(space_name, run_dir, ...)`: the resumable ENAS search that
  ``nascell-search --strategy=enas`` runs; `trainer.ENASTrainer` for finer control.
"""
