#!/bin/bash
# A vadbench grid on a Slurm allocation through Ray: a Ray head on the first node, a Ray worker on each
# other node, then the grid as the Ray driver on the first node (where this script runs).
# Illustrative: adjust the nodes, GPUs, partition and paths.
#
#   sbatch examples/ray/slurm.sh
#   GRID=leaderboards/k-sweep.toml ROOT=/scratch/shanghaitech sbatch examples/ray/slurm.sh
#
# Every node reads the features at $ROOT (a shared file system); only the driver writes $OUT.
#SBATCH --job-name=vadbench-grid
#SBATCH --nodes=3
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=4
#SBATCH --cpus-per-task=32
#SBATCH --time=12:00:00
set -euo pipefail

GRID=${GRID:-leaderboards/rtfm-ablation.toml}
ROOT=${ROOT:-/shared/ucf-crime}
OUT=${OUT:-$HOME/vadbench-runs}
PORT=6379

# Ray's token authentication (on by default in Ray 2.60): a head started where ~/.ray/auth_token exists
# requires the token, and `ray start --address` joins only with RAY_AUTH_MODE=token and the same token.
# So every node and the driver get both: `ray get-auth-token --generate` prints the token (creating
# ~/.ray/auth_token once), and srun passes this environment to every node.
if ray get-auth-token --help >/dev/null 2>&1; then    # a Ray without token authentication needs neither
    export RAY_AUTH_MODE=token
    RAY_AUTH_TOKEN=$(ray get-auth-token --generate 2>/dev/null)
    export RAY_AUTH_TOKEN
fi

mapfile -t nodes < <(scontrol show hostnames "$SLURM_JOB_NODELIST")
head_ip=$(srun --nodes=1 --ntasks=1 -w "${nodes[0]}" hostname --ip-address | awk '{print $1}')

srun --nodes=1 --ntasks=1 -w "${nodes[0]}" ray start --head --node-ip-address="$head_ip" --port=$PORT \
    --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus="$SLURM_GPUS_ON_NODE" --block &
sleep 30
for node in "${nodes[@]:1}"; do
    srun --nodes=1 --ntasks=1 -w "$node" ray start --address="$head_ip:$PORT" \
        --num-cpus="$SLURM_CPUS_PER_TASK" --num-gpus="$SLURM_GPUS_ON_NODE" --block &
done
sleep 30

# --address auto joins the cluster whose head runs on this node; Ctrl-C or scancel stops the runs in
# flight, and the same command in a new allocation resumes the grid from $OUT.
vadbench grid "$GRID" --root "$ROOT" --out "$OUT" --executor ray --address auto --gpus-per-run 0.25
