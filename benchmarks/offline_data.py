"""Two real data sets other than PTB and CIFAR-10 that need no network, written as the plain
files a user would point ``nascell-search`` at.

* ``pydoc_topics/input.txt``: the prose of the Python documentation's topics (the text of
  ``help()``), shipped with every CPython as ``pydoc_data.topics``: 79 topics, about 465,000
  characters, joined in sorted topic order. A character-level (or word-level) corpus; one file,
  so the search cuts it 90 / 5 / 5 into train / valid / test.
* ``digits/<0..9>/<i>.png``: the UCI optical handwritten digits bundled with scikit-learn
  (``sklearn.datasets.load_digits``: 1,797 images of 8x8 pixels, 16 grey levels), written as
  8-bit grayscale PNGs with ``round(v * 255 / 16)``; a folder of class sub-folders. Needs
  ``pip install scikit-learn`` (not a dependency of nascell).

    python benchmarks/offline_data.py --out_dir benchmarks/out/offline_data
    nascell-search --text_dir=benchmarks/out/offline_data/pydoc_topics --text_level=char ...
    nascell-search --image_dir=benchmarks/out/offline_data/digits ...
"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
from absl import app, flags  # noqa: E402

flags.DEFINE_string("out_dir", "benchmarks/out/offline_data", "Where to write the data sets.")
flags.DEFINE_bool("digits", True, "Write the scikit-learn digits folder.")
FLAGS = flags.FLAGS


def write_pydoc_topics(out_dir: str) -> str:
    import pydoc_data.topics

    topics = pydoc_data.topics.topics
    text = "\n".join(topics[k].rstrip("\n") for k in sorted(topics)) + "\n"
    folder = os.path.join(out_dir, "pydoc_topics")
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, "input.txt"), "w", encoding="utf-8") as f:
        f.write(text)
    print(f"{folder}/input.txt: {len(topics)} topics, {len(text)} characters, "
          f"{len(text.split())} words")
    return folder


def write_digits(out_dir: str) -> str:
    import tensorflow as tf
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder = os.path.join(out_dir, "digits")
    pixels = np.rint(digits.images * 255.0 / 16.0).astype(np.uint8)
    for i, (img, label) in enumerate(zip(pixels, digits.target)):
        path = os.path.join(folder, str(int(label)), f"{i:04d}.png")
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tf.io.write_file(path, tf.io.encode_png(img[..., None]))
    print(f"{folder}: {len(pixels)} images of 8x8x1 in {len(set(digits.target))} classes")
    return folder


def main(argv):
    del argv
    write_pydoc_topics(FLAGS.out_dir)
    if FLAGS.digits:
        write_digits(FLAGS.out_dir)


if __name__ == "__main__":
    app.run(main)
