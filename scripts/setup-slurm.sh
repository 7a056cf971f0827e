#!/usr/bin/env bash
# A real single-node Slurm (Debian 12's slurm-wlm 22.05 + munge) on this
# machine, for the tests of crates/xnatkit-slurm and for trying the Slurm
# executor by hand. Containers here have no systemd and no usable cgroups, so
# the daemons are started directly and the conf avoids every cgroup plugin.
#
#   scripts/setup-slurm.sh [start]   install (apt, when missing), write the conf, start, wait for an idle node
#   scripts/setup-slurm.sh stop      stop slurmd, slurmctld and munged (only the ones this conf runs)
#   scripts/setup-slurm.sh status    print sinfo and exit 0 when the node is up
#
# Safe to run twice: a running daemon is left alone, the conf is rewritten
# only when it was written by this script (a site's own /etc/slurm/slurm.conf
# is never touched: the script then refuses and says so), and a daemon is
# restarted only when the conf it runs changed.
#
# Environment:
#   XNATKIT_SLURMD_TIMEOUT   SlurmdTimeout in seconds (default 10, so a dead slurmd is noticed quickly in
#                            tests; Slurm's own default is 300)
#   XNATKIT_SLURM_WAIT       seconds to wait for the node to become idle (default 60)
set -euo pipefail

log() { printf '[setup-slurm] %s\n' "$*" >&2; }
die() {
  log "error: $*"
  exit 1
}

conf_dir=/etc/slurm
conf="$conf_dir/slurm.conf"
marker="# written by xnatkit scripts/setup-slurm.sh"
state_dir=/var/lib/slurm/slurmctld
spool_dir=/var/lib/slurm/slurmd
log_dir=/var/log/slurm
ctld_pid=/run/slurmctld.pid
slurmd_pid=/run/slurmd.pid
munge_run=/run/munge
node=localhost
partition=debug
slurmd_timeout="${XNATKIT_SLURMD_TIMEOUT:-10}"
wait_secs="${XNATKIT_SLURM_WAIT:-60}"

need_root() {
  [[ $(id -u) -eq 0 ]] || die "must run as root (it installs packages and starts munged, slurmctld and slurmd)"
}

install_packages() {
  if [[ -x /usr/sbin/slurmctld && -x /usr/sbin/slurmd && -x /usr/bin/sbatch && -x /usr/sbin/munged ]]; then
    return
  fi
  log "installing slurm-wlm and munge (apt-get)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  # policy-rc.d in containers denies the postinst's service start; that is fine,
  # this script starts the daemons itself.
  apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null ||
    die "apt-get install slurm-wlm munge failed"
  [[ -x /usr/sbin/slurmctld && -x /usr/sbin/slurmd ]] || die "slurm-wlm installed but slurmctld/slurmd are missing"
}

# Reads `slurmd -C` (the hardware slurmd itself will report) so the conf never
# claims more CPUs or memory than the node has: a node that reports less than
# its configured size is drained as "Low RealMemory"/"Low CPUs".
node_hardware() {
  local line
  line="$(/usr/sbin/slurmd -C | head -n1)" || die "slurmd -C failed"
  # Drop the NodeName=<hostname> field; the node is always called $node.
  printf '%s\n' "${line#NodeName=* }"
}

render_conf() {
  local hw
  hw="$(node_hardware)"
  cat <<EOF
$marker; rewritten on each run, edit the script instead.
# Single node, no systemd, no cgroups (see docs/slurm.md).
ClusterName=xnatkit
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
StateSaveLocation=$state_dir
SlurmdSpoolDir=$spool_dir
SlurmctldPidFile=$ctld_pid
SlurmdPidFile=$slurmd_pid
SlurmctldLogFile=$log_dir/slurmctld.log
SlurmdLogFile=$log_dir/slurmd.log
# Process tracking without cgroups: linuxproc follows the process tree.
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU_Memory
DefMemPerCPU=256
# No slurmdbd: sacct has nothing to read. squeue/scontrol keep a finished job
# for MinJobAge seconds and the completion log keeps one line per job for good.
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$log_dir/jobcomp.log
MinJobAge=3600
# A job on a node that stops answering ends as NODE_FAIL instead of being
# requeued (the engine decides about retries, not Slurm).
JobRequeue=0
SlurmdTimeout=$slurmd_timeout
ReturnToService=2
KillWait=5
NodeName=$node NodeAddr=127.0.0.1 $hw State=UNKNOWN
PartitionName=$partition Nodes=$node Default=YES MaxTime=INFINITE State=UP
EOF
}

# Writes the conf; prints "changed" when the file content changed.
write_conf() {
  if [[ -f $conf ]] && ! grep -qF "$marker" "$conf"; then
    die "$conf exists and was not written by this script; not touching a site's Slurm (move it away to use this script)"
  fi
  mkdir -p "$conf_dir"
  local tmp
  tmp="$(mktemp "$conf_dir/.slurm.conf.XXXXXX")"
  render_conf >"$tmp"
  chmod 0644 "$tmp"
  if [[ -f $conf ]] && cmp -s "$tmp" "$conf"; then
    rm -f "$tmp"
    return
  fi
  mv -f "$tmp" "$conf"
  echo changed
}

