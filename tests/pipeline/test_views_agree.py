"""Every view tells the same story (issue 20): after each event that changes the deployed model or the ingested
data, risklist.csv, the served /risklist.csv, GET /risk, the page, a client view and report.pdf name the same model
version and data, and show the same ranking: the deployed model's ranking of the current finaldata.csv."""

from __future__ import annotations

import csv
import hashlib
import io
import re
import shutil
from html import unescape
from pathlib import Path

import pandas as pd
from pypdf import PdfReader

from drs.core.settings import Config, load_config
from drs.data.ingest import ingest
from drs.data.schema import Schema
from drs.history import runs as history
from drs.model import scoring, training
from drs.model.estimator import exit_probabilities, feature_matrix
from drs.model.explain import deployed_reference
from drs.pipeline import run as pipeline
from drs.pipeline.deploy import deploy_or_roll_back
from drs.production import versions as production
from drs.reports import risk, riskstore
from drs.reports.reporting import refresh
from drs.web import page
from drs.web import words as plainwords
from drs.web.app import create_app

RANK_ROW = re.compile(r'<td class="num">(\d+)</td>\s*<td class="corp"><a href="[^"]*">([^<]*)</a>')
IDENTITY = re.compile(r"Ranked by (v\d{4}) from (\S+) \(data ([0-9a-f]{12})\)")
TOP = 25
HEADER = "corporation,lastmonth_activity,lastyear_activity,number_of_employees,exited\n"


def deployed(config: Config) -> production.Deployment:
    found = production.current(config.prod_deployment_folder)
    assert found is not None
    return found


def probabilities(config: Config, frame: pd.DataFrame) -> list[float]:
    schema = Schema.from_config(config)
    return [float(p) for p in exit_probabilities(production.load_model(deployed(config)), feature_matrix(frame, schema))]


def truth(config: Config) -> list[tuple[str, float]]:
    """The deployed model's ranking of the current finaldata.csv, computed here from scratch: what every view must show."""
    schema = Schema.from_config(config)
    _, frame = risk.read_ingested(config.final_data_csv, schema)
    now = deployed(config)
    ranked = risk.risk_list(production.load_model(now), frame, schema, deployed_reference(now, schema.features))
    return [(str(c), round(float(p), 6)) for c, p in zip(ranked["corporation"], ranked[risk.PROBABILITY], strict=True)]


def labelled_by_model(config: Config, frame: pd.DataFrame, flip: bool = False) -> pd.DataFrame:
    """Rows whose `exited` is what the deployed model predicts (flip: the opposite), so that the drift check's F1 on them
    is 1 (no drift) or 0 (drift)."""
    predicted = [int(p > 0.5) for p in probabilities(config, frame)]
    return frame.assign(exited=[1 - p if flip else p for p in predicted])


def riskiest_features(config: Config, start: dict[str, float]) -> dict[str, float]:
    """Features with a higher exit probability than `start` (each doubled or halved, whichever raises it), 5 rounds."""
    features = dict(start)
    for _ in range(5):
        for name in ("lastmonth_activity", "lastyear_activity", "number_of_employees"):
            options = [{**features, name: max(1.0, round(features[name] * f))} for f in (2.0, 0.5)]
            probs = probabilities(config, pd.DataFrame(options))
            features = options[0] if probs[0] >= probs[1] else options[1]
    return features


def write_source(config: Config, name: str, frame: pd.DataFrame) -> None:
    frame[["corporation", "lastmonth_activity", "lastyear_activity", "number_of_employees", "exited"]].to_csv(
        config.input_folder / name, index=False, lineterminator="\n"
    )


def rows_of_csv(data: bytes) -> list[tuple[int, str, float]]:
    return [(int(r["rank"]), r["corporation"], float(r["exit_probability"])) for r in csv.DictReader(io.StringIO(data.decode()))]


def pdf_text(path: Path) -> str:
    return " ".join(page.extract_text() for page in PdfReader(path).pages)


