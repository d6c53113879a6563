"""Linear-chain CRF: forward algorithm and Viterbi against brute-force enumeration."""

from __future__ import annotations

import itertools

import pytest
import torch

from rnnkit.layers.crf import LinearChainCRF, scheme_constraints


def brute_force(crf: LinearChainCRF, emissions: torch.Tensor, length: int):
    """Every tag path of one sequence: (log Z, best score, best path)."""
    K = crf.num_tags
    scores = {}
    for path in itertools.product(range(K), repeat=length):
        tags = torch.tensor(path)
        s = crf.start[tags[0]] + crf.end[tags[-1]] + emissions[torch.arange(length), tags].sum()
        s = s + sum(crf.transitions[tags[t - 1], tags[t]] for t in range(1, length))
        scores[path] = s
    values = torch.stack(list(scores.values()))
    best = max(scores, key=lambda p: float(scores[p]))
    return torch.logsumexp(values, 0), values.max(), list(best)


@torch.no_grad()
@pytest.mark.parametrize("seed", range(4))
def test_log_partition_and_viterbi_equal_brute_force(seed):
    torch.manual_seed(seed)
    K, T = 3, 5
    crf = LinearChainCRF(K)
    with torch.no_grad():
        for p in crf.parameters():
            p.normal_()
    emissions = torch.randn(3, T, K)
    lengths = torch.tensor([5, 3, 1])
    mask = torch.arange(T)[None, :] < lengths[:, None]
    log_z = crf.log_partition(emissions, mask)
    paths, best = crf.decode(emissions, mask)
    for b, n in enumerate(lengths.tolist()):
        z, top, path = brute_force(crf, emissions[b, :n], n)
        torch.testing.assert_close(log_z[b], z)
        torch.testing.assert_close(best[b], top)
        assert paths[b, :n].tolist() == path
        assert torch.all(paths[b, n:] == 0)


def test_score_of_a_path_matches_the_definition():
    crf = LinearChainCRF(4)
    emissions = torch.randn(1, 3, 4)
    tags = torch.tensor([[2, 0, 3]])
    expect = (
        crf.start[2]
        + emissions[0, 0, 2]
        + crf.transitions[2, 0]
        + emissions[0, 1, 0]
        + crf.transitions[0, 3]
        + emissions[0, 2, 3]
        + crf.end[3]
    )
    torch.testing.assert_close(crf.score(emissions, tags), expect.view(1))


def test_nll_is_non_negative_and_trains_towards_the_gold_path():
    torch.manual_seed(0)
    crf = LinearChainCRF(3)
    emissions = torch.randn(2, 4, 3, requires_grad=True)
    tags = torch.tensor([[0, 1, 2, 1], [2, 2, 0, 0]])
    opt = torch.optim.SGD([emissions, *crf.parameters()], lr=0.5)
    first = None
    for _ in range(50):
        loss = crf.nll(emissions, tags)
        first = first if first is not None else loss.item()
        assert loss.item() >= 0
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.1 * first
    assert crf.decode(emissions)[0].tolist() == tags.tolist()


def test_padding_changes_nothing():
    crf = LinearChainCRF(3)
    e = torch.randn(1, 6, 3)
    mask = torch.tensor([[True] * 4 + [False] * 2])
    e2 = e.clone()
    e2[0, 4:] = 50.0
    tags = torch.tensor([[1, 2, 0, 1, 2, 2]])
    torch.testing.assert_close(crf.nll(e, tags, mask), crf.nll(e2, tags, mask))
    assert crf.decode(e, mask)[0].tolist() == crf.decode(e2, mask)[0].tolist()


def test_bad_input():
    crf = LinearChainCRF(3)
    with pytest.raises(ValueError, match=r"expected emissions \(B, T, 3\), got \(2, 4, 5\)"):
        crf.log_partition(torch.randn(2, 4, 5))
    with pytest.raises(ValueError, match="at least one valid step"):
        crf.decode(torch.randn(2, 4, 3), torch.tensor([[True] * 4, [False] * 4]))
    with pytest.raises(ValueError, match="tags must be"):
        crf.score(torch.randn(2, 4, 3), torch.zeros(2, 3, dtype=torch.long))


@pytest.mark.parametrize(
    ("row", "shown"),
    [([1, 0, 1, 0], r"\[1, 0, 1, 0\]"), ([0, 1, 1, 1], r"\[0, 1, 1, 1\]"), ([1, 1, 0, 1], r"\[1, 1, 0, 1\]")],
)
def test_a_mask_that_is_not_a_prefix_is_refused(row, shown):
    crf = LinearChainCRF(3)
    e, tags = torch.randn(3, 4, 3), torch.zeros(3, 4, dtype=torch.long)
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0], row])
    match = rf"mask must be a prefix of ones per sequence \(right-padded\); row 2 is {shown}"
    for call in (
        lambda m: crf.nll(e, tags, m),
        lambda m: crf.score(e, tags, m),
        lambda m: crf.log_partition(e, m),
        lambda m: crf.decode(e, m),
    ):
        with pytest.raises(ValueError, match=match):
            call(mask)
        with pytest.raises(ValueError, match=match):
            call(mask.bool())


def test_a_long_bad_mask_row_is_shown_shortened():
    crf = LinearChainCRF(2)
    mask = torch.ones(1, 30, dtype=torch.bool)
    mask[0, 1] = False
    with pytest.raises(ValueError, match=r"row 0 is \[1, 0, 1, 1, 1, 1, 1, 1, \.\.\.\]"):
        crf.decode(torch.randn(1, 30, 2), mask)


def test_iob2_constraints_forbid_o_then_inside_and_stay_forbidden_through_training():
    tags = ["O", "B-LOC", "I-LOC", "B-PER", "I-PER"]
    trans, start, end = scheme_constraints(tags)
    assert not trans[0, 2] and not trans[1, 4] and trans[1, 2] and trans[2, 2] and trans[2, 0]
    assert start.tolist() == [True, True, False, True, False] and end.all()
    crf = LinearChainCRF(5)
    crf.constrain(trans, start, end)
    emissions = torch.zeros(1, 3, 5)
    emissions[0, :, 2] = 5.0  # the network wants I-LOC everywhere, which may not start an entity
    path = crf.decode(emissions)[0][0].tolist()
    assert path[0] != 2 and all(trans[a, b] for a, b in itertools.pairwise(path))
    before = crf.transitions.detach().clone()
    gold = torch.tensor([[0, 2, 2]])  # invalid gold: the forbidden scores must still not move
    crf.nll(torch.randn(1, 3, 5), gold).backward()
    assert crf.transitions.grad[0, 2] == 0 and crf.start.grad[2] == 0
    assert torch.equal(crf.transitions.detach()[~trans], before[~trans])


def test_bioes_constraints_and_other_tag_sets():
    trans, start, end = scheme_constraints(["O", "B-X", "I-X", "E-X", "S-X"])
    assert not trans[1, 0] and not trans[1, 4] and trans[1, 2] and trans[1, 3] and trans[3, 0] and not trans[0, 3]
    assert end.tolist() == [True, False, False, True, True] and start.tolist() == [True, True, False, False, True]
    assert scheme_constraints(["NN", "VB", "DT"]) is None  # POS tags: no chunk scheme, no constraints
    assert scheme_constraints(["O", "I-X"]) is None  # IOB1-like tag set without B-: left free
