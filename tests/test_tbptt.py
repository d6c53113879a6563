"""TBPTT: chunked runs equal one pass, state is carried, gradients stop at chunk borders."""

from __future__ import annotations

import pytest
import torch

from rnnkit import Recurrent, detach_state, tbptt


@pytest.mark.parametrize("kind", ["lstm", "mingru", "layernorm_lstm"])
def test_chunks_concatenate_to_one_pass(kind):
    layer = Recurrent(kind, 3, 6, num_layers=2)
    x = torch.randn(2, 23, 3)
    whole, s_whole = layer(x)
    chunks = list(tbptt(layer, x, timestep=5))
    assert [(c.start, c.stop) for c in chunks] == [(0, 5), (5, 10), (10, 15), (15, 20), (20, 23)]
    torch.testing.assert_close(torch.cat([c.output for c in chunks], 1), whole, atol=1e-5, rtol=1e-5)
    for a, b in zip(chunks[-1].state, s_whole):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_gradients_stop_at_chunk_borders():
    layer = Recurrent("gru", 3, 6)
    x = torch.randn(2, 12, 3, requires_grad=True)
    chunks = tbptt(layer, x, timestep=4)
    first = next(chunks)
    second = next(chunks)
    assert first.state[0].requires_grad
    (reach,) = torch.autograd.grad(second.output.sum(), first.state[0], retain_graph=True, allow_unused=True)
    assert reach is None, "chunk 2's output must not depend on chunk 1's (attached) state"
    second.output.sum().backward()
    assert torch.all(x.grad[:, :4] == 0), "the loss of chunk 2 must not reach chunk 1's inputs"
    assert torch.any(x.grad[:, 4:8] != 0)


def test_state_carries_across_chunks():
    layer = Recurrent("lstm", 3, 6)
    x = torch.randn(2, 8, 3)
    chunks = list(tbptt(layer, x, timestep=4))
    fresh, _ = layer(x[:, 4:])
    assert not torch.allclose(chunks[1].output, fresh), "chunk 2 must start from chunk 1's state, not zeros"


def test_targets_and_lengths_are_sliced_per_chunk():
    layer = Recurrent("lstm", 3, 6)
    x, y = torch.randn(3, 10, 3), torch.arange(30.0).view(3, 10)
    lengths = torch.tensor([10, 6, 2])
    chunks = list(tbptt(layer, x, timestep=4, targets=y, lengths=lengths))
    assert [c.lengths.tolist() for c in chunks] == [[4, 4, 2], [4, 2, 0], [2, 0, 0]]
    torch.testing.assert_close(chunks[1].targets, y[:, 4:8])
    whole, state = layer(x, lengths=lengths)
    torch.testing.assert_close(torch.cat([c.output for c in chunks], 1), whole, atol=1e-5, rtol=1e-5)
    for a, b in zip(chunks[-1].state, state):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_training_loop_with_tbptt_learns():
    """A per-chunk optimizer step, as a TBPTT training loop does, runs and reduces the loss on a smooth signal."""
    torch.manual_seed(0)
    layer = Recurrent("lstm", 1, 16)
    head = torch.nn.Linear(16, 1)
    opt = torch.optim.Adam([*layer.parameters(), *head.parameters()], lr=1e-2)
    t = torch.linspace(0, 40, 401)
    series = torch.sin(t).view(1, -1, 1).repeat(4, 1, 1)
    x, y = series[:, :-1], series[:, 1:]
    losses = []
    for _ in range(15):
        epoch = 0.0
        for chunk in tbptt(layer, x, timestep=50, targets=y):
            loss = torch.nn.functional.mse_loss(head(chunk.output), chunk.targets)
            opt.zero_grad()
            loss.backward()
            opt.step()
            epoch += loss.item()
        losses.append(epoch)
    assert losses[-1] < 0.1 * losses[0]


def test_bad_arguments():
    layer = Recurrent("lstm", 3, 6)
    with pytest.raises(ValueError, match="timestep must be >= 1"):
        next(tbptt(layer, torch.randn(2, 5, 3), timestep=0))
    with pytest.raises(ValueError, match=r"targets must start with \(B, T\) = \(2, 5\)"):
        next(tbptt(layer, torch.randn(2, 5, 3), timestep=2, targets=torch.randn(2, 4)))
    assert detach_state(None) is None
