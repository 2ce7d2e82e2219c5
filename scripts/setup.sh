#!/usr/bin/env bash
# Installs what img2vid needs and is missing on this machine.
#   scripts/setup.sh run    ffmpeg and ONNX Runtime: enough to build and run
#   scripts/setup.sh test   also Chromium and axe-core, for the browser tests
# System packages come from Debian (apt) when run as root; otherwise a missing
# one is named with the command that installs it. ONNX Runtime goes into
# .deps/ (git-ignored), checked against pinned sha256 sums.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/versions.env
mode=${1:-run}

apt_updated=
need_pkg() { # need_pkg COMMAND PACKAGE...
	command -v "$1" >/dev/null 2>&1 && return 0
	shift
	install_pkgs "$@"
}

install_pkgs() { # install_pkgs PACKAGE...
	if [ "$(id -u)" != 0 ]; then
		echo "setup: missing $*; install with: sudo apt-get install $*" >&2
		exit 1
	fi
	if [ -z "$apt_updated" ]; then apt-get update -qq; apt_updated=1; fi
	echo "setup: installing $* from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

install_ort() {
	local dir=.deps/onnxruntime-$ORT_VERSION
	local lib=$dir/libonnxruntime.so.$ORT_VERSION
	if [ -f "$lib" ] && echo "$ORT_LIB_SHA256  $lib" | sha256sum -c --status; then
		return 0
	fi
	need_pkg npm npm
	echo "setup: fetching ONNX Runtime $ORT_VERSION ($ORT_NPM_PACKAGE)"
	local tmp
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' RETURN
	(cd "$tmp" && npm pack --silent "$ORT_NPM_PACKAGE" >/dev/null)
	local tgz=("$tmp"/*.tgz)
	echo "$ORT_NPM_SHA256  ${tgz[0]}" | sha256sum -c --quiet
	tar -xzf "${tgz[0]}" -C "$tmp" package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	local so=$tmp/package/bin/napi-v6/linux/x64/libonnxruntime.so.1
	echo "$ORT_LIB_SHA256  $so" | sha256sum -c --quiet
	mkdir -p "$dir"
	install -m 0644 "$so" "$lib.tmp" && mv "$lib.tmp" "$lib"
	ln -sf "libonnxruntime.so.$ORT_VERSION" "$dir/libonnxruntime.so"
	echo "setup: ONNX Runtime in $dir"
}

need_pkg ffmpeg ffmpeg
install_ort
if [ "$mode" = test ]; then
	need_pkg chromium chromium
	# Debian's torch and onnx, with which the models test rebuilds the
	# built-in models and checks they are the committed bytes (about 70 MB
	# to download, 400 MB installed, when none of it is there).
	if ! /usr/bin/python3 -c 'import torch, onnx, numpy' 2>/dev/null; then
		install_pkgs python3-torch python3-onnx python3-numpy
	fi
	# The reference decoders the corpus tests compare frames with: libjpeg,
	# libwebp, libtiff.
	need_pkg djpeg libjpeg-turbo-progs
	need_pkg dwebp webp
	need_pkg tiff2rgba libtiff-tools
	# An independent ONNX Runtime (the Node.js binding of the same release)
	# that the parity test and the frame benchmark compare against.
	if [ ! -d inference/testdata/node/node_modules/onnxruntime-node ]; then
		need_pkg npm npm
		echo "setup: installing onnxruntime-node for the parity test"
		npm ci --silent --ignore-scripts --prefix inference/testdata/node >/dev/null
	fi
	# axe-core, which the browser test injects to check the page's
	# accessibility in each state.
	if [ ! -d server/e2e/testdata/node/node_modules/axe-core ]; then
		need_pkg npm npm
		echo "setup: installing axe-core for the browser test"
		npm ci --silent --ignore-scripts --prefix server/e2e/testdata/node >/dev/null
	fi
fi
