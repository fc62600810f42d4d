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
need_frp_token
frps=$(find_frp frps)
exec "$frps" -c "$config"
