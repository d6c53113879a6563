"""Config dataclasses round-trip through dicts, JSON and YAML; bad keys and types name themselves."""

from __future__ import annotations

import pytest

from rnnkit import EncoderDecoderConfig, HeadConfig, InputConfig, ManyToOneConfig, RNNConfig
from rnnkit.config import from_dict, load_config, replace, save_config, to_dict


def test_nested_round_trip(tmp_path):
    cfg = ManyToOneConfig(
        InputConfig(vocab_size=50, embedding_dim=8),
        RNNConfig(cell="gru", chrono=30, cell_options={"scan": "log"}),
        "attention",
        HeadConfig(kind="regression", horizon=3, quantiles=(0.1, 0.5, 0.9)),
    )
    assert from_dict(ManyToOneConfig, to_dict(cfg)) == cfg
    for name in ("c.json", "c.yaml"):
        save_config(cfg, tmp_path / name)
        assert load_config(ManyToOneConfig, tmp_path / name) == cfg


def test_replace_with_dotted_keys():
    cfg = replace(EncoderDecoderConfig(), **{"encoder.hidden_size": 7, "attention": "dot"})
    assert cfg.encoder.hidden_size == 7 and cfg.attention == "dot"
    with pytest.raises(ValueError, match="unknown option 'hiden'"):
        replace(cfg, hiden=3)


def test_errors_name_the_key(tmp_path):
    with pytest.raises(ValueError, match=r"RNNConfig: unknown option\(s\) \['hidden'\]"):
        from_dict(RNNConfig, {"hidden": 3})
    with pytest.raises(ValueError, match=r"ManyToOneConfig.rnn.hidden_size: expected int, got str"):
        from_dict(ManyToOneConfig, {"rnn": {"hidden_size": "big"}})
    with pytest.raises(ValueError, match="does not exist"):
        load_config(RNNConfig, tmp_path / "missing.yaml")
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="not valid JSON"):
        load_config(RNNConfig, tmp_path / "bad.json")
    with pytest.raises(ValueError, match="give exactly one of input_size"):
        from_dict(InputConfig, {})
