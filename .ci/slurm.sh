#!/usr/bin/env bash
# A real Slurm on this machine: installs Debian's slurm-wlm and munge, starts munged, slurmctld and slurmd
# with a one-node configuration (this machine's CPUs; process tracking and task plugins that need no
# cgroups), then runs the smoke specs as a job array with `bench slurm --submit` and checks what came back:
# one record per run, each written by a task of that array, the final job's report and its floors. Then a
# pre-emption: one task of a second array is cancelled mid-run, the array submitted again, and every run
# must have been executed once overall. Stops the daemons it started.
#
#   bash .ci/slurm.sh            (as root, on a Debian machine; CI runs it from .ci/run)
set -euo pipefail
cd "$(dirname "$0")/.."
bench=$PWD/target/release/bench
export BENCH_MODELS_DIR=${BENCH_MODELS_DIR:-$PWD/../shared/models}
export BENCH_DATA_DIR=${BENCH_DATA_DIR:-$PWD/../shared/datasets}
sudo=""
if [ "$(id -u)" != 0 ]; then sudo="sudo"; fi

if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

work=$(mktemp -d /tmp/textbench-slurm.XXXXXX)
chmod 0755 "$work" # munged runs as the munge user and must reach its folder
conf=$work/etc
mkdir -p "$conf" "$work/spool/ctld" "$work/spool/d" "$work/log"
chmod 1777 "$work/log"
host=$(hostname -s)
cpus=$(nproc)
mem=$(( $(awk '/MemTotal/ {print $2}' /proc/meminfo) / 1024 - 1024 ))

# munge: a fresh key, its own socket, run as the munge user.
$sudo install -d -o munge -g munge -m 0755 "$work/munge" "$work/munge/run" # the socket folder: reachable by all
$sudo dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
$sudo chown munge:munge "$work/munge/munge.key"
$sudo chmod 0400 "$work/munge/munge.key"
socket=$work/munge/run/munge.socket
$sudo runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$socket" \
    --pid-file="$work/munge/run/munged.pid" --log-file="$work/log/munged.log" --seed-file="$work/munge/seed"

cat > "$conf/slurm.conf" <<CONF
ClusterName=textbench-ci
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$socket
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
StateSaveLocation=$work/spool/ctld
SlurmdSpoolDir=$work/spool/d
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/log/slurmctld.log
SlurmdLogFile=$work/log/slurmd.log
SlurmctldPort=16817
SlurmdPort=16818
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=600
KillWait=5
NodeName=$host CPUs=$cpus RealMemory=$mem State=UNKNOWN
PartitionName=ci Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF=$conf/slurm.conf

stop() {
    [ -f "$work/slurmd.pid" ] && $sudo kill "$(cat "$work/slurmd.pid")" 2>/dev/null || true
    [ -f "$work/slurmctld.pid" ] && $sudo kill "$(cat "$work/slurmctld.pid")" 2>/dev/null || true
    [ -f "$work/munge/run/munged.pid" ] && $sudo kill "$(cat "$work/munge/run/munged.pid")" 2>/dev/null || true
    sleep 1
}
trap stop EXIT
$sudo env SLURM_CONF="$SLURM_CONF" slurmctld
$sudo env SLURM_CONF="$SLURM_CONF" slurmd
for _ in $(seq 60); do
    if sinfo -h -o %t 2>/dev/null | grep -qE '^(idle|mix|alloc)'; then break; fi
    sleep 1
done
sinfo

# Waits (bounded) until none of the given jobs is in the queue.
wait_jobs() {
    local deadline=$((SECONDS + ${2:-900}))
    while squeue -h -j "$1" 2>/dev/null | grep -q .; do
        if [ $SECONDS -ge $deadline ]; then echo "jobs $1 still queued after ${2:-900}s" >&2; squeue; exit 1; fi
        sleep 2
    done
}

