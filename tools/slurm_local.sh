#!/usr/bin/env bash
# A one-node Slurm cluster on loopback, without systemd: for the Slurm sweep test and the sweep
# benchmark. Installs Debian's slurm-wlm and munge when missing (as tools/setup.sh does), runs
# its own munged, slurmctld and slurmd with every file under STATE_DIR, and stops them by PID.
# Usage: tools/slurm_local.sh start STATE_DIR [CPUS]   (then: export SLURM_CONF=STATE_DIR/slurm.conf)
#        tools/slurm_local.sh stop STATE_DIR
# Any failure to start prints the reason and the daemons' logs and exits 1: callers fail, not skip.
set -euo pipefail

fail() {
  echo "slurm_local: $*" >&2
  exit 1
}

install_missing() {
  local missing=()
  for p in slurm-wlm munge; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  local sudo_cmd=()
  if [ "$(id -u)" -ne 0 ]; then
    sudo -n true 2>/dev/null || fail "installing ${missing[*]} needs root or passwordless sudo"
    sudo_cmd=(sudo -n)
  fi
  echo "slurm_local: installing ${missing[*]}"
  "${sudo_cmd[@]}" apt-get update -qq
  DEBIAN_FRONTEND=noninteractive "${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends \
    "${missing[@]}" >/dev/null || fail "apt-get install ${missing[*]} failed"
}

# A TCP port nothing listens on, so this cluster does not collide with another on the machine.
free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

show_logs() {
  local state=$1
  for f in "$state"/log/*.log "$state"/munge/munged.log; do
    [ -f "$f" ] && { echo "--- $f" >&2; tail -n 20 "$f" >&2; }
  done
  return 0
}

# Kills the process in PID_FILE if it is still the daemon NAME (a reused PID is left alone).
stop_daemon() {
  local pid_file=$1 name=$2
  [ -f "$pid_file" ] || return 0
  local pid
  pid=$(cat "$pid_file")
  if [ -n "$pid" ] && [ "$(cat "/proc/$pid/comm" 2>/dev/null)" = "$name" ]; then
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 100); do
      [ -d "/proc/$pid" ] || break
      sleep 0.1
    done
    [ -d "/proc/$pid" ] && kill -9 "$pid" 2>/dev/null
  fi
  rm -f "$pid_file"
}

start() {
  local state cpus host
  state=$(realpath -m "$1")
  cpus=${2:-$(nproc)}
  [ "$(id -u)" -eq 0 ] || fail "the daemons must run as root (slurmd launches jobs); run as root"
  install_missing
  command -v runuser >/dev/null || fail "runuser (util-linux) not found"
  id munge >/dev/null 2>&1 || fail "no munge user: the munge package did not install cleanly"
  [ -f /etc/munge/munge.key ] || fail "/etc/munge/munge.key missing (munge's postinst makes it)"
  host=$(hostname -s)

  stop "$state"  # daemons a killed earlier run left behind
  rm -rf "$state"
  mkdir -p "$state"/{ctld,slurmd,run,log,munge}
  chmod 755 "$state"
  chown munge:munge "$state/munge"
  runuser -u munge -- /usr/sbin/munged --socket="$state/munge/munge.socket" \
    --pid-file="$state/munge/munged.pid" --log-file="$state/munge/munged.log" \
    --seed-file="$state/munge/munged.seed" --key-file=/etc/munge/munge.key ||
    { show_logs "$state"; fail "munged did not start"; }

  # proctrack/linuxproc and task/none: the cgroup plugins fail where cgroups are not writable;
  # cons_tres with batch_sched_delay=0 starts array tasks at once instead of every few seconds.
  cat >"$state/slurm.conf" <<EOF
ClusterName=servesim
SlurmctldHost=$host(127.0.0.1)
SlurmctldPort=$(free_port)
SlurmdPort=$(free_port)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
AuthInfo=socket=$state/munge/munge.socket
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerParameters=batch_sched_delay=0
MaxArraySize=10001
ReturnToService=2
StateSaveLocation=$state/ctld
SlurmdSpoolDir=$state/slurmd
SlurmctldPidFile=$state/run/slurmctld.pid
SlurmdPidFile=$state/run/slurmd.pid
SlurmctldLogFile=$state/log/slurmctld.log
SlurmdLogFile=$state/log/slurmd.log
NodeName=$host NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=$host Default=YES MaxTime=INFINITE State=UP
EOF
  export SLURM_CONF="$state/slurm.conf"
  /usr/sbin/slurmctld -c -f "$SLURM_CONF" || { show_logs "$state"; fail "slurmctld did not start"; }
  /usr/sbin/slurmd -f "$SLURM_CONF" || { show_logs "$state"; fail "slurmd did not start"; }
  for _ in $(seq 300); do
    if [ "$(sinfo -h -N -o %T 2>/dev/null)" = "idle" ]; then
      echo "slurm_local: one-node cluster up ($host, $cpus CPUs); export SLURM_CONF=$SLURM_CONF"
      return 0
    fi
    sleep 0.1
  done
  show_logs "$state"
  sinfo -N >&2 || true
  stop "$state"
  fail "the node did not become idle within 30 s"
}

stop() {
  local state
  state=$(realpath -m "$1")
  stop_daemon "$state/run/slurmd.pid" slurmd
  stop_daemon "$state/run/slurmctld.pid" slurmctld
  stop_daemon "$state/munge/munged.pid" munged
}

case "${1:-}" in
  start) [ $# -ge 2 ] || fail "usage: $0 start STATE_DIR [CPUS]"; start "$2" "${3:-}" ;;
  stop) [ $# -eq 2 ] || fail "usage: $0 stop STATE_DIR"; stop "$2" ;;
  *) fail "usage: $0 start STATE_DIR [CPUS] | stop STATE_DIR" ;;
esac
