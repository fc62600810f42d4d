#!/bin/sh
# Start one storyboard worker in the foreground (for systemd, supervisord, a terminal).
#
#   queue/start-worker.sh                      # both queues, runs until SIGTERM
#   queue/start-worker.sh --burst              # drain the queues, then exit
#   queue/start-worker.sh --queues render      # render jobs only
#
# STORYBOARD_HOME   checkout with the virtual environment   [default: this script's parent]
# STORYBOARD_CONFIG configuration file                      [default: $STORYBOARD_HOME/storyboard.toml]
# WORKER_ENV        a KEY=value file to load first, e.g. frp/host/worker-gpu2.env (rendered by
#                   `storyboard frp render --side host` with [frp] boxes: which daemon to use)
# Secrets (STORYBOARD_DAEMON_TOKEN, S3 keys) come from the environment or a .env file there.
# SIGTERM lets the current job finish (RQ warm shutdown); a second SIGTERM stops it at once.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
home=${STORYBOARD_HOME:-$(dirname "$here")}
cd "$home"
if [ -n "${WORKER_ENV:-}" ]; then
    [ -f "$WORKER_ENV" ] || { echo "start-worker.sh: no file $WORKER_ENV" >&2; exit 2; }
    set -a; . "$WORKER_ENV"; set +a
fi
bin=${STORYBOARD_BIN:-$home/.venv/bin/storyboard}
[ -x "$bin" ] || bin=$(command -v storyboard) || {
    echo "start-worker.sh: no storyboard executable (expected $home/.venv/bin/storyboard)" >&2
    exit 2
}
exec "$bin" worker --config "${STORYBOARD_CONFIG:-$home/storyboard.toml}" "$@"
