"""What a tagger reads of a word besides its id: casing classes, normalised lookups, the packed layout."""

from __future__ import annotations

import torch

from rnnkit.data.text import Vocab
from rnnkit.data.word_features import CASINGS, CharVocab, WordEncoder, casing, normalise, pad_words


def test_casing_classes():
    got = {w: CASINGS[casing(w)] for w in ["paris", "EU", "Paris", "McDonald", "1996", "1996-08-22", ",", "AT&T"]}
    assert got == {
        "paris": "lower",
        "EU": "upper",
        "Paris": "title",
        "McDonald": "mixed",
        "1996": "numeric",
        "1996-08-22": "has_digit",
        ",": "punct",
        "AT&T": "upper",
    }


def test_normalise():
    assert normalise("Paris", lowercase=True, digits=True) == "paris"
    assert normalise("1996-08-22", lowercase=False, digits=True) == "0000-00-00"
    assert normalise("Paris", lowercase=False, digits=False) == "Paris"


def test_encoder_packs_words_casing_and_characters():
    vocab = Vocab.build([["paris", "is", "big"]])
    chars = CharVocab.build(["Paris", "is", "big"])
    enc = WordEncoder(vocab, lowercase=True, digits=True, chars=chars, casing=True, max_chars=4)
    x = enc.encode(["Paris", "is", "Enormous"])
    assert x.shape == (3, 2 + 4)  # word id, casing, max_chars characters (longer words are cut)
    assert x[:, 0].tolist() == [vocab.stoi["paris"], vocab.stoi["is"], Vocab.unk]
    assert [CASINGS[c] for c in x[:, 1].tolist()] == ["title", "lower", "title"]
    assert x[1, 2:].tolist() == [chars.stoi["i"], chars.stoi["s"], 0, 0]
    assert x[2, 2] == CharVocab.unk  # "E" was never seen
    plain = WordEncoder(vocab, lowercase=True)
    assert plain.encode(["Paris"]) == [vocab.stoi["paris"]]


def test_pad_words_pads_time_and_character_columns():
    a, b = torch.ones(3, 5, dtype=torch.long), torch.full((1, 3), 2, dtype=torch.long)
    x, lengths = pad_words([a, b])
    assert x.shape == (2, 3, 5) and lengths.tolist() == [3, 1]
    assert x[1, 0].tolist() == [2, 2, 2, 0, 0] and x[1, 1:].abs().sum() == 0
    ids, lengths = pad_words([[4, 5], [6]])
    assert ids.tolist() == [[4, 5], [6, 0]] and lengths.tolist() == [2, 1]
