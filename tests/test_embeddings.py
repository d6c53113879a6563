"""Pretrained word vectors in the word2vec/GloVe text format: reading, one-line errors, loading into a model."""

from __future__ import annotations

import gzip

import pytest
import torch
from torch import nn

from rnnkit.data.embeddings import extend_vocab, load_vectors, read_embeddings
from rnnkit.data.text import Vocab


def test_glove_and_word2vec_layouts(tmp_path):
    glove = tmp_path / "glove.txt"
    glove.write_text("the 0.1 0.2 0.3\nParis 1 2 3\n")
    words, vectors = read_embeddings(glove)
    assert words == ["the", "Paris"] and vectors.shape == (2, 3) and vectors.dtype.name == "float32"
    w2v = tmp_path / "w2v.txt.gz"
    with gzip.open(w2v, "wt") as fh:
        fh.write("2 2\nthe 0.5 -1e-2\nNew York 3 4\n")  # the header; a word with a space inside
    words, vectors = read_embeddings(w2v)
    assert words == ["the", "New York"] and vectors[1].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("the 0.1 0.2 0.3\ncat 0.1 0.2\n", r"vec.txt:2: expected a word and 3 numbers like the first vector, got 2"),
        ("the 0.1 0.2 0.3\ncat 0.1 x 0.2\n", r"vec.txt:2: 'x' is not a number \(word 'cat'\)"),
        ("the 0.1 nan 0.3\n", r"vec.txt:1: the vector of 'the' has a value that is not finite"),
        ("\n\n", r"vec.txt: no word vectors"),
    ],
)
def test_bad_files_get_one_line_errors_naming_file_and_line(tmp_path, text, message):
    path = tmp_path / "vec.txt"
    path.write_text(text)
    with pytest.raises(ValueError, match=message) as info:
        read_embeddings(path)
    assert "\n" not in str(info.value)


def test_missing_file_names_the_option(tmp_path):
    with pytest.raises(ValueError, match="no such file.*embeddings"):
        read_embeddings(tmp_path / "nope.txt")


def test_vectors_extend_the_vocabulary_and_fill_the_embedding(tmp_path):
    path = tmp_path / "vec.txt"
    path.write_text("Paris 1 1\nthe 2 2\nLondon 3 3\nBerlin 4 4\n")
    vocab, vectors = extend_vocab(Vocab.build([["the", "cat"]]), path, str.lower, limit=2)
    assert vocab.itos[4:] == ["the", "cat", "paris", "london"]  # training words, then the file's first new ones
    emb = nn.Embedding(len(vocab), 2, padding_idx=0)
    assert load_vectors(emb, vocab.itos, vectors) == 3
    assert emb.weight[vocab.stoi["london"]].tolist() == [3.0, 3.0]
    assert emb.weight[vocab.stoi["the"]].tolist() == [2.0, 2.0]
    assert torch.equal(emb.weight[0], torch.zeros(2))  # padding stays zero
    with pytest.raises(ValueError, match="embedding size 5 differs from the vectors' 2"):
        load_vectors(nn.Embedding(len(vocab), 5), vocab.itos, vectors)
