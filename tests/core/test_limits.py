"""Limits on what is read (issue 21): a source file or a request body over a configured limit, in rows or bytes, is
refused with one line naming the limit and the setting; the other files go in, the server answers the rest."""

from __future__ import annotations

import json
import logging
import re

import pytest

from drs.core.errors import ConfigError
from drs.core.settings import load_config
from drs.data import ingest
from drs.history import files as file_store
from drs.history import runs as history
from drs.pipeline import run as pipeline
from drs.web.app import create_app
from tests.conftest import HEADER, write_config

BIG = "clients_big.csv"


def big_file(rows: int) -> str:
    return HEADER + "".join(f"zz{i:06d},{i % 90},{i % 900},{1 + i % 50},{i % 2}\n" for i in range(rows))


def test_a_source_file_over_max_source_bytes_is_rejected_unread_and_the_others_go_in(project, caplog) -> None:
    config = load_config(write_config(project, "limited.json", max_source_bytes=50_000))
    (config.input_folder / BIG).write_text(big_file(3000))
    size = (config.input_folder / BIG).stat().st_size
    with caplog.at_level(logging.ERROR, logger="ingestion"):
        result = ingest.ingest(config)
    said = f"is {size:,} bytes, more than the limit of 50,000 bytes (setting max_source_bytes): split it, or raise the limit"
    (big,) = result.rejected
    assert (big.name, big.reason, big.sha256, big.size) == (BIG, said, None, size)  # not read: no checksum, its size
    assert f"rejected {BIG}: {said}" in caplog.messages
    assert [f.name for f in result.accepted] == [f"clients_q{i}.csv" for i in range(1, 5)]
    assert not re.search(r"^zz\d{6},", config.final_data_csv.read_text(), re.MULTILINE)


def test_a_file_refused_for_its_size_is_not_judged_again_until_it_changes(project) -> None:
    config = load_config(write_config(project, "limited.json", max_source_bytes=50_000))
    (config.input_folder / BIG).write_text(big_file(3000))
    assert pipeline.run(config) == 0
    seen = [e for e in file_store.seen_files(config.history_db) if e["name"] == BIG]
    assert [(e["verdict"], e["reason"].split(" (")[0]) for e in seen] == [
        ("rejected", f"is {len(big_file(3000)):,} bytes, more than the limit of 50,000 bytes")
    ]
    assert pipeline.run(config) == 0
    assert history.runs(config.history_db)[-1]["outcome"] == "no new data"


def test_a_source_file_over_max_source_rows_is_rejected_naming_the_limit(project) -> None:
    config = load_config(write_config(project, "limited.json", max_source_rows=2600))
    (config.input_folder / BIG).write_text(big_file(2601))
    result = ingest.ingest(config)
    (big,) = result.rejected
    assert big.reason == "has 2,601 rows, more than the limit of 2,600 rows (setting max_source_rows): split it, or raise the limit"
    assert (big.rows_read, big.rows_rejected) == (2601, 2601)
    assert [f.rows_read for f in result.accepted] == [2500, 2540, 2540, 2540]  # under the limit: in


def test_a_request_body_over_max_request_bytes_is_refused_naming_the_setting(deployed_practice) -> None:
    small = write_config(deployed_practice.config_file.parent, "small.json", max_request_bytes=1000, max_records=2)
    client = create_app(small).test_client()
    records = [{"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}] * 40
    answer = client.post("/prediction", data=json.dumps({"records": records}), content_type="application/json")
    assert answer.status_code == 413
    assert answer.get_json()["message"] == "the request body is larger than the limit of 1000 bytes (setting max_request_bytes)"
    answer = client.post("/prediction", json={"records": records[:3]})
    assert answer.status_code == 413
    assert answer.get_json()["message"] == "too many records: 3 (at most 2 per request; setting max_records)"
    rows = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\n" + "a,1,2,3\n" * 3
    answer = client.post("/prediction", data=rows, content_type="text/csv")
    assert answer.get_json()["message"] == "too many rows: 3 (at most 2 per request; setting max_records)"


@pytest.mark.parametrize(
    ("key", "value", "said"),
    [
        ("max_source_row", 10, "unknown key(s): 'max_source_row' (did you mean 'max_source_rows'?)"),
        ("max_source_bytes", 0, "key 'max_source_bytes' must be a whole number of at least 1, got 0"),
        ("max_source_rows", "many", "key 'max_source_rows' must be a whole number of at least 1, got \"many\""),
    ],
)
def test_the_limits_are_settings_checked_when_the_config_loads(project, key: str, value: object, said: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(said)):
        load_config(write_config(project, "bad.json", **{key: value}))
