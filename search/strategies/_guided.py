"""Predictor-guided proposals for `ReinforceStrategy` (``pool > 0``, the ``guided`` preset).

Each proposal round, the controller samples a *pool* of ``pool`` architectures (at
``pool_temperature``, wider than its own, so the pool is diverse while the policy sharpens);
a reward predictor fitted to every reward so far (`GPPredictor`: a Gaussian process over
the token Hamming distance) ranks the pool's unseen architectures by expected improvement,
and the best ``n`` are proposed. The controller still learns by REINFORCE from every reward,
and so keeps moving the pool toward better regions; the predictor spends the trials on the
pool's most promising members. Before ``warmup`` rewards (and the predictor's first two) the
controller's own samples are proposed as they come.

``local_pool=k`` also puts the unseen one-decision neighbours of the ``k`` best architectures
into the ranked pool (faster early, but on a rugged table it settles on one peak).

``stall=s`` (with ``stall_every=e``): once ``s`` rewards have come in since the best one so
far, every ``e``-th proposal (by trial id) is instead an unseen one-decision neighbour of the
best architecture, the one the predictor ranks first, until the best improves. When the best
architecture's neighbours are all known (a local optimum), the neighbours of the next best
architecture that still has unseen ones are taken (best-first). The controller's pool rarely
holds the one change that lifts a stalled incumbent: the policy has settled around it, and a
neighbour it has learned to avoid is unlikely to be drawn. Checking the incumbent's
neighbours is what local search does best; the rest of the proposals still come from the
pool, so the search keeps exploring.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

import numpy as np

from nascell.search.core import dedupe
from nascell.search.core.strategy import Proposal


def controller_proposals(strategy: Any, out: Dict[str, np.ndarray],
                         num_decisions: int) -> List[Proposal]:
    """Proposals (with tokens and log P in their meta) from a `Controller.sample` output."""
    c = strategy.controller
    proposals = []
    rows = c.tokens_to_rows(out["tokens"], num_decisions)
    for k, row in enumerate(rows):
        meta = {"origin": "controller", "tokens": [int(x) for x in out["tokens"][k]],
                "num_decisions": num_decisions, "log_prob": float(out["log_prob"][k]),
                "controller_step": c.updates, "entropy": float(out["entropy"][k])}
        proposals.append(Proposal(strategy.space.from_tokens(row), meta))
    return proposals


def pool_proposals(strategy: Any, n: int, num_decisions: int) -> List[Proposal]:
    """The ``n`` unseen members of a controller pool the predictor ranks best."""
    c = strategy.controller
    out = c.sample(max(strategy.pool, n), num_decisions, temperature=strategy.pool_temperature)
    fresh, keys = [], set()
    for p in controller_proposals(strategy, out, num_decisions):
        key = dedupe.arch_key(strategy.space, p.decisions)
        if key not in keys and key not in strategy.ledger:
            keys.add(key)
            fresh.append(p)
    if strategy.local_pool:
        fresh += local_candidates(strategy, keys, num_decisions)
    predictor = fitted_predictor(strategy, num_decisions)
    fresh = ranked(strategy, predictor, fresh, n)
    slots = stall_slots(strategy, n, num_decisions)
    near = []
    if slots:
        near = local_candidates(strategy, set(), num_decisions, top=1, open_only=True)
        near = ranked(strategy, predictor, near, slots)[:slots]
        taken = {dedupe.arch_key(strategy.space, p.decisions) for p in near}
        fresh = [p for p in fresh if dedupe.arch_key(strategy.space, p.decisions) not in taken]
    chosen = fresh[:n - len(near)]
    for rank, p in enumerate(chosen):
        p.meta["pool_rank"] = rank
    if near:
        # Each neighbour at its slot's position (trial ids follow the order of proposals).
        for p in near:
            p.meta["origin"] = "stall_neighbour"
        pool_part, chosen = chosen, []
        for i in range(n):
            slot = (strategy.next_trial_id + i) % strategy.stall_every == 0
            source = near if (slot and near) or not pool_part else pool_part
            if source:
                chosen.append(source.pop(0))
    if chosen and strategy.pool_temperature is not None and (
            strategy.update_steps > 1 or strategy.importance_clip is not None):
        # the PPO / importance ratios compare against log P under the controller's own shaping
        lp = current_log_probs(c, [(np.asarray(p.meta["tokens"]), num_decisions)
                                   for p in chosen])
        for p, value in zip(chosen, lp):
            p.meta["log_prob"] = float(value)
    return chosen


def ranked(strategy: Any, predictor: Any, proposals: List[Proposal],
           keep: int) -> List[Proposal]:
    """``proposals`` best first by the predictor's acquisition (as they are when the predictor
    is not fitted yet, or when all ``keep`` wanted are taken anyway)."""
    if predictor is None or len(proposals) <= keep:
        return proposals
    x = np.array([p.meta["tokens"] for p in proposals])
    order = np.argsort(-predictor.acquisition(x, strategy.acquisition), kind="stable")
    return [proposals[int(i)] for i in order]


def stall_slots(strategy: Any, n: int, num_decisions: int) -> int:
    """How many of the next ``n`` proposals go to the incumbent's neighbours (``stall``)."""
    if not strategy.stall:
        return 0
    rewards = [h["reward"] for h in strategy.history if h["num_decisions"] == num_decisions]
    if not rewards or len(rewards) - 1 - int(np.argmax(rewards)) < strategy.stall:
        return 0
    first = strategy.next_trial_id
    return sum((first + i) % strategy.stall_every == 0 for i in range(n))