pid_alive() {
  local file="$1" pid
  [[ -f $file ]] || return 1
  pid="$(cat "$file" 2>/dev/null)" || return 1
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null || return 1
  # A daemon killed under a pid 1 that never reaps (a container's init, a
  # CI runner) stays a zombie, and kill -0 succeeds on zombies: without this
  # a killed slurmd would never be started again.
  local state
  # The state follows the last ')' (the command name may hold spaces).
  state="$(sed 's/.*) //' "/proc/$pid/stat" 2>/dev/null | cut -d' ' -f1)" || return 1
  [[ $state != Z ]]
}

munge_pidfile() { echo "$munge_run/munged.pid"; }

start_munge() {
  # systemd's RuntimeDirectory=munge normally creates this (dun/munge#143).
  install -d -m 0755 -o munge -g munge "$munge_run"
  # A working round trip means some munged (ours or the site's) serves the socket.
  if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then
    return
  fi
  if [[ ! -s /etc/munge/munge.key ]]; then
    log "creating /etc/munge/munge.key"
    runuser -u munge -- mungekey -c -k /etc/munge/munge.key
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  # As the munge user: as root munged refuses its own log/dir ownership (dun/munge#51).
  runuser -u munge -- /usr/sbin/munged --pid-file="$(munge_pidfile)" ||
    die "munged did not start (see /var/log/munge/munged.log)"
  local i
  for i in $(seq 1 50); do
    if munge -n </dev/null 2>/dev/null | unmunge >/dev/null 2>&1; then return; fi
    sleep 0.1
  done
  die "munged started but munge -n | unmunge fails (see /var/log/munge/munged.log)"
}

stop_pidfile() {
  local file="$1" name="$2" pid i
  pid_alive "$file" || {
    rm -f "$file"
    return 0
  }
  pid="$(cat "$file")"
  kill "$pid" 2>/dev/null || true
  for i in $(seq 1 100); do
    pid_alive "$file" || {
      rm -f "$file"
      return 0
    }
    sleep 0.1
  done
  log "$name (pid $pid) did not stop on SIGTERM; sending SIGKILL"
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$file"
}

start_daemons() {
  local conf_changed="$1"
  install -d -m 0755 -o slurm -g slurm "$state_dir" "$log_dir"
  install -d -m 0755 "$spool_dir"
  if [[ -n $conf_changed ]]; then
    stop_pidfile "$slurmd_pid" slurmd
    stop_pidfile "$ctld_pid" slurmctld
  fi
  if ! pid_alive "$ctld_pid"; then
    log "starting slurmctld"
    # -i: ignore state that no longer matches the conf (e.g. after a hostname change).
    /usr/sbin/slurmctld -i || die "slurmctld did not start (see $log_dir/slurmctld.log)"
  fi
  if ! pid_alive "$slurmd_pid"; then
    log "starting slurmd"
    /usr/sbin/slurmd -N "$node" || die "slurmd did not start (see $log_dir/slurmd.log)"
  fi
}

node_state() { sinfo --noheader --nodes="$node" --format=%T 2>/dev/null | head -n1; }

wait_idle() {
  local deadline=$((SECONDS + wait_secs)) state="" resume_at=$((SECONDS + 5)) resumed=0
  while ((SECONDS < deadline)); do
    state="$(node_state || true)"
    case "$state" in
      idle | mixed | allocated | completing) return 0 ;;
      # ReturnToService=2 brings a DOWN node back when its slurmd registers,
      # within a second or two. A node still down or drained after that (an
      # admin's `scontrol update state=drain`, an older conf) is resumed once.
      down* | drain* | fail*)
        if ((resumed == 0 && SECONDS >= resume_at)) && pid_alive "$slurmd_pid"; then
          log "node $node is '$state'; resuming it"
          scontrol update nodename="$node" state=resume >/dev/null 2>&1 || true
          resumed=1
        fi
        ;;
    esac
    sleep 0.5
  done
  log "error: node $node is '${state:-unknown}' after ${wait_secs}s, not idle"
  sinfo -N -l >&2 || true
  scontrol show node "$node" 2>&1 | grep -E 'State|Reason' >&2 || true
  tail -n 20 "$log_dir/slurmctld.log" "$log_dir/slurmd.log" >&2 2>/dev/null || true
  exit 1
}

cmd_start() {
  need_root
  install_packages
  local changed
  changed="$(write_conf)"
  start_munge
  start_daemons "$changed"
  wait_idle
  log "slurm is up: node $node idle in partition $partition ($conf)"
}

cmd_stop() {
  need_root
  if [[ -f $conf ]] && ! grep -qF "$marker" "$conf"; then
    die "$conf was not written by this script; not stopping a site's Slurm"
  fi
  stop_pidfile "$slurmd_pid" slurmd
  stop_pidfile "$ctld_pid" slurmctld
  stop_pidfile "$(munge_pidfile)" munged
  log "stopped"
}

cmd_status() {
  sinfo --nodes="$node" 2>&1
  case "$(node_state || true)" in
    idle | mixed | allocated | completing) return 0 ;;
    *) return 1 ;;
  esac
}

case "${1:-start}" in
  start) cmd_start ;;
  stop) cmd_stop ;;
  status) cmd_status ;;
  *) die "unknown command '$1' (start, stop or status)" ;;
esac
