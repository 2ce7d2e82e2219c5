#!/usr/bin/env bash
# Proves the container images for real: runs the README's container command
# lines as written, under both of Docker's builders (the classic one, which
# Debian's docker.io uses by default, and BuildKit), then runs the images and
# checks what a user would see.
#
#   scripts/docker-test.sh              every check
#   scripts/docker-test.sh --cluster    only the compose cluster profile's (7.)
#
# Works on a machine that cannot reach Docker Hub, GitHub or the Go proxy from
# inside containers: it installs the engine if missing (Debian docker.io, as
# root), starts dockerd, builds stand-in base images under the real tags
# (scripts/docker-standins.sh), and serves the Go module cache and ONNX Runtime
# tarballs laid out like the official releases from 127.0.0.1. The README's
# build lines run with only the build arguments that point there added
# (--network host, GOPROXY, ORT_URL and the stand-in tarballs' checksums); its
# run lines with only a label (for clean-up), -d, and the host port moved off
# 8080 (a developer's server may hold it). The frames are generated here. What
# the stand-ins can and cannot prove is written in docs/DEPLOY.md.
#
# Prints one PASS or FAIL line per check, then "N passed, N failed"; exits
# nonzero when a check failed. Stops and removes the containers, servers and
# the dockerd it started; keeps the images, so a second run reuses the layer
# cache.
set -uo pipefail
cd "$(dirname "$0")/.."
only_cluster=
case "${1:-}" in
--cluster) only_cluster=1 ;;
"") ;;
*)
	echo "usage: $0 [--cluster]" >&2
	exit 2
	;;
esac
repo=$(pwd)
. scripts/versions.env
cache=$repo/.deps/docker-test # git-ignored: stand-in release tarballs
# The README's tags: its command lines run as written.
cpu_tag=img2vid
gpu_tag=img2vid:gpu
label=img2vid-docker-test
cuda_image=$(sed -n 's/^ARG CUDA_IMAGE=//p' Dockerfile)

passed=0
failed=0
pass() { echo "PASS $*"; passed=$((passed + 1)); }
fail() { echo "FAIL $*"; failed=$((failed + 1)); }
check() { # check NAME COMMAND...: PASS or FAIL by the command's status
	local name=$1
	shift
	if "$@"; then pass "$name"; else fail "$name"; fi
}
log() { echo "docker-test: $*" >&2; }
die() {
	echo "FAIL $*"
	failed=$((failed + 1))
	echo "$passed passed, $failed failed"
	exit 1
}

