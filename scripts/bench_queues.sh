#!/usr/bin/env bash
# Continue the long benchmarks on a 2-core machine for a fixed time, one queue per core, in the background.
#   bash scripts/bench_queues.sh 150m     # each queue stops (with a checkpoint) after 150 minutes
# Every command below is resumable and skips finished work, so the same call continues where the last one stopped.
# Queue 1 is the quick-state grid (issue 6). Queue 2 runs the baselines' checks (issue 5) in order: DreamerV3 and the
# decoupled WAM on reach-v3 to 100k steps (complete since 2026-11-25, so skipped), then the size1m DreamerV3 on DMC.
# Logs: runs/logs/queue{1,2}.log. Before the session ends, after the queues stop: `python benchmarks/dv3_dmc.py stash`
# and commit benchmarks/stash/ (a fresh checkout has no runs/, so an unfinished DMC run lives on only through git).
# To stop early, send SIGTERM to the queues' python processes (pkill -TERM -f 'wam bench|wam_state.py|dv3_dmc.py'):
# their runs write a checkpoint first.
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:?"usage: bash scripts/bench_queues.sh DURATION (e.g. 150m)"}
mkdir -p runs/logs

queue1() {  # the three compared agents first (the claims need them), then the SAC reference row
  wam bench quick-state --jobs 1 --seeds 3 --agents wam wam-decoupled dreamerv3 &&
  wam bench quick-state --jobs 1 --seeds 3
}

queue2() {
  python benchmarks/wam_state.py run --from-suite quick-state --agents wam-decoupled dreamerv3 --tasks reach-v3 \
    --seeds 0 1 2 --steps 100000 &&
  python benchmarks/dv3_dmc.py run --size size1m --tasks cartpole-swingup reacher-easy --seeds 0
}

export -f queue1 queue2
nohup timeout -s TERM "$LIMIT" bash -c queue1 >> runs/logs/queue1.log 2>&1 &
nohup timeout -s TERM "$LIMIT" bash -c queue2 >> runs/logs/queue2.log 2>&1 &
echo "started 2 queues for $LIMIT; logs in runs/logs/queue1.log and runs/logs/queue2.log"
