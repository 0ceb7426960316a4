"""The language-model reward, 80 / ppl^2, at the edges of floating point."""

import math

from nascell.search.evaluators.rnn_lm import reward_of


def test_reward_is_the_papers():
    assert reward_of(100.0) == 80.0 / 100.0 ** 2


def test_a_perplexity_too_large_to_square_scores_zero_instead_of_raising():
    # A child that blew up without turning NaN reports a finite perplexity near 1e300,
    # whose square overflows (it raised OverflowError before).
    assert reward_of(1e300) == 0.0
    assert reward_of(math.inf) == 0.0
    assert reward_of(math.nan) == 0.0
