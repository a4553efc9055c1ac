"""Mounting datasets on a node: typed columns for computing, ids kept as text, open data downloaded unchanged."""

from __future__ import annotations

import pytest

from provider.datasets import DatasetError, Mount, load


def _csv(tmp_path, text: str):
    path = tmp_path / "data.csv"
    path.write_text(text)
    return str(path)


def test_ids_stay_text_and_numbers_become_floats(tmp_path):
    dataset = load(Mount("ast_1", "d", 2, "csv", _csv(tmp_path, "id,value\n0123,3\n0456,4.5\n"), id_column="id"))
    assert list(dataset.columns["id"]) == ["0123", "0456"]
    assert list(dataset.columns["value"]) == [3.0, 4.5]
    with pytest.raises(DatasetError):
        dataset.open_data()  # grade 2: no download


def test_open_data_downloads_exactly_as_mounted(tmp_path):
    text = "station,count,note\n007,3,\n010,12,late\n"
    dataset = load(Mount("ast_2", "flow", 1, "csv", _csv(tmp_path, text)))
    assert dataset.open_data() == text
    assert list(dataset.columns["count"]) == [3.0, 12.0]


def test_a_missing_file_or_unknown_column_is_refused(tmp_path):
    with pytest.raises(DatasetError):
        load(Mount("ast_3", "none", 2, "csv", str(tmp_path / "missing.csv")))
    dataset = load(Mount("ast_4", "d", 2, "csv", _csv(tmp_path, "a\n1\n")))
    with pytest.raises(DatasetError):
        dataset.select(["b"])


def test_a_node_without_its_key_refuses_to_start_and_creates_nothing(tmp_path):
    from click.testing import CliRunner

    from provider.cli import node_group

    config = tmp_path / "node.toml"
    config.write_text('participant_id = "prt_x"\nkey_file = "missing.key"\nexchange_public_key = "AAAA"\n'
                      'issuer = "pdx.local/ledger"\nstate_dir = "state"\n')
    result = CliRunner().invoke(node_group, ["serve", "--config", str(config)])
    assert result.exit_code != 0 and "cannot start the node" in result.output
    assert not (tmp_path / "state").exists()


def test_parquet_and_sql_mounts_read_the_same_columns(tmp_path):
    import pandas as pd
    from sqlalchemy import create_engine

    frame = pd.DataFrame({"uscc": ["0001", "0002"], "vat": [1.5, 2.5]})
    frame.to_parquet(tmp_path / "d.parquet")
    engine = create_engine(f"sqlite:///{tmp_path / 'd.sqlite3'}")
    frame.to_sql("filings", engine, index=False)
    engine.dispose()
    from_parquet = load(Mount("ast_p", "p", 2, "parquet", str(tmp_path / "d.parquet"), id_column="uscc"))
    from_sql = load(Mount("ast_s", "s", 2, "sql", f"sqlite:///{tmp_path / 'd.sqlite3'}", table="filings",
                          id_column="uscc"))
    for dataset in (from_parquet, from_sql):
        assert list(dataset.columns["uscc"]) == ["0001", "0002"]
        assert list(dataset.columns["vat"]) == [1.5, 2.5]
    with pytest.raises(DatasetError):
        load(Mount("ast_x", "x", 2, "sql", f"sqlite:///{tmp_path / 'd.sqlite3'}", table="missing"))