tmp=$(mktemp -d)
dockerd_pid=
server_pid=
cluster_project=img2vid-test-cluster
cluster_up=
cleanup() {
	local ids
	[ -n "$cluster_up" ] && cluster_compose down -v -t 30 >/dev/null 2>&1
	ids=$(docker ps -aq --filter "label=$label" 2>/dev/null)
	# shellcheck disable=SC2086 # one id per word
	[ -n "$ids" ] && docker rm -f -v $ids >/dev/null 2>&1
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null
	if [ -n "$dockerd_pid" ]; then
		kill "$dockerd_pid" 2>/dev/null
		# dockerd stops its containers and containerd before it exits.
		for _ in $(seq 30); do kill -0 "$dockerd_pid" 2>/dev/null || break; sleep 1; done
	fi
	rm -rf "$tmp"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# ---------------------------------------------------------------------------
# Engine, tools and inputs.
apt_updated=
need() { # need COMMAND PACKAGE...
	command -v "$1" >/dev/null 2>&1 && return 0
	shift
	[ "$(id -u)" = 0 ] || die "missing $* (install with: sudo apt-get install $*)"
	if [ -z "$apt_updated" ]; then apt-get update -qq || die "apt-get update"; apt_updated=1; fi
	log "installing $* from Debian"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@" >/dev/null || die "apt-get install $*"
}
need dockerd docker.io
need docker docker.io
need debootstrap debootstrap
need curl curl
need gcc gcc
need python3 python3
need docker-compose docker-compose
bash scripts/setup.sh run >&2 || die "scripts/setup.sh run (ffmpeg, ONNX Runtime)"
command -v ffprobe >/dev/null || die "ffprobe missing after scripts/setup.sh"
# The engine's own client: a newer docker client found first on PATH may
# lack BuildKit (it needs the buildx plugin, which Debian does not package).
if [ -x /usr/bin/docker ] && [ "$(command -v docker)" != /usr/bin/docker ]; then
	mkdir -p "$tmp/bin" && ln -s /usr/bin/docker "$tmp/bin/docker" && PATH=$tmp/bin:$PATH
fi

if ! docker info >/dev/null 2>&1; then
	log "starting dockerd (log: /tmp/img2vid-dockerd.log)"
	setsid dockerd >/tmp/img2vid-dockerd.log 2>&1 </dev/null &
	dockerd_pid=$!
	for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
	docker info >/dev/null 2>&1 || die "dockerd did not start; see /tmp/img2vid-dockerd.log"
fi
scripts/docker-standins.sh "$cuda_image" >&2 || die "building the stand-in base images"

# ---------------------------------------------------------------------------
# Release tarballs laid out like the official ones, made deterministic so their
# sha256 (and so Docker's layer cache) is the same from run to run.
ort_dir=$repo/.deps/onnxruntime-$ORT_VERSION
mkdir -p "$cache"
pack() { # pack NAME: tar.gz of $tmp/NAME into $cache/NAME.tgz
	tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner -C "$tmp" -c "$1" | gzip -n >"$cache/$1.tgz.tmp" &&
		mv "$cache/$1.tgz.tmp" "$cache/$1.tgz"
}
cpu_name=onnxruntime-linux-x64-$ORT_VERSION
if [ ! -f "$cache/$cpu_name.tgz" ]; then
	mkdir -p "$tmp/$cpu_name/lib"
	cp "$ort_dir/libonnxruntime.so.$ORT_VERSION" "$tmp/$cpu_name/lib/"
	ln -s "libonnxruntime.so.$ORT_VERSION" "$tmp/$cpu_name/lib/libonnxruntime.so.1"
	ln -s libonnxruntime.so.1 "$tmp/$cpu_name/lib/libonnxruntime.so"
	pack "$cpu_name" || die "packing $cpu_name.tgz"
fi
# The GPU tarball's main library is the CPU build (the real GPU release cannot
# be fetched here); its two provider libraries are stand-ins with the real
# sonames and the real CUDA dependencies, so the image's ldd check has
# something true to check. They are never loaded: the CPU build of ONNX
# Runtime cannot load a CUDA provider, so the app falls back to the CPU.
gpu_name=onnxruntime-linux-x64-gpu-$ORT_VERSION
if [ ! -f "$cache/$gpu_name.tgz" ]; then
	lib=$tmp/$gpu_name/lib
	mkdir -p "$lib" "$tmp/cudalibs"
	cp "$ort_dir/libonnxruntime.so.$ORT_VERSION" "$lib/"
	ln -s "libonnxruntime.so.$ORT_VERSION" "$lib/libonnxruntime.so.1"
	ln -s libonnxruntime.so.1 "$lib/libonnxruntime.so"
	echo 'int img2vid_standin_library;' >"$tmp/standin.c"
	for so in libcudart.so.12 libcublas.so.12 libcublasLt.so.12 libcurand.so.10 libcufft.so.11 libcudnn.so.9; do
		gcc -shared -fPIC -Wl,-soname,$so -o "$tmp/cudalibs/$so" "$tmp/standin.c" || die "compiling stand-in $so"
	done
	gcc -shared -fPIC -Wl,-soname,libonnxruntime_providers_shared.so -o "$lib/libonnxruntime_providers_shared.so" "$tmp/standin.c" &&
		gcc -shared -fPIC -Wl,-soname,libonnxruntime_providers_cuda.so -Wl,--no-as-needed -o "$lib/libonnxruntime_providers_cuda.so" "$tmp/standin.c" \
			-L"$lib" -L"$tmp/cudalibs" -l:libonnxruntime_providers_shared.so -l:libcudart.so.12 -l:libcublas.so.12 \
			-l:libcublasLt.so.12 -l:libcurand.so.10 -l:libcufft.so.11 -l:libcudnn.so.9 -Wl,-rpath,'$ORIGIN' ||
		die "compiling the stand-in CUDA provider"
	pack "$gpu_name" || die "packing $gpu_name.tgz"
fi

# The frames: 50 generated 640x360 JPEGs (ffmpeg's moving test pattern), in
# the README's layout: data/mba/ beside out/.
readme_dir=$tmp/readme
frames=$readme_dir/data/mba
width=640 height=360
mkdir -p "$frames" "$readme_dir/out"
ffmpeg -v error -f lavfi -i "testsrc2=size=${width}x${height}:rate=5" -frames:v 50 -q:v 3 "$frames/frame_%03d.jpg" ||
	die "generating the test frames"
chown 10001:10001 "$readme_dir/out" # the README's chown line: the image's uid writes there

# Every build uses one snapshot of the source (the files git tracks or would
# track), so the images agree with each other and the Go build runs once even
# while the checkout changes under the test.
mkdir -p "$tmp/src"
git ls-files -z --cached --others --exclude-standard |
	tar --null --ignore-failed-read -T - -c 2>/dev/null | tar -x -C "$tmp/src" || die "snapshot of the source"
context=$tmp/src

# One loopback HTTP server: the Go module cache as a GOPROXY, and the tarballs.
log "go mod download (module cache for the build)"
go mod download || die "go mod download"
mkdir -p "$tmp/www"
ln -s "$(go env GOMODCACHE)/cache/download" "$tmp/www/goproxy"
ln -s "$cache" "$tmp/www/ort"
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
python3 -m http.server "$port" --bind 127.0.0.1 --directory "$tmp/www" >"$tmp/http.log" 2>&1 &
server_pid=$!
for _ in $(seq 20); do curl -fs "http://127.0.0.1:$port/" >/dev/null && break; sleep 0.5; done
www=http://127.0.0.1:$port
# What the README's build lines get added: the way to the local mirrors.
mirror_args=(
	--network host
	--build-arg "GOPROXY=$www/goproxy"
	--build-arg "ORT_URL=$www/ort/$cpu_name.tgz"
	--build-arg "ORT_SHA256=$(sha256sum "$cache/$cpu_name.tgz" | cut -d' ' -f1)"
	--build-arg "ORT_GPU_URL=$www/ort/$gpu_name.tgz"
)
gpu_sha=$(sha256sum "$cache/$gpu_name.tgz" | cut -d' ' -f1)

# readme_line PATTERN: the README's container command line matching the
# extended regular expression PATTERN (comments stripped); fails if none.
readme_line() {
	sed -n '/^## Docker and GPU servers/,/^## /p' README.md | sed -n '/^```sh/,/^```/p' |
		sed 's/[[:space:]]*#.*$//' | grep -E -m1 "$1"
}
# readme_build BUILDKIT LINE: runs a README docker build line from the source
# snapshot, with DOCKER_BUILDKIT=BUILDKIT (0: the classic builder) and the
# mirror arguments added after "docker build".
readme_build() {
	local words
	read -r -a words <<<"${2#docker build }"
	(cd "$context" && DOCKER_BUILDKIT=$1 docker build --force-rm "${mirror_args[@]}" "${words[@]}")
}
# readme_run LINE EXTRA...: a README docker run line with EXTRA inserted after
# "docker run" and the host port 8080 moved to a free loopback port.
readme_run() {
	local line=$1
	shift
	line=${line//-p 8080:8080/-p 127.0.0.1::8080}
	local words
	# $PWD in the README's volume paths means the folder it is run from.
	read -r -a words <<<"${line#docker run }"
	docker run --label "$label" "$@" "${words[@]//\$PWD/$PWD}"
}
for want in cpu_line:'^docker build -t img2vid \.$' serve_line:'^docker run -p 8080:8080 img2vid$' \
	convert_line:'^docker run -v .*img2vid convert ' gpu_line:'^docker build --target gpu '; do
	line=$(readme_line "${want#*:}") || die "README.md's container section has no line matching ${want#*:}"
	printf -v "${want%%:*}" '%s' "$line"
done
gpu_line=${gpu_line/ORT_GPU_SHA256=.../ORT_GPU_SHA256=$gpu_sha}

# ---------------------------------------------------------------------------
# Helpers for the checks.
json() { # json FIELD.PATH < JSON: prints the field ("" when absent or not JSON)
	python3 -c 'import json,sys
try:
    v=json.load(sys.stdin)
except ValueError:
    v=None
for k in sys.argv[1].split("."):
    v=v.get(k) if isinstance(v,dict) else None
print("" if v is None else (json.dumps(v) if isinstance(v,(dict,list)) else v))' "$1"
}
run_bg() { # run_bg NAME DOCKER-RUN-ARGS...: starts a labelled container
	local name=$1
	shift
	docker rm -f -v "$name" >/dev/null 2>&1
	docker run -d --name "$name" --label "$label" -p 127.0.0.1::8080 --health-interval=1s "$@" >/dev/null
}
host_url() { echo "http://$(docker port "$1" 8080/tcp | head -1)"; }
wait_healthy() { # wait_healthy NAME SECONDS
	local status
	for _ in $(seq "$2"); do
		status=$(docker inspect -f '{{.State.Health.Status}}' "$1" 2>/dev/null)
		[ "$status" = healthy ] && return 0
		[ "$(docker inspect -f '{{.State.Running}}' "$1" 2>/dev/null)" = true ] || break
		sleep 1
	done
	log "$1 is not healthy (${status:-gone}); its log:"
	docker logs --tail 30 "$1" >&2 2>&1
	return 1
}
upload() { # upload URL [FIELD=VALUE...] < file list: prints the job id
	local url=$1
	shift
	local args=() f kv
	while read -r f; do args+=(-F "files=@$f"); done
	for kv in "$@"; do args+=(-F "$kv"); done
	curl -fsS "${args[@]}" "$url/api/jobs" | json id
}
wait_job() { # wait_job URL ID SECONDS: waits for done
	local status body
	for _ in $(seq "$3"); do
		body=$(curl -fsS "$1/api/jobs/$2") || return 1
		status=$(json status <<<"$body")
		case $status in
		done) return 0 ;;
		failed | canceled | cancelled)
			log "job $2 ended $status: $body"
			return 1
			;;
		esac
		sleep 1
	done
	log "job $2 still $status after $3 s"
	return 1
}
probe_video() { # probe_video FILE FRAMES: h264, yuv420p, the frames' size, FRAMES frames
	local got
	got=$(ffprobe -v error -count_frames -select_streams v:0 \
		-show_entries stream=codec_name,pix_fmt,width,height,nb_read_frames -of csv=p=0 "$1" 2>&1)
	log "ffprobe $(basename "$1"): $got"
	[ "$got" = "h264,$width,$height,yuv420p,$2" ]
}
frame_list() { find "$frames" -maxdepth 1 -type f -name '*.jpg' | sort | head -n "${1:-1000}"; }
nframes=$(frame_list | wc -l)

