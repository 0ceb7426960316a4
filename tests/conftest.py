"""Shared test fixtures: quiet TensorFlow, seeded RNGs, the shared data folder. (The helper
modules beside it, tests/tolerance.py among them, are importable by name: pytest.ini's
pythonpath.)"""

import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import pathlib

import pytest

# ../shared/data relative to the project root (the folder that holds setup.py).
PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
SHARED_DATA = pathlib.Path(os.environ.get("NASCELL_SHARED_DATA",
                                          PROJECT_ROOT.parent / "shared" / "data"))


def shared_path(*parts: str) -> pathlib.Path:
    """A path under ../shared/data, or a pytest skip (with the reason) if it is absent."""
    path = SHARED_DATA.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"shared data {path} is absent (set NASCELL_SHARED_DATA to its folder)")
    return path


@pytest.fixture
def shared_data():
    """Callable fixture: shared_data('ptb', 'ptb.train.txt') -> path, or skip with a reason."""
    return shared_path


@pytest.fixture(autouse=True)
def _clear_keras_session():
    yield
    import keras
    keras.backend.clear_session(free_memory=False)
