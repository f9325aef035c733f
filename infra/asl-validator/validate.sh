#!/usr/bin/env bash
# Validates every golden ASL definition (crates/core/tests/golden/asl/*.json)
# with asl-validator (pinned in package.json): schema, transition targets,
# Parallel branches that stay inside themselves, duplicate state names,
# terminal states, JSONPath expressions and Resource ARNs.
#
# Usage: infra/asl-validator/validate.sh [file.json ...]
# (defaults to every golden file; installs the pinned validator when needed)
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
golden="$repo/crates/core/tests/golden/asl"

if [[ ! -x "$here/node_modules/.bin/asl-validator" ]]; then
    (cd "$here" && npm ci --no-audit --no-fund >&2)
fi

if [[ $# -gt 0 ]]; then
    files=()
    for arg in "$@"; do
        files+=("$(realpath -- "$arg")")
    done
else
    shopt -s nullglob
    files=("$golden"/*.json)
    if [[ ${#files[@]} -eq 0 ]]; then
        echo "validate.sh: no golden files in $golden" >&2
        exit 1
    fi
fi

failed=0
for file in "${files[@]}"; do
    if out="$(cd "$here" && npx --no-install asl-validator --json-path "$file" 2>&1)"; then
        echo "ok       ${file#"$repo"/}"
    else
        echo "INVALID  ${file#"$repo"/}"
        echo "$out" | sed 's/^/    /'
        failed=$((failed + 1))
    fi
done

if [[ $failed -gt 0 ]]; then
    echo "validate.sh: $failed of ${#files[@]} definition(s) invalid" >&2
    exit 1
fi
echo "validate.sh: all ${#files[@]} definition(s) valid"
