#!/usr/bin/env bash
# Continue the long benchmarks on a 2-core machine for a fixed time, one queue per core, in the background.
#   bash scripts/bench_queues.sh 150m     # each queue stops (with a checkpoint) after 150 minutes
# Every command below is resumable and skips finished work, so the same call continues where the last one stopped.
# Queue 1 is the quick-state grid (issue 6). Queue 2 is the baselines' last check (issue 5): the size1m DreamerV3 on
# DMC. (The reach-v3 100k runs of `benchmarks/wam_state.py` are complete since 2026-11-25.)
# Logs: runs/logs/queue{1,2}.log. Before the session ends, after the queues stop: `python benchmarks/dv3_dmc.py stash`
# and commit benchmarks/stash/ (a fresh checkout has no runs/, so an unfinished DMC run lives on only through git).
# To stop early, send SIGTERM to the queues' python processes (pkill -TERM -f 'wam bench|wam_state.py|dv3_dmc.py'):
# their runs write a checkpoint first.
set -uo pipefail
cd "$(dirname "$0")/.."
LIMIT=${1:?"usage: bash scripts/bench_queues.sh DURATION (e.g. 150m)"}
# A new session may get the same machine with its checkout laid anew: keep runs/ outside the checkout so that
# checkpoints (and half-done runs) survive that. Set WAM_RUNS_HOME to choose where.
if [[ ! -e runs ]]; then
  mkdir -p "${WAM_RUNS_HOME:-$HOME/wam-runs}" && ln -s "${WAM_RUNS_HOME:-$HOME/wam-runs}" runs
fi
mkdir -p runs/logs

# Queue 1: the three compared agents first (the claims need them), then the SAC reference row. The state tasks
# (~15-20 min a run) come before MiniWorld (~1 h a run), so that few hours of training are cut off by the session's end:
# a checkout may come without runs/, and then a run stopped mid-way starts over.
STATE_TASKS="metaworld-reach-v3 metaworld-push-v3 metaworld-button-press-topdown-v3 metaworld-drawer-close-v3 panda-stack"
queue1() {
  wam bench quick-state --jobs 1 --seeds 3 --agents wam wam-decoupled dreamerv3 --tasks $STATE_TASKS &&
  wam bench quick-state --jobs 1 --seeds 3 --agents wam wam-decoupled dreamerv3 &&
  wam bench quick-state --jobs 1 --seeds 3
}

queue2() {
  python benchmarks/dv3_dmc.py run --size size1m --tasks cartpole-swingup reacher-easy --seeds 0
}

export STATE_TASKS
export -f queue1 queue2
nohup timeout -s TERM "$LIMIT" bash -c queue1 >> runs/logs/queue1.log 2>&1 &
nohup timeout -s TERM "$LIMIT" bash -c queue2 >> runs/logs/queue2.log 2>&1 &
echo "started 2 queues for $LIMIT; logs in runs/logs/queue1.log and runs/logs/queue2.log"