# ---------------------------------------------------------------------------
# 7. compose.yaml's cluster profile: three NATS servers from the nats target,
# two API replicas and two workers from the CPU image. A job posted to one API
# replica is followed on the other and its video downloaded from there.
cluster_compose() { # docker-compose on the source snapshot's compose.yaml, cluster profile
	docker-compose -p "$cluster_project" -f "$context/compose.yaml" --profile cluster "$@"
}
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # wait_ready URL SECONDS: /readyz answers 200
	for _ in $(seq "$2"); do
		curl -fs -o /dev/null "$1/readyz" && return 0
		sleep 1
	done
	return 1
}
cluster_check() {
	local start=$SECONDS api1 api2 id ok=
	log "docker build --target nats -t img2vid-nats . (classic builder)"
	if ! readme_build 0 "docker build --target nats -t img2vid-nats ." >"$tmp/build-nats.log" 2>&1; then
		tail -30 "$tmp/build-nats.log"
		fail "cluster: build the nats target"
		return
	fi
	check "cluster: the nats image runs the nats-server go.mod pins ($(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2))" \
		sh -c 'docker run --rm --label "$1" img2vid-nats --version | grep -qF "$2"' _ "$label" "$(go list -m -f '{{.Version}}' github.com/nats-io/nats-server/v2)"
	api1=$(free_port) api2=$(free_port)
	mkdir -p "$tmp/extra-models"
	export IMG2VID_API_1_PORT=$api1 IMG2VID_API_2_PORT=$api2 IMG2VID_EXTRA_MODELS=$tmp/extra-models
	cluster_up=1
	log "docker-compose --profile cluster up -d --scale img2vid=0 --scale worker=2"
	if ! cluster_compose up -d --no-build --scale img2vid=0 --scale worker=2 >"$tmp/cluster-up.log" 2>&1; then
		tail -20 "$tmp/cluster-up.log"
		fail "cluster: docker-compose --profile cluster up"
		return
	fi
	api1=http://127.0.0.1:$api1 api2=http://127.0.0.1:$api2
	if wait_ready "$api1" 120 && wait_ready "$api2" 60; then
		pass "cluster: both API replicas ready on a 3-node NATS cluster ($((SECONDS - start)) s from the build)"
		id=$(frame_list 10 | upload "$api1")
		if [ -n "$id" ] && wait_job "$api2" "$id" 180 && curl -fsS -o "$tmp/cluster.mp4" "$api2/api/jobs/$id/video" &&
			probe_video "$tmp/cluster.mp4" 10; then
			ok=1
		fi
		check "cluster: a job posted to api-1 is followed on api-2 and its video downloaded from there (10 frames)" test -n "$ok"
		local workers
		workers=$(cluster_compose ps -q worker | wc -l)
		check "cluster: $workers workers running" test "$workers" = 2
		# The users nats-auth made lock NATS: a client without one, on the
		# cluster's own network, is refused; the replicas report nothing insecure.
		check "cluster: NATS refuses a client without a user (doctor on the cluster's network)" \
			sh -c 'docker run --rm --label "$1" --network "$2_default" img2vid:latest doctor --nats nats://nats-1:4222 --device cpu 2>&1 | grep -qi "authorization violation"' _ "$label" "$cluster_project"
		check "cluster: the API replicas report nothing insecure (/readyz)" \
			sh -c 'body=$(curl -fsS "$1/readyz") && ! printf %s "$body" | grep -q warnings' _ "$api1"
	else
		fail "cluster: API replicas ready"
	fi
	if [ -z "$ok" ]; then
		cluster_compose ps >&2
		cluster_compose logs --tail 20 >&2 2>&1
	fi
	cluster_compose down -v -t 30 >/dev/null 2>&1
	cluster_up=
	log "cluster check took $((SECONDS - start)) s"
}

