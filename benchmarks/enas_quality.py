"""Does ENAS find a better recurrent cell than chance? A PTB proxy that fits ~10 CPU minutes.

1. An ENAS search of the ``enas_rnn`` space (``--num_nodes`` nodes) on the first
   ``--max_train`` PTB training tokens, rewards on the validation split, then derivation.
2. The derived cell is retrained *from scratch* as a child language model (embedding ->
   RNN(ENASRNNCell) -> softmax) for ``--child_epochs`` passes, and so are ``--random_cells``
   cells sampled uniformly from the same space. Every cell of the space has the same
   parameter count, so the comparison is at equal size and equal budget.
3. Reports validation and test perplexity (test: the first ``--max_test`` test tokens) of the
   ENAS cell and the mean / std / min of the random cells.

    python benchmarks/enas_quality.py
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time

import numpy as np
from absl import app, flags

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

FLAGS = flags.FLAGS
flags.DEFINE_integer("num_nodes", 8, "nodes of the ENAS recurrent cell")
flags.DEFINE_integer("units", 64, "embedding / node / state width")
flags.DEFINE_integer("epochs", 3, "ENAS epochs")
flags.DEFINE_integer("shared_steps", 60, "shared-weight steps per ENAS epoch")
flags.DEFINE_integer("controller_steps", 10, "controller updates per ENAS epoch")
flags.DEFINE_integer("controller_batch", 10, "architectures per controller update")
flags.DEFINE_float("controller_lr", 5e-3, "controller Adam rate (the paper's 3.5e-4 barely "
                   "moves in a 30-update proxy)")
flags.DEFINE_integer("derive_samples", 20, "candidates sampled when deriving")
flags.DEFINE_integer("derive_batches", 4, "validation batches scoring each candidate")
flags.DEFINE_integer("random_cells", 3, "random cells of the same space to retrain")
flags.DEFINE_integer("child_epochs", 1, "retraining budget (passes over --max_train tokens)")
flags.DEFINE_integer("max_train", 150000, "PTB training tokens")
flags.DEFINE_integer("max_valid", 20000, "PTB validation tokens")
flags.DEFINE_integer("max_test", 20000, "PTB test tokens")
flags.DEFINE_integer("batch", 20, "batch size")
flags.DEFINE_integer("seq_len", 35, "unrolled steps")
flags.DEFINE_integer("seed", 0, "seed of the search and of the random cells")
flags.DEFINE_string("json_out", None, "optional: write the figures here")


def main(argv):
    del argv
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from enas_common import load_ptb_proxy, train_child

    from nascell.search.enas import run_enas
    from nascell.search.spaces.enas import enas_rnn_space

    start = time.time()
    data = load_ptb_proxy(FLAGS.max_train, FLAGS.max_valid, FLAGS.max_test)
    with tempfile.TemporaryDirectory() as tmp:
        result = run_enas(
            "enas_rnn", os.path.join(tmp, "run"), data=data, epochs=FLAGS.epochs,
            shared_steps=FLAGS.shared_steps, controller_steps=FLAGS.controller_steps,
            controller_batch=FLAGS.controller_batch, controller_lr=FLAGS.controller_lr,
            derive_samples=FLAGS.derive_samples, derive_batches=FLAGS.derive_batches,
            num_nodes=FLAGS.num_nodes, units=FLAGS.units, batch_size=FLAGS.batch,
            seq_len=FLAGS.seq_len, seed=FLAGS.seed,
            progress=lambda s: print(f"  enas epoch {int(s['epoch'])}: shared train ppl "
                                     f"{s.get('train_ppl', float('nan')):.1f}, sampled valid "
                                     f"ppl {s['valid_ppl']:.1f}, entropy {s['entropy']:.2f}, "
                                     f"{s['seconds']:.0f}s", flush=True))
    search_s = time.time() - start
    print(f"ENAS search: {search_s:.0f}s; derived cell (supernet valid ppl "
          f"{result.metric:.1f}): {result.spec.to_json()}", flush=True)

    found = train_child(result.spec, data, FLAGS.units, FLAGS.child_epochs, FLAGS.batch,
                        FLAGS.seq_len, seed=FLAGS.seed)
    print(f"ENAS cell retrained: valid {found['valid_ppl']:.1f}, test {found['test_ppl']:.1f} "
          f"({found['params']} params, {found['steps']} steps, {found['train_s']:.0f}s)",
          flush=True)
    space = enas_rnn_space(FLAGS.num_nodes)
    rng = np.random.default_rng(FLAGS.seed + 1000)
    randoms = []
    for k in range(FLAGS.random_cells):
        spec = space.decode(space.sample(rng))
        r = train_child(spec, data, FLAGS.units, FLAGS.child_epochs, FLAGS.batch,
                        FLAGS.seq_len, seed=FLAGS.seed)
        assert r["params"] == found["params"]
        randoms.append(r)
        print(f"random cell {k}: valid {r['valid_ppl']:.1f}, test {r['test_ppl']:.1f}",
              flush=True)
    rv = np.array([r["valid_ppl"] for r in randoms])
    rt = np.array([r["test_ppl"] for r in randoms])
    total = time.time() - start
    print(f"budget: ENAS {FLAGS.epochs} epochs x {FLAGS.shared_steps} shared steps, "
          f"{FLAGS.epochs * FLAGS.controller_steps} controller updates; children "
          f"{FLAGS.child_epochs} epoch(s) over {FLAGS.max_train} tokens ({found['steps']} "
          f"steps, batch {FLAGS.batch} x {FLAGS.seq_len}); total {total:.0f}s")
    print(f"valid ppl: ENAS {found['valid_ppl']:.1f} vs random mean {rv.mean():.1f} "
          f"(std {rv.std():.1f}, best {rv.min():.1f})")
    print(f"test ppl:  ENAS {found['test_ppl']:.1f} vs random mean {rt.mean():.1f} "
          f"(std {rt.std():.1f}, best {rt.min():.1f})")
    if FLAGS.json_out:
        with open(FLAGS.json_out, "w") as f:
            json.dump({"found": found, "found_spec": result.spec.to_dict(),
                       "random": randoms, "search_s": search_s, "total_s": total}, f, indent=2)


if __name__ == "__main__":
    app.run(main)
