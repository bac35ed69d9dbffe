#!/usr/bin/env bash
# Build the test base image offline: Debian 12 + systemd + python3, made with
# debootstrap and `docker import`. No image registry is needed, only a Debian
# mirror, which is taken from (in order):
#   ONPREM_APT_MIRROR (and ONPREM_APT_SECURITY_MIRROR)  - e.g. your offline mirror
#   this machine's own apt configuration (deb822 .sources or sources.list)
# The image is cached: it is rebuilt only when its recipe (this script, the
# package list, the mirror) changes. Air-gapped users point the variables at
# their internal mirror and get the same image.
set -euo pipefail

IMAGE=${ONPREM_TEST_IMAGE:-onprem-datastores/debian12-systemd:latest}
SUITE=bookworm
CACHE_DIR=${ONPREM_CACHE_DIR:-/var/cache/onprem-datastores}
PACKAGES=systemd,systemd-sysv,dbus,python3,python3-apt,ca-certificates,iproute2,iputils-ping,procps,sudo,gnupg,less

log() { printf 'build-image: %s\n' "$*" >&2; }

here=$(cd "$(dirname "$0")" && pwd)
MIRROR=$("$here/apt-mirror.sh")
SECURITY_MIRROR=$("$here/apt-mirror.sh" security)
if [ -z "$MIRROR" ]; then
  log "no Debian mirror found in /etc/apt: set ONPREM_APT_MIRROR=<your Debian mirror URL>"
  exit 1
fi

recipe=$( { cat "$0" "$here/apt-mirror.sh"; echo "$PACKAGES|$MIRROR|$SECURITY_MIRROR|$SUITE"; } | sha256sum | cut -c1-16)
current=$(docker image inspect -f '{{ index .Config.Labels "org.onprem.recipe" }}' "$IMAGE" 2>/dev/null || true)
if [ "$current" = "$recipe" ]; then
  log "$IMAGE is up to date (recipe $recipe)"
  exit 0
fi

command -v debootstrap >/dev/null 2>&1 || {
  log "installing debootstrap"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null 2>&1 || {
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq debootstrap >/dev/null; }
}

mkdir -p "$CACHE_DIR/debootstrap"
work=$(mktemp -d "${TMPDIR:-/tmp}/onprem-rootfs.XXXXXX")
trap 'rm -rf "$work"' EXIT
rootfs=$work/rootfs

log "debootstrap $SUITE (recipe $recipe)"
debootstrap --variant=minbase --include="$PACKAGES" --cache-dir="$CACHE_DIR/debootstrap" \
  "$SUITE" "$rootfs" "$MIRROR" >"$work/debootstrap.log" 2>&1 || {
  tail -n 30 "$work/debootstrap.log" >&2; exit 1; }

# apt sources inside the image: the same mirror the image was built from
rm -f "$rootfs/etc/apt/sources.list"
{
  printf 'Types: deb\nURIs: %s\nSuites: %s %s-updates\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
    "$MIRROR" "$SUITE" "$SUITE"
  if [ -n "$SECURITY_MIRROR" ]; then
    printf '\nTypes: deb\nURIs: %s\nSuites: %s-security\nComponents: main\nSigned-By: /usr/share/keyrings/debian-archive-keyring.gpg\n' \
      "$SECURITY_MIRROR" "$SUITE"
  fi
} >"$rootfs/etc/apt/sources.list.d/debian.sources"

# A container is not a VM: no consoles, no udev, no kernel-side mounts.
for unit in getty.target console-getty.service systemd-udevd.service systemd-udev-trigger.service \
            systemd-remount-fs.service sys-kernel-debug.mount sys-kernel-tracing.mount \
            dev-hugepages.mount systemd-firstboot.service systemd-logind.service; do
  ln -sf /dev/null "$rootfs/etc/systemd/system/$unit"
done
: >"$rootfs/etc/machine-id"
# keep downloaded .debs: the test bed mounts a shared cache on /var/cache/apt/archives
printf 'Binary::apt::APT::Keep-Downloaded-Packages "true";\nAPT::Keep-Downloaded-Packages "true";\n' \
  >"$rootfs/etc/apt/apt.conf.d/10keep-debs"
printf 'APT::Install-Recommends "false";\n' >"$rootfs/etc/apt/apt.conf.d/10no-recommends"
chroot "$rootfs" apt-get clean
rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/var/log/*.log "$rootfs"/tmp/*

log "importing as $IMAGE"
tar -C "$rootfs" -c . | docker import \
  --change 'CMD ["/lib/systemd/systemd"]' \
  --change 'ENV container=docker' \
  --change "LABEL org.onprem.recipe=$recipe" \
  - "$IMAGE" >/dev/null
log "built $IMAGE"