if [ -n "$only_cluster" ]; then
	check "compose.yaml's cluster profiles are valid (docker-compose config)" \
		sh -c 'docker-compose -f compose.yaml --profile cluster config -q && docker-compose -f compose.yaml --profile cluster-gpu config -q'
	log "$cpu_line (classic builder)"
	if readme_build 0 "$cpu_line" >"$tmp/build-cpu-0.log" 2>&1; then
		pass "classic builder: '$cpu_line'"
		cluster_check
	else
		tail -40 "$tmp/build-cpu-0.log"
		fail "classic builder: '$cpu_line'"
	fi
	echo "$passed passed, $failed failed"
	[ "$failed" = 0 ]
	exit
fi

# ---------------------------------------------------------------------------
# 1. The CPU image: build, size (and the compose file parses).
check "compose.yaml is valid (docker-compose config, with no profile and each of gpu, cluster, cluster-gpu)" \
	sh -c 'docker-compose -f compose.yaml config -q && for p in gpu cluster cluster-gpu; do docker-compose -f compose.yaml --profile $p config -q || exit; done'
dockerfile_ort=$(sed -n 's/^ARG ORT_VERSION=//p' Dockerfile | sort -u)
check "Dockerfile pins ORT_VERSION=$dockerfile_ort as scripts/versions.env ($ORT_VERSION)" [ "$dockerfile_ort" = "$ORT_VERSION" ]
# The README's plain build line, under each builder. BuildKit builds only the
# stages the CPU image needs; the classic builder builds every stage, passing
# through the GPU ones, which must then fetch and need nothing. Their layer
# caches are separate, so each compiles ffmpeg once on a fresh machine. The
# classic builder goes last: the checks below run on its image, as Debian's
# engine builds it by default.
for builder in 1 0; do
	name=$([ "$builder" = 1 ] && echo BuildKit || echo "classic builder")
	log "$cpu_line ($name)"
	start=$SECONDS
	if readme_build "$builder" "$cpu_line" >"$tmp/build-cpu-$builder.log" 2>&1; then
		pass "$name: '$cpu_line' ($((SECONDS - start)) s)"
	else
		tail -40 "$tmp/build-cpu-$builder.log"
		die "$name: '$cpu_line'"
	fi
	title=$(docker image inspect -f '{{index .Config.Labels "org.opencontainers.image.title"}}' "$cpu_tag")
	if [ "$title" = img2vid ] && docker run --rm --label "$label" "$cpu_tag" version >/dev/null; then
		pass "$name: the plain build is the CPU image and runs"
	else
		fail "$name: the plain build is the CPU image (title '$title') and runs"
	fi
