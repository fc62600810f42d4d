#!/bin/sh
# Run frps on the host, in the foreground (wrap it in systemd, tmux, ...).
#
#   frp/start_frps.sh [CONFIG]        default CONFIG: frp/host/frps.toml
#
# Render CONFIG first with `storyboard frp render --side host`. The token comes from the
# environment or from ENV_FILE (default: ./.env); FRPS=/path/to/frps picks the binary.
set -eu
FRP_DIR=$(cd "$(dirname "$0")" && pwd)
. "$FRP_DIR/lib.sh"
config=${1:-$FRP_DIR/host/frps.toml}
need_config "$config" "--side host"
load_frp_env "${ENV_FILE:-.env}"
if [ -z "${STORYBOARD_FRP_TOKEN:-}" ]; then
  echo "STORYBOARD_FRP_TOKEN is not set (environment or ${ENV_FILE:-.env})" >&2
  exit 2
fi
frps=$(find_frp frps)
exec "$frps" -c "$config"
