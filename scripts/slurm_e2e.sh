#!/usr/bin/env bash
# End-to-end test of srtool on a real Slurm: a one-node cluster on this
# machine (Debian's slurm-wlm and munge, installed when missing), an array job
# whose tasks run shards of srtool commands with --shard auto, and a merge job
# with --dependency=afterok: eval, AutoAttack and the work units of a small
# semirobust. The merged reports must equal the unsharded runs' field by
# field (timings, command lines and paths aside), and the merged .npy and
# .jsonl files, and semirobust's report.md, plots and models, byte for
# byte. Every daemon it starts is stopped on exit.
#
# Usage: scripts/slurm_e2e.sh            (bin/srtool must be built: make build)
# Env:   SRTOOL_BIN (default bin/srtool), SHARDS (default 4), KEEP=1 keeps the
#        work folder, SLURM_E2E_TIMEOUT seconds for the jobs (default 1200).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
bin="${SRTOOL_BIN:-$repo/bin/srtool}"
shards="${SHARDS:-4}"
timeout_s="${SLURM_E2E_TIMEOUT:-1200}"
say() { echo "slurm_e2e: $*"; }
die() { echo "slurm_e2e: FAIL: $*" >&2; exit 1; }

[ -x "$bin" ] || die "$bin not built (make build)"
bin="$(cd "$(dirname "$bin")" && pwd)/$(basename "$bin")"
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
	[ "$(id -u)" = 0 ] || die "slurm-wlm and munge are missing and this is not root"
	say "installing slurm-wlm and munge"
	export DEBIAN_FRONTEND=noninteractive
	apt-get install -y -qq slurm-wlm munge >/dev/null 2>&1 ||
		{ apt-get update -qq >/dev/null && apt-get install -y -qq slurm-wlm munge >/dev/null; } ||
		die "could not install slurm-wlm and munge"
fi
[ "$(id -u)" = 0 ] || die "the one-node cluster needs root (slurmd runs jobs as their user)"

work="$(mktemp -d /tmp/srtool-slurm.XXXXXX)"
chmod 755 "$work"
pids=()
cleanup() {
	set +e
	for f in "$work"/slurmd.pid "$work"/slurmctld.pid "$work"/munge/munged.pid; do
		[ -f "$f" ] && kill "$(cat "$f")" 2>/dev/null
	done
	sleep 1
	for f in "$work"/slurmd.pid "$work"/slurmctld.pid "$work"/munge/munged.pid; do
		[ -f "$f" ] && kill -9 "$(cat "$f")" 2>/dev/null
	done
	if [ "${KEEP:-0}" = 1 ]; then say "kept $work"; else rm -rf "$work"; fi
}
trap cleanup EXIT

# munge: its own key, socket and pid file under $work, run as user munge.
mkdir -p "$work/munge"
dd if=/dev/urandom of="$work/munge/munge.key" bs=1024 count=1 status=none
chown -R munge:munge "$work/munge"
chmod 711 "$work/munge" # clients need to reach the socket
chmod 400 "$work/munge/munge.key"
runuser -u munge -- munged --key-file="$work/munge/munge.key" --socket="$work/munge/munge.socket" \
	--pid-file="$work/munge/munged.pid" --log-file="$work/munge/munged.log" --seed-file="$work/munge/munged.seed" ||
	die "munged did not start"

host="$(hostname -s)"
cpus="$(nproc)"
port=$((20000 + RANDOM % 20000))
mkdir -p "$work/state" "$work/spool" "$work/out"
conf="$work/slurm.conf"
cat >"$conf" <<CONF
ClusterName=srtoole2e
SlurmctldHost=$host
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket=$work/munge/munge.socket
CredType=cred/munge
StateSaveLocation=$work/state
SlurmdSpoolDir=$work/spool
SlurmctldPidFile=$work/slurmctld.pid
SlurmdPidFile=$work/slurmd.pid
SlurmctldLogFile=$work/slurmctld.log
SlurmdLogFile=$work/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
JobCompType=jobcomp/none
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
MinJobAge=3600
NodeName=$host CPUs=$cpus State=UNKNOWN
PartitionName=e2e Nodes=ALL Default=YES MaxTime=INFINITE State=UP
CONF
export SLURM_CONF="$conf"
slurmctld -f "$conf" || die "slurmctld did not start: $(tail -5 "$work/slurmctld.log" 2>/dev/null)"
slurmd -f "$conf" || die "slurmd did not start: $(tail -5 "$work/slurmd.log" 2>/dev/null)"
for _ in $(seq 60); do
	sinfo -h -o %T 2>/dev/null | grep -qE '^(idle|mixed|allocated)' && break
	sleep 1
done
sinfo -h -o %T | grep -qE '^(idle|mixed|allocated)' || die "the node did not come up: $(sinfo 2>&1; tail -5 "$work/slurmd.log")"
say "one-node Slurm up on $host ($cpus CPUs), work folder $work"

# The jobs: each line is NAME|ARGS (the srtool command without --shard/--json).
# @OUT@ is the shard's (or the unsharded run's) output prefix; a command
# that writes a run folder gets -o @OUT@.d, and the files the unsharded run
# writes there (report.md, plots, models) must equal those the merge writes
# beside merged.json.
model="$repo/testdata/fixtures/attacks/fmnist_rn_w8_pgd.onnx"
data="npz:$repo/testdata/fixtures/attacks/fmnist_test_5000_5300.npz"
demo="$repo/testdata/demo"
jobs=(
	"eval|eval $model --data $data --save-logits @OUT@.npy"
	"autoattack|attack $model --data $data --n 64 --attack autoattack --eps 0.1 --save-adv @OUT@.npy --per-sample @OUT@.jsonl"
	"semirobust|semirobust --normal $demo/fmnist_normal.onnx --robust $demo/fmnist_robust.onnx --data npz:$demo/fmnist_train_3000.npz --eval-data npz:$demo/fmnist_test_1000.npz --n 256 --eval-n 300 --rho-n 300 --attacks pgd --eps 0.1 --steps 2 --fb-layers 2,4 --trials 2 --epochs 1 --adv-steps 1 -o @OUT@.d"
)
if [ -n "${SLURM_E2E_EXTRA:-}" ]; then
	IFS=';' read -r -a extra <<<"$SLURM_E2E_EXTRA"
	jobs+=("${extra[@]}")
