"""The page's banners and status cards in a client manager's words (drs/web/words.py), from real runs of the full process."""

from __future__ import annotations

import re
import tempfile
from html import unescape
from pathlib import Path

import pytest

from drs.core.errors import DataError
from drs.core.settings import Config
from drs.history import runs as history
from drs.history.record import Outcome
from drs.pipeline import run as pipeline
from drs.web import page, pageview
from drs.web import words as plainwords
from drs.web.app import create_app
from tests.pipeline.test_promotion import older_world_file, reconfigure
from tests.web.test_webpage import chromium, run_chromium
from tools.procs import gunicorn_server

BANNER = re.compile(
    r'<div class="banner (\w+)" role="(\w+)"><p><strong>([^<]*)\.</strong> ([^<]*)</p>\s*'
    r'<details class="technical"><summary>[^<]*</summary><p>([^<]*)</p></details>'
)
CARD = re.compile(r'id="card-update">([^<]*)<')
CSS = Path(page.__file__).parent / "static" / "page.css"
SHOTS = Path("/tmp/shots-words")


def banners(config: Config) -> list[tuple[str, str, str, str, str]]:
    """(level, role, title, sentence, technical line) of each banner on the page."""
    html = create_app(config).test_client().get("/").get_data(as_text=True)
    return [tuple(unescape(part) for part in found) for found in BANNER.findall(html)]  # type: ignore[misc]


def card(config: Config) -> str:
    found = CARD.search(create_app(config).test_client().get("/").get_data(as_text=True))
    assert found is not None
    return unescape(found.group(1))


def expected(key: str, label: str) -> str:
    return plainwords.OUTCOME_WORDS[key].sentence.format(label=label, day="today")


def test_each_outcome_of_real_runs_reads_as_its_words(deployed_practice: Config, config: Config) -> None:
    practice = deployed_practice
    older_world_file(practice.input_folder / "dataset3.csv", 400, seed=7)  # more of the practice model's own world: no drift
    assert pipeline.run(practice) == 0
    assert history.runs(practice.history_db)[-1]["outcome"] == Outcome.NO_DRIFT
    (level, role, title, sentence, technical) = banners(practice)[0]
    assert (level, role, title) == ("info", "status", "Model kept")
    assert (
        sentence
        == expected(Outcome.NO_DRIFT, "v0001")
        == ("New client data arrived today; the model was checked on it and kept. The list below ranks the new data with it.")
    )
    assert "no drift: v0001 stays deployed" in technical and "-> no drift." in technical  # the numbers, for the owners
    assert card(practice) == "Model kept"

    assert pipeline.run(practice) == 0  # nothing new: the banner still tells what the last run that did something did
    assert history.runs(practice.history_db)[-1]["outcome"] == Outcome.NO_NEW_DATA
    sentence = banners(practice)[0][3]
    assert sentence == expected(Outcome.NO_DRIFT, "v0001") + " Checked again just now: no new data since."

    (practice.input_folder / "dataset4.csv").write_text("corporation,exited\nabcd,1\n")
    assert pipeline.run(practice) == 0
    (level, role, title, sentence, technical) = banners(practice)[0]
    assert (level, role, title, sentence) == ("notice", "status", "File refused", expected(Outcome.NEW_FILES_REJECTED, "v0001"))
    assert "new file(s) rejected: dataset4.csv" in technical
    (practice.input_folder / "dataset4.csv").unlink()

    assert pipeline.run(config) == 0  # the shipped data drifts for the practice model: v0002 is deployed
    (level, role, title, sentence, technical) = banners(config)[0]
    assert (level, role, title, sentence) == ("info", "status", "New model", expected(Outcome.DEPLOYED, "v0002"))
    assert sentence == "A new model (v0002) was deployed today: the list below uses it."
    assert "improvement +0.1604 >= minimum 0.0000 -> promoted" in technical
    assert card(config) == "New model"

    strict = reconfigure(config, promotion_min_improvement=0.5)
    older_world_file(config.input_folder / "clients_q5.csv", 400, seed=7)
    assert pipeline.run(strict) == 0
    run = history.runs(config.history_db)[-1]
    assert run["outcome"] == Outcome.NOT_PROMOTED and run["details"]["drift"]["noise"]["beyond_noise"] is True
    (level, role, title, sentence, technical) = banners(config)[0]
    assert (level, role, title, sentence) == ("warning", "alert", "Model kept", expected(plainwords.BEYOND_NOISE, "v0002"))
    assert "beyond sampling noise" in technical and "-> not promoted" in technical

    older_world_file(config.input_folder / "clients_q6.csv", 300, seed=8)
    config.test_data_csv.unlink()
    with pytest.raises(DataError, match="testdata.csv: cannot be read"):  # fullprocess.py turns it into exit code 1
        pipeline.run(config)
    assert history.runs(config.history_db)[-1]["outcome"] == Outcome.FAILED
    found = banners(config)
    assert [(b[0], b[1], b[2]) for b in found] == [("warning", "alert", "Update failed")]  # it superseded the refusal's banner
    assert found[0][3] == expected(Outcome.FAILED, "v0002")
    assert "testdata.csv: cannot be read" in found[0][4]
    assert card(config) == "Update failed"


def test_every_outcome_has_words_and_no_sentence_speaks_in_log_lines() -> None:
    assert set(Outcome) <= set(plainwords.OUTCOME_WORDS)
    for words in plainwords.OUTCOME_WORDS.values():
        assert words.level in (plainwords.INFO, plainwords.NOTICE, plainwords.WARNING)
        sentence = words.sentence.format(label="v0002", day="today")
        assert not re.search(r"F1|->|latestscore|\d\.\d{3}", sentence), sentence


def test_no_card_cuts_its_text() -> None:
    css = CSS.read_text()
    assert "ellipsis" not in css and "text-overflow" not in css
    tile = re.search(r"\.tile-value \{([^}]*)\}", css)
    assert tile is not None and "nowrap" not in tile.group(1) and "overflow: hidden" not in tile.group(1)


# ---- a real browser at desktop and phone widths -----------------------------------------------------------


@pytest.mark.slow
def test_screenshots_at_desktop_and_phone_widths(deployed_practice: Config, config: Config) -> None:
    """Writes /tmp/shots-words/test-page-{1280,390}.png to be looked at (docs/testing.md); asserts what a DOM dump can show."""
    browser = chromium()
    assert pipeline.run(config) == 0
    strict = reconfigure(config, promotion_min_improvement=0.5)
    older_world_file(config.input_folder / "clients_q5.csv", 400, seed=7)
    assert pipeline.run(strict) == 0  # "not promoted": the card the issue saw cut at phone width
    SHOTS.mkdir(exist_ok=True)
    with gunicorn_server(config.config_file) as url, tempfile.TemporaryDirectory() as profile:
        for width, height in ((1280, 900), (390, 2400)):
            shot = SHOTS / f"test-page-{width}.png"
            done = run_chromium(browser, f"--window-size={width},{height}", f"--screenshot={shot}", f"{url}/", profile=Path(profile))
            assert done.returncode == 0 and pageview.png_size(shot) == (width, height), done.stderr[-2000:]
        dom = run_chromium(browser, "--window-size=390,2400", "--virtual-time-budget=10000", "--dump-dom", f"{url}/", profile=Path(profile))
    html = dom.stdout
    assert 'id="card-update">Model kept<' in html and '<svg class="reliability"' in html
    assert re.search(r'<body[^>]*data-images="3/3"', html)  # page.js: every image loaded
