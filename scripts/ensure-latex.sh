#!/usr/bin/env bash
# Make `pdflatex` (and poppler's `pdfinfo`/`pdftotext`, which the report test reads the PDF
# with) available, so that `gradcheck report` builds report.pdf and tests/test_report.py can
# compile it.  Idempotent and quiet: does nothing when the tools are already there, and
# nothing when apt-get is not (the PDF test then says why it cannot run; in CI it fails).
#
# The set is kept small: report.tex uses only amsmath, graphicx, geometry, hyperref and
# booktabs, all in Debian's texlive-latex-base / texlive-latex-recommended.
set -euo pipefail

need=()
command -v pdflatex >/dev/null 2>&1 || need+=(texlive-latex-base texlive-latex-recommended)
{ command -v pdfinfo >/dev/null 2>&1 && command -v pdftotext >/dev/null 2>&1; } || need+=(poppler-utils)
[ ${#need[@]} -eq 0 ] && exit 0

if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure-latex: pdflatex/poppler missing and apt-get unavailable; install ${need[*]} by hand" >&2
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null 2>&1; then sudo="sudo -n"; else
    echo "ensure-latex: not root and no sudo; install ${need[*]} by hand" >&2
    exit 0
  fi
fi

export DEBIAN_FRONTEND=noninteractive
log=$(mktemp)
trap 'rm -f "$log"' EXIT
if ! { $sudo apt-get update -qq && \
       $sudo apt-get install -y -qq --no-install-recommends "${need[@]}"; } >"$log" 2>&1; then
  cat "$log" >&2
  echo "ensure-latex: apt-get install ${need[*]} failed" >&2
  exit 1
fi
