#!/usr/bin/env bash
# Install and start a real single-node SLURM cluster on this (Debian/Ubuntu)
# machine, for CI and for tests.  No systemd needed: munged, slurmctld and
# slurmd are started directly as daemons.
#
# Idempotent: safe to run again.  Packages are only installed when missing,
# daemons are only started when not running, and they are restarted only if
# the generated slurm.conf changed.  Old state in /var/spool/slurmctld is
# cleared when slurmctld is (re)started by this script (slurmctld -c).
#
# Usage: sudo .ci/slurm-setup.sh        (re-execs itself with sudo if needed)
# Env:   SLURM_CLUSTER_NAME (default: ci), SLURM_WAIT_S (default: 60)
set -euo pipefail

if [ "$(id -u)" -ne 0 ]; then
    if command -v sudo >/dev/null 2>&1; then
        exec sudo -E bash "$0" "$@"
    fi
    echo "slurm-setup: must run as root (no sudo available)" >&2
    exit 1
fi

CLUSTER_NAME="${SLURM_CLUSTER_NAME:-ci}"
WAIT_S="${SLURM_WAIT_S:-60}"
CONF_DIR=/etc/slurm
CONF="$CONF_DIR/slurm.conf"
LOG_DIR=/var/log/slurm
CTLD_SPOOL=/var/spool/slurmctld
SLURMD_SPOOL=/var/spool/slurmd
CTLD_PID=/run/slurmctld.pid
SLURMD_PID=/run/slurmd.pid
export PATH="/usr/sbin:/usr/bin:/sbin:/bin:$PATH"

log() { echo "slurm-setup: $*"; }

show_logs() {
    local f n
    for f in "$LOG_DIR/slurmctld.log" "$LOG_DIR/slurmd.log" /var/log/munge/munged.log; do
        if [ -f "$f" ]; then
            case "$f" in *munge*) n=10 ;; *) n=40 ;; esac
            echo "----- tail -n $n $f -----" >&2
            tail -n "$n" "$f" >&2 || true
        fi
    done
}

# policy-rc.d we created to stop package scripts from starting services
CREATED_POLICY=0
cleanup_policy() {
    if [ "$CREATED_POLICY" = 1 ]; then rm -f /usr/sbin/policy-rc.d; CREATED_POLICY=0; fi
}

fail() {
    cleanup_policy
    echo "slurm-setup: ERROR: $*" >&2
    show_logs
    exit 1
}

# shellcheck disable=SC2154  # rc is assigned inside the trap string
trap 'rc=$?; cleanup_policy; echo "slurm-setup: ERROR: command failed (rc=$rc) at line $LINENO: $BASH_COMMAND" >&2; show_logs; exit $rc' ERR

# ---------------------------------------------------------------- packages
need_install=0
for b in slurmctld slurmd sbatch sinfo munged munge unmunge; do
    command -v "$b" >/dev/null 2>&1 || need_install=1
done
if [ "$need_install" = 1 ]; then
    log "installing slurmctld slurmd slurm-client munge ..."
    # Keep the packages' maintainer scripts from trying to start services.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
        chmod 0755 /usr/sbin/policy-rc.d
        CREATED_POLICY=1
    fi
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq || fail "apt-get update failed"
    apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client munge || fail "apt-get install failed"
    cleanup_policy
else
    log "packages already installed"
fi

# ---------------------------------------------------------------- hostname
HOST="$(hostname -s)"
[ -n "$HOST" ] || fail "empty hostname"
if ! getent hosts "$HOST" >/dev/null 2>&1; then
    log "adding $HOST to /etc/hosts"
    echo "127.0.0.1 $HOST" >> /etc/hosts
fi

# ---------------------------------------------------------------- munge
getent passwd munge >/dev/null || fail "user 'munge' missing (munge package broken?)"
install -d -m 0700 -o munge -g munge /etc/munge
install -d -m 0711 -o munge -g munge /var/lib/munge
install -d -m 0700 -o munge -g munge /var/log/munge
install -d -m 0755 -o munge -g munge /run/munge
if [ ! -s /etc/munge/munge.key ]; then
    log "creating munge key"
    rm -f /etc/munge/munge.key
    if command -v mungekey >/dev/null 2>&1; then
        mungekey --create --keyfile=/etc/munge/munge.key
    elif command -v create-munge-key >/dev/null 2>&1; then
        create-munge-key -f
    else
        dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
    fi
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key

