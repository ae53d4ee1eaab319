"""Promise 6, bad requests: the API served by gunicorn over real HTTP answers every malformed or
hostile request with a 4xx JSON error that has a message, never a 500, and never opens a file
outside the data folders (the kernel's inotify watches two secret files while the requests run).
"""

from __future__ import annotations

import ctypes
import ctypes.util
import http.client
import json
import os
import struct
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from drs.core.settings import Config
from tests.faults import RECORD
from tools.procs import gunicorn_server

pytestmark = pytest.mark.slow

TOKEN = "TOPSECRET-7f3a"
SECRET_CSV = f"corporation,lastmonth_activity,lastyear_activity,number_of_employees\n{TOKEN},1,2,3\n"
JSON = {"Content-Type": "application/json"}
CSV = {"Content-Type": "text/csv"}
CSV_HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees\n"
LIMIT = 10 * 1024 * 1024
IN_ACCESS, IN_OPEN = 0x1, 0x20


class OpenWatch:
    """Counts opens and reads of the given files, by inotify: it sees any process, gunicorn's workers included."""

    def __init__(self, paths: list[Path]):
        self.libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_NONBLOCK | os.O_CLOEXEC)
        if self.fd < 0:
            pytest.skip(f"inotify is not available: {os.strerror(ctypes.get_errno())}")
        for path in paths:
            if self.libc.inotify_add_watch(self.fd, os.fsencode(path), IN_OPEN | IN_ACCESS) < 0:
                pytest.skip(f"cannot watch {path}: {os.strerror(ctypes.get_errno())}")

    def count(self) -> int:
        events = 0
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                return events
            offset = 0
            while offset < len(data):
                _, _, _, name_len = struct.unpack_from("iIII", data, offset)
                offset += 16 + name_len
                events += 1

    def close(self) -> None:
        os.close(self.fd)


def body(obj: object) -> bytes:
    return json.dumps(obj).encode()


