#!/usr/bin/env sh
# The plugin's install/update hook: puts the helm-safe-rollback binary in $HELM_PLUGIN_DIR/bin.
#
# In order of preference:
#   1. HSR_PREBUILT_BINARY=/path/to/helm-safe-rollback   use that binary (tests, packagers);
#   2. a source checkout (Cargo.toml here) and cargo on PATH: cargo build --release --locked;
#   3. a published release for this platform, from $HSR_RELEASE_BASE_URL (see release_url).
# Fails with one clear line when none of them works.
set -eu

dir=$(cd "$(dirname "$0")" && pwd)
plugin_dir=${HELM_PLUGIN_DIR:-$dir}
bin_dir="$plugin_dir/bin"
name=helm-safe-rollback

fail() {
  echo "helm-safe-rollback install: $*" >&2
  exit 1
}

install_binary() {
  mkdir -p "$bin_dir"
  # Copy then rename: an install running next to another (or to a running plugin) never
  # leaves a half-written binary behind.
  cp "$1" "$bin_dir/$name.tmp.$$"
  chmod 0755 "$bin_dir/$name.tmp.$$"
  mv "$bin_dir/$name.tmp.$$" "$bin_dir/$name"
  echo "helm-safe-rollback installed: $bin_dir/$name"
}

version() {
  sed -n 's/^version: *"\{0,1\}\([^"]*\)"\{0,1\}$/\1/p' "$dir/plugin.yaml"
}

# Where a published release would be; no release is published yet, so this is opt-in.
release_url() {
  os=$(uname -s | tr '[:upper:]' '[:lower:]')
  arch=$(uname -m)
  case "$arch" in aarch64) arch=arm64 ;; x86_64) arch=amd64 ;; esac
  echo "${HSR_RELEASE_BASE_URL%/}/v$(version)/$name-$(version)-$os-$arch.tar.gz"
}

if [ -n "${HSR_PREBUILT_BINARY:-}" ]; then
  [ -x "$HSR_PREBUILT_BINARY" ] || fail "HSR_PREBUILT_BINARY=$HSR_PREBUILT_BINARY is not an executable file"
  install_binary "$HSR_PREBUILT_BINARY"
elif [ -f "$dir/Cargo.toml" ] && command -v cargo >/dev/null 2>&1; then
  (cd "$dir" && cargo build --release --locked --quiet) || fail "cargo build failed (see above)"
  install_binary "$dir/target/release/$name"
elif [ -n "${HSR_RELEASE_BASE_URL:-}" ]; then
  url=$(release_url)
  tmp=$(mktemp -d)
  trap 'rm -rf "$tmp"' EXIT
  if command -v curl >/dev/null 2>&1; then
    curl -fsSL "$url" -o "$tmp/release.tar.gz" || fail "cannot download $url"
  else
    wget -q "$url" -O "$tmp/release.tar.gz" || fail "cannot download $url"
  fi
  tar -xzf "$tmp/release.tar.gz" -C "$tmp" || fail "$url is not a .tar.gz"
  install_binary "$tmp/$name"
else
  fail "no binary to install: install Rust (cargo) and re-run from a source checkout, or set HSR_RELEASE_BASE_URL to where releases are published"
fi
