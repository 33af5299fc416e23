#!/usr/bin/env bash
# Build the kubeforge image with docker or podman, tagged from the package version.
#
#   scripts/build_images.sh [--variant cpu|cuda] [--base IMAGE] [--engine docker|podman] [--wheels DIR] [--push]
#
# Tags: ghcr.io/kubeforge/kubeforge:<version> (cpu) or :<version>-cuda, the tag every component's
# base_image names. --wheels DIR (podman only) mounts a folder of wheels that pip may use first,
# for machines that cannot reach the PyTorch index. Prints the tag it built on the last line.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
variant=cpu base="python:3.11-slim" engine="" wheels="" push=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    --variant) variant="$2"; shift 2 ;;
    --base) base="$2"; shift 2 ;;
    --engine) engine="$2"; shift 2 ;;
    --wheels) wheels="$2"; shift 2 ;;
    --push) push=1; shift ;;
    *) echo "build_images.sh: unknown argument $1 (see the header of this script)" >&2; exit 2 ;;
  esac
done
case "$variant" in cpu | cuda) ;; *) echo "build_images.sh: --variant must be cpu or cuda" >&2; exit 2 ;; esac
if [[ -z "$engine" ]]; then
  if command -v podman >/dev/null; then engine=podman
  elif command -v docker >/dev/null && docker info >/dev/null 2>&1; then engine=docker
  else echo "build_images.sh: neither podman nor a running docker found; install one" >&2; exit 3
  fi
fi

python="${PYTHON:-python3}"
[[ -x "$root/.venv/bin/python" ]] && python="$root/.venv/bin/python"
version="$(cd "$root" && "$python" -c 'import kubeforge; print(kubeforge.__version__)')"
repository="$(cd "$root" && "$python" -c 'import kubeforge; print(kubeforge.IMAGE_REPOSITORY)')"
tag="$repository:$version"
[[ "$variant" == cuda ]] && tag="$tag-cuda"

args=(build -f "$root/Dockerfile" -t "$tag" --build-arg "BASE_IMAGE=$base" --build-arg "TORCH_VARIANT=$variant"
      --build-arg "KUBEFORGE_VERSION=$version")
if [[ "$engine" == podman ]]; then
  # podman's build containers need the host's CA bundle to reach package indexes over TLS.
  [[ -f /etc/ssl/certs/ca-certificates.crt ]] && args+=(-v /etc/ssl/certs/ca-certificates.crt:/etc/ssl/certs/ca-certificates.crt:ro)
  if [[ -n "$wheels" ]]; then
    args+=(-v "$(cd "$wheels" && pwd):/wheels:ro" --build-arg PIP_FIND_LINKS=/wheels)
    args+=(--build-arg "TORCH_INDEX_URL=https://pypi.org/simple")
  fi
elif [[ -n "$wheels" ]]; then
  echo "build_images.sh: --wheels needs podman (docker build cannot mount a folder)" >&2; exit 2
fi
"$engine" "${args[@]}" "$root" >&2
[[ "$push" == 1 ]] && "$engine" push "$tag" >&2
echo "$tag"