if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    log "munged already running"
else
    log "starting munged"
    # A stale socket/lock from a dead munged would make it refuse to start.
    rm -f /run/munge/munge.socket.2 /run/munge/munge.socket.2.lock /run/munge/munged.pid
    runuser -u munge -- /usr/sbin/munged || fail "munged failed to start"
    ok=0
    for _ in $(seq 1 20); do
        if munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then ok=1; break; fi
        sleep 0.5
    done
    [ "$ok" = 1 ] || fail "munge -n | unmunge does not work"
fi

# ---------------------------------------------------------------- slurm.conf
NODE_LINE="$(slurmd -C 2>/dev/null | head -n 1)"
case "$NODE_LINE" in
    NodeName=*) ;;
    *) fail "unexpected 'slurmd -C' output: $NODE_LINE" ;;
esac
node_fields=""
for kv in $NODE_LINE; do
    case "$kv" in
        NodeName=*|CPUs=*|Boards=*|SocketsPerBoard=*|CoresPerSocket=*|ThreadsPerCore=*)
            node_fields="$node_fields $kv" ;;
        RealMemory=*)
            mem="${kv#RealMemory=}"
            # leave some slack so the node never gets drained for "Low RealMemory"
            mem=$(( mem * 95 / 100 ))
            [ "$mem" -ge 1 ] || mem=1
            node_fields="$node_fields RealMemory=$mem" ;;
    esac
done
NODE_NAME="$(echo "$NODE_LINE" | sed -n 's/^NodeName=\([^ ]*\).*/\1/p')"
[ -n "$NODE_NAME" ] || fail "could not get NodeName from 'slurmd -C'"

install -d -m 0755 "$CONF_DIR" "$LOG_DIR" "$CTLD_SPOOL" "$SLURMD_SPOOL"

new_conf="$(mktemp)"
cat > "$new_conf" <<EOF
# Generated by .ci/slurm-setup.sh -- single-node SLURM cluster for CI/tests.
ClusterName=$CLUSTER_NAME
SlurmctldHost=$HOST
SlurmUser=root
SlurmdUser=root
SlurmctldPort=6817
SlurmdPort=6818
AuthType=auth/munge
CryptoType=crypto/munge
StateSaveLocation=$CTLD_SPOOL
SlurmdSpoolDir=$SLURMD_SPOOL
SlurmctldPidFile=$CTLD_PID
SlurmdPidFile=$SLURMD_PID
SlurmctldLogFile=$LOG_DIR/slurmctld.log
SlurmdLogFile=$LOG_DIR/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/affinity
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MailProg=/bin/true
SlurmctldTimeout=60
SlurmdTimeout=60
InactiveLimit=0
MinJobAge=300
KillWait=5
Waittime=0
#
${node_fields# } State=UNKNOWN
PartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
EOF

conf_changed=0
if [ ! -f "$CONF" ] || ! cmp -s "$new_conf" "$CONF"; then
    conf_changed=1
    install -m 0644 "$new_conf" "$CONF"
    log "wrote $CONF"
fi
rm -f "$new_conf"

# ---------------------------------------------------------------- daemons
# true if the process exists and is not a zombie
alive() {
    local st
    st="$(ps -o stat= -p "$1" 2>/dev/null || true)"
    case "$st" in ""|Z*) return 1 ;; esac
    return 0
}

# pid of a running daemon (by its pid file, else by exact process name)
daemon_pid() {
    local name="$1" pidfile="$2" pid=""
    if [ -s "$pidfile" ]; then
        pid="$(cat "$pidfile" 2>/dev/null || true)"
        if [ -n "$pid" ] && alive "$pid" \
                && [ "$(cat "/proc/$pid/comm" 2>/dev/null || true)" = "$name" ]; then
            echo "$pid"; return 0
        fi
    fi
    for pid in $(pgrep -x "$name" || true); do
        if alive "$pid"; then echo "$pid"; return 0; fi
    done
    return 1
}

