#!/usr/bin/env bash
# `make ui`: the Dagster webserver and daemon on 127.0.0.1 with a persistent DAGSTER_HOME
# (.dagster_home/, ignored by git) and Dagster's outside telemetry off. Ctrl-C stops both.
set -euo pipefail
cd "$(dirname "$0")/.."
export DAGSTER_HOME="${DAGSTER_HOME:-$PWD/.dagster_home}"
mkdir -p "$DAGSTER_HOME"
[ -f "$DAGSTER_HOME/dagster.yaml" ] || cp dagster.yaml "$DAGSTER_HOME/dagster.yaml"
PORT="${AIINFRA_UI_PORT:-3000}"
BIN=.venv/bin
# Started from a non-interactive shell, background processes ignore SIGINT/SIGTERM unless
# their default handlers are restored: env --default-signal does that.
env --default-signal=INT,TERM "$BIN/dagster-daemon" run -w workspace.yaml &
DAEMON=$!
env --default-signal=INT,TERM "$BIN/dagster-webserver" -w workspace.yaml -h 127.0.0.1 -p "$PORT" &
WEB=$!
stop() {
  kill -TERM "$WEB" "$DAEMON" 2>/dev/null || true
  wait "$WEB" "$DAEMON" 2>/dev/null || true
}
trap stop INT TERM EXIT
echo "Dagster UI on http://127.0.0.1:$PORT (DAGSTER_HOME=$DAGSTER_HOME); Ctrl-C stops the webserver and the daemon"
wait -n "$WEB" "$DAEMON"
