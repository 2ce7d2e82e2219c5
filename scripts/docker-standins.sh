#!/usr/bin/env bash
# Builds local stand-ins for the base images the Dockerfile names, under the
# real tags, for machines that cannot pull from Docker Hub. Test scaffolding
# only: the Dockerfile keeps its real FROM lines and builds unchanged where the
# registry is reachable. A stand-in that already exists is kept.
#
#   debian:bookworm-slim   debootstrap --variant=minbase bookworm (bigger than
#                          the real slim image, so sizes are reported as growth
#                          over the base)
#   golang:1.26-bookworm   that image + gcc, libc6-dev, curl, ca-certificates and
#                          this machine's Go toolchain (/usr/local/go), as in the
#                          real image
#   $CUDA_IMAGE            Debian (not Ubuntu) with stand-in CUDA 12 / cuDNN 9
#                          libraries: empty shared objects with the real sonames
#                          (libcudart.so.12, libcublas.so.12, libcudnn.so.9, ...)
#                          so the GPU stage's `ldd` check can be exercised. They
#                          contain no CUDA: nothing here can run a GPU kernel.
#   img2vid-standin/cuda-no-cudnn   the same without libcudnn.so.9, to prove the
#                          ldd check fails the build when a library is missing.
#
# Needs a running dockerd, debootstrap and gcc. Usage: docker-standins.sh CUDA_IMAGE
set -euo pipefail

cuda_image=${1:?usage: docker-standins.sh CUDA_IMAGE}
# The libraries the CUDA provider of ONNX Runtime 1.24 (CUDA 12 build) links
# against, by soname.
cuda_sonames="libcudart.so.12 libcublas.so.12 libcublasLt.so.12 libcurand.so.10 libcufft.so.11 libcudnn.so.9"

have_image() { docker image inspect "$1" >/dev/null 2>&1; }

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if ! have_image debian:bookworm-slim; then
	echo "standins: debian:bookworm-slim from debootstrap (minbase)"
	root=$tmp/rootfs
	debootstrap --variant=minbase bookworm "$root" http://deb.debian.org/debian >"$tmp/debootstrap.log" 2>&1 ||
		{ tail -20 "$tmp/debootstrap.log" >&2; exit 1; }
	printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\ndeb http://deb.debian.org/debian-security bookworm-security main\n' \
		>"$root/etc/apt/sources.list"
	rm -rf "$root"/var/cache/apt/archives/*.deb "$root"/var/lib/apt/lists/*
	tar -C "$root" -c . | docker import -c 'CMD ["bash"]' - debian:bookworm-slim >/dev/null
	rm -rf "$root"
fi

if ! have_image golang:1.26-bookworm; then
	echo "standins: golang:1.26-bookworm from debian:bookworm-slim + $(go env GOROOT)"
	mkdir -p "$tmp/golang"
	cat >"$tmp/golang/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends gcc libc6-dev curl ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY go /usr/local/go
ENV GOPATH=/go PATH=/go/bin:/usr/local/go/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
WORKDIR /go
EOF
	tar -c -C "$tmp/golang" Dockerfile -C "$(dirname "$(go env GOROOT)")" "$(basename "$(go env GOROOT)")" |
		docker build --network host -q -t golang:1.26-bookworm - >/dev/null
fi

# cuda_standin TAG SONAMES...: a Debian image with empty libraries under the
# given sonames in /usr/local/cuda/lib64, registered with ldconfig as the real
# CUDA images do.
cuda_standin() {
	local tag=$1
	shift
	have_image "$tag" && return 0
	echo "standins: $tag (stand-in CUDA libraries: $*)"
	local dir=$tmp/cuda-$RANDOM
	mkdir -p "$dir/lib64"
	echo 'int img2vid_standin_library;' >"$dir/standin.c"
	local so
	for so in "$@"; do
		gcc -shared -fPIC -Wl,-soname,"$so" -o "$dir/lib64/$so" "$dir/standin.c"
	done
	cat >"$dir/Dockerfile" <<'EOF'
FROM debian:bookworm-slim
COPY lib64/ /usr/local/cuda/lib64/
RUN echo /usr/local/cuda/lib64 >/etc/ld.so.conf.d/cuda.conf && ldconfig
ENV NVIDIA_VISIBLE_DEVICES=all NVIDIA_DRIVER_CAPABILITIES=compute,utility
LABEL org.opencontainers.image.description="img2vid test stand-in: no CUDA inside"
EOF
	docker build -q -t "$tag" "$dir" >/dev/null
}

# shellcheck disable=SC2086 # word splitting of the soname list is intended
cuda_standin "$cuda_image" $cuda_sonames
# shellcheck disable=SC2086
cuda_standin img2vid-standin/cuda-no-cudnn ${cuda_sonames/libcudnn.so.9/}
