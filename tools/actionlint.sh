#!/usr/bin/env bash
# Lint the GitHub Actions workflows with actionlint, installed from the Go module proxy at a
# pinned version into ~/.cache/podrunner/bin (no prebuilt download). Usage: tools/actionlint.sh
set -euo pipefail
cd "$(dirname "$0")/.."

ACTIONLINT_VERSION=v1.7.12
BIN_DIR="${XDG_CACHE_HOME:-$HOME/.cache}/podrunner/bin"
ACTIONLINT="$BIN_DIR/actionlint"

if ! "$ACTIONLINT" -version 2>/dev/null | head -n1 | grep -qx "${ACTIONLINT_VERSION}"; then
  command -v go >/dev/null || { echo "tools/actionlint.sh: go is not on PATH" >&2; exit 1; }
  echo "installing actionlint ${ACTIONLINT_VERSION} into ${BIN_DIR}"
  mkdir -p "$BIN_DIR"
  GOBIN="$BIN_DIR" GOTOOLCHAIN=local CGO_ENABLED=0 GOFLAGS=-mod=mod \
    nice go install -ldflags "-s -w" \
    "github.com/rhysd/actionlint/cmd/actionlint@${ACTIONLINT_VERSION}"
fi

echo "+ actionlint $("$ACTIONLINT" -version | head -n1) .github/workflows/*.yml"
"$ACTIONLINT" .github/workflows/*.yml
echo "actionlint: workflows OK"
