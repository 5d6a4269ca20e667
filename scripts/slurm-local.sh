#!/usr/bin/env bash
# A single-node Slurm cluster on this machine, from Debian's packages (slurm-wlm, munge), for the
# test that submits a study's job array (tests/study/study_slurm_cluster.rs) and for trying
# `heterolora study --emit slurm` without a cluster.
#
#   bash scripts/slurm-local.sh start   # installs what is missing (root, apt), starts munged,
#                                       # slurmctld and slurmd; prints the SLURM_CONF to export
#   bash scripts/slurm-local.sh stop
#
# Everything lives in $SLURM_LOCAL_DIR (default heterolora-slurm in the temporary directory, $TMPDIR):
# the configuration, state,
# logs and the munge key. The node is this host with all its cores and 90% of its memory.
set -euo pipefail

# A short path: munge's socket lives in it, and socket paths are limited to about 100 bytes.
dir="${SLURM_LOCAL_DIR:-$(dirname "$(mktemp -u)")/heterolora-slurm}"
conf="$dir/slurm.conf"
say() { echo "slurm-local: $*" >&2; }

install() {
  if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v munged >/dev/null; then
    return
  fi
  if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    say "slurmctld/slurmd/munged missing and cannot install them (needs root and apt-get)"
    exit 2
  fi
  say "installing slurm-wlm and munge"
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q slurm-wlm munge >/dev/null
}

start() {
  install
  mkdir -p "$dir"/{state,spool,log,munge}
  chmod 700 "$dir/munge"
  if [ ! -f "$dir/munge/munge.key" ]; then
    dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
    chmod 400 "$dir/munge/munge.key"
  fi
  if ! pgrep -f "munged.*$dir/munge" >/dev/null; then
    munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" \
      --pid-file="$dir/munge/munged.pid" --log-file="$dir/log/munged.log" --seed-file="$dir/munge/seed"
  fi
  host="$(hostname)"
  cpus="$(nproc)"
  mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 * 9 / 10 ))
  cat >"$conf" <<EOF
ClusterName=heterolora
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CredType=cred/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=local Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$conf"
  pgrep -f "slurmctld.*$conf" >/dev/null || slurmctld -f "$conf" -c
  pgrep -f "slurmd.*$conf" >/dev/null || slurmd -f "$conf" -c
  for _ in $(seq 1 60); do
    if sinfo -h -o '%T' 2>/dev/null | grep -qE '^(idle|mixed|allocated)'; then
      say "up: export SLURM_CONF=$conf"
      echo "$conf"
      return 0
    fi
    sleep 0.5
  done
  say "the node did not come up; logs in $dir/log"
  sinfo 2>&1 | sed 's/^/  /' >&2 || true
  exit 1
}

stop() {
  for d in slurmd slurmctld; do pkill -f "$d.*$conf" 2>/dev/null || true; done
  pkill -f "munged.*$dir/munge" 2>/dev/null || true
  say "stopped"
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  *) echo "usage: $0 start|stop" >&2; exit 2 ;;
esac