done
check "classic builder: the plain build fetched no GPU release" \
	sh -c '! grep -q "onnxruntime-linux-x64-gpu" "$1"' _ "$tmp/http.log"
size=$(docker image inspect -f '{{.Size}}' "$cpu_tag")
base=$(docker image inspect -f '{{.Size}}' debian:bookworm-slim)
growth=$(((size - base) / 1000000))
echo "image $cpu_tag: $((size / 1000000)) MB, base debian:bookworm-slim (stand-in) $((base / 1000000)) MB, growth $growth MB"
check "CPU image grows the base by $growth MB (<= 175)" [ "$growth" -le 175 ]

# ---------------------------------------------------------------------------
# 2. Serve: healthy, upload the frames, download and probe the video; the
# Host check (DNS names refused, addresses and localhost served).
serve=img2vid-test-serve
docker rm -f -v "$serve" >/dev/null 2>&1
readme_run "$serve_line" -d --name "$serve" --health-interval=1s >/dev/null || die "$serve_line"
if wait_healthy "$serve" 90; then pass "serve: HEALTHCHECK reports healthy"; else fail "serve: HEALTHCHECK reports healthy"; fi
url=$(host_url "$serve")
id=$(frame_list | upload "$url")
if [ -n "$id" ] && wait_job "$url" "$id" 300 && curl -fsS -o "$tmp/api.mp4" "$url/api/jobs/$id/video" && probe_video "$tmp/api.mp4" "$nframes"; then
	pass "serve ('$serve_line'): $nframes uploaded frames -> H.264 yuv420p ${width}x$height video of $nframes frames"
