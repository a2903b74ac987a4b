"""Mixing by token share: which pool each training window comes from.

A *pool* is the token stream of one (source, stream) pair in one split, e.g. the ``interleaved``
documents of ``librispeech`` in ``train``. A run states its mix as token shares
(``data.mix_tokens``): keys are stream names (``text``, ``interleaved``, ``speech``), source names,
or ``source.stream``; each key's share is divided among the pools it names in proportion to their
tokens, and pools no key names get nothing. Without ``mix_tokens`` the stream probabilities
``data.mix`` (a document is drawn from stream s with probability p_s, as before) are turned into
the token shares they give in expectation, ``p_s · mean document length_s`` normalised.

Every window holds ``context + 1`` tokens of one pool, so a pool's token share is its share of
windows. :class:`Blend` realises the shares exactly in every block of :data:`BLOCK` consecutive
windows: pool s gets ``quota_s`` slots of each block (largest-remainder rounding of
``share_s · BLOCK``, at least one for a positive share), spread evenly over the block (stride
scheduling), so a batch of consecutive windows is close to the requested mix. Window ``i`` is the
``k``-th window of its pool with ``k = (i // BLOCK) · quota_s + rank``: a closed form, no state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scaling.errors import UserError

#: windows per blending block: token shares are realised to 1 / BLOCK
BLOCK = 10_000


@dataclass(frozen=True)
class PoolInfo:
    """What mixing needs to know of a pool: names, tokens and documents (of the split mixed)."""

    source: str
    stream: str
    tokens: int
    documents: int

    @property
    def key(self) -> str:
        return f"{self.source}.{self.stream}"


def resolve_shares(pools: list[PoolInfo], mix_tokens: dict[str, float], mix_probs: tuple[float, float, float] | None,
                   source_names: list[str]) -> list[float]:
    """Token share of each pool (summing to 1); see the module doc. ``mix_probs``: stream
    probabilities (text, interleaved, speech), used when ``mix_tokens`` is empty (None: every
    pool in proportion to its tokens). ``source_names``: every source of the corpus, so that a key
    naming a source absent from this mode is told apart from a misspelled one."""
    tokens = np.array([p.tokens for p in pools], dtype=float)
    if mix_tokens:
        shares = np.zeros(len(pools))
        owner: dict[int, str] = {}
        streams = ("text", "interleaved", "speech")
        valid = set(streams) | set(source_names) | {f"{s}.{t}" for s in source_names for t in streams}
        for key, share in mix_tokens.items():
            if key not in valid:
                raise UserError(f"data.mix_tokens key {key!r}: expected a stream ({', '.join(streams)}), a source "
                                f"({', '.join(source_names)}) or source.stream")
            members = [i for i, p in enumerate(pools) if key in (p.stream, p.source, p.key)]
            for i in members:
                if i in owner:
                    raise UserError(f"data.mix_tokens keys {owner[i]!r} and {key!r} both name pool {pools[i].key!r}; expected each pool named once")
                owner[i] = key
            weight = tokens[members].sum() if members else 0.0
            for i in members:
                shares[i] = share * tokens[i] / weight if weight > 0 else 0.0
    elif mix_probs is not None:
        streams = ("text", "interleaved", "speech")
        stream_tokens = {s: sum(p.tokens for p in pools if p.stream == s) for s in streams}
        stream_docs = {s: sum(p.documents for p in pools if p.stream == s) for s in streams}
        weight = {s: pr * stream_tokens[s] / stream_docs[s] if stream_docs[s] else 0.0 for s, pr in zip(streams, mix_probs)}
        shares = np.array([weight[p.stream] * p.tokens / stream_tokens[p.stream] if stream_tokens[p.stream] else 0.0 for p in pools])
    else:
        shares = tokens.copy()
    shares = np.where(tokens > 0, shares, 0.0)
    if not shares.sum() > 0:
        named = ", ".join(sorted(mix_tokens)) if mix_tokens else "the mix"
        raise UserError(f"{named}: no pool with tokens gets a positive share; expected shares on some of {', '.join(p.key for p in pools if p.tokens) or 'no pools (the data is empty)'}")
    return [float(x) for x in shares / shares.sum()]


def quotas(shares: list[float], block: int = BLOCK) -> np.ndarray:
    """Slots per block of each pool: largest-remainder rounding of ``share · block``; a positive
    share gets at least one slot (taken from the largest quota)."""
    exact = np.asarray(shares, dtype=float) * block
    q = np.floor(exact).astype(np.int64)
    order = np.argsort(-(exact - q), kind="stable")
    q[order[: block - int(q.sum())]] += 1
    for i in np.flatnonzero((q == 0) & (np.asarray(shares) > 0)):
        q[int(np.argmax(q))] -= 1
        q[i] = 1
    return q


class Blend:
    """Window index → (pool, window number within the pool); see the module doc."""

    def __init__(self, shares: list[float], block: int = BLOCK):
        self.block = block
        self.quota = quotas(shares, block)
        positions = np.concatenate([(np.arange(q) + 0.5) * block / q for q in self.quota if q > 0])
        pools = np.concatenate([np.full(q, i) for i, q in enumerate(self.quota) if q > 0])
        ranks = np.concatenate([np.arange(q) for q in self.quota if q > 0])
        order = np.lexsort((pools, positions))
        self.pool_of_slot = pools[order].astype(np.int64)
        self.rank_of_slot = ranks[order].astype(np.int64)

    def realised(self) -> list[float]:
        """The token share each pool gets (quota / block)."""
        return [float(q) / self.block for q in self.quota]

    def locate(self, i: int) -> tuple[int, int]:
        """(pool, k) of window ``i``: window ``i`` is the ``k``-th window drawn from ``pool``."""
        block, slot = divmod(int(i), self.block)
        pool = int(self.pool_of_slot[slot])
        return pool, block * int(self.quota[pool]) + int(self.rank_of_slot[slot])

    def windows_of(self, pool: int, n: int) -> int:
        """How many of the first ``n`` windows come from ``pool``."""
        block, rest = divmod(int(n), self.block)
        return block * int(self.quota[pool]) + int((self.pool_of_slot[:rest] == pool).sum())
