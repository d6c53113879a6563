"""Readers on small files written here, and on ../shared/data when it is there."""

from __future__ import annotations

import gzip

import pytest

from rnnkit.data.readers import (
    looks_like_label_lines,
    read_conll,
    read_label_lines,
    read_labelled_csv,
    read_labelled_files,
    read_parallel,
    read_text,
)
from rnnkit.errors import cli_style

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


def test_label_lines_fasttext_and_first_token(tmp_path):
    (tmp_path / "ft.txt").write_text(
        "__label__pos great  film\n\n__label__neg __label__dull slow and long \n__label__pos\tfun\n"
    )
    texts, labels = read_label_lines(tmp_path / "ft.txt")
    assert texts == ["great  film", "slow and long", "fun"] and labels == ["pos", "neg", "pos"]  # first label only
    (tmp_path / "sst.txt").write_text("3 a stirring , funny film\n1 dull\r\n")
    assert read_label_lines(tmp_path / "sst.txt") == (["a stirring , funny film", "dull"], ["3", "1"])
    (tmp_path / "words.txt").write_text("pos great film\nneg\tbad\n")
    assert read_label_lines(tmp_path / "words.txt") == (["great film", "bad"], ["pos", "neg"])
    with gzip.open(tmp_path / "ft.txt.gz", "wt", encoding="utf-8") as f:
        f.write("__label__pos caf\u00e9\n")
    assert read_label_lines(tmp_path / "ft.txt.gz") == (["caf\u00e9"], ["pos"])


def test_label_lines_bad_lines_name_file_and_line(tmp_path):
    (tmp_path / "a.txt").write_text("pos great film\n\nneg\n")
    with pytest.raises(ValueError, match=r"a.txt:3: label 'neg' has no text; expected 'label text' on each line"):
        read_label_lines(tmp_path / "a.txt")
    (tmp_path / "b.txt").write_text("__label__pos good\n__label__ bad\n")
    with pytest.raises(ValueError, match=r"b.txt:2: empty label after '__label__'"):
        read_label_lines(tmp_path / "b.txt")
    (tmp_path / "c.txt").write_text("__label__pos good\nneg bad\n")
    with pytest.raises(ValueError, match=r"c.txt:2: expected '__label__<label> text' like line 1"):
        read_label_lines(tmp_path / "c.txt")
    (tmp_path / "d.txt").write_text("__label__pos __label__neg\n")
    with pytest.raises(ValueError, match=r"d.txt:1: label 'pos' has no text"):
        read_label_lines(tmp_path / "d.txt")
    (tmp_path / "e.txt").write_text("\n \n")
    with pytest.raises(ValueError, match=r"e.txt: no labelled lines"):
        read_label_lines(tmp_path / "e.txt")
    (tmp_path / "l1.txt").write_bytes(b"pos caf\xe9\n")
    with pytest.raises(ValueError, match=r"l1.txt:1: not valid utf-8 \(byte 0xe9\); .* e\.g\. encoding='latin-1'"):
        read_label_lines(tmp_path / "l1.txt")
    with cli_style(), pytest.raises(ValueError, match=r"l1.txt:1: .*file's encoding, e\.g\. --encoding latin-1"):
        read_label_lines(tmp_path / "l1.txt")
    assert read_label_lines(tmp_path / "l1.txt", encoding="latin-1") == (["caf\u00e9"], ["pos"])


def test_looks_like_label_lines(tmp_path):
    cases = {
        "ft.txt": "__label__pos great film\n__label__neg dull\n",
        "sst.txt": "".join(f"{i % 5} sentence number {i} , with a comma or two , {',' * (i % 3)}\n" for i in range(50)),
        "words.txt": "pos great film\nneg bad , slow\npos fun\nneg long\n" * 3,
        "two.txt": "a gorgeous, witty, seductive movie.\nthe plot is a tired retread.\n",  # prose, too short to tell
        "book.txt": "".join(f"{w} went to the market and bought {i} apples.\n" for i, w in enumerate("ABCDEFGHIJK")),
        "r.csv": 'review,stars\n"great, fun film",5\n"dull",1\n"slow",1\n',
        "r.tsv": "label\ttext\npos\tgreat film\nneg\tdull\npos\tfun\n",
        "empty.txt": "\n\n",
        "one.txt": "pos\n",
    }
    for name, text in cases.items():
        (tmp_path / name).write_text(text)
    found = {name: looks_like_label_lines(tmp_path / name) for name in cases}
    assert found == {
        "ft.txt": True,
        "sst.txt": True,
        "words.txt": True,
        "two.txt": False,
        "book.txt": False,
        "r.csv": False,
        "r.tsv": False,
        "empty.txt": False,
        "one.txt": False,
    }
    (tmp_path / "l1.txt").write_bytes(b"__label__pos caf\xe9\n")
    assert looks_like_label_lines(tmp_path / "l1.txt")  # detection never fails on the encoding
    assert looks_like_label_lines(tmp_path / "ft.txt", prefixed_only=True)
    assert not looks_like_label_lines(tmp_path / "sst.txt", prefixed_only=True)


def test_hints_for_columns_and_encoding_use_the_callers_words(tmp_path):
    (tmp_path / "r.csv").write_text('review,stars\n"great film",5\n')
    with pytest.raises(ValueError, match=r"name the columns with text_column and label_column"):
        read_labelled_csv(tmp_path / "r.csv", "review", "label")
    with cli_style(), pytest.raises(ValueError, match=r"name the columns with --text and --label"):
        read_labelled_csv(tmp_path / "r.csv", "review", "label")
    (tmp_path / "x.pos").write_bytes(b"caf\xe9\n")
    with pytest.raises(ValueError, match=r"x.pos:1: .*e\.g\. encoding='latin-1'"):
        read_labelled_files([tmp_path / "x.pos"])
    with cli_style(), pytest.raises(ValueError, match=r"x.pos:1: .*e\.g\. --encoding latin-1"):
        read_labelled_files([tmp_path / "x.pos"])
