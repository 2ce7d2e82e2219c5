# img2vid container images, one Dockerfile with three targets:
#
#   docker build -t img2vid .                    CPU image (the last stage, the default)
#   docker build --target gpu -t img2vid:gpu \
#     --build-arg ORT_GPU_SHA256=<sha256> .      NVIDIA CUDA image for `docker run --gpus all`
#   docker build --target nats -t img2vid-nats . the NATS server of a cluster (docs/DEPLOY.md)
#
# Every download is pinned and checked: Go modules against go.sum, the ONNX
# Runtime tarballs against a sha256, Debian packages by apt's signatures. Behind
# a proxy or offline mirror, override GOPROXY, ORT_URL and ORT_GPU_URL.
#
# Both of Docker's builders make the CPU image from the plain command. BuildKit
# builds only the stages the target needs. The classic builder
# (DOCKER_BUILDKIT=0, Debian's docker.io) builds every stage up to the target,
# so on the way to the CPU image it also passes through ort-gpu and gpu: without
# ORT_GPU_SHA256 those two download nothing and sit on the Debian base already
# used, and the CPU build needs no GPU file or checksum.

# The CUDA 12 + cuDNN 9 runtime that ONNX Runtime 1.24's GPU release is built
# against (onnxruntime.ai/docs/execution-providers/CUDA-ExecutionProvider: any
# CUDA 12.x works, cuDNN must be 9.x). Ubuntu 24.04's glibc is newer than the
# Debian 12 one the binary is linked against, so the same binary runs there.
ARG CUDA_IMAGE=nvidia/cuda:12.8.1-cudnn-runtime-ubuntu24.04
# The checksum of the GPU release tarball; giving it is what makes a GPU build.
ARG ORT_GPU_SHA256=
# The gpu stage's base: the CUDA runtime for a GPU build, else nothing new to
# pull (see above).
ARG GPU_BASE=${ORT_GPU_SHA256:+${CUDA_IMAGE}}

# ---------------------------------------------------------------------------
# ffmpeg: built here rather than installed. Debian's ffmpeg package pulls about
# 700 MB of dependencies (LLVM, Mesa, X11, codecs the app never uses); even the
# libraries `ldd ffmpeg` names come to about 250 MB. img2vid only pipes raw RGB
# frames in and writes H.264 MP4, VP9 WebM or GIF, with an optional soundtrack
# (AAC or Opus), so this stage configures
# Debian's own ffmpeg source (same version and patches as the distribution's
# package) with --disable-everything plus exactly those parts, and links
# Debian's libx264, libvpx and libopus statically. The result is one self-contained
# binary of a few MB that runs unchanged on the Debian and the Ubuntu (CUDA)
# bases. ffprobe is left out: the app does not call it.
FROM debian:bookworm-slim AS ffmpeg
RUN set -eux; \
    . /etc/os-release; \
    printf 'deb-src http://deb.debian.org/debian %s main\ndeb-src http://deb.debian.org/debian-security %s-security main\n' \
        "$VERSION_CODENAME" "$VERSION_CODENAME" > /etc/apt/sources.list.d/img2vid-src.list; \
    apt-get update; \
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends \
        dpkg-dev gcc libc6-dev make nasm pkg-config libx264-dev libvpx-dev libopus-dev tini xz-utils; \
    mkdir /usr/src/ffmpeg; cd /usr/src/ffmpeg; \
    apt-get source --only-source ffmpeg; \
    rm -rf /var/lib/apt/lists/*
WORKDIR /usr/src/ffmpeg
# Only what the app uses: raw RGB frames or whole JPEG files (image2pipe +
# mjpeg, for images passed through untouched) from a pipe in; libx264
# (H.264), libvpx (VP9) and the GIF encoder out; the mp4, webm and gif
# muxers; a soundtrack's containers and codecs in, decoded once into FLAC
# (its encoder and muxer) and encoded as AAC or Opus beside the video; the
# file and pipe protocols; the filters for pixel-format conversion, the GIF
# palette and the soundtrack's fade and padding. No network, devices, docs
# or other programs, which also keeps the compile to a few minutes.
RUN set -eux; \
    cd ffmpeg-*/; \
    ./configure \
        --prefix=/opt/ffmpeg \
        --pkg-config-flags=--static \
        --extra-ldflags=-static \
        --disable-everything \
        --disable-autodetect \
        --disable-debug \
        --disable-doc \
        --disable-network \
        --disable-avdevice \
        --disable-postproc \
        --disable-ffplay \
        --disable-ffprobe \
        --enable-gpl \
        --enable-libx264 \
        --enable-libvpx \
        --enable-libopus \
        --enable-protocol=file,pipe \
        --enable-demuxer=rawvideo,image2pipe,mp3,aac,mov,wav,ogg,flac,matroska \
        --enable-decoder=rawvideo,mjpeg,mp3,mp3float,aac,aac_fixed,alac,vorbis,opus,libopus,flac,pcm_s16le,pcm_s24le,pcm_s32le,pcm_f32le,pcm_u8 \
        --enable-parser=mjpeg,h264,vp9,mpegaudio,aac,vorbis,opus,flac \
        --enable-encoder=libx264,libvpx_vp9,gif,aac,libopus,pcm_s16le,flac \
        --enable-muxer=mp4,webm,gif,flac,null \
        --enable-filter=scale,format,null,split,palettegen,paletteuse,fps,pad,setsar,afade,apad,aresample,aformat,anull; \
    make -j"$(nproc)"; \
    make install; \
    /opt/ffmpeg/bin/ffmpeg -hide_banner -encoders | grep -E 'libx264|libvpx-vp9| gif | aac |libopus'; \
    /opt/ffmpeg/bin/ffmpeg -hide_banner -demuxers | grep -E ' mp3 | mov,| ogg | flac | wav '; \
    /opt/ffmpeg/bin/ffmpeg -hide_banner -muxers | grep -E ' mp4 | webm | gif '; \
    if ldd /opt/ffmpeg/bin/ffmpeg >/dev/null 2>&1; then echo "ffmpeg is not static" >&2; exit 1; fi

