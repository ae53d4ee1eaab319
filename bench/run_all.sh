#!/usr/bin/env bash
# Run every benchmark in one go (about 15 minutes on the 2-core machine; million.py at 10M clients apart: --big); tables go to stdout and
# bench/results/*.json. DATA (default /tmp/drs-bench-data) keeps the generated 10-million-row history
# between runs. Usage: bash bench/run_all.sh [PYTHON]
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${1:-.venv/bin/python}
DATA=${DATA:-/tmp/drs-bench-data}
echo "# $(date -u +%FT%TZ) on $(hostname); uptime: $(uptime)"
for step in "empty_check.py" "ingest_scale.py --keep $DATA" "incremental.py --keep $DATA" \
            "incremental.py --keep $DATA --files 1 --rows 1000000" "train_score.py --keep $DATA" "fullprocess_small.py" "history_age.py" "million.py --big 0 --keep $DATA"; do
    echo; echo "## bench/$step"
    $PY bench/$step
done
