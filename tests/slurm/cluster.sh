#!/usr/bin/env bash
# A one-node SLURM cluster on this machine, for gan_je's slurm-marked tests and for trying
# hydra/launcher=slurm by hand: munged, slurmctld and slurmd (Debian's munge and slurm-wlm),
# partition "debug" with every CPU of the machine, no accounting.
#
#   tests/slurm/cluster.sh start     # prints the export line the SLURM commands need
#   export SLURM_CONF=/tmp/gan_je-slurm/slurm.conf
#   sbatch --wrap 'hostname'; squeue
#   tests/slurm/cluster.sh stop
#
# Needs root (munged runs as the munge user, the SLURM daemons as root). Everything it writes
# is under $GAN_JE_SLURM_DIR (default /tmp/gan_je-slurm); nothing under /etc is changed.
set -euo pipefail

DIR=${GAN_JE_SLURM_DIR:-/tmp/gan_je-slurm}
CONF=$DIR/slurm.conf
MUNGE_SOCKET=$DIR/munge/munge.socket
HOST=$(hostname -s)

usage() { echo "usage: $0 start|stop|status" >&2; exit 2; }

fail() { echo "cluster.sh: $*" >&2; exit 1; }

write_conf() {
  local cpus memory_mb
  cpus=$(nproc)
  memory_mb=$(awk '/MemTotal/ {print int($2 / 1024) - 512}' /proc/meminfo)
  cat > "$CONF" <<CONF
# written by tests/slurm/cluster.sh: one node, no accounting
ClusterName=gan_je_test
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$MUNGE_SOCKET
SlurmctldPort=${GAN_JE_SLURMCTLD_PORT:-6817}
SlurmdPort=${GAN_JE_SLURMD_PORT:-6818}
StateSaveLocation=$DIR/state
SlurmdSpoolDir=$DIR/spool
SlurmctldPidFile=$DIR/slurmctld.pid
SlurmdPidFile=$DIR/slurmd.pid
SlurmctldLogFile=$DIR/slurmctld.log
SlurmdLogFile=$DIR/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
ReturnToService=2
JobRequeue=1
KillWait=30
MinJobAge=300
NodeName=$HOST CPUs=$cpus RealMemory=$memory_mb State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
}

start() {
  [ "$(id -u)" = 0 ] || fail "needs root (munged and the SLURM daemons)"
  for program in munged slurmctld slurmd sbatch; do
    command -v "$program" > /dev/null || fail "$program not found: apt-get install slurm-wlm munge"
  done
  if [ -f "$DIR/slurmctld.pid" ] && [ -n "$(living "$(cat "$DIR/slurmctld.pid")")" ]; then
    echo "export SLURM_CONF=$CONF   # already running"
    return
  fi
  stop  # what an earlier start left without its slurmctld: a slurmd, a munged
  mkdir -p "$DIR/state" "$DIR/spool" "$DIR/munge"
  chown munge: "$DIR/munge"
  chmod 755 "$DIR/munge"  # clients (every user) reach the socket
  write_conf
  runuser -u munge -- munged --socket="$MUNGE_SOCKET" --pid-file="$DIR/munge/munged.pid" \
    --log-file="$DIR/munge/munged.log" --seed-file="$DIR/munge/munged.seed"
  export SLURM_CONF=$CONF
  slurmctld -f "$CONF" -c   # -c: a fresh state, no jobs from an earlier start
  slurmd -f "$CONF"
  for _ in $(seq 60); do
    if sinfo -h -o %t 2> /dev/null | grep -qx idle; then
      echo "export SLURM_CONF=$CONF"
      return
    fi
    sleep 0.5
  done
  fail "the node did not come up within 30 s; see $DIR/slurmctld.log and $DIR/slurmd.log"
}

# The pids given that belong to a running process: a killed daemon nobody has reaped stays a
# zombie, which kill -0 still finds.
living() {
  local pid
  for pid in "$@"; do
    if [ -n "$(ps -o stat= -p "$pid" 2> /dev/null | grep -v '^Z')" ]; then
      echo "$pid"
    fi
  done
}

# The daemons of this cluster: found by their pid files and by the config or socket on their
# command line, so that one whose pid file is gone (an interrupted stop, a crash) is found too.
cluster_pids() {
  local pid_file
  for pid_file in "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"; do
    if [ -f "$pid_file" ]; then
      cat "$pid_file"
    fi
  done
  pgrep -f -- "^slurm(ctld|d) -f $CONF" || true
  pgrep -f -- "^munged --socket=$MUNGE_SOCKET" || true
}

stop() {
  local pids
  pids=$(cluster_pids | sort -u)
  if [ -n "$pids" ]; then
    kill $pids 2> /dev/null || true
  fi
  for _ in $(seq 100); do  # until they have exited (10 s), so that a start after can bind
    pids=$(living $pids)
    if [ -z "$pids" ]; then
      break
    fi
    sleep 0.1
  done
  if [ -n "$pids" ]; then
    fail "daemons $pids did not stop within 10 s"
  fi
  rm -f "$DIR/slurmd.pid" "$DIR/slurmctld.pid" "$DIR/munge/munged.pid"
}

status() {
  SLURM_CONF=$CONF sinfo
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) usage ;;
esac
