#!/usr/bin/env bash
# The main job behind `make run`: the practice pass (only while nothing is deployed),
# then the production full process with the API served by gunicorn in the background for apicalls.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PORT=${PORT:-8000}
mkdir -p logs

# The practice pass only bootstraps an empty system: run again on a checkout with a deployment,
# it would put the practice model (and the practice data) in front of the API until the full process finished.
deployed=$("$PY" deployment.py --config config.json --current)
if [ -n "$deployed" ]; then
  echo "== production already has $deployed deployed: skipping the practice pass (it only bootstraps an empty system)"
else
  echo "== practice pass (practiceconfig.json): ingest, train, score, deploy"
  # the shipped files are seconds old in a fresh clone: read them at once (cron waits settle_seconds)
  "$PY" ingestion.py --config practiceconfig.json --settle-seconds 0
  for stage in training scoring deployment; do
    "$PY" "$stage.py" --config practiceconfig.json
  done
fi

echo "== starting the API on 127.0.0.1:$PORT (gunicorn, log in logs/api.log)"
PORT=$PORT .venv/bin/gunicorn --config gunicorn.conf.py --pid logs/api.pid 'app:create_app()' >logs/api.log 2>&1 &
api_pid=$!
trap 'kill $api_pid 2>/dev/null; wait $api_pid 2>/dev/null || true' EXIT
for _ in $(seq 1 100); do
  if "$PY" -c "import urllib.request,sys; urllib.request.urlopen('http://127.0.0.1:$PORT/summarystats', timeout=1)" 2>/dev/null; then break; fi
  if ! kill -0 $api_pid 2>/dev/null; then echo "the API did not start; see logs/api.log" >&2; exit 1; fi
  sleep 0.1
done

echo "== production full process (config.json)"
"$PY" fullprocess.py --config config.json --api-url "http://127.0.0.1:$PORT" --settle-seconds 0

echo
echo "== done. Outputs:"
echo "  production deployment: production_deployment/ ($("$PY" deployment.py --list | grep '^\*' | awk '{print $2}') is current)"
echo "  ingested data:         ingesteddata/finaldata.csv, ingestedfiles.txt, ingestionrecord.json, runhistory.sqlite"
echo "  model outputs:         models/ (trainedmodel.pkl, latestscore.txt, confusionmatrix.png, diagnostics.json, apireturns.txt)"
echo "  reports:               models/report.pdf, models/risklist.csv (clients ranked by exit probability), models/trends.png"
echo "  practice model:        practicemodels/"
