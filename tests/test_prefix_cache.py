"""The prefix cache shares blocks only between equal prefixes, respects its limit and counts hits."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import roofline as r
from roofline.prefix_cache import PrefixCache, chat_workload, kv_blocks, replay_prefix_cache


def test_hits_need_the_whole_prefix():
    cache = PrefixCache(block_size=4, capacity_blocks=100)
    a = list(range(12))
    lease = cache.acquire(a)
    assert lease.hit_blocks == 0 and lease.n_blocks == 3 and len(cache) == 3
    cache.release(lease)
    assert cache.match(a + [99]) == 3
    assert cache.match([0, 1, 2, 3, 9, 9, 9, 9]) == 1
    # the same block of tokens after a different prefix is a different block
    assert cache.match([7, 7, 7, 7, 4, 5, 6, 7]) == 0
    assert cache.match([0, 1, 2]) == 0  # no full block
    assert cache.acquire(a[:8]).hit_blocks == 2
    assert cache.hit_rate == 2 / 5


def test_lru_eviction_spares_blocks_in_use_and_evicts_children_first():
    cache = PrefixCache(block_size=2, capacity_blocks=3)
    held = cache.acquire([1, 1, 2, 2])  # two blocks, in use
    cache.release(cache.acquire([5, 5]))  # one block, unused
    lease = cache.acquire([7, 7, 8, 8])  # needs two: can evict only the unused [5, 5]
    assert lease.keys == tuple(cache.block_keys([7, 7])) and len(cache) == 3
    assert cache.match([5, 5]) == 0 and cache.match([1, 1, 2, 2]) == 2
    cache.release(held)
    cache.release(lease)
    cache.acquire([9, 9])  # evicts the least recently used: the child [2, 2] before its parent [1, 1]
    assert cache.match([1, 1, 2, 2]) == 1


def test_release_twice_is_an_error():
    cache = PrefixCache(2, 4)
    lease = cache.acquire([1, 2])
    cache.release(lease)
    with pytest.raises(ValueError, match="released twice"):
        cache.release(lease)


@settings(max_examples=60, deadline=None)
@given(prompts=st.lists(st.lists(st.integers(0, 2), min_size=0, max_size=24), min_size=1, max_size=30),
       capacity=st.integers(1, 12), hold=st.lists(st.booleans(), min_size=30, max_size=30))
def test_cache_never_exceeds_its_limit_nor_returns_a_block_it_did_not_store(prompts, capacity, hold):
    cache = PrefixCache(block_size=3, capacity_blocks=capacity)
    stored_prefixes, leases = set(), []
    for prompt, keep in zip(prompts, hold):
        hit = cache.match(prompt)
        # every hit block was stored earlier, under exactly this prefix
        for i in range(hit):
            assert tuple(prompt[:3 * (i + 1)]) in stored_prefixes
            assert cache.get(cache.block_keys(prompt)[i]) == tuple(prompt[3 * i:3 * (i + 1)])
        lease = cache.acquire(prompt)
        assert lease.hit_blocks == hit and len(cache) <= capacity
        for i, key in enumerate(lease.keys):
            stored_prefixes.add(tuple(prompt[:3 * (i + 1)]))
            assert cache.refcount(key) >= 1
        (leases.append(lease) if keep else cache.release(lease))
    for lease in leases:
        cache.release(lease)
    assert all(cache.refcount(k) == 0 for k in list(cache._blocks))
    with pytest.raises(KeyError):
        cache.get(b"never stored")


def test_chat_workload_shares_prefixes_and_replay_prices_them():
    prompts = chat_workload(n_conversations=10, turns=3, n_system_prompts=2, system_len=256, seed=1)
    assert len(prompts) == 30 and chat_workload(10, 3, 2, 256, seed=1)[5].tolist() == prompts[5].tolist()
    big = replay_prefix_cache("llama-3-8b", prompts, block_size=16, capacity_blocks=100_000)
    small = replay_prefix_cache("llama-3-8b", prompts, block_size=16, capacity_blocks=16)
    assert big.hit_rate > small.hit_rate > 0 and small.peak_blocks <= 16
    assert 0 < big.prefill_flops_saved < big.prefill_flops
    assert big.tokens_reused % 16 == 0 and big.prompt_tokens == sum(len(p) for p in prompts)
    # a prompt sent twice reuses all but its last token's work
    again = replay_prefix_cache("llama-3-8b", [np.arange(64), np.arange(64)], 16, 100)
    assert again.tokens_reused == 63
    per_block = 16 * r.kv_bytes_per_token("llama-3-8b")
    assert kv_blocks("llama-3-8b", 10 * per_block + 1) == 10
    with pytest.raises(ValueError, match="block_size"):
        PrefixCache(block_size=0)