# ---------------------------------------------------------------------------
# ort: the official ONNX Runtime CPU release, checked, and only the shared
# library kept (the headers and the rest of the tarball stay behind).
FROM golang:1.26-bookworm AS ort
ARG ORT_VERSION=1.24.3
ARG ORT_URL=https://github.com/microsoft/onnxruntime/releases/download/v${ORT_VERSION}/onnxruntime-linux-x64-${ORT_VERSION}.tgz
ARG ORT_SHA256=4c436a280d650f8bf32c921a2bf4de7c42cc32884c51c90e47de991708bbb5a4
RUN set -eux; \
    curl -fsSL --retry 3 -o /tmp/ort.tgz "$ORT_URL"; \
    echo "$ORT_SHA256  /tmp/ort.tgz" | sha256sum -c -; \
    mkdir -p /tmp/ort /opt/onnxruntime; \
    tar -xzf /tmp/ort.tgz -C /tmp/ort --strip-components=2 \
        "onnxruntime-linux-x64-${ORT_VERSION}/lib/libonnxruntime.so.${ORT_VERSION}"; \
    mv "/tmp/ort/libonnxruntime.so.${ORT_VERSION}" /opt/onnxruntime/; \
    ln -s "libonnxruntime.so.${ORT_VERSION}" /opt/onnxruntime/libonnxruntime.so; \
    rm -rf /tmp/ort /tmp/ort.tgz

# ---------------------------------------------------------------------------
# build: the img2vid binary. cgo is on because onnxruntime_go dlopens
# libonnxruntime at run time through a small C shim; no ORT headers are needed.
FROM golang:1.26-bookworm AS build
ARG GOPROXY=https://proxy.golang.org,direct
ENV GOPROXY=${GOPROXY} \
    CGO_ENABLED=1 \
    GOFLAGS=-mod=readonly \
    GOTOOLCHAIN=local
WORKDIR /src
# Modules in their own layer: a source edit does not download them again.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/img2vid ./cmd/img2vid \
 && /out/img2vid version

# ---------------------------------------------------------------------------
# nats: the NATS server for a cluster deployment (compose.yaml's cluster
# profile, deploy/kubernetes/), built from the nats-server module go.mod
# pins, so a cluster runs the server version img2vid is tested with, on the
# same bases as the rest. Static (no cgo); checked against go.sum like every
# module. Only `--target nats` ships it; the classic builder compiles it once
# on the way to the default target, and its cache keeps it until go.mod changes.
FROM golang:1.26-bookworm AS nats-build
ARG GOPROXY=https://proxy.golang.org,direct
ENV GOPROXY=${GOPROXY} \
    CGO_ENABLED=0 \
    GOFLAGS=-mod=readonly \
    GOTOOLCHAIN=local
WORKDIR /src
COPY go.mod go.sum ./
RUN go build -trimpath -ldflags "-s -w" -o /out/nats-server github.com/nats-io/nats-server/v2 \
 && /out/nats-server --version

FROM debian:bookworm-slim AS nats
LABEL org.opencontainers.image.title="img2vid-nats" \
      org.opencontainers.image.description="The NATS server (JetStream) at the version img2vid's go.mod pins, for img2vid clusters" \
      org.opencontainers.image.source="https://github.com/img2vid/img2vid"
# Its own fixed uid, apart from img2vid's, for the JetStream volume.
RUN groupadd --gid 10002 nats \
 && useradd --uid 10002 --gid nats --home-dir /data --no-create-home --shell /usr/sbin/nologin nats \
 && mkdir -p /data \
 && chown nats:nats /data \
 && chmod 0700 /data