else
	fail "serve: upload, convert, download and probe"
fi

# DNS rebinding: the image listens on 0.0.0.0 with no host names allowed,
# and still refuses a DNS name as Host (a page whose own name points at the
# server), saying how to allow one; IP addresses and localhost, by which
# `docker run -p` is reached, are served.
host_code() { # host_code URL HOST: the status of GET /healthz sent for HOST; the body in $tmp/host.body
	curl -s -o "$tmp/host.body" -w '%{http_code}' -H "Host: $2" "$1/healthz"
}
code=$(host_code "$url" rebind.evil.example:8080)
check "serve: Host rebind.evil.example refused ($code, want 403), naming IMG2VID_ALLOWED_HOSTS" \
	sh -c '[ "$1" = 403 ] && grep -q IMG2VID_ALLOWED_HOSTS "$2"' _ "$code" "$tmp/host.body"
for host in 127.0.0.1:8080 192.0.2.4 '[::1]:8080' localhost:8080; do
	code=$(host_code "$url" "$host")
	check "serve: Host $host served ($code, want 200)" test "$code" = 200
done

# A soundtrack through the image's own minimal ffmpeg, which was built with
# only the audio parts listed in the Dockerfile: an MP3 trimmed to the
# video's length into MP4 (AAC), and a WAV that the video is held to the end
# of into WebM (Opus).
ffmpeg -v error -f lavfi -i sine=frequency=440:duration=3 -c:a libmp3lame "$tmp/tone.mp3" &&
	ffmpeg -v error -f lavfi -i sine=frequency=660:duration=3 "$tmp/tone.wav" || die "making the test tones"
