#!/bin/sh
# Run an frpc in the foreground (wrap it in systemd, tmux, ...).
#
#   frp/start_frpc.sh [gpu|visitor|status] [CONFIG]
#
#   gpu      on the GPU box: publishes gpu-daemon   (default CONFIG: frp/gpu/frpc.toml,
#            from `storyboard frp render --side gpu`)
#   visitor  on the host, stcp mode: binds the daemon's address for the workers
#            (default CONFIG: frp/host/frpc_visitor.toml, from `--side host`)
#   status   on the GPU box: `frpc status` of the running gpu frpc (its proxy: running,
#            check failed, start error), through its admin API (default CONFIG: as gpu)
#
# Secrets come from the environment or from ENV_FILE (default: ./.env); FRPC=/path/to/frpc
# picks the binary.
set -eu
FRP_DIR=$(cd "$(dirname "$0")" && pwd)
. "$FRP_DIR/lib.sh"
role=${1:-gpu}
case "$role" in
  gpu) default=$FRP_DIR/gpu/frpc.toml; side="--side gpu" ;;
  visitor) default=$FRP_DIR/host/frpc_visitor.toml; side="--side host --mode stcp" ;;
  status) default=$FRP_DIR/gpu/frpc.toml; side="--side gpu" ;;
  *) echo "usage: $0 [gpu|visitor|status] [CONFIG]" >&2; exit 2 ;;
esac
config=${2:-$default}
need_config "$config" "$side"
need_frp_token
frpc=$(find_frp frpc)
if [ "$role" = status ]; then exec "$frpc" status -c "$config"; fi
exec "$frpc" -c "$config"
