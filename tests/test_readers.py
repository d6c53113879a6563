"""Readers on small files written here, and on ../shared/data when it is there."""

from __future__ import annotations

import gzip

import pytest

from rnnkit.data.readers import read_conll, read_labelled_csv, read_labelled_files, read_parallel, read_text

CONLL = "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\nrejects VBZ B-VP O\n\nPeter NNP B-NP B-PER\n"


def test_conll_sentences_and_columns(tmp_path):
    (tmp_path / "a.conll").write_text(CONLL)
    sents = read_conll(tmp_path / "a.conll")
    assert [s.tokens for s in sents] == [["EU", "rejects"], ["Peter"]]
    assert [s.tags for s in sents] == [["B-ORG", "O"], ["B-PER"]]
    assert read_conll(tmp_path / "a.conll", tag_column=1)[0].tags == ["NNP", "VBZ"]
    (tmp_path / "t.conll").write_text("EU\tB-ORG\nrejects\tO\n")
    assert read_conll(tmp_path / "t.conll", separator="\t")[0].tags == ["B-ORG", "O"]


def test_ragged_conll_line_names_file_and_line(tmp_path):
    (tmp_path / "bad.conll").write_text("EU NNP B-NP B-ORG\nrejects VBZ O\n")
    with pytest.raises(ValueError, match=r"bad.conll:2: expected 4 columns like the first token line, got 3"):
        read_conll(tmp_path / "bad.conll")
    (tmp_path / "empty.conll").write_text("\n\n")
    with pytest.raises(ValueError, match="no sentences found"):
        read_conll(tmp_path / "empty.conll")


def test_parallel_gz_and_mismatch(tmp_path):
    with gzip.open(tmp_path / "a.de.gz", "wt", encoding="utf-8") as f:
        f.write("Ein Hund.\nZwei Männer.\n")
    (tmp_path / "a.en").write_text("A dog.\nTwo men.\n")
    assert read_parallel(tmp_path / "a.de.gz", tmp_path / "a.en") == [
        ("Ein Hund.", "A dog."),
        ("Zwei Männer.", "Two men."),
    ]
    (tmp_path / "b.en").write_text("A dog.\n")
    with pytest.raises(ValueError, match=r"a.de.gz has 2 lines, .*b.en has 1"):
        read_parallel(tmp_path / "a.de.gz", tmp_path / "b.en")


def test_labelled_csv_and_files(tmp_path):
    (tmp_path / "r.csv").write_text('review,stars\n"great film",5\n"dull",1\n')
    assert read_labelled_csv(tmp_path / "r.csv", "review", "stars") == (["great film", "dull"], ["5", "1"])
    with pytest.raises(ValueError, match=r"unknown column\(s\) \['label'\]; the file has \['review', 'stars'\]"):
        read_labelled_csv(tmp_path / "r.csv", "review", "label")
    # 0x85 is "..." in cp1252 and NEL in Latin-1; it must not split the line (the MR files contain it)
    (tmp_path / "x.pos").write_bytes(b"caf\xe9 good\x85\n")
    (tmp_path / "x.neg").write_bytes(b"bad\nworse\n")
    texts, labels = read_labelled_files([tmp_path / "x.pos", tmp_path / "x.neg"], encoding="latin-1")
    assert texts == ["café good\x85", "bad", "worse"] and labels == ["pos", "neg", "neg"]
    with pytest.raises(ValueError, match=r"x.pos:1: not valid utf-8 \(byte 0xe9\); pass the file's encoding"):
        read_labelled_files([tmp_path / "x.pos"])


def test_empty_and_missing_files(tmp_path):
    (tmp_path / "e.txt").write_text("")
    with pytest.raises(ValueError, match="e.txt: the file is empty"):
        read_text(tmp_path / "e.txt")
    with pytest.raises(ValueError, match="no such file"):
        read_text(tmp_path / "nope.txt")


def test_real_conll2003_counts(data_dir):
    counts = [len(read_conll(data_dir / "conll2003" / f"{p}.txt")) for p in ("train", "valid", "test")]
    assert counts == [14041, 3250, 3453]


def test_real_multi30k_counts(data_dir):
    d = data_dir / "multi30k_de_en"
    counts = [len(read_parallel(d / f"{p}.de.gz", d / f"{p}.en.gz")) for p in ("train", "val", "test_2016_flickr")]
    assert counts == [29000, 1014, 1000]


def test_real_mr_counts(data_dir):
    d = data_dir / "mr_polarity"
    _texts, labels = read_labelled_files([d / "rt-polarity.pos", d / "rt-polarity.neg"], encoding="latin-1")
    assert labels.count("pos") == 5331 and labels.count("neg") == 5331