stop_daemon() {
    local name="$1" pidfile="$2" pid
    pid="$(daemon_pid "$name" "$pidfile")" || return 0
    log "stopping $name (pid $pid)"
    kill "$pid" 2>/dev/null || true
    for _ in $(seq 1 40); do
        alive "$pid" || return 0
        sleep 0.25
    done
    kill -9 "$pid" 2>/dev/null || true
    sleep 0.5
}

if [ "$conf_changed" = 1 ]; then
    # daemons running with an older config: restart them with the new one
    stop_daemon slurmd "$SLURMD_PID"
    stop_daemon slurmctld "$CTLD_PID"
fi

if daemon_pid slurmctld "$CTLD_PID" >/dev/null; then
    log "slurmctld already running"
else
    log "starting slurmctld (clearing old state in $CTLD_SPOOL)"
    # Start from a clean state: old jobs, node states, reservations or a
    # different ClusterName (fatal "CLUSTER NAME MISMATCH") left in the
    # spool dir by an earlier run/image would otherwise get in the way.
    find "$CTLD_SPOOL" -mindepth 1 -delete
    slurmctld -c -f "$CONF" || fail "slurmctld failed to start"
fi
ok=0
for _ in $(seq 1 "$((WAIT_S * 2))"); do
    if scontrol ping 2>/dev/null | grep -q 'is UP'; then ok=1; break; fi
    daemon_pid slurmctld "$CTLD_PID" >/dev/null || fail "slurmctld died"
    sleep 0.5
done
[ "$ok" = 1 ] || fail "slurmctld does not answer 'scontrol ping' after ${WAIT_S}s"

slurmd_started_at=""
if daemon_pid slurmd "$SLURMD_PID" >/dev/null; then
    log "slurmd already running"
else
    log "starting slurmd"
    slurmd_started_at="$(date +%s)"
    slurmd -c -f "$CONF" || fail "slurmd failed to start"
fi

# true once the node has registered with slurmctld after we started slurmd
# (until then slurmctld may still show a stale "idle" from before)
registered() {
    [ -n "$slurmd_started_at" ] || return 0
    local t
    t="$(scontrol show node "$NODE_NAME" 2>/dev/null \
        | sed -n 's/.*SlurmdStartTime=\([^ ]*\).*/\1/p' | head -n 1)"
    case "$t" in ""|None|Unknown|N/A) return 1 ;; esac
    t="$(date -d "$t" +%s 2>/dev/null || echo 0)"
    [ "$t" -ge "$slurmd_started_at" ]
}

# ---------------------------------------------------------------- wait for node
log "waiting up to ${WAIT_S}s for node $NODE_NAME to become idle"
deadline=$(( $(date +%s) + WAIT_S ))
resumed=0
state=""
while :; do
    state="$(sinfo -h -n "$NODE_NAME" -o %T 2>/dev/null | head -n 1 || true)"
    daemon_pid slurmd "$SLURMD_PID" >/dev/null || fail "slurmd died (node state: '$state')"
    daemon_pid slurmctld "$CTLD_PID" >/dev/null || fail "slurmctld died (node state: '$state')"
    case "$state" in
        *\*) ;;  # not responding (yet)
        idle|mixed|allocated|completing) if registered; then break; fi ;;
        down*|drain*|fail*|inval*)
            if [ "$resumed" -lt 3 ] && daemon_pid slurmd "$SLURMD_PID" >/dev/null; then
                log "node state '$state', resuming"
                scontrol update nodename="$NODE_NAME" state=resume 2>/dev/null || true
                resumed=$((resumed + 1))
            fi ;;
    esac
    [ "$(date +%s)" -lt "$deadline" ] || fail "node $NODE_NAME not idle after ${WAIT_S}s (state: '$state')"
    sleep 1
done

trap - ERR
log "SLURM is up (node $NODE_NAME: $state)"
sinfo
