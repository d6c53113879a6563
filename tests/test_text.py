"""Tokenisers and the vocabulary: round trips, unknown tokens, frequency and size limits, JSON."""

from __future__ import annotations

import pytest

from rnnkit.data.text import CharTokenizer, SubwordTokenizer, Vocab, WordTokenizer, make_tokenizer, tokenizer_from_json


def test_char_round_trip():
    tok = CharTokenizer()
    text = "ROMEO:\nBut soft, what light?"
    vocab = Vocab.build([tok.tokenize(text)])
    ids = vocab.encode(tok.tokenize(text), bos=True, eos=True)
    assert ids[0] == vocab.bos and ids[-1] == vocab.eos
    assert tok.detokenize(vocab.decode(ids)) == text


def test_word_tokenizer_and_unknown_tokens():
    tok = WordTokenizer(lowercase=True)
    assert tok.tokenize("It's a well-made film, isn't it?") == [
        "it's",
        "a",
        "well-made",
        "film",
        ",",
        "isn't",
        "it",
        "?",
    ]
    assert tok.detokenize(["a", "film", ",", "really", "!"]) == "a film, really!"
    vocab = Vocab.build([tok.tokenize("the film the end")])
    assert vocab.encode(["the", "dragon"]) == [vocab.stoi["the"], vocab.unk]
    assert WordTokenizer(split=True).tokenize("EU rejects German") == ["EU", "rejects", "German"]


def test_min_freq_max_size_and_order():
    vocab = Vocab.build([["a", "b", "a", "c", "a", "b", "d"]], min_freq=2)
    assert vocab.itos == ["<pad>", "<unk>", "<bos>", "<eos>", "a", "b"]
    assert len(Vocab.build([["a", "b", "a", "c"]], max_size=5)) == 5
    with pytest.raises(ValueError, match="max_size must be >= 4"):
        Vocab.build([["a"]], max_size=3)


def test_vocab_json_round_trip(tmp_path):
    vocab = Vocab.build([list("héllo wörld")])
    vocab.save(tmp_path / "v.json")
    again = Vocab.load(tmp_path / "v.json")
    assert again.itos == vocab.itos and len(again) == len(vocab)
    with pytest.raises(ValueError, match="outside"):
        vocab.decode([999])
    with pytest.raises(ValueError, match="first four tokens"):
        Vocab(["a", "b"])


def test_subword_tokenizer_round_trips_through_json():
    texts = ["the cat sat on the mat", "the dog sat on the log", "cats and dogs"] * 20
    tok = make_tokenizer("subword", texts=texts, vocab_size=60)
    assert isinstance(tok, SubwordTokenizer)
    pieces = tok.tokenize("the cats sat")
    assert tok.detokenize(pieces) == "the cats sat"
    again = tokenizer_from_json(tok.to_json())
    assert again.tokenize("the cats sat") == pieces
    vocab = Vocab.build([tok.tokenize(t) for t in texts])
    assert vocab.unk not in vocab.encode(pieces)


def test_unknown_level():
    with pytest.raises(ValueError, match="unknown tokenizer level 'bytes'"):
        make_tokenizer("bytes")


def test_auto_subword_vocab_grows_with_the_corpus_within_bounds():
    from rnnkit.data.text import auto_subword_vocab

    sizes = [auto_subword_vocab(w) for w in (0, 10_000, 100_000, 740_000, 10_000_000, 10**9)]
    assert sizes == sorted(sizes) and sizes[0] == 1_000 and sizes[-1] == 32_000
    assert sizes[3] == 7_000  # Multi30k's two sides together
    assert all(s % 500 == 0 for s in sizes)
