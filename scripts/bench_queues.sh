#!/usr/bin/env bash
# Continue the long benchmarks on a 2-core machine for a fixed time, one queue per core, in the background.
#   bash scripts/bench_queues.sh 150m     # each queue stops (with a checkpoint) after 150 minutes
# Every command below is resumable and skips finished work, so the same call continues where the last one stopped.
# Both queues walk the same list of `wam bench` calls; a run is claimed with a lock file before it starts, so the two
# never train the same run and together they act as two workers (issue 6). Order: the quick-state grid's state tasks
# for the three compared agents (~10-30 min a run), then its MiniWorld task (~0.5-1 h), then the pixel suite at 2 seeds
# (~2 h a run), then the SAC reference rows. Before the grid, each queue first trains one task of the baselines' DMC
# check (issue 5: ~4-5 h a task on one core), queue 1 reacher-easy and queue 2 cartpole-swingup; a finished DMC run
# skips at once. Queue 1 then trains the action-input ablation on cartpole-swingup (`--variant noactnorm`; issue 5's
# audit, docs/dreamerv3.md) before joining the grid; queue 2, once the quick-state grid is done, trains the 2023-actor
# ablation (`--variant noactnorm-backprop`, ~1.4x the cost) before the pixel suite.
# A run stopped at the session's end resumes only on the same machine (runs/ lives outside the checkout), so start the
# queues first thing and give them a limit that leaves time to commit.
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

STATE_TASKS="metaworld-reach-v3 metaworld-push-v3 metaworld-button-press-topdown-v3 metaworld-drawer-close-v3 panda-stack"
state_grid() {
  wam bench quick-state --jobs 1 --seeds 3 --agents wam wam-decoupled dreamerv3 --tasks $STATE_TASKS
  wam bench quick-state --jobs 1 --seeds 3 --agents wam wam-decoupled dreamerv3
}
grid() {
  state_grid
  wam bench quick-pixels --jobs 1 --seeds 2
  wam bench quick-state --jobs 1 --seeds 3
}
dmc() { python benchmarks/dv3_dmc.py run --size size1m --tasks "$1" --seeds 0 "${@:2}"; }
queue1() { dmc reacher-easy; dmc cartpole-swingup --variant noactnorm; grid; }
queue2() { dmc cartpole-swingup; state_grid; dmc cartpole-swingup --variant noactnorm-backprop; grid; }

export STATE_TASKS
export -f dmc state_grid grid queue1 queue2
nohup timeout -s TERM "$LIMIT" bash -c queue1 >> runs/logs/queue1.log 2>&1 &
nohup timeout -s TERM "$LIMIT" bash -c queue2 >> runs/logs/queue2.log 2>&1 &
echo "started 2 queues for $LIMIT; logs in runs/logs/queue1.log and runs/logs/queue2.log"
