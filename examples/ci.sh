#!/usr/bin/env bash
# A CI check against a running storyboard stack: create a project from a story, queue a
# storyboard, wait for it, and check that every shot has a presigned link that downloads a PNG.
#
#   STORYBOARD_CONFIG=storyboard.toml examples/ci.sh [STORY_FILE]
#
# Needs: storyboard, jq, curl; a stack with Redis, S3, the GPU daemon and at least one
# `storyboard worker` (e.g. `storyboard up`). Exit status: 0 ok; otherwise the failing
# command's (1 task failed or cancelled, 3 service unreachable, 4 timeout) or 1 for a
# failed check.
#
# CI_TIMEOUT   seconds to wait for the storyboard [default: 600]
# STORYBOARD   the storyboard command               [default: storyboard on PATH, else this
#              project's .venv/bin/storyboard (after `make setup`)]
set -euo pipefail

here=$(cd "$(dirname "$0")" && pwd)
story=${1:-"$here/lighthouse.txt"}
if [ -n "${STORYBOARD:-}" ]; then
    sb=$STORYBOARD
elif command -v storyboard >/dev/null 2>&1; then
    sb=storyboard
elif [ -x "$here/../.venv/bin/storyboard" ]; then
    sb="$here/../.venv/bin/storyboard"
else
    echo "ci.sh: no storyboard command: put it on PATH (pip install), run \`make setup\` in" \
         "$here/.., or set STORYBOARD" >&2
    exit 127
fi
wait_s=${CI_TIMEOUT:-600}

fail() { echo "ci.sh: $*" >&2; exit 1; }

project=$($sb new "$story" --title "ci-$(date +%Y%m%d-%H%M%S)-$$" --json | jq -r .id)

# Queue without waiting: the answer is the queued-task object.
queued=$($sb generate "$project" --no-wait --json)
jq -e '.message == "Task queued successfully" and .status == "pending"' <<<"$queued" >/dev/null \
    || fail "unexpected answer from generate: $queued"
task=$(jq -r .task_id <<<"$queued")
echo "ci.sh: project $project, task $task queued" >&2

# Wait for the end: one final task object on stdout; exit 1 if the task failed or was
# cancelled, 4 on timeout.
status=0
result=$($sb status "$task" --watch --timeout "$wait_s" --json) || status=$?
if [ "$status" -ne 0 ]; then
    jq -r '"task \(.id // "?"): \(.status // "?"): \(.error)"' <<<"$result" >&2 || true
    exit "$status"
fi
jq -e '.status == "succeeded" and .progress.total > 0 and .progress.done == .progress.total
       and (.shots | length) == .progress.total' <<<"$result" >/dev/null \
    || fail "task $task finished in an unexpected state: $result"

# Every link downloads a PNG (first 8 bytes: the PNG signature).
image=$(mktemp)
trap 'rm -f "$image"' EXIT
while read -r url; do
    curl -fsS --max-time 30 -o "$image" "$url" || fail "cannot download ${url%%\?*}"
    magic=$(head -c 8 "$image" | od -An -tx1 | tr -d ' \n')
    [ "$magic" = "89504e470d0a1a0a" ] || fail "shot link is not a PNG: ${url%%\?*}"
done < <(jq -r '.shots[].image_url' <<<"$result")

# Links can be renewed from the stored keys, with a new expiry.
$sb links "$project" --expires 900 --json \
    | jq -e '(.shots | length) > 0 and all(.shots[]; .image_url != null and .url_expires_at != null)
             and .script_url != null' >/dev/null \
    || fail "links did not renew every shot link"

echo "ci.sh: ok, task $task: $(jq '.shots | length' <<<"$result") shots with PNG links" >&2
