"""KV-cache reuse across requests: a prefix cache over fixed-size blocks of tokens.

A prompt's tokens are cut into blocks of ``block_size``; block ``i`` is keyed by a hash of
itself *and every token before it*, so two requests share a block only when their whole
prefixes agree (the keys and values of a token depend on all earlier tokens). Blocks in use
are reference-counted; unused ones stay cached and the least recently used is evicted when
the cache is full. This is how vLLM's automatic prefix caching and TensorRT-LLM's KV-cache
reuse work, reduced to their bookkeeping.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import NamedTuple

import numpy as np

from .decode import kv_bytes_per_token
from .models import get_model
from .serving import iteration_cost
from .units import check_int, check_positive


class Lease(NamedTuple):
    """Blocks a request holds: their keys, how many were already cached, and its full blocks."""

    keys: tuple
    hit_blocks: int
    n_blocks: int


class PrefixCache:
    """At most ``capacity_blocks`` blocks of ``block_size`` tokens, shared by prefix."""

    def __init__(self, block_size=16, capacity_blocks=1024):
        self.block_size = check_int("block_size", block_size)
        self.capacity_blocks = check_int("capacity_blocks", capacity_blocks)
        self._blocks = OrderedDict()  # key -> [tokens of the block, reference count]; oldest first
        self.lookups = 0  # full blocks looked up
        self.hits = 0  # of which already cached

    def __len__(self):
        return len(self._blocks)

    def block_keys(self, tokens) -> list:
        """Key of every full block: ``hash(key of the previous block, this block's tokens)``."""
        tokens = np.asarray(tokens, dtype=np.int64)
        if tokens.ndim != 1:
            raise ValueError(f"tokens must be a 1-d sequence of token ids; got shape {tokens.shape}")
        keys, parent = [], b""
        for i in range(len(tokens) // self.block_size):
            block = tokens[i * self.block_size:(i + 1) * self.block_size]
            parent = hashlib.blake2b(parent + block.tobytes(), digest_size=16).digest()
            keys.append(parent)
        return keys

    def get(self, key) -> tuple:
        """Token ids stored under ``key``; ``KeyError`` if the block is not cached."""
        return self._blocks[key][0]

    def refcount(self, key) -> int:
        return self._blocks[key][1] if key in self._blocks else 0

    def match(self, tokens) -> int:
        """How many leading full blocks of ``tokens`` are cached (changes nothing)."""
        return self._matching(tokens, self.block_keys(tokens))

    def _matching(self, tokens, keys) -> int:
        count = 0
        for i, key in enumerate(keys):
            if key not in self._blocks or self.get(key) != self._block(tokens, i):
                break
            count += 1
        return count

    def _block(self, tokens, i):
        return tuple(int(t) for t in tokens[i * self.block_size:(i + 1) * self.block_size])

    def _make_room(self) -> bool:
        """Evict the least recently used unreferenced block if full; False if nothing can go."""
        if len(self._blocks) < self.capacity_blocks:
            return True
        for key, (_, refs) in self._blocks.items():
            if refs == 0:
                del self._blocks[key]
                return True
        return False

    def acquire(self, tokens) -> Lease:
        """Look up a request's prompt, hold its cached prefix and store its new full blocks.

        Blocks are stored while there is room (evicting unused blocks, least recently used
        first); a block that cannot be stored is not held. Release the lease when done.
        """
        tokens = np.asarray(tokens, dtype=np.int64)
        keys = self.block_keys(tokens)
        hit = self._matching(tokens, keys)
        held = list(keys[:hit])
        for key in held:  # held blocks cannot be evicted
            self._blocks[key][1] += 1
        for i in range(hit, len(keys)):
            if not self._make_room():
                break
            self._blocks[keys[i]] = [self._block(tokens, i), 1]
            held.append(keys[i])
        for key in reversed(held):  # the last block becomes the oldest: children are evicted before parents
            self._blocks.move_to_end(key)
        self.lookups += len(keys)
        self.hits += hit
        return Lease(tuple(held), hit, len(keys))

    def release(self, lease: Lease):
        """Drop a request's hold on its blocks; they stay cached until evicted."""
        for key in lease.keys:
            if self.refcount(key) < 1:
                raise ValueError("lease holds a block this cache does not hold for it (released twice?)")
            self._blocks[key][1] -= 1

    @property
    def hit_rate(self):
        """Cached share of all full blocks looked up so far."""
        return self.hits / self.lookups if self.lookups else 0.0


def kv_blocks(model, capacity_bytes, block_size=16, kv_dtype="bf16") -> int:
    """Blocks of ``block_size`` tokens whose KV cache fits in ``capacity_bytes``."""
    capacity = check_positive("capacity_bytes", capacity_bytes)
    return int(capacity // (check_int("block_size", block_size) * kv_bytes_per_token(model, kv_dtype)))


def chat_workload(n_conversations=40, turns=4, n_system_prompts=3, system_len=1024, user_len=(20, 200),
                  reply_len=(50, 400), vocab_size=32000, seed=0) -> list:
    """Prompts (token-id arrays) of multi-turn chats sharing a few system prompts, interleaved.

    Turn ``i`` of a conversation sends its system prompt, all earlier messages and replies, and a
    new user message; conversations take turns at random.
    """
    rng = np.random.default_rng(seed)
    n_conversations, turns = check_int("n_conversations", n_conversations), check_int("turns", turns)
    systems = [rng.integers(0, vocab_size, system_len) for _ in range(check_int("n_system_prompts", n_system_prompts))]
    history = [systems[rng.integers(len(systems))] for _ in range(n_conversations)]
    remaining = [turns] * n_conversations
    prompts = []
    while any(remaining):
        c = rng.choice([i for i, r in enumerate(remaining) if r])
        history[c] = np.concatenate([history[c], rng.integers(0, vocab_size, rng.integers(user_len[0], user_len[1] + 1))])
        prompts.append(history[c])
        history[c] = np.concatenate([history[c], rng.integers(0, vocab_size, rng.integers(reply_len[0], reply_len[1] + 1))])
        remaining[c] -= 1
    return prompts


class ReuseReport(NamedTuple):
    """Outcome of :func:`replay_prefix_cache`."""

    hit_rate: float  # cached share of full blocks
    prompt_tokens: int
    tokens_reused: int
    prefill_flops: float  # without reuse
    prefill_flops_saved: float
    peak_blocks: int


def replay_prefix_cache(model, prompts, block_size=16, capacity_blocks=4096) -> ReuseReport:
    """Serve ``prompts`` one after another through a :class:`PrefixCache` and price the prefill saved.

    A prompt with ``c`` cached tokens prefills only the rest, attending to the cached ones
    (:func:`~roofline.serving.iteration_cost` with chunk ``(c, L - c)``); at least its last token
    is always computed, since its output starts the reply.
    """
    m = get_model(model)
    cache = PrefixCache(block_size, capacity_blocks)
    tokens = reused = peak = 0
    flops = saved = 0.0
    for prompt in prompts:
        lease = cache.acquire(prompt)
        peak = max(peak, len(cache))
        L = len(prompt)
        cached = min(lease.hit_blocks * block_size, L - 1)
        full = iteration_cost(m, prefill_chunks=[(0, L)]).flops
        flops += full
        saved += full - iteration_cost(m, prefill_chunks=[(cached, L - cached)]).flops
        tokens, reused = tokens + L, reused + cached
        cache.release(lease)
    return ReuseReport(cache.hit_rate, tokens, reused, flops, saved, peak)
