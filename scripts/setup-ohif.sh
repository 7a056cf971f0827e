#!/usr/bin/env bash
# Installs the OHIF viewer that `xnatkit serve --ohif-dir DIR` serves: the
# prebuilt `dist/` of the npm package @ohif/app, pinned below, fetched with
# `npm pack` from the npm registry and checked against the registry's
# integrity hash. Nothing of OHIF is ever committed to this repository.
#
#   scripts/setup-ohif.sh [DIR]     (default: tmp/ohif in this repository)
#
# DIR then holds the unmodified files of package/dist minus the parts a
# stack viewer never loads: ort/ (ONNX Runtime Web, 136 MB, for AI tools),
# dicom-microscopy-viewer/ (20 MB, slide microscopy) and the source maps.
# Idempotent: when DIR already holds this version it does nothing.
set -euo pipefail

readonly OHIF_PACKAGE="@ohif/app"
readonly OHIF_VERSION="3.13.2"

repo="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
dir="${1:-$repo/tmp/ohif}"
marker="$dir/.xnatkit-ohif-version"
log() { printf '[setup-ohif] %s\n' "$*" >&2; }
fail() { log "error: $*"; exit 1; }

command -v npm >/dev/null || fail "npm is needed to fetch OHIF (Debian package npm)"

if [[ -f "$marker" && "$(head -n1 "$marker")" == "$OHIF_PACKAGE@$OHIF_VERSION" && -f "$dir/index.html" ]]; then
  log "$OHIF_PACKAGE $OHIF_VERSION present in $dir"
  exit 0
fi

# DIR is replaced whole below: never a folder this script did not fill.
if [[ -e "$dir" && ! -f "$marker" ]] && [[ -n "$(ls -A "$dir" 2>/dev/null)" || ! -d "$dir" ]]; then
  fail "$dir exists and was not installed by this script; pick a new or empty folder"
fi

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

log "asking the registry for $OHIF_PACKAGE@$OHIF_VERSION's integrity"
expected="$(npm view "$OHIF_PACKAGE@$OHIF_VERSION" dist.integrity)" \
  || fail "npm view $OHIF_PACKAGE@$OHIF_VERSION failed (no network to the npm registry?)"
[[ "$expected" == sha512-* ]] || fail "the registry gave no sha512 integrity for $OHIF_PACKAGE@$OHIF_VERSION: '$expected'"

log "downloading $OHIF_PACKAGE@$OHIF_VERSION (about 50 MB)"
(cd "$work" && npm pack "$OHIF_PACKAGE@$OHIF_VERSION" --silent >/dev/null) \
  || fail "npm pack $OHIF_PACKAGE@$OHIF_VERSION failed"
tarball="$(ls "$work"/*.tgz)"
actual="sha512-$(openssl dgst -sha512 -binary "$tarball" | base64 -w0)"
[[ "$actual" == "$expected" ]] \
  || fail "$(basename "$tarball") does not match the registry's integrity ($actual vs $expected); not installing it"

log "unpacking into $dir"
tar -xzf "$tarball" -C "$work" package/dist
[[ -f "$work/package/dist/index.html" ]] || fail "$OHIF_PACKAGE $OHIF_VERSION has no dist/index.html"
rm -rf "$work/package/dist/ort" "$work/package/dist/dicom-microscopy-viewer"
find "$work/package/dist" -name '*.map' -delete
# Replace DIR whole, so files of another version never linger.
mkdir -p "$(dirname "$dir")"
rm -rf "$dir.new"
mv "$work/package/dist" "$dir.new"
printf '%s@%s\n%s\n' "$OHIF_PACKAGE" "$OHIF_VERSION" "$expected" > "$dir.new/.xnatkit-ohif-version"
rm -rf "$dir"
mv "$dir.new" "$dir"
log "$OHIF_PACKAGE $OHIF_VERSION installed in $dir ($(du -sh "$dir" | cut -f1)); run: xnatkit serve --ohif-dir $dir"
