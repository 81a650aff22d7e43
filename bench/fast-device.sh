#!/usr/bin/env bash
# A fast block device for the benchmark's scratch folder, for machines whose own disk is slower
# than what is being measured (see docs/benchmarks.md, "A fast device on a slow VM").
#
#   bench/fast-device.sh up DIR [SIZE_GIB] [WRITE_MB_S] [READ_MB_S]
#   bench/run.sh --scratch DIR ...
#   bench/fast-device.sh down DIR
#
# `up` fills a file in /dev/shm with zeros (so that no page of it is allocated during a run),
# attaches it to a loop device, makes an ext4 filesystem without a journal on it, mounts it at
# DIR, and caps the device's bandwidth with the kernel's block throttling (cgroup v1 blkio) at
# WRITE_MB_S and READ_MB_S megabytes (10^6 bytes) a second: by default 1000 and 1400, what the
# virtio disk of the first benchmark VM measured. Tributary's path is unchanged: `O_DIRECT`
# writes and `fdatasync` through the block layer; only the device behind it is fast. Where only
# cgroup v2 is mounted, the device is left uncapped and a warning says so.
#
# Needs root, util-linux (losetup) and e2fsprogs (mkfs.ext4). The data lives in RAM: SIZE_GIB
# (default 8) must fit beside everything else, and nothing on the device survives `down` or a
# reboot.
set -euo pipefail

usage() {
  sed -n '5,7s/^#   //p' "$0" >&2
  exit 2
}

[ $# -ge 2 ] || usage
cmd=$1
dir=$2
img="/dev/shm/tributary-fast-device-$(echo "$dir" | tr '/' '_').img"
blkio=/sys/fs/cgroup/blkio

case "$cmd" in
up)
  size_gib=${3:-8}
  write_mb=${4:-1000}
  read_mb=${5:-1400}
  if mountpoint -q "$dir"; then
    echo "$dir is already a mount point" >&2
    exit 1
  fi
  mkdir -p "$dir"
  echo "==> ${size_gib} GiB in $img"
  dd if=/dev/zero of="$img" bs=16M count=$((size_gib * 64)) status=none
  loop=$(losetup --find --show "$img")
  mkfs.ext4 -q -O ^has_journal -E nodiscard "$loop"
  mount "$loop" "$dir"
  devno=$(lsblk -dno MAJ:MIN "$loop" | tr -d ' ')
  if [ -w "$blkio/blkio.throttle.write_bps_device" ]; then
    echo "$devno $((write_mb * 1000000))" >"$blkio/blkio.throttle.write_bps_device"
    echo "$devno $((read_mb * 1000000))" >"$blkio/blkio.throttle.read_bps_device"
    echo "==> $loop ($devno) on $dir, capped at $write_mb MB/s of writes and $read_mb MB/s of reads"
  else
    echo "warning: no cgroup v1 blkio throttling here; $loop on $dir runs at memory speed" >&2
  fi
  ;;
down)
  if mountpoint -q "$dir"; then
    loop=$(findmnt -no SOURCE "$dir")
    devno=$(lsblk -dno MAJ:MIN "$loop" | tr -d ' ')
    umount "$dir"
    if [ -w "$blkio/blkio.throttle.write_bps_device" ]; then
      echo "$devno 0" >"$blkio/blkio.throttle.write_bps_device"
      echo "$devno 0" >"$blkio/blkio.throttle.read_bps_device"
    fi
    losetup -d "$loop"
  fi
  rm -f "$img"
  ;;
*)
  usage
  ;;
esac
