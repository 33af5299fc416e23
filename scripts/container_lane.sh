#!/usr/bin/env bash
# Prepare the container lane (`make test-containers`): podman, a Debian bookworm base image made
# with debootstrap, and the kubeforge image built on it. Idempotent; everything it creates lives
# under .containers/ (ignored by git). Needs root and network access to Debian and PyPI mirrors.
#
#   scripts/container_lane.sh            prints the environment the tests need, as KEY=VALUE lines
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
work="$root/.containers"
base_tag="localhost/kubeforge-base:bookworm"
mkdir -p "$work"

if ! command -v podman >/dev/null || ! command -v runc >/dev/null || ! command -v debootstrap >/dev/null; then
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq podman runc debootstrap >&2
fi

# Settings this machine needs (no systemd, no cgroup delegation, host network only).
cat >"$work/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=1024:1024"]
netns = "host"
[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
CONF
# overlay: vfs works too, but copies the whole image for every container (40 s each here).
cat >"$work/storage.conf" <<CONF
[storage]
driver = "overlay"
graphroot = "$work/storage-overlay"
runroot = "$work/run-overlay"
CONF
export CONTAINERS_CONF="$work/containers.conf" CONTAINERS_STORAGE_CONF="$work/storage.conf"

if ! podman image exists "$base_tag"; then
  rootfs="$work/rootfs"
  rm -rf "$rootfs"
  debootstrap --variant=minbase bookworm "$rootfs" >&2
  chroot "$rootfs" apt-get install -y -qq --no-install-recommends python3 python3-venv python3-pip ca-certificates >&2
  chroot "$rootfs" apt-get clean
  tar -C "$rootfs" -c . | podman import - "$base_tag" >&2
  rm -rf "$rootfs"
fi

wheels_args=()
[[ -n "${KUBEFORGE_TORCH_WHEELS:-}" && -d "${KUBEFORGE_TORCH_WHEELS}" ]] && wheels_args=(--wheels "${KUBEFORGE_TORCH_WHEELS}")  # a folder with a local torch wheel, if you have one
image="$("$root/scripts/build_images.sh" --engine podman --base "$base_tag" "${wheels_args[@]}" | tail -n 1)"
echo "CONTAINERS_CONF=$CONTAINERS_CONF"
echo "CONTAINERS_STORAGE_CONF=$CONTAINERS_STORAGE_CONF"
echo "KUBEFORGE_CONTAINER_IMAGE=$image"
