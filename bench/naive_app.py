"""The course's kind of API, for the benchmark's comparison only; never serve it.

What the course's app.py does on every request: the Flask development
server answers; `/prediction` unpickles the model from disk, builds a pandas
DataFrame (from the JSON records, or by reading the CSV file a caller names,
any path at all) and calls scikit-learn's predict and predict_proba. No
caching, no checks. `/health` reads the deployed score file.
"""

from __future__ import annotations

import argparse
import json
import logging
import pickle
from pathlib import Path

FEATURES = ["lastmonth_activity", "lastyear_activity", "number_of_employees"]


def create_naive_app(project: Path):
    import pandas as pd
    from flask import Flask, jsonify, request

    app = Flask(__name__)
    config = json.loads((project / "config.json").read_text())
    prod = project / config["prod_deployment_path"]

    @app.route("/prediction", methods=["POST"])
    def prediction():
        with open(prod / "trainedmodel.pkl", "rb") as handle:
            model = pickle.load(handle)
        body = request.get_json()
        if "filepath" in body:
            frame = pd.read_csv(project / body["filepath"])
        else:
            frame = pd.DataFrame(body["records"])
        x = frame[FEATURES]
        classes = model.predict(x.values)
        probabilities = model.predict_proba(x.values)[:, 1]
        return jsonify(
            predictions=[{"prediction": int(c), "exit_probability": float(p)} for c, p in zip(classes, probabilities, strict=True)]
        )

    @app.route("/health", methods=["GET"])
    def health():
        return jsonify(status="ok", score=(prod / "latestscore.txt").read_text().strip())

    return app


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--project", required=True, type=Path, help="a project folder with config.json and a deployment")
    p.add_argument("--port", type=int, required=True)
    args = p.parse_args(argv)
    logging.getLogger("werkzeug").setLevel(logging.WARNING)  # no line per request, as for our server
    create_naive_app(args.project.resolve()).run(host="127.0.0.1", port=args.port, debug=False, threaded=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