# Counts records and who wrote them; fails unless each smoke run has one record from the given array.
check_records() { # runs_dir expected_runs array_ids...
    python3 - "$@" <<'PY'
import json, pathlib, sys
runs, expected, arrays = pathlib.Path(sys.argv[1]), int(sys.argv[2]), set(sys.argv[3:])
records = [json.loads(p.read_text()) for p in runs.glob("*.json") if not p.name.startswith(".")]
jobs = [r["environment"].get("slurm_job", "") for r in records]
bad = [j for j in jobs if j.split("_")[0] not in arrays]
print(f"{len(records)} records for {expected} runs; written by array tasks {sorted(set(jobs))}")
if len(records) != expected or bad or any(r["status"] != "ok" for r in records):
    sys.exit(f"expected {expected} ok records from arrays {sorted(arrays)}; got {len(records)}, foreign writers {bad}")
PY
}

expected=$("$bench" --runs-dir "$work/none" run --dry-run experiments/smoke-*.yaml | grep -E '^[0-9a-f]{16} ' | awk '{print $1}' | sort -u | wc -l)

echo "== a sweep as a job array of 3 tasks, and the final check + report"
runs=$work/runs
out=$("$bench" --runs-dir "$runs" slurm experiments/smoke-*.yaml --tasks 3 --report "$work/report/index.html" --submit)
echo "$out"
array=$(echo "$out" | awk '/^array/ {print $2}')
final=$(echo "$out" | awk '/^report/ {print $2}')
started=$SECONDS
wait_jobs "$array,$final"
echo "array and final job done in $((SECONDS - started))s"
check_records "$runs" "$expected" "$array"
test -s "$work/report/index.html" || { echo "the final job wrote no report" >&2; cat "$runs"/.slurm/*report.out >&2; exit 1; }
grep -q "of .* floor checks hold" "$runs"/.slurm/"$final"-report.out
if grep -q "FAIL\|MISSING" "$runs"/.slurm/"$final"-report.out; then cat "$runs"/.slurm/"$final"-report.out >&2; exit 1; fi
"$bench" --runs-dir "$runs" status experiments/smoke-*.yaml

echo "== a pre-emption: one task cancelled mid-run, the array submitted again"
runs=$work/runs-preempted
out=$("$bench" --runs-dir "$runs" slurm experiments/smoke-*.yaml --tasks 3 --report "$work/report2/index.html" --submit)
first=$(echo "$out" | awk '/^array/ {print $2}')
# Cancel task 2 once it is running and has claimed a run.
for _ in $(seq 300); do
    if ls "$runs"/*.claim >/dev/null 2>&1 && squeue -h -j "${first}_2" -t R 2>/dev/null | grep -q .; then break; fi
    sleep 0.2
done
scancel "${first}_2"
wait_jobs "$first,$(echo "$out" | awk '/^report/ {print $2}')"
before=$(ls "$runs"/*.json 2>/dev/null | wc -l)
echo "after the cancel: $before of $expected records"
out=$("$bench" --runs-dir "$runs" slurm experiments/smoke-*.yaml --tasks 3 --report "$work/report2/index.html" --submit)
second=$(echo "$out" | awk '/^array/ {print $2}')
wait_jobs "$second,$(echo "$out" | awk '/^report/ {print $2}')"
check_records "$runs" "$expected" "$first" "$second"
# Executed once overall: each run's metrics line appears once across every task's output.
executed=$(cat "$runs"/.slurm/*_*.out | grep -E '^[0-9a-f]{16} .* acc ' | awk '{print $1}' | sort | uniq -c | awk '$1 != 1' | wc -l)
total=$(cat "$runs"/.slurm/*_*.out | grep -cE '^[0-9a-f]{16} .* acc ')
echo "$total executions for $expected runs; $executed run(s) executed more than once"
[ "$total" = "$expected" ] && [ "$executed" = 0 ]
echo "slurm: ok"
