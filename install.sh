#!/usr/bin/env sh
# The plugin's install/update hook (plugin.yaml): puts the helm-safe-rollback binary in
# $HELM_PLUGIN_DIR/bin. It runs on users' machines, so it is POSIX sh and needs only what every
# Linux or macOS has: uname, tar, gzip, mktemp, curl or wget, and sha256sum, shasum or openssl.
#
# Where the binary comes from; the first that applies wins:
#   1. HSR_PREBUILT_BINARY=/path/to/helm-safe-rollback   that binary (tests, distro packagers);
#   2. HSR_RELEASE_ARCHIVE=/path/to/<archive>.tar.gz      a release archive already on this
#      machine (air-gapped installs), checked against <archive>.tar.gz.sha256 beside it;
#   3. a source checkout (Cargo.toml here) and cargo on PATH: cargo build --release --locked;
#   4. the release archive of plugin.yaml's version for this platform, with its .sha256, from
#      $HSR_RELEASE_BASE_URL/v<version>/ (curl or wget; HSR_DOWNLOADER=curl|wget to choose).
# An archive is unpacked only after its checksum matched, and nothing is written to bin/ until a
# complete binary that runs here is ready: a failed install leaves no binary behind.
#
#   ./install.sh --archive-name   prints this platform's archive name (scripts/release names
#                                 its archives with it, so the two cannot drift apart).
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
plugin_dir=${HELM_PLUGIN_DIR:-$dir}
bin_dir="$plugin_dir/bin"
name=helm-safe-rollback
# Where releases are published, as $base/v<version>/<archive>. Empty until the project has a
# public release location; HSR_RELEASE_BASE_URL overrides it.
default_release_base_url=""
# One failed download is retried this many times: a mirror's hiccup must not fail an install.
retries=2

fail() {
  echo "helm-safe-rollback install: $*" >&2
  exit 1
}

version() {
  v=$(sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\} *$/\1/p' "$dir/plugin.yaml")
  [ -n "$v" ] || fail "no version in $dir/plugin.yaml"
  echo "$v"
}

# The name of this platform's release archive; the platforms releases are built for.
archive_name() {
  os=$(uname -s | tr '[:upper:]' '[:lower:]')
  arch=$(uname -m)
  case "$arch" in x86_64 | amd64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; esac
  case "$os-$arch" in
    linux-amd64 | linux-arm64 | darwin-amd64 | darwin-arm64) ;;
    *) fail "no prebuilt binary for $os-$arch (releases exist for linux and darwin on amd64 and arm64); build from source: install Rust >= 1.89 (https://rustup.rs) and run 'helm plugin install' on a checkout of helm-safe-rollback" ;;
  esac
  echo "$name-$(version)-$os-$arch.tar.gz"
}

if [ "${1:-}" = --archive-name ]; then
  archive_name
  exit 0
fi

# Everything temporary lives in $tmp or is named in $partial; both go, however we exit.
tmp=""
partial=""
cleanup() {
  [ -z "$tmp" ] || rm -rf "$tmp"
  [ -z "$partial" ] || rm -f "$partial"
}
trap cleanup EXIT
# Without this a signal would end the shell without running the EXIT trap (dash, busybox).
trap 'exit 1' HUP INT TERM

install_binary() {
  # A binary that cannot run here (wrong architecture, too old a libc) must not be installed
  # as if it worked.
  "$1" --help >/dev/null 2>&1 || fail "$2 does not run on this machine ($(uname -s) $(uname -m)); build from source: install Rust >= 1.89 (https://rustup.rs) and run 'helm plugin install' on a checkout of helm-safe-rollback"
  mkdir -p "$bin_dir"
  # Copy then rename: an interrupted install, or one running next to another (or to a running
  # plugin), never leaves a half-written binary behind.
  partial="$bin_dir/.$name.partial.$$"
  cp "$1" "$partial"
  chmod 0755 "$partial"
  mv "$partial" "$bin_dir/$name"
  partial=""
  echo "helm-safe-rollback installed: $bin_dir/$name"
}

sha256_of() {
  if command -v sha256sum >/dev/null 2>&1; then
    sha256sum "$1" | cut -d' ' -f1
  elif command -v shasum >/dev/null 2>&1; then
    shasum -a 256 "$1" | cut -d' ' -f1
  else
    openssl dgst -sha256 -r "$1" | cut -d' ' -f1
  fi
}

have_sha256() {
  command -v sha256sum >/dev/null 2>&1 || command -v shasum >/dev/null 2>&1 ||
    command -v openssl >/dev/null 2>&1
}

# verify ARCHIVE SUMFILE WHERE: ARCHIVE's sha256 is the one SUMFILE (sha256sum format, as
# scripts/release writes it) gives for ARCHIVE's name, or we stop before anything is unpacked.
verify() {
  archive_file=$1
  sum_file=$2
  where=$3
  want_name=$(archive_name)
  expected=""
  listed=""
  [ -s "$sum_file" ] && read -r expected listed <"$sum_file" || true
  expected=$(printf '%s' "$expected" | tr '[:upper:]' '[:lower:]')
  listed=${listed#\*} # sha256sum's binary-mode marker
  case "$expected" in
    "" | *[!0-9a-f]*) fail "refusing to install: no valid sha256 for $want_name in $where" ;;
  esac
  [ "${#expected}" -eq 64 ] || fail "refusing to install: no valid sha256 for $want_name in $where"
  [ -z "$listed" ] || [ "$listed" = "$want_name" ] ||
    fail "refusing to install: $where is the checksum of $listed, not of $want_name"
  actual=$(sha256_of "$archive_file")
  [ "$actual" = "$expected" ] ||
    fail "refusing to install: $want_name does not match its checksum (sha256 $actual, expected $expected from $where)"
}