def chunks(total: int) -> Iterator[bytes]:
    piece = b"x" * 65536
    for _ in range(total // len(piece)):
        yield piece


def project_files(config: Config) -> tuple[Path, Path]:
    """Two secrets: one beside the project, one in the project folder (not a data folder); links to them in the data folders."""
    project = config.config_file.parent
    outside, inside = project.parent / "secret.csv", project / "secret.csv"
    for path in (outside, inside):
        path.write_text(SECRET_CSV)
    os.symlink(outside, config.test_data_folder / "link.csv")
    os.symlink(project.parent, config.input_folder / "outside")
    (config.input_folder / "folder.csv").mkdir()
    (config.test_data_folder / "shifted.csv").write_text(CSV_HEADER + "acme,10,200,30,1\n")  # read shifted before issue 20
    return outside, inside


def requests_to_try(outside: Path) -> list[tuple[str, str, str, object, dict[str, str], int, str]]:
    """(what, method, path, body, headers, expected status, words the message must contain)."""
    many = {"records": [{"lastmonth_activity": 1, "lastyear_activity": 2, "number_of_employees": 3}] * 100_000}
    fp = lambda value: body({"filepath": value})  # noqa: E731
    outside_403 = "must name a file inside the data folders (sourceddata, ingesteddata, testdata)"
    return [
        ("invalid JSON", "POST", "/prediction", b"{oops", JSON, 400, "the body is not a JSON object"),
        ("JSON array", "POST", "/prediction", b"[1, 2]", JSON, 400, "the body is not a JSON object"),
        ("JSON string", "POST", "/prediction", b'"testdata/testdata.csv"', JSON, 400, "the body is not a JSON object"),
        ("JSON null", "POST", "/prediction", b"null", JSON, 400, "the body is not a JSON object"),
        ("JSON nested 100,000 deep", "POST", "/prediction", b"[" * 100_000, JSON, 400, "the body is not a JSON object"),
        ("Latin-1 bytes as JSON", "POST", "/prediction", b'{"filepath": "caf\xe9.csv"}', JSON, 400, "the body is not a JSON object"),
        ("no content type", "POST", "/prediction", body({"records": [RECORD]}), {}, 415, "send JSON"),
        ("text/plain", "POST", "/prediction", body({"records": [RECORD]}), {"Content-Type": "text/plain"}, 415, "send JSON"),
        ("form", "POST", "/prediction", b"records=1", {"Content-Type": "application/x-www-form-urlencoded"}, 415, "send JSON"),
        (
            "multipart",
            "POST",
            "/prediction",
            b"--b\r\n\r\nx\r\n--b--\r\n",
            {"Content-Type": "multipart/form-data; boundary=b"},
            415,
            "send JSON",
        ),
        ("empty object", "POST", "/prediction", b"{}", JSON, 400, "exactly one of the fields 'records' or 'filepath'"),
        ("extra field", "POST", "/prediction", body({"records": [RECORD], "debug": True}), JSON, 400, "exactly one of the fields"),
        (
            "both fields",
            "POST",
            "/prediction",
            body({"records": [RECORD], "filepath": "testdata/testdata.csv"}),
            JSON,
            400,
            "exactly one of the fields",
        ),
        ("records a string", "POST", "/prediction", body({"records": "abc"}), JSON, 400, "'records' must be a list of objects"),
        ("records an object", "POST", "/prediction", body({"records": {}}), JSON, 400, "'records' must be a list of objects"),
        ("record a number", "POST", "/prediction", body({"records": [1]}), JSON, 400, "record 1 must be an object, got 1"),
        (
            "unknown field",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "salary": 1}]}),
            JSON,
            400,
            "record 1: unknown field(s) salary",
        ),
        (
            "missing field",
            "POST",
            "/prediction",
            body({"records": [RECORD, {"lastmonth_activity": 1, "lastyear_activity": 2}]}),
            JSON,
            400,
            "record 2: missing field(s) number_of_employees",
        ),
        (
            "text value",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "lastyear_activity": "many"}]}),
            JSON,
            400,
            "record 1: 'lastyear_activity' must be a number, got 'many'",
        ),
        (
            "boolean value",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "lastyear_activity": True}]}),
            JSON,
            400,
            "must be a number, got True",
        ),
        (
            "null value",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "lastyear_activity": None}]}),
            JSON,
            400,
            "must be a number, got None",
        ),
        (
            "list value",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "lastyear_activity": [1]}]}),
            JSON,
            400,
            "must be a number, got [1]",
        ),
        (
            "negative value",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "lastyear_activity": -5}]}),
            JSON,
            400,
            "must be a finite number of at least 0, got -5",
        ),
        (
            "NaN literal",
            "POST",
            "/prediction",
            b'{"records": [{"lastmonth_activity": NaN, "lastyear_activity": 2, "number_of_employees": 3}]}',
            JSON,
            400,
            "must be a finite number of at least 0, got nan",
        ),
        (
            "Infinity literal",
            "POST",
            "/prediction",
            b'{"records": [{"lastmonth_activity": Infinity, "lastyear_activity": 2, "number_of_employees": 3}]}',
            JSON,
            400,
            "must be a finite number of at least 0, got inf",
        ),
        (
            "integer of 400 digits",
            "POST",
            "/prediction",
            b'{"records": [{"lastmonth_activity": 1' + b"0" * 400 + b', "lastyear_activity": 2, "number_of_employees": 3}]}',
            JSON,
            400,
            "'lastmonth_activity' must be a finite number of at least 0, got 1000",
        ),
        (
            "corporation an object",
            "POST",
            "/prediction",
            body({"records": [{**RECORD, "corporation": {"a": 1}}]}),
            JSON,
            400,
            "record 1: 'corporation' must be a string",
        ),
        ("empty records", "POST", "/prediction", body({"records": []}), JSON, 400, "'records' is empty: send at least one record"),
        (
            "100,000 records",
            "POST",
            "/prediction",
            body(many),
            JSON,
            413,
            "too many records: 100000 (at most 10000 per request; setting max_records)",
        ),
        (
            "body over the limit",
            "POST",
            "/prediction",
            b" " * (LIMIT + 1),
            JSON,
            413,
            f"the request body is larger than the limit of {LIMIT} bytes (setting max_request_bytes)",
        ),
        (
            "chunked body over the limit",
            "POST",
            "/prediction",
            chunks(LIMIT + 2 * 65536),
            JSON,
            413,
            f"the request body is larger than the limit of {LIMIT} bytes (setting max_request_bytes)",
        ),
        ("CSV body empty", "POST", "/prediction", b"", CSV, 400, "request body: file is empty"),
        (
            "CSV body Latin-1",
            "POST",
            "/prediction",
            (CSV_HEADER + "caf\xe9,1,2,3\n").encode("latin-1"),
            CSV,
            400,
            "request body: is not UTF-8 text (line 2 has the byte 0xe9, at offset 72",
        ),
        (
            "CSV body missing column",
            "POST",
            "/prediction",
            b"corporation,lastmonth_activity\na,1\n",
            CSV,
            400,
            "request body: missing column(s): lastyear_activity, number_of_employees",
        ),
        (
            "CSV body truncated",
            "POST",
            "/prediction",
            (CSV_HEADER + "a,1,2,3\nb,1").encode(),
            CSV,
            400,
            "request body: line 3 has 2 fields but the header has 4 (2 values missing: a line cut short",
        ),
        (
            "CSV body a field too many (issue 20)",
            "POST",
            "/prediction",
            (CSV_HEADER + "a,1,2,3\nacme,10,200,30,1\n").encode(),
            CSV,
            400,
            'request body: line 3 has 5 fields but the header has 4 (a value too many: a comma inside a name needs "quotes")',
        ),
        (
            "CSV body a trailing comma on every row",
            "POST",
            "/prediction",
            (CSV_HEADER + "a,1,2,3,\nb,1,2,3,\n").encode(),
            CSV,
            400,
            "request body: line 2 has 5 fields but the header has 4 (it ends with an extra comma",
        ),
        (
            "data file with a field too many in its first row",
            "POST",
            "/prediction",
            body({"filepath": "testdata/shifted.csv"}),
            JSON,
            400,
            'testdata/shifted.csv: line 2 has 5 fields but the header has 4 (a value too many: a comma inside a name needs "quotes")',
        ),
        (
            "CSV body 100,000 rows",
            "POST",
            "/prediction",
            (CSV_HEADER + "a,1,2,3\n" * 100_000).encode(),
            CSV,
            413,
            "too many rows: 100000 (at most 10000 per request; setting max_records)",
        ),
        ("path ../", "POST", "/prediction", fp("../secret.csv"), JSON, 403, outside_403),
        ("path through a data folder and up", "POST", "/prediction", fp("testdata/../../secret.csv"), JSON, 403, outside_403),
        ("path in the project, not a data folder", "POST", "/prediction", fp("secret.csv"), JSON, 403, outside_403),
        ("absolute path beside the project", "POST", "/prediction", fp(str(outside)), JSON, 403, outside_403),
        ("absolute /etc/passwd", "POST", "/prediction", fp("/etc/passwd"), JSON, 403, outside_403),
        ("absolute via /proc/self/root", "POST", "/prediction", fp(f"/proc/self/root{outside}"), JSON, 403, outside_403),
        ("symlink file in a data folder", "POST", "/prediction", fp("testdata/link.csv"), JSON, 403, outside_403),
        ("symlink folder in a data folder", "POST", "/prediction", fp("sourceddata/outside/secret.csv"), JSON, 403, outside_403),
        ("JSON-escaped slashes", "POST", "/prediction", b'{"filepath": "testdata/..\\u002f..\\u002fsecret.csv"}', JSON, 403, outside_403),
        ("URL-encoded dots", "POST", "/prediction", fp("%2e%2e/secret.csv"), JSON, 403, outside_403),
        (
            "URL-encoded slashes",
            "POST",
            "/prediction",
            fp("testdata/..%2F..%2Fsecret.csv"),
            JSON,
            404,
            "no such data file: testdata/..%2F..%2Fsecret.csv",
        ),
        ("home folder", "POST", "/prediction", fp("~/secret.csv"), JSON, 403, outside_403),
        ("NUL character", "POST", "/prediction", fp("testdata/testdata.csv\x00.txt"), JSON, 400, "'filepath' contains a NUL character"),
        (
            "name too long",
            "POST",
            "/prediction",
            fp("testdata/" + "a" * 300 + ".csv"),
            JSON,
            400,
            "'filepath' is not a usable path: File name too long",
        ),
        ("a folder", "POST", "/prediction", fp("testdata"), JSON, 400, "'filepath' must name a .csv file; 'testdata' does not"),
        (
            "a folder named .csv",
            "POST",
            "/prediction",
            fp("sourceddata/folder.csv"),
            JSON,
            404,
            "no such data file: sourceddata/folder.csv",
        ),
        ("not a CSV in a data folder", "POST", "/prediction", fp("ingesteddata/runhistory.sqlite"), JSON, 400, "must name a .csv file"),
        ("filepath a list", "POST", "/prediction", fp(["testdata/testdata.csv"]), JSON, 400, "'filepath' must be a non-empty string"),
        ("filepath empty", "POST", "/prediction", fp(""), JSON, 400, "'filepath' must be a non-empty string"),
        ("missing file", "POST", "/prediction", fp("testdata/none.csv"), JSON, 404, "no such data file: testdata/none.csv"),
        ("URL ../", "GET", "/../../etc/passwd", None, {}, 404, "no endpoint /../../etc/passwd"),
        ("URL %2e%2e", "GET", "/%2e%2e/%2e%2e/etc/passwd", None, {}, 404, "no endpoint /../../etc/passwd"),
        ("URL static/..", "GET", "/static/../config.json", None, {}, 404, "no endpoint /static/../config.json"),
        ("URL encoded slash", "GET", "/prediction%2f..%2fsecret.csv", None, {}, 404, "no endpoint /prediction/../secret.csv"),
        ("GET /prediction", "GET", "/prediction", None, {}, 405, "GET is not allowed on /prediction (use POST)"),
        ("DELETE /scoring", "DELETE", "/scoring", None, {}, 405, "DELETE is not allowed on /scoring (use GET)"),
        ("unknown endpoint", "GET", "/secret.csv", None, {}, 404, "no endpoint /secret.csv"),
    ]


