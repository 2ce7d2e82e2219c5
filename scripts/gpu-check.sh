#!/usr/bin/env bash
# Prepares the GPU check (bench/gpucheck) for a GPU machine that has no Go,
# no ffmpeg and no internet, and takes at most 64 MiB of files per command:
#   scripts/gpu-check.sh prepare   build .gpu/: the gpucheck binary, ONNX
#                                  Runtime's CUDA 13 build (npm packages
#                                  com.github.asus4.onnxruntime*), its CUDA
#                                  provider xz-compressed in parts of 55 MB
#   scripts/gpu-check.sh run       on the GPU machine, from the copy of the
#                                  tree: append this command's part to
#                                  /tmp/g, and once every part is there,
#                                  join them and run the check
# Each `run` takes one part: carry .gpu/common, then .gpu/part-aa, -ab...
# one per command (see docs/BENCHMARKS.md, "The GPU check").
set -euo pipefail
cd "$(dirname "$0")/.."
pkg=com.github.asus4.onnxruntime@0.4.9
gpu_pkg=com.github.asus4.onnxruntime.linux-x64-gpu@0.4.9

case "${1:-}" in
prepare)
	rm -rf .gpu && mkdir -p .gpu/common
	CGO_ENABLED=1 go build -o .gpu/common/gpucheck ./bench/gpucheck
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	(cd "$tmp" && npm pack --silent "$pkg" "$gpu_pkg" >/dev/null)
	for t in "$tmp"/*.tgz; do tar -xzf "$t" -C "$tmp"; done
	cp "$tmp"/package/Plugins/Linux/x64/libonnxruntime.so "$tmp"/package/Plugins/Linux/x64/libonnxruntime_providers_shared.so .gpu/common/
	command -v xz >/dev/null || { echo "gpu-check: xz is needed (apt-get install xz-utils)" >&2; exit 1; }
	xz -T0 -9 -c "$tmp"/package/Plugins/Linux/x64/libonnxruntime_providers_cuda.so >"$tmp/cuda.xz"
	(cd .gpu && split -b 55M "$tmp/cuda.xz" part-)
	ls .gpu/part-* | wc -l >.gpu/common/parts
	ls -l .gpu .gpu/common
	;;
run)
	mkdir -p /tmp/g
	[ -d .gpu/common ] && cp .gpu/common/* /tmp/g/
	for p in .gpu/part-*; do [ -f "$p" ] && cp "$p" /tmp/g/; done
	parts=$(ls /tmp/g/part-* 2>/dev/null | wc -l)
	if [ ! -f /tmp/g/gpucheck ] || [ "$parts" -lt "$(cat /tmp/g/parts)" ]; then
		echo "gpu-check: $parts parts in /tmp/g so far"
		exit 0
	fi
	# xz where the machine has it, else Python's own lzma.
	if command -v xz >/dev/null; then
		cat /tmp/g/part-* | xz -d >/tmp/g/libonnxruntime_providers_cuda.so
	else
		cat /tmp/g/part-* | python3 -c 'import lzma, sys; sys.stdout.buffer.write(lzma.decompress(sys.stdin.buffer.read()))' >/tmp/g/libonnxruntime_providers_cuda.so
	fi
	libs=$(ls -d /opt/torch/.venv/lib/python3*/site-packages/nvidia/*/lib | paste -sd:)
	LD_LIBRARY_PATH=/tmp/g:$libs /tmp/g/gpucheck -lib /tmp/g/libonnxruntime.so | tee "${OUT:-/tmp}/gpucheck.txt"
	;;
*)
	echo "usage: scripts/gpu-check.sh prepare|run" >&2
	exit 2
	;;
esac
