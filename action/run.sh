#!/usr/bin/env bash
# The Action's one step: build dotfleet if needed, run the fleet diff, publish it.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
if [ ! -f "$root/dist/cli/dotfleet.mjs" ]; then
  (cd "$root" && npm ci --no-audit --no-fund >/dev/null && npm run build >/dev/null)
fi
out="${RUNNER_TEMP:-/tmp}/dotfleet-diff.md"
set +e
node "$root/dist/cli/dotfleet.mjs" diff --repo "${DOTFLEET_REPO:-.}" --base "$DOTFLEET_BASE" --head "$DOTFLEET_HEAD" --format markdown --color never > "$out"
code=$?
set -e
cat "$out" >> "${GITHUB_STEP_SUMMARY:-/dev/stdout}"
echo "exit-code=$code" >> "${GITHUB_OUTPUT:-/dev/null}"
if [ "$code" -ge 2 ]; then
  echo "::error title=dotfleet::the fleet diff found errors (exit $code); the job summary says where"
  exit "$code"
fi