audio_check() { # audio_check FILE FORMAT FIT CODEC SECONDS
	local id out=$tmp/sound.$2 got dur
	id=$(frame_list 10 | upload "$url" "audio=@$1" "format=$2" "audio_fit=$3")
	if [ -n "$id" ] && wait_job "$url" "$id" 180 && curl -fsS -o "$out" "$url/api/jobs/$id/video"; then
		got=$(ffprobe -v error -select_streams a:0 -show_entries stream=codec_name -of csv=p=0 "$out")
		dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$out")
		log "soundtrack $(basename "$1") -> $2: $got, ${dur}s"
		[ "$got" = "$4" ] && awk -v d="$dur" -v w="$5" 'BEGIN { exit !(d > w - 0.25 && d < w + 0.25) }'
	else
		return 1
	fi
}
check "serve: an MP3 soundtrack trimmed to 10 frames at 5/s -> MP4 with AAC, 2 s" audio_check "$tmp/tone.mp3" mp4 trim aac 2
check "serve: a WAV soundtrack the video is held to -> WebM with Opus, 3 s" audio_check "$tmp/tone.wav" webm extend opus 3

# ---------------------------------------------------------------------------
# 4. (on the running server) non-root, cancel without zombies, docker stop.
uid=$(docker top "$serve" -eo pid,uid,comm | awk '$3 == "img2vid" {print $2; exit}')
check "serve: img2vid runs as uid ${uid:-?}, not root" test -n "$uid" -a "$uid" != 0
# A job made slow on purpose (x264 veryslow, lossless) so that it is
# still encoding when it is cancelled.
id=$(frame_list | upload "$url" preset=veryslow quality=0)
ffmpeg_seen=
for _ in $(seq 60); do
	if docker top "$serve" -eo pid,comm | awk '$2 == "ffmpeg"' | grep -q .; then ffmpeg_seen=1; break; fi
	sleep 0.5
done
check "serve: a long job starts ffmpeg in the container" [ -n "$ffmpeg_seen" ]
code=$(curl -s -o /dev/null -w '%{http_code}' -X DELETE "$url/api/jobs/$id")
check "serve: DELETE of the running job answers 2xx ($code)" [ "${code:0:1}" = 2 ]
left=
for _ in $(seq 20); do
	left=$(docker top "$serve" -eo pid,stat,comm | awk '$3 == "ffmpeg"')
	[ -z "$left" ] && break
	sleep 0.5
done
[ -n "$left" ] && log "left in the container: $left"
check "serve: no ffmpeg (running or zombie) left after the cancel" [ -z "$left" ]
# docker stop with a job running: SIGTERM reaches img2vid through tini, the
# job gets IMG2VID_GRACE (7 s in the image), and the server exits 0 before
# docker's 10 s are up and it would kill.
id=$(frame_list | upload "$url" preset=veryslow quality=0)
for _ in $(seq 60); do
	[ "$(curl -fsS "$url/api/jobs/$id" | json status)" = running ] && break
	sleep 0.5
done
start=$(date +%s%N)
docker stop -t 10 "$serve" >/dev/null
took_ms=$((($(date +%s%N) - start) / 1000000))
exit_code=$(docker inspect -f '{{.State.ExitCode}}' "$serve")
check "serve: docker stop with a job running ends it in $took_ms ms (< 10000) with exit code $exit_code (not killed)" \
	test "$took_ms" -lt 10000 -a "$exit_code" = 0

# ---------------------------------------------------------------------------
# 3. Convert mode with two volumes, as in the README.
if (cd "$readme_dir" && readme_run "$convert_line" --rm) >"$tmp/convert.log" 2>&1 &&
	probe_video "$readme_dir/out/aquarium.mp4" "$nframes"; then
	pass "convert: '$convert_line' -> out/aquarium.mp4 ($nframes frames)"
else
	tail -20 "$tmp/convert.log"
	fail "convert: '$convert_line'"
fi
mode=$(stat -c %a "$readme_dir/out/aquarium.mp4" 2>/dev/null)
if [ "$mode" = 644 ]; then
	pass "convert: the video on the host has mode 644 (readable by the host's user)"
else
	fail "convert: the video on the host has mode ${mode:-none}, want 644"
fi

