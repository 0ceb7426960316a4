"""The vocabulary of a text corpus: built under a cap with the ``<unk>`` rule, saved, reloaded.

The rule (also stated in `nascell.search.data.corpus`): built from the training split, most
frequent first, ties alphabetical (as `nascell.search.data.text.Vocabulary`);
``vocab_size=N`` keeps at most N ids with ``<unk>`` included (the N-1 most frequent tokens, then
``<unk>``); ``<unk>`` is added as the last id only when something maps to it (tokens cut by
the cap, or validation / test tokens never seen in training); ``unk=False`` turns either case
into a `DataError`.
"""

from __future__ import annotations

import collections
import json
import os
from typing import Dict, Optional, Sequence

from nascell.search.data.provenance import DataError
from nascell.search.data.text import UNK, DataNotFoundError, Vocabulary


def listed_vocabulary(id_to_token: Sequence[str]) -> Vocabulary:
    """A `Vocabulary` with exactly these tokens, in this order (id = position)."""
    tokens = list(id_to_token)
    if len(set(tokens)) != len(tokens):
        raise DataError("the vocabulary lists a token twice; each token must appear once")
    vocab = Vocabulary(())
    vocab.id_to_token = tokens
    vocab.token_to_id = {t: i for i, t in enumerate(tokens)}
    vocab.unk_id = vocab.token_to_id.get(UNK)
    return vocab


def load_vocabulary(path: str) -> Vocabulary:
    """The vocabulary `TextCorpus.save_vocabulary` wrote."""
    try:
        with open(os.path.expanduser(path), encoding="utf-8") as f:
            tokens = json.load(f)["tokens"]
    except FileNotFoundError:
        raise DataNotFoundError(f"vocabulary file {path!r} does not exist") from None
    except (ValueError, KeyError, TypeError) as e:
        raise DataError(f"vocabulary file {path!r} is not a saved vocabulary ({e}); it must "
                        "be the JSON that TextCorpus.save_vocabulary writes") from None
    return listed_vocabulary(tokens)


def _check_vocab_args(vocab_size: Optional[int]) -> None:
    if vocab_size is not None and (isinstance(vocab_size, bool) or int(vocab_size) != vocab_size
                                   or vocab_size < 2):
        raise ValueError("Argument `vocab_size` must be an integer >= 2 or None. "
                         f"Received: vocab_size={vocab_size!r}")


def build_vocabulary(tokens: Dict[str, Sequence[str]], vocab_size: Optional[int] = None,
                     unk: bool = True) -> Vocabulary:
    """The vocabulary of ``tokens["train"]`` by the rules in the module docstring.

    Raises:
        DataError: ``unk=False`` and a token would need ``<unk>`` (over the cap, or unseen).
    """
    _check_vocab_args(vocab_size)
    counts = collections.Counter(tokens["train"])
    ordered = [t for t, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))]
    if vocab_size is not None and len(ordered) > vocab_size:
        if not unk:
            raise DataError(
                f"the training split has {len(ordered)} distinct tokens, more than "
                f"vocab_size={vocab_size}, and unk=False forbids mapping the rest to {UNK!r}: "
                f"pass vocab_size>={len(ordered)} (--vocab_size), or allow {UNK!r} "
                "(unk=True, the default) so the rarest tokens map to it")
        kept = [t for t in ordered if t != UNK][:vocab_size - 1]
        return listed_vocabulary(kept + [UNK])
    known = set(ordered)
    unseen = {s: sum(1 for t in tokens.get(s, ()) if t not in known) for s in ("valid", "test")}
    if any(unseen.values()) and UNK not in known:
        if not unk:
            where = ", ".join(f"{n} in {s}" for s, n in unseen.items() if n)
            example = next(t for s in ("valid", "test") for t in tokens.get(s, ())
                           if t not in known)
            raise DataError(
                f"tokens never seen in the training split ({where}, e.g. {example!r}) and "
                f"unk=False forbids mapping them to {UNK!r}: allow {UNK!r} (unk=True, the "
                "default), or move text containing them into the training split")
        if vocab_size is not None and len(ordered) + 1 > vocab_size:
            ordered = ordered[:vocab_size - 1]  # make room for <unk>
        ordered = ordered + [UNK]
    return listed_vocabulary(ordered)