def send(url: str, method: str, path: str, payload: object, headers: dict[str, str]) -> tuple[int, str, bytes]:
    """One request as sent (no client-side normalising of the path), over a fresh connection."""
    parts = urlsplit(url)
    conn = http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)
    try:
        headers = dict(headers)
        if isinstance(payload, bytes):
            headers["Content-Length"] = str(len(payload))
        elif payload is not None:
            headers["Transfer-Encoding"] = "chunked"
        try:
            conn.request(method, path, body=payload, headers=headers, encode_chunked=payload is not None and not isinstance(payload, bytes))
        except (BrokenPipeError, ConnectionResetError):
            pass  # the server answered before taking the whole body; its answer is still there to read
        response = conn.getresponse()
        return response.status, response.getheader("Content-Type", ""), response.read()
    finally:
        conn.close()


def test_bad_requests_get_a_4xx_json_answer_and_no_file_outside_is_read(deployed_practice: Config, config: Config) -> None:
    outside, inside = project_files(config)
    tries = requests_to_try(outside)
    assert len(tries) >= 60
    problems = []
    with gunicorn_server(config.config_file) as url:
        watch = OpenWatch([outside, inside])
        try:
            for what, method, path, payload, headers, status, words in tries:
                got, content_type, raw = send(url, method, path, payload, headers)
                answer = json.loads(raw) if content_type == "application/json" else None
                if (
                    got != status
                    or answer is None
                    or answer.get("status") != status
                    or words.lower() not in answer.get("message", "").lower()
                ):
                    problems.append(f"{what}: {got} {content_type} {raw[:200]!r}")
                if TOKEN.encode() in raw:
                    problems.append(f"{what}: the secret is in the answer")
            good, _, raw = send(url, "POST", "/prediction", body({"filepath": "testdata/testdata.csv"}), JSON)
            assert good == 200 and json.loads(raw)["count"] == 1200  # the server still works
            opened = watch.count()
            (outside.read_text(), inside.read_text())
            assert watch.count() > 0  # the watch itself works
        finally:
            watch.close()
    server_log = next(config.config_file.parent.glob("gunicorn-*.log")).read_text()
    assert problems == [], "\n".join(problems)
    assert opened == 0, "a secret file was opened"
    assert "unexpected error" not in server_log and "Traceback" not in server_log