# ---------------------------------------------------------------------------
# 6. Read-only root file system, tmpfs work folder.
ro=img2vid-test-readonly
# A tmpfs mount starts root-owned: give it to the image's user. /tmp is where
# Go spools large multipart uploads.
run_bg "$ro" --read-only --tmpfs /var/lib/img2vid:uid=10001,gid=10001 --tmpfs /tmp "$cpu_tag" || die "docker run --read-only"
if wait_healthy "$ro" 60; then
	url=$(host_url "$ro")
	id=$(frame_list 10 | upload "$url")
	if [ -n "$id" ] && wait_job "$url" "$id" 180 && curl -fsS -o "$tmp/ro.mp4" "$url/api/jobs/$id/video" && probe_video "$tmp/ro.mp4" 10; then
		pass "read-only: --read-only with a tmpfs work folder completes a job"
	else
		docker logs --tail 20 "$ro" 2>&1
		fail "read-only: --read-only with a tmpfs work folder completes a job"
	fi
else
	fail "read-only: container starts healthy"
fi
docker rm -f -v "$ro" >/dev/null

cluster_check

# ---------------------------------------------------------------------------
# 5. The GPU target, without a GPU.
log "building $gpu_tag against img2vid-standin/cuda-no-cudnn (must fail)"
if readme_build 0 "${gpu_line/ -t $gpu_tag / --build-arg CUDA_IMAGE=img2vid-standin/cuda-no-cudnn -t img2vid:gpu-broken }" >"$tmp/build-broken.log" 2>&1; then
	fail "gpu: the ldd check fails a build whose base lacks libcudnn.so.9"
	docker rmi img2vid:gpu-broken >/dev/null 2>&1
else
	check "gpu: the ldd check fails a build whose base lacks libcudnn.so.9" grep -q 'libcudnn.so.9 => not found' "$tmp/build-broken.log"
fi
# Without the checksum there is no GPU build: BuildKit stops and says why.
if readme_build 1 "docker build --target gpu -t img2vid:gpu-nosum ." >"$tmp/build-nosum.log" 2>&1; then
	fail "gpu: BuildKit refuses --target gpu without ORT_GPU_SHA256"
	docker rmi img2vid:gpu-nosum >/dev/null 2>&1
else
	check "gpu: BuildKit refuses --target gpu without ORT_GPU_SHA256, saying so" grep -q 'built without ORT_GPU_SHA256' "$tmp/build-nosum.log"
fi
log "$gpu_line (classic builder, base $cuda_image)"
start=$SECONDS
if readme_build 0 "$gpu_line" >"$tmp/build-gpu.log" 2>&1; then
	pass "gpu: '${gpu_line/$gpu_sha/<stand-in sha256>}' ($((SECONDS - start)) s)"
	gpu=img2vid-test-gpu
	run_bg "$gpu" "$gpu_tag" || die "docker run $gpu_tag"
	if wait_healthy "$gpu" 60; then
		ready=$(curl -fsS "$(host_url "$gpu")/readyz")
		echo "gpu image without a GPU, /readyz: $ready"
		provider=$(json runtime.provider <<<"$ready")
		note=$(json runtime.note <<<"$ready")
		check "gpu: without a GPU it serves on the CPU and says why (/readyz provider=$provider)" test "$provider" = cpu -a -n "$note"
	else
		fail "gpu: starts healthy without a GPU"
	fi
	docker rm -f -v "$gpu" >/dev/null
	timeout 60 docker run --rm --label "$label" -e IMG2VID_DEVICE=cuda "$gpu_tag" >"$tmp/cuda.log" 2>&1
	rc=$?
	echo "gpu image, IMG2VID_DEVICE=cuda serve (exit $rc): $(tr '\n' ' ' <"$tmp/cuda.log" | cut -c1-400)"
	if [ "$rc" != 0 ] && grep -qi cuda "$tmp/cuda.log"; then
		pass "gpu: IMG2VID_DEVICE=cuda without a GPU refuses clearly (exit $rc, names CUDA)"
	else
		fail "gpu: IMG2VID_DEVICE=cuda without a GPU refuses clearly (exit $rc, names CUDA)"
	fi
else
	tail -30 "$tmp/build-gpu.log"
	fail "gpu: build GPU image"
fi

echo "$passed passed, $failed failed"
[ "$failed" = 0 ]
