"""The naive-Bayes bag of n-grams: distinct n-grams, counted weights, and its place in a classifier's scores."""

from __future__ import annotations

import math
import zlib

import pytest
import torch

from rnnkit import HeadConfig, InputConfig, ManyToOne, ManyToOneConfig, RNNConfig
from rnnkit.layers.ngrams import BagOfNgrams, NgramConfig, char_ngrams


def test_ids_are_the_distinct_words_and_pairs_of_each_text():
    bag = BagOfNgrams(10, 2, NgramConfig(n=2, buckets=1000, chars=None))
    x = torch.tensor([[4, 5, 4, 5, 0], [6, 0, 0, 0, 0]])
    ids = bag.ids(x, torch.tensor([4, 1]))
    first = sorted(i for i in ids[0].tolist() if i >= 0)
    assert [i for i in first if i < 10] == [4, 5]  # words, each once (padding never counted)
    assert len([i for i in first if i >= 10]) == 2  # pairs (4, 5) and (5, 4); the second (4, 5) is a repeat
    assert [i for i in ids[1].tolist() if i >= 0] == [6]


def test_weights_are_naive_bayes_log_count_ratios():
    bag = BagOfNgrams(8, 2, NgramConfig(n=1, buckets=1, alpha=1.0, chars=None))
    texts = [[4, 5], [4, 6], [7, 5]]  # class 1, class 1, class 0
    bag.fit(texts, [1, 1, 0])
    # word 4: in 2 of the class-1 texts, in none of class 0; the sums over all ids (+1 smoothing) normalise
    p = torch.ones(9)
    p[[4, 5, 6]] += torch.tensor([2.0, 1.0, 1.0])
    q = torch.ones(9)
    q[[7, 5]] += 1
    r = torch.log(p / p.sum()) - torch.log(q / q.sum())
    assert bag.weight[4, 1] == pytest.approx(float(r[4]) / 2) and bag.weight[4, 0] == pytest.approx(-float(r[4]) / 2)
    assert bag.weight[4, 1] > 0 > bag.weight[7, 1]
    scores = bag(torch.tensor([[4, 6]]), torch.tensor([2]))
    assert scores[0, 1] == pytest.approx(float(bag.weight[4, 1] + bag.weight[6, 1]))
    assert math.isclose(float(scores.sum()), 0.0, abs_tol=1e-6)  # two classes: opposite votes


def test_a_classifier_adds_the_bag_with_its_mix():
    cfg = ManyToOneConfig(
        InputConfig(vocab_size=12, embedding_dim=4),
        RNNConfig(hidden_size=4),
        "max",
        HeadConfig(num_classes=2),
        ngrams=NgramConfig(n=2, buckets=64),
    )
    model = ManyToOne(cfg).eval()
    model.ngrams.fit([[4, 5, 6], [7, 8]], [1, 0])
    x, lengths = torch.tensor([[4, 5, 6], [7, 8, 0]]), torch.tensor([3, 2])
    alone = model(x, lengths)
    model.mix.fill_(0.5)
    assert torch.allclose(model(x, lengths), alone + 0.5 * model.ngrams(x, lengths))
    with pytest.raises(ValueError, match="ngrams need token input and a classification head"):
        ManyToOneConfig(InputConfig(input_size=3), ngrams=NgramConfig())


def test_the_votes_are_summed_in_float64_then_rounded_once():
    """Hundreds of votes summed in float32 depend on the order of the sum (PyTorch's and onnxruntime's differ by
    ~1e-4 on a 400-word text); summed in float64 and rounded once, every runtime gives the same float32."""
    torch.manual_seed(0)
    bag = BagOfNgrams(1000, 3, NgramConfig(n=1, buckets=1, chars=None))
    bag.weight.normal_(0.0, 10.0)
    x = torch.randperm(999)[None, :] + 1  # 999 distinct words (0 is padding)
    want = bag.weight.double()[x[0]].sum(0).float()
    assert torch.equal(bag(x, torch.tensor([999]))[0], want)


def test_character_ngrams_of_a_word_framed_by_spaces():
    assert char_ngrams("fun", 3, 4) == [" fu", "fun", "un ", " fun", "fun "]
    assert char_ngrams("a", 4, 5) == [" a "]  # shorter than any n-gram: the framed word once
    assert char_ngrams("aaaa", 3, 3) == [" aa", "aaa", "aa "]  # each distinct n-gram once


