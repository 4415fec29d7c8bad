#!/bin/bash
# PID 1 of the multi6lab VM (installed as /sbin/multi6lab-init; docs/vm.md). No service manager: the guest mounts
# what Mininet and Open vSwitch need, mounts the host's share, runs one job, leaves its exit status on the share
# and powers off. The job comes from the kernel command line: multi6lab.job=run (the share's job.sh) or
# multi6lab.job=shell (a login shell on the serial console).
export PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin HOME=/root LANG=C.UTF-8 TERM=${TERM:-vt100}
mountpoint -q /proc || mount -t proc proc /proc
mountpoint -q /sys || mount -t sysfs sys /sys
mountpoint -q /dev || mount -t devtmpfs dev /dev
mkdir -p /dev/pts /dev/shm /sys/fs/cgroup
mount -t devpts devpts /dev/pts
mount -t tmpfs tmpfs /dev/shm
mount -t tmpfs tmpfs /run
mount -t tmpfs tmpfs /tmp
mount -t cgroup2 cgroup2 /sys/fs/cgroup
mount -o remount,rw /
hostname multi6lab-vm
ip link set lo up
# Without udev, a device node appears when its driver loads: Mobile IPv6's agent opens /dev/net/tun.
modprobe tun
mkdir -p /mnt/host
modprobe 9pnet_virtio
mount -t 9p -o trans=virtio,version=9p2000.L,msize=262144 host /mnt/host || echo "multi6lab-vm: no host share"
job=$(sed -n 's/.*multi6lab\.job=\([a-z]*\).*/\1/p' /proc/cmdline)
echo "multi6lab-vm: up in $(cut -d' ' -f1 /proc/uptime) s, kernel $(uname -r), job ${job:-none}"
cd /opt/multi6lab
case "$job" in
  shell) setsid -c bash -l </dev/ttyS0 >/dev/ttyS0 2>&1; status=$? ;;
  run) bash /mnt/host/job.sh; status=$? ;;
  *) echo "multi6lab-vm: no job on the kernel command line (multi6lab.job=run|shell)"; status=2 ;;
esac
echo "$status" > /mnt/host/status
sync
umount /mnt/host 2>/dev/null
echo "multi6lab-vm: job ended with status $status; powering off"
echo o > /proc/sysrq-trigger
sleep 10
