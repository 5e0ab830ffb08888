#!/usr/bin/env bash
# Installs what the release build (`npm run pack:all`) and the cross-platform tests need, each
# only if it is missing, so a rerun takes a second:
# - zig (PyPI `ziglang`) and cargo-zigbuild (PyPI wheel of the crates.io tool): the linker that
#   builds against glibc 2.17 and cross-links arm64 and musl;
# - the Rust standard libraries for aarch64-unknown-linux-gnu and x86_64-unknown-linux-musl;
# - qemu-user-static with arm64 glibc and libstdc++ (Debian multiarch): runs the registry's
#   arm64 Node on this x64 machine.
# Needs root for apt-get (CI and the development machines run as root).
set -euo pipefail

ZIGLANG_VERSION=0.15.2
CARGO_ZIGBUILD_VERSION=0.24.1
RUST_TARGETS=(aarch64-unknown-linux-gnu x86_64-unknown-linux-musl)

# zig and cargo-zigbuild live in their own virtualenv (no system Python is touched); pack-all.js
# puts its bin/ first on PATH. NET_UNIX_CROSS_TOOLS moves it.
venv="${NET_UNIX_CROSS_TOOLS:-$HOME/.cache/net-unix-cross}/venv"
if [ "$("$venv/bin/python" -m ziglang version 2>/dev/null)" != "$ZIGLANG_VERSION" ] ||
  [ "$("$venv/bin/cargo-zigbuild" --version 2>/dev/null)" != "cargo-zigbuild $CARGO_ZIGBUILD_VERSION" ]; then
  echo "setup-cross: pip install ziglang==$ZIGLANG_VERSION cargo-zigbuild==$CARGO_ZIGBUILD_VERSION into $venv"
  [ -x "$venv/bin/python" ] || python3 -m venv "$venv"
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    "ziglang==$ZIGLANG_VERSION" "cargo-zigbuild==$CARGO_ZIGBUILD_VERSION"
fi

installed=$(rustup target list --installed)
for target in "${RUST_TARGETS[@]}"; do
  grep -qx "$target" <<<"$installed" || rustup target add "$target"
done

apt_missing=()
command -v qemu-aarch64-static >/dev/null || apt_missing+=(qemu-user-static)
[ -e /lib/ld-linux-aarch64.so.1 ] || apt_missing+=(libc6:arm64)
[ -e /usr/lib/aarch64-linux-gnu/libstdc++.so.6 ] || apt_missing+=(libstdc++6:arm64)
if [ ${#apt_missing[@]} -gt 0 ]; then
  echo "setup-cross: apt-get install ${apt_missing[*]}"
  dpkg --print-foreign-architectures | grep -qx arm64 || dpkg --add-architecture arm64
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${apt_missing[@]}" >/dev/null
fi

echo "setup-cross: zig $("$venv/bin/python" -m ziglang version), $("$venv/bin/cargo-zigbuild" --version)," \
  "rust targets ${RUST_TARGETS[*]}, $(qemu-aarch64-static --version | head -1)"