def local_candidates(strategy: Any, taken: set, num_decisions: int, top: int = 0,
                     open_only: bool = False) -> List[Proposal]:
    """Unseen one-decision neighbours of the ``top`` (default ``local_pool``) best
    architectures told so far (with ``open_only``: of the ``top`` best that still have an
    unseen neighbour), with their tokens and log P under the controller."""
    c = strategy.controller
    top = top or strategy.local_pool
    best = sorted((h for h in strategy.history if h["num_decisions"] == num_decisions),
                  key=lambda h: -h["reward"])
    out, used = [], 0
    for h in best if open_only else best[:top]:
        row = c.tokens_to_rows(np.array([h["tokens"]]), num_decisions)[0]
        found = False
        for d in dedupe.neighbours(strategy.space, strategy.space.from_tokens(row)):
            key = dedupe.arch_key(strategy.space, d)
            if key not in taken and key not in strategy.ledger:
                taken.add(key)
                found = True
                out.append(Proposal(d, {"origin": "neighbour"}))
        used += found
        if open_only and used >= top:
            break
    if out:
        tokens, _ = c.rows_to_tokens([strategy.space.to_tokens(p.decisions) for p in out])
        log_prob, entropy = c.log_prob(tokens, num_decisions)
        for p, t, lp, e in zip(out, tokens, log_prob, entropy):
            p.meta.update({"tokens": [int(x) for x in t], "num_decisions": num_decisions,
                           "log_prob": float(lp), "entropy": float(e),
                           "controller_step": c.updates})
    return out


def fitted_predictor(strategy: Any, num_decisions: int):
    """The strategy's GP, fitted to its told trials of this length (None if under 2)."""
    from nascell.search.strategies._predictor import GPPredictor
    rows = [h for h in strategy.history if h["num_decisions"] == num_decisions]
    if len(rows) < 2:
        return None
    if strategy.predictor is None:
        strategy.predictor = GPPredictor()
    strategy.predictor.fit(np.array([h["tokens"] for h in rows]),
                           np.array([h["reward"] for h in rows]))
    return strategy.predictor


def current_log_probs(controller: Any, rows: Sequence[Tuple[np.ndarray, int]]) -> np.ndarray:
    """log P of ``(token_row, num_decisions)`` rows under the controller now (one call a length)."""
    out = np.zeros(len(rows))
    groups: Dict[int, List[int]] = {}
    for k, (_, n) in enumerate(rows):
        groups.setdefault(int(n), []).append(k)
    for n, idx in groups.items():
        out[idx] = controller.log_prob(np.stack([np.asarray(rows[k][0]) for k in idx]), n)[0]
    return out