COPY --from=nats-build /out/nats-server /usr/local/bin/nats-server
USER nats:nats
WORKDIR /data
VOLUME ["/data"]
# Clients, routes between the servers, monitoring (/healthz, /jsz).
EXPOSE 4222 6222 8222
# nats-server handles SIGTERM itself (it stops cleanly, flushing its files).
ENTRYPOINT ["nats-server"]
CMD ["--jetstream", "--store_dir", "/data", "--http_port", "8222"]

# ---------------------------------------------------------------------------
# ort-gpu: the official ONNX Runtime GPU release (CUDA 12, cuDNN 9). The CUDA
# provider and the providers_shared library it needs go beside the main
# library, where ONNX Runtime looks for them; the TensorRT provider is left out
# because the base has no TensorRT. The release page publishes no checksum file
# for this tarball that the build can fetch, so the sha256 is a build argument
# rather than a guess; without it nothing is fetched (a CPU build passing
# through with the classic builder) and the gpu stage refuses.
FROM golang:1.26-bookworm AS ort-gpu
ARG ORT_VERSION=1.24.3
ARG ORT_GPU_URL=https://github.com/microsoft/onnxruntime/releases/download/v${ORT_VERSION}/onnxruntime-linux-x64-gpu-${ORT_VERSION}.tgz
ARG ORT_GPU_SHA256
RUN set -eux; \
    mkdir -p /opt/onnxruntime; \
    if [ -z "$ORT_GPU_SHA256" ]; then exit 0; fi; \
    curl -fsSL --retry 3 -o /tmp/ort.tgz "$ORT_GPU_URL"; \
    echo "$ORT_GPU_SHA256  /tmp/ort.tgz" | sha256sum -c -; \
    mkdir -p /tmp/ort; \
    tar -xzf /tmp/ort.tgz -C /tmp/ort --strip-components=2 \
        "onnxruntime-linux-x64-gpu-${ORT_VERSION}/lib/libonnxruntime.so.${ORT_VERSION}" \
        "onnxruntime-linux-x64-gpu-${ORT_VERSION}/lib/libonnxruntime_providers_shared.so" \
        "onnxruntime-linux-x64-gpu-${ORT_VERSION}/lib/libonnxruntime_providers_cuda.so"; \
    mv /tmp/ort/* /opt/onnxruntime/; \
    ln -s "libonnxruntime.so.${ORT_VERSION}" /opt/onnxruntime/libonnxruntime.so; \
    rm -rf /tmp/ort /tmp/ort.tgz

# ---------------------------------------------------------------------------
# gpu: same binary, same ffmpeg, on the CUDA runtime. IMG2VID_DEVICE=auto uses
# CUDA when a GPU is passed in (`docker run --gpus all`) and says in its log and
# on /readyz when it falls back to the CPU.
FROM ${GPU_BASE:-debian:bookworm-slim} AS gpu
ARG CUDA_IMAGE
ARG ORT_GPU_SHA256
# Set by BuildKit only, which builds this stage only for --target gpu.
ARG TARGETPLATFORM
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="img2vid-gpu" \
      org.opencontainers.image.description="Turns a folder of images into a browser-playable video, with ONNX models in the loop (NVIDIA CUDA)" \
      org.opencontainers.image.source="https://github.com/img2vid/img2vid" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
RUN groupadd --gid 10001 img2vid \
 && useradd --uid 10001 --gid img2vid --home-dir /var/lib/img2vid --no-create-home --shell /usr/sbin/nologin img2vid \
 && mkdir -p /input /output /models /var/lib/img2vid /etc/img2vid/nats-auth \
 && chown img2vid:img2vid /output /models /var/lib/img2vid /etc/img2vid/nats-auth \
 && chmod 0700 /var/lib/img2vid
COPY --from=ffmpeg /usr/bin/tini-static /usr/bin/tini
COPY --from=ffmpeg /opt/ffmpeg/bin/ffmpeg /usr/local/bin/ffmpeg
COPY --from=ort-gpu /opt/onnxruntime/ /usr/local/lib/onnxruntime/
COPY --from=build /out/img2vid /usr/local/bin/img2vid
# A CUDA or cuDNN library missing from the base fails the build here, not the
# first request on the GPU server. Without ORT_GPU_SHA256 there is no GPU
# runtime: BuildKit fails the build; under the classic builder this stage is
# also passed through by the plain CPU build, which must not fail, so it ends
# as a placeholder whose img2vid only says how to build the real image.
RUN set -eu; \
    if [ -z "$ORT_GPU_SHA256" ]; then \
        msg="img2vid:gpu was built without ORT_GPU_SHA256, so it holds no GPU runtime: build it with --target gpu --build-arg ORT_GPU_SHA256=<sha256 of the ONNX Runtime GPU release>"; \
        if [ -n "${TARGETPLATFORM:-}" ]; then echo "$msg" >&2; exit 1; fi; \
        printf '#!/bin/sh\necho "%s" >&2\nexit 1\n' "$msg" >/usr/local/bin/img2vid; \
        exit 0; \
    fi; \
    missing=$(LD_LIBRARY_PATH=/usr/local/lib/onnxruntime ldd /usr/local/lib/onnxruntime/libonnxruntime_providers_cuda.so | grep 'not found' || true); \
    if [ -n "$missing" ]; then \
        echo "libonnxruntime_providers_cuda.so cannot load in ${CUDA_IMAGE:-this base}; missing:" >&2; echo "$missing" >&2; exit 1; \
    fi
ENV SERVER_NAME=0.0.0.0 \
    SERVER_PORT=8080 \
    INPUT_DIR=/input \
    OUTPUT_DIR=/output \
    ONNXRUNTIME_LIB=/usr/local/lib/onnxruntime/libonnxruntime.so \
    IMG2VID_DEVICE=auto \
    IMG2VID_MODELS_DIR=/models \
    IMG2VID_WORK_DIR=/var/lib/img2vid \
    IMG2VID_GRACE=7s
USER img2vid:img2vid
WORKDIR /var/lib/img2vid
EXPOSE 8080
VOLUME ["/output", "/models"]
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["img2vid", "healthcheck"]
ENTRYPOINT ["tini", "--", "img2vid"]
CMD ["serve"]

# ---------------------------------------------------------------------------
# cpu: the runtime image, and the default target (the last stage). Nothing is installed with apt here: ffmpeg and tini
# are static binaries and libonnxruntime needs only glibc and libstdc++'s
# runtime, which the slim base has.
FROM debian:bookworm-slim AS cpu
ARG VERSION=dev
ARG REVISION=unknown
LABEL org.opencontainers.image.title="img2vid" \
      org.opencontainers.image.description="Turns a folder of images into a browser-playable video, with ONNX models in the loop (CPU)" \
      org.opencontainers.image.source="https://github.com/img2vid/img2vid" \
      org.opencontainers.image.version="${VERSION}" \
      org.opencontainers.image.revision="${REVISION}"
# A fixed uid, so operators can chown a bind-mounted output folder to it.
RUN groupadd --gid 10001 img2vid \
 && useradd --uid 10001 --gid img2vid --home-dir /var/lib/img2vid --no-create-home --shell /usr/sbin/nologin img2vid \
 && mkdir -p /input /output /models /var/lib/img2vid /etc/img2vid/nats-auth \
 && chown img2vid:img2vid /output /models /var/lib/img2vid /etc/img2vid/nats-auth \
 && chmod 0700 /var/lib/img2vid
# tini is PID 1 so ffmpeg children of a cancelled job are reaped and SIGTERM
# reaches img2vid, which stops gracefully.
COPY --from=ffmpeg /usr/bin/tini-static /usr/bin/tini
COPY --from=ffmpeg /opt/ffmpeg/bin/ffmpeg /usr/local/bin/ffmpeg
COPY --from=ort /opt/onnxruntime/ /usr/local/lib/onnxruntime/
COPY --from=build /out/img2vid /usr/local/bin/img2vid
# Everything runs on this base: a library missing from it fails the build.
RUN set -eu; \
    missing=$(ldd /usr/local/lib/onnxruntime/libonnxruntime.so | grep 'not found' || true); \
    if [ -n "$missing" ]; then echo "libonnxruntime.so cannot load on this base:" >&2; echo "$missing" >&2; exit 1; fi; \
    img2vid version; \
    ffmpeg -hide_banner -version | head -1
# IMG2VID_GRACE, the time running jobs get after SIGTERM, stays under the 10 s
# that `docker stop` waits before it kills; raise both together (--stop-timeout).
ENV SERVER_NAME=0.0.0.0 \
    SERVER_PORT=8080 \
    INPUT_DIR=/input \
    OUTPUT_DIR=/output \
    ONNXRUNTIME_LIB=/usr/local/lib/onnxruntime/libonnxruntime.so \
    IMG2VID_DEVICE=cpu \
    IMG2VID_MODELS_DIR=/models \
    IMG2VID_WORK_DIR=/var/lib/img2vid \
    IMG2VID_GRACE=7s
USER img2vid:img2vid
WORKDIR /var/lib/img2vid
EXPOSE 8080
VOLUME ["/output", "/models"]
# The binary checks itself: no curl in the image.
HEALTHCHECK --interval=15s --timeout=5s --start-period=20s --retries=3 CMD ["img2vid", "healthcheck"]
ENTRYPOINT ["tini", "--", "img2vid"]
CMD ["serve"]