fi

start=$(date +%s)
merges=()
for j in "${jobs[@]}"; do
	name="${j%%|*}"
	args="${j#*|}"
	mkdir -p "$work/out/$name"
	shard_args="${args//@OUT@/$work/out/$name/shard-\$SLURM_ARRAY_TASK_ID}"
	arr=$(sbatch --parsable --job-name="$name" --array="0-$((shards - 1))" --cpus-per-task=1 \
		--output="$work/out/$name/task-%a.log" \
		--wrap="exec $bin $shard_args --threads 1 --shard auto --skip-done --json $work/out/$name/shard-\$SLURM_ARRAY_TASK_ID.json") ||
		die "sbatch $name failed"
	merge_flags=""
	case "$args" in *save-logits*) merge_flags="--save-logits $work/out/$name/merged.npy" ;; esac
	case "$args" in *save-adv*) merge_flags="$merge_flags --save-adv $work/out/$name/merged.npy" ;; esac
	case "$args" in *per-sample*) merge_flags="$merge_flags --per-sample $work/out/$name/merged.jsonl" ;; esac
	mj=$(sbatch --parsable --job-name="$name-merge" --dependency="afterok:$arr" --output="$work/out/$name/merge.log" \
		--wrap="exec $bin merge $work/out/$name/merged.json $merge_flags $work/out/$name/") ||
		die "sbatch $name merge failed"
	say "$name: array job $arr ($shards tasks), merge job $mj (afterok)"
	merges+=("$name|$mj|$args")
done

# The unsharded reference runs, outside Slurm, while the cluster works.
for m in "${merges[@]}"; do
	IFS='|' read -r name mj args <<<"$m"
	mkdir -p "$work/ref/$name"
	ref_args="${args//@OUT@/$work/ref/$name/whole}"
	# shellcheck disable=SC2086
	"$bin" $ref_args --threads 1 --json "$work/ref/$name/whole.json" >/dev/null || die "unsharded $name failed"
done

deadline=$((start + timeout_s))
while squeue -h 2>/dev/null | grep -q .; do
	[ "$(date +%s)" -lt "$deadline" ] || die "jobs still queued after ${timeout_s}s: $(squeue)"
	sleep 2
done
wall=$(($(date +%s) - start))

status=0
for m in "${merges[@]}"; do
	IFS='|' read -r name mj args <<<"$m"
	state=$(scontrol show job "$mj" 2>/dev/null | grep -o 'JobState=[A-Z_]*' | cut -d= -f2)
	if [ "$state" != COMPLETED ]; then
		echo "slurm_e2e: $name merge job $mj ended $state" >&2
		cat "$work/out/$name"/*.log >&2 || true
		status=1
		continue
	fi
	if ! python3 - "$work/ref/$name/whole.json" "$work/out/$name/merged.json" "$work" <<'PY'; then
import json, os, sys
# Timings, paths, the command line, whether a task was resumed, and call
# counts (which depend on how points were batched; sample counts do not)
# may differ. Files under the work folder are compared by name.
volatile = {"seconds", "images_per_second", "merged_from", "run", "sharding", "outputs", "grad_calls", "forward_calls",
            "checkpoint_dir", "resumed_from"}
work = sys.argv[3] + "/"
def strip(v):
    if isinstance(v, dict):
        return {k: strip(x) for k, x in v.items() if k not in volatile and not k.endswith("_seconds")}
    if isinstance(v, list):
        return [strip(x) for x in v]
    if isinstance(v, str) and v.startswith(work):
        return os.path.basename(v)
    return v
a, b = (strip(json.load(open(p))) for p in sys.argv[1:3])
if a != b:
    for k in sorted(set(a) | set(b)):
        if a.get(k) != b.get(k):
            print(f"  {k}: unsharded {a.get(k)!r} merged {b.get(k)!r}", file=sys.stderr)
    sys.exit(1)
PY
		echo "slurm_e2e: $name: merged report differs from the unsharded run" >&2
		status=1
		continue
	fi
	for ext in npy jsonl; do
		if [ -f "$work/ref/$name/whole.$ext" ] && ! cmp -s "$work/ref/$name/whole.$ext" "$work/out/$name/merged.$ext"; then
			echo "slurm_e2e: $name: merged .$ext differs from the unsharded run's" >&2
			status=1
			continue 2
		fi
	done
	if [ -d "$work/ref/$name/whole.d" ]; then
		for f in "$work/ref/$name/whole.d"/*; do
			b="$(basename "$f")"
			[ -f "$f" ] && [ "$b" != report.json ] || continue
			if ! cmp -s "$f" "$work/out/$name/$b"; then
				echo "slurm_e2e: $name: merged $b differs from the unsharded run's" >&2
				status=1
				continue 2
			fi
		done
	fi
	say "$name: $shards shards merged by Slurm equal the unsharded run"
done
say "jobs took ${wall}s wall on the one-node cluster"
[ "$status" = 0 ] || die "see above"
say "PASS"
