"""Batching: padding with lengths, buckets that keep every sample once, streams that keep token order."""

from __future__ import annotations

import pytest
import torch

from rnnkit.data.batching import BucketBatchSampler, StreamBatches, pad_collate, pad_sequences


def test_pad_sequences_and_collate():
    x, lengths = pad_sequences([[5, 6, 7], [8]], pad=0)
    assert x.tolist() == [[5, 6, 7], [8, 0, 0]] and lengths.tolist() == [3, 1]
    batch = [(torch.tensor([1, 2, 3]), torch.tensor([4, 5, 6]), 1), (torch.tensor([7]), torch.tensor([8]), 0)]
    x, xl, y, yl, label = pad_collate(batch, sequences=(0, 1))
    assert x.tolist() == [[1, 2, 3], [7, 0, 0]] and y.tolist() == [[4, 5, 6], [8, 0, 0]]
    assert xl.tolist() == [3, 1] == yl.tolist() and label.tolist() == [1, 0]
    x, xl, y = pad_collate([(torch.ones(2, 3), torch.tensor([1.0])), (torch.ones(4, 3), torch.tensor([2.0]))])
    assert x.shape == (2, 4, 3) and y.shape == (2, 1) and xl.tolist() == [2, 4]
    feats, _fl = pad_sequences([torch.ones(2, 3), torch.ones(4, 3)])
    assert feats.shape == (2, 4, 3) and feats[0, 2:].abs().sum() == 0
    with pytest.raises(ValueError, match="empty batch"):
        pad_sequences([])


def test_buckets_keep_every_sample_exactly_once_and_group_lengths():
    lengths = torch.randint(1, 100, (1003,), generator=torch.Generator().manual_seed(0)).tolist()
    sampler = BucketBatchSampler(lengths, batch_size=16, pool_batches=10, seed=1)
    batches = list(sampler)
    flat = [i for b in batches for i in b]
    assert sorted(flat) == list(range(1003)) and len(batches) == len(sampler)
    spread = sum(max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in batches) / len(batches)
    assert spread < 15, "buckets should hold similar lengths"
    sampler.set_epoch(1)
    assert list(sampler) != batches
    sampler.set_epoch(0)
    assert list(sampler) == batches, "the order is a function of (seed, epoch)"
    dropped = BucketBatchSampler(lengths, 16, drop_last=True)
    assert all(len(b) == 16 for b in dropped) and len(list(dropped)) == len(dropped)


def test_streams_keep_token_order_within_each_stream():
    ids = torch.arange(103)
    streams = StreamBatches(ids, batch_size=4, timestep=7)
    xs, ys = zip(*streams)
    x, y = torch.cat(xs, 1), torch.cat(ys, 1)
    assert x.shape == (4, 25) and len(streams) == 4
    for b in range(4):
        assert x[b].tolist() == list(range(b * 25, b * 25 + 25))
    torch.testing.assert_close(y, x + 1)
    with pytest.raises(ValueError, match="too few"):
        StreamBatches(torch.arange(3), batch_size=4, timestep=2)