# unpack ARCHIVE: installs the binary from a verified release archive.
unpack() {
  stem=$(archive_name)
  stem=${stem%.tar.gz}
  mkdir "$tmp/unpacked"
  # Only the one member we need: nothing else in the archive is ever written anywhere.
  tar -xzf "$1" -C "$tmp/unpacked" "$stem/$name" 2>/dev/null ||
    fail "refusing to install: $1 has no $stem/$name"
  [ -f "$tmp/unpacked/$stem/$name" ] && [ ! -L "$tmp/unpacked/$stem/$name" ] ||
    fail "refusing to install: $stem/$name in $1 is not a regular file"
  install_binary "$tmp/unpacked/$stem/$name" "the binary in $1"
}

download_once() {
  case "${HSR_DOWNLOADER:-}" in
    curl | wget) tool=$HSR_DOWNLOADER ;;
    "") if command -v curl >/dev/null 2>&1; then tool=curl; else tool=wget; fi ;;
    *) fail "HSR_DOWNLOADER=$HSR_DOWNLOADER: use curl or wget" ;;
  esac
  command -v "$tool" >/dev/null 2>&1 || fail "cannot download: neither curl nor wget is on PATH"
  if [ "$tool" = curl ]; then
    curl -fsL --connect-timeout 20 -o "$2" "$1"
  elif wget --version >/dev/null 2>&1; then
    # GNU wget retries some failures 20 times by itself: one try, our retries are the policy.
    wget -q -T 20 -t 1 -O "$2" "$1"
  else
    wget -q -T 20 -O "$2" "$1" # busybox wget: no --version, no -t, and one try anyway
  fi
}

# fetch URL FILE: downloads with retries; a partial file from a failed attempt is never used.
fetch() {
  attempt=0
  while :; do
    rm -f "$2"
    download_once "$1" "$2" && return 0
    attempt=$((attempt + 1))
    [ "$attempt" -le "$retries" ] || return 1
    echo "helm-safe-rollback install: downloading $1 failed; retrying ($attempt of $retries)" >&2
    sleep "$attempt"
  done
}

if [ -n "${HSR_PREBUILT_BINARY:-}" ]; then
  [ -f "$HSR_PREBUILT_BINARY" ] && [ -x "$HSR_PREBUILT_BINARY" ] ||
    fail "HSR_PREBUILT_BINARY=$HSR_PREBUILT_BINARY is not an executable file"
  install_binary "$HSR_PREBUILT_BINARY" "HSR_PREBUILT_BINARY=$HSR_PREBUILT_BINARY"
elif [ -n "${HSR_RELEASE_ARCHIVE:-}" ]; then
  [ -f "$HSR_RELEASE_ARCHIVE" ] || fail "HSR_RELEASE_ARCHIVE=$HSR_RELEASE_ARCHIVE: no such file"
  have_sha256 || fail "cannot verify $HSR_RELEASE_ARCHIVE: no sha256sum, shasum or openssl on PATH"
  [ -f "$HSR_RELEASE_ARCHIVE.sha256" ] ||
    fail "refusing to install: no checksum file $HSR_RELEASE_ARCHIVE.sha256 beside the archive"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsr-install.XXXXXX")
  verify "$HSR_RELEASE_ARCHIVE" "$HSR_RELEASE_ARCHIVE.sha256" "$HSR_RELEASE_ARCHIVE.sha256"
  unpack "$HSR_RELEASE_ARCHIVE"
elif [ -f "$dir/Cargo.toml" ] && command -v cargo >/dev/null 2>&1; then
  (cd "$dir" && cargo build --release --locked --quiet) || fail "cargo build failed (see above)"
  install_binary "$dir/target/release/$name" "the binary cargo built"
else
  base=${HSR_RELEASE_BASE_URL:-$default_release_base_url}
  [ -n "$base" ] ||
    fail "no release location known: set HSR_RELEASE_BASE_URL to where releases are published, or build from source (install Rust >= 1.89 and run 'helm plugin install' on a checkout)"
  archive=$(archive_name) # fails first on a platform without releases
  have_sha256 || fail "cannot verify a download: no sha256sum, shasum or openssl on PATH"
  url="${base%/}/v$(version)/$archive"
  tmp=$(mktemp -d "${TMPDIR:-/tmp}/hsr-install.XXXXXX")
  # The checksum first: without one there is nothing to download the archive for.
  fetch "$url.sha256" "$tmp/$archive.sha256" ||
    fail "refusing to install: cannot download the checksum $url.sha256"
  fetch "$url" "$tmp/$archive" || fail "cannot download $url (tried $((retries + 1)) times)"
  verify "$tmp/$archive" "$tmp/$archive.sha256" "$url.sha256"
  unpack "$tmp/$archive"
fi