def test_words_that_share_character_ngrams_share_evidence():
    """Trained on 'boring' (negative) and 'lovely' (positive) only, the bag scores the unseen words 'bored' and
    'loved' by the character n-grams they share with those; a words-only bag cannot tell them apart."""
    words = ["<pad>", "<unk>", "<bos>", "<eos>", "boring", "lovely", "bored", "loved", "film"]
    texts, labels = [[8, 4], [4], [8, 5], [5, 8]], [0, 0, 1, 1]
    x, lengths = torch.tensor([[6], [7]]), torch.tensor([1, 1])  # 'bored', 'loved'
    bag = BagOfNgrams(len(words), 2, NgramConfig(n=2, buckets=64, chars=(3, 5), char_buckets=4096))
    bag.set_words(words, specials=4)
    assert bag.char_ids[0].tolist() == [-1] * bag.char_ids.shape[1]  # <pad> and the other specials have none
    bag.fit(texts, labels)
    parts = bag(x, lengths), bag.parts(x, lengths)
    assert parts[1][0, 1, 0] > parts[1][0, 1, 1] and parts[1][1, 1, 1] > parts[1][1, 1, 0]  # chars: the right side
    assert parts[1][0, 0].tolist() == parts[1][1, 0].tolist()  # words: both unseen, the same (smoothing) votes
    assert torch.allclose(parts[0].double(), parts[1].sum(1))
    alone = BagOfNgrams(len(words), 2, NgramConfig(n=2, buckets=64, chars=None))
    alone.fit(texts, labels)
    assert alone(x, lengths)[0].tolist() == alone(x, lengths)[1].tolist()
    bag.scale_(1.0, 0.0)  # the characters' share set to nothing: the words' votes alone
    assert bag.parts(x, lengths)[:, 1].abs().max() == 0


def test_words_outside_the_vocabulary_keep_their_character_ngrams_for_the_bag():
    """An unseen word gets its own id after the vocabulary's: the network and the word votes read it as <unk>, the
    character votes as the word it is; the same word keeps its id; beyond ``unseen`` words it is plain <unk>."""
    words = ["<pad>", "<unk>", "<bos>", "<eos>", "boring", "lovely", "film"]
    bag = BagOfNgrams(len(words), 2, NgramConfig(n=2, buckets=64, chars=(3, 5), char_buckets=4096, unseen=2))
    bag.set_words(words, specials=4)
    bag.fit([[6, 4], [4], [6, 5], [5, 6]], [0, 0, 1, 1])
    assert bag.unseen_ids(["bored", "loved", "bored"]) == [7, 8, 7]
    assert bag.unseen_ids(["dull", "loved"]) == [1, 8]  # the third distinct word is over the limit: <unk>
    x, lengths = torch.tensor([[6, 7], [6, 8], [6, 1]]), torch.tensor([2, 2, 2])  # film bored / loved / <unk>
    assert bag.known(x).tolist() == [[6, 1], [6, 1], [6, 1]]
    parts = bag.parts(x, lengths)
    assert parts[0, 0].tolist() == parts[1, 0].tolist() == parts[2, 0].tolist()  # words and pairs: all <unk>
    assert parts[0, 1, 0] > parts[0, 1, 1] and parts[1, 1, 1] > parts[1, 1, 0]  # chars: bored -> 0, loved -> 1
    hashed = lambda w: {zlib.crc32(g.encode()) % 4096 + bag.char_start for g in char_ngrams(w, 3, 5)}  # noqa: E731
    got = {i for i in bag.ids(x[:1], lengths[:1])[0].tolist() if i >= bag.char_start}
    assert got == hashed("film") | hashed("bored")
    words_only = BagOfNgrams(len(words), 2, NgramConfig(n=2, buckets=64, chars=None))
    assert words_only.unseen_ids(["bored"]) == [1]  # without character n-grams there is nothing to keep


def test_the_network_reads_a_kept_unseen_word_as_unk():
    cfg = ManyToOneConfig(
        InputConfig(vocab_size=8, embedding_dim=4, padding_idx=0),
        RNNConfig(hidden_size=4),
        "max",
        HeadConfig(num_classes=2),
        ngrams=NgramConfig(n=2, buckets=64, char_buckets=512),
    )
    model = ManyToOne(cfg).eval().requires_grad_(False)
    model.ngrams.set_words(["<pad>", "<unk>", "<bos>", "<eos>", "dull", "fun", "film", "plot"], specials=4)
    model.ngrams.fit([[4, 6], [5, 7]], [0, 1])
    assert model.ngrams.unseen_ids(["funny"]) == [8]
    kept, unk, lengths = torch.tensor([[6, 8]]), torch.tensor([[6, 1]]), torch.tensor([2])
    assert torch.equal(model(kept, lengths), model(unk, lengths))  # mix 0: the network alone, the word is <unk>
    model.mix.fill_(1.0)
    assert float(model(kept, lengths)[0, 1] - model(unk, lengths)[0, 1]) > 0  # 'funny' shares 'fun' n-grams
