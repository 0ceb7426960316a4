"""Fixtures shared by the search tests."""

import pytest
from absl import flags
from absl.testing import flagsaver


@pytest.fixture
def parsed_flags():
    """absl's FLAGS, parsed (the binaries' flag modules are imported by the test), with every
    value a test sets restored afterwards."""
    if not flags.FLAGS.is_parsed():
        flags.FLAGS.mark_as_parsed()
    with flagsaver.flagsaver():
        yield flags.FLAGS