def compare_views(config: Config, step: str) -> list[str]:
    """Every disagreement between the views, and between them and the deployed model's ranking of the current data."""
    problems: list[str] = []

    def check(ok: bool, what: str) -> None:
        if not ok:
            problems.append(f"{step}: {what}")

    now = deployed(config).label
    data_sha = hashlib.sha256(config.final_data_csv.read_bytes()).hexdigest()
    expected = truth(config)
    top_corp, top_prob = expected[0]

    # the file
    file_bytes = config.model_output("risklist.csv").read_bytes()
    file_rows = rows_of_csv(file_bytes)
    check([(c, p) for _, c, p in file_rows] == expected, f"risklist.csv is not {now}'s ranking of the current finaldata.csv")
    client = create_app(config).test_client()

    # the store every view reads (risklist.sqlite): the same list, row for row
    with riskstore.opened(config.model_output("risklist.sqlite")) as con:
        stored = riskstore.records(con)
        counts = riskstore.summary(con)
    check(
        [(r["rank"], r["corporation"], r["exit_probability"]) for r in stored] == file_rows,
        "risklist.sqlite's ranking differs from risklist.csv's",
    )
    check(counts["active_clients"] == len(expected), f"risklist.sqlite counts {counts['active_clients']} clients, not {len(expected)}")

    # the served CSV
    served = client.get("/risklist.csv")
    check(served.status_code == 200 and served.data == file_bytes, "GET /risklist.csv differs from risklist.csv")
    check(
        served.headers.get("X-DRS-Model-Version") == now,
        f"/risklist.csv names model {served.headers.get('X-DRS-Model-Version')}, not {now}",
    )
    check(served.headers.get("X-DRS-Data-Sha256") == data_sha, "/risklist.csv does not name the current finaldata.csv's sha256")

    # GET /risk
    answer = client.get(f"/risk?top={TOP}").get_json()
    check(answer.get("model_version") == now, f"/risk names {answer.get('model_version')}, not {now}")
    check(answer.get("data_sha256") == data_sha, "/risk does not name the current finaldata.csv's sha256")
    check(answer.get("stale") is False, f"/risk says stale={answer.get('stale')}: {answer.get('problems')}")
    check(answer.get("active_clients") == len(expected), f"/risk counts {answer.get('active_clients')} clients, not {len(expected)}")
    got = [(c["corporation"], c["exit_probability"]) for c in answer.get("clients", [])]
    check(got == expected[:TOP], f"/risk's top {TOP} differ from the ranking (first {got[:1]} vs {expected[:1]})")

    # the page
    html = unescape(client.get("/").get_data(as_text=True))
    shown = [(int(r), c) for r, c in RANK_ROW.findall(html)]
    check(shown == [(i + 1, c) for i, (c, _) in enumerate(expected[: page.PAGE_SIZE])], "the page's rows differ from the ranking")
    tile = re.search(r'Model in use</div>\s*<div class="tile-value">(v\d{4})<', html)
    check(tile is not None and tile.group(1) == now, f"the page's 'Model in use' tile says {tile and tile.group(1)}, not {now}")
    named = IDENTITY.search(html)
    check(
        named is not None and named.groups() == (now, "finaldata.csv", data_sha[:12]),
        f"the page names the ranking as {named and named.groups()}",
    )
    check("stale-ranking" not in html, "the page warns that its list is stale")
    banner_text = " ".join(re.findall(r'<div class="banner[^"]*"[^>]*><p>(.*?)</p>', html, re.S))
    for version in set(re.findall(r"v\d{4}", banner_text)) - {now}:
        check(False, f"a banner speaks of {version} while {now} is deployed: {re.sub(r'<[^>]+>', '', banner_text)[:300]}")
    card = re.search(r'<div class="tile-value ([^"]*)" id="card-check">([^<]*)</div>\s*<div class="tile-note">([^<]*)</div>', html)
    drift_run = plainwords.last_drift_run(history.runs(config.history_db))
    if card is not None and drift_run is not None:
        checked = (drift_run["details"]["drift"] or {}).get("deployed_version")
        if checked is not None and checked != now:
            check(
                checked in card.group(3),
                f"the 'Model on new data' tile ({card.group(2)}) is about {checked}, not {now}, and does not say so",
            )
            check(card.group(1) == "muted", f"the tile about {checked} is coloured {card.group(1)!r} as if it were {now}'s state")

    # the page's search and its last page, read from the store
    found = [(int(r), c) for r, c in RANK_ROW.findall(unescape(client.get(f"/?q={top_corp.upper()}").get_data(as_text=True)))]
    check(bool(found) and found[0] == (1, top_corp), f"searching {top_corp.upper()} does not show {top_corp} first: {found[:3]}")
    last = -(-len(expected) // page.PAGE_SIZE)
    tail = [(int(r), c) for r, c in RANK_ROW.findall(unescape(client.get(f"/?page={last}").get_data(as_text=True)))]
    check(tail == [(i + 1, c) for i, (c, _) in enumerate(expected)][(last - 1) * page.PAGE_SIZE :], "the page's last page differs")

    # /metrics counts the same clients
    metrics_text = client.get("/metrics").get_data(as_text=True)
    check(f"drs_active_clients {float(len(expected))}" in metrics_text, "/metrics counts another number of active clients")

    # a client nobody knows: 404
    check(client.get("/clients/nobody-at-all").status_code == 404, "an unknown client's view is not a 404")

    # a client view: the top client
    view = unescape(client.get(f"/clients/{top_corp}").get_data(as_text=True))
    big = re.search(r'<span class="big num">([^<]*)</span>', view)
    check(
        big is not None and big.group(1) == f"{top_prob * 100:.1f}%", f"{top_corp}'s view shows {big and big.group(1)}, not {top_prob:.1%}"
    )
    named = IDENTITY.search(view)
    check(
        named is not None and named.groups() == (now, "finaldata.csv", data_sha[:12]), f"{top_corp}'s view names {named and named.groups()}"
    )
    current_row = re.search(r'<tr class="current"><td>(v\d{4}).*?<span class="pct num">([^<]*)</span>', view, re.S)
    check(
        current_row is not None and current_row.groups() == (now, f"{top_prob * 100:.1f}%"),
        f"{top_corp}'s view gives the current version's probability as {current_row and current_row.groups()}",
    )

    # the PDF
    text = re.sub(r"\s+", " ", pdf_text(config.model_output("report.pdf")))
    named = IDENTITY.search(text)
    check(named is not None and named.groups() == (now, "finaldata.csv", data_sha[:12]), f"report.pdf names {named and named.groups()}")
    risk_page = text[text.find("Clients at risk") :]
    positions = [risk_page.find(f" {c} {p:.3f} ") for c, p in expected[:5]]
    check(-1 not in positions and positions == sorted(positions), f"report.pdf's top 5 differ from the ranking ({positions})")
    return problems


def last_outcome(config: Config) -> str:
    return str(history.runs(config.history_db)[-1]["outcome"])


def test_every_view_agrees_after_each_event(project: Path, tmp_path: Path) -> None:
    config = load_config(project / "config.json")
    held = tmp_path / "held"
    held.mkdir()
    shutil.move(config.input_folder / "clients_q4.csv", held / "clients_q4.csv")
    problems: list[str] = []

    pipeline.run(config)  # the first deployment
    assert last_outcome(config) == "deployed" and deployed(config).label == "v0001"
    problems += compare_views(config, "first deployment")

    # new data judged and kept: new clients, and the last-ranked client jumps to rank 1
    before = truth(config)
    test = pd.read_csv(config.test_data_csv, dtype={"corporation": str}).head(60)
    fresh = labelled_by_model(config, test.assign(corporation=[f"new{i:03d}" for i in range(len(test))]))
    start = risk.read_ingested(config.final_data_csv, Schema.from_config(config))[0].set_index("corporation").loc[before[0][0]]
    jumper = {"corporation": before[-1][0], **riskiest_features(config, {k: float(start[k]) for k in fresh.columns[1:4]}), "exited": 0}
    write_source(config, "clients_q5.csv", pd.concat([fresh, pd.DataFrame([jumper])], ignore_index=True))
    pipeline.run(config)
    assert last_outcome(config) == "no drift"
    assert truth(config)[0][0] == before[-1][0]  # from the last rank to the first
    problems += compare_views(config, "new data kept")

    # a deployment by the pipeline: drift on new data, retrain, deploy past the gate
    flipped = labelled_by_model(config, test.assign(corporation=[f"flip{i:03d}" for i in range(len(test))]), flip=True)
    write_source(config, "clients_q6.csv", flipped)
    pipeline.run(config, force_deploy=True)
    assert last_outcome(config) == "deployed" and deployed(config).label == "v0002"
    problems += compare_views(config, "pipeline deployment")

    # ingestion by hand, then a deployment by hand (training.py, scoring.py, deployment.py --force)
    shutil.copy(held / "clients_q4.csv", config.input_folder / "clients_q4.csv")
    ingest(config)
    refresh(config, "ingestion by hand", fail=False)  # what ingestion.py does after ingesting
    problems += compare_views(config, "ingestion by hand")
    training.train(config)
    scoring.score(config)
    deploy_or_roll_back(config, None, force=True)
    assert deployed(config).label == "v0003"
    problems += compare_views(config, "deployment by hand")

    deploy_or_roll_back(config, "previous")
    assert deployed(config).label == "v0002"
    problems += compare_views(config, "rollback")

    # a changed source file: the jumper falls back, the rows labelled as the deployed model predicts (no drift)
    changed = pd.read_csv(config.input_folder / "clients_q5.csv", dtype={"corporation": str})
    changed.loc[changed["corporation"] == jumper["corporation"], ["lastmonth_activity", "lastyear_activity", "number_of_employees"]] = [
        float(start[k]) for k in ("lastmonth_activity", "lastyear_activity", "number_of_employees")
    ]
    write_source(
        config,
        "clients_q5.csv",
        labelled_by_model(config, changed).assign(exited=lambda f: f["exited"].where(f["corporation"] != jumper["corporation"], 0)),
    )
    pipeline.run(config)
    assert last_outcome(config) in ("no drift", "deployed", "not promoted")
    problems += compare_views(config, "changed file")

    (config.input_folder / "clients_q6.csv").unlink()
    pipeline.run(config)
    assert last_outcome(config) == "no new data"
    problems += compare_views(config, "removed file")

    assert not problems, "\n".join(problems)


def test_a_change_underneath_the_events_is_said_by_every_view(deployed_practice: Config) -> None:
    """finaldata.csv changed by hand, with no event to rank it again: the views say their list is stale, never mix."""
    config = deployed_practice
    refresh(config, "reporting")
    client = create_app(config).test_client()
    assert client.get("/risk").get_json()["stale"] is False
    with open(config.final_data_csv, "a") as handle:
        handle.write("zzzz,1,2,3,0\n")
    body = client.get("/risk").get_json()
    problem = "finaldata.csv changed after the list was ranked; run reporting.py"
    assert body["stale"] is True and body["problems"] == [problem]
    html = unescape(client.get("/").get_data(as_text=True))
    assert "stale-ranking" in html and problem in html
    top = body["clients"][0]["corporation"]
    assert problem in unescape(client.get(f"/clients/{top}").get_data(as_text=True))
    # a client that is not on the list (it left): its view says the list is stale too (it did not, seen by a reviewer)
    final = pd.read_csv(config.final_data_csv, dtype={"corporation": str})
    latest = final.drop_duplicates("corporation", keep="last")
    gone = str(latest.loc[latest["exited"] == 1, "corporation"].iloc[0])
    view = unescape(client.get(f"/clients/{gone}").get_data(as_text=True))
    assert "Not on the risk list" in view and "stale-ranking" in view and problem in view
    served = client.get("/risklist.csv")  # and the served CSV says so in its headers
    assert served.headers["X-DRS-Stale"] == "true" and served.headers["X-DRS-Problems"] == problem
    refresh(config, "reporting")  # the event: ranked again, current again
    assert client.get("/risk").get_json()["stale"] is False
    assert client.get("/risklist.csv").headers["X-DRS-Stale"] == "false" and "X-DRS-Problems" not in client.get("/risklist.csv").headers


def test_a_file_of_the_ranking_missing_after_a_failed_refresh_is_said_as_missing(deployed_practice: Config) -> None:
    """report.pdf not written (a refresh that failed after the list): the views say it is missing, not 'written apart'."""
    config = deployed_practice
    refresh(config, "reporting")
    config.model_output("report.pdf").unlink()
    config.model_output("report.pdf").mkdir()  # what a failed write leaves in its place, at worst
    body = create_app(config).test_client().get("/risk").get_json()
    assert body["stale"] is True
    assert body["problems"] == ["report.pdf is missing (the last refresh failed, or it was removed); run reporting.py"]
