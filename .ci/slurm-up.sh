#!/usr/bin/env bash
# slurm-up.sh - bring up the one-node SLURM cluster that the `slurm`-marked tests run against.
#
# Runs ../shared/slurm/start-local-slurm.sh (next to this checkout) with accounting (slurmdbd +
# a private MariaDB, so that sacct works), as root, on Debian 12. It installs the Debian packages
# when they are missing (apt-get; about 31 MB), starts munged, MariaDB, slurmdbd, slurmctld and
# slurmd on 127.0.0.1 from a throw-away state directory, waits until the node is idle, and runs
# an `srun hostname` smoke test. Idempotent: a second call only confirms the cluster is up.
# /etc/slurm/slurm.conf links to the generated config, so sbatch/squeue need no SLURM_CONF.
#
# Settings (environment, all optional):
#   LOCAL_SLURM_SCRIPTS     directory of start-local-slurm.sh   [<checkout>/../shared/slurm]
#   LOCAL_SLURM_DIR         cluster state directory             [/tmp/local-slurm]
#   LOCAL_SLURM_ACCOUNTING  slurmdbd | none                     [slurmdbd]
#   LOCAL_SLURM_CPUS        CPUs the node advertises            [the real core count]
# Stop it with: LOCAL_SLURM_DIR=... bash $LOCAL_SLURM_SCRIPTS/stop-local-slurm.sh [--purge]
set -euo pipefail
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
SCRIPTS=${LOCAL_SLURM_SCRIPTS:-$HERE/../../shared/slurm}
START="$SCRIPTS/start-local-slurm.sh"
if [ ! -f "$START" ]; then
  echo "slurm-up: $START not found; set LOCAL_SLURM_SCRIPTS to the directory holding start-local-slurm.sh" >&2
  exit 1
fi
if [ "$(id -u)" -ne 0 ]; then
  echo "slurm-up: must run as root (slurmd runs jobs as SlurmUser=root)" >&2
  exit 1
fi
export LOCAL_SLURM_ACCOUNTING=${LOCAL_SLURM_ACCOUNTING:-slurmdbd}
export LOCAL_SLURM_DIR=${LOCAL_SLURM_DIR:-/tmp/local-slurm}
started=$(date +%s)
bash "$START"
echo "slurm-up: cluster ready in $(( $(date +%s) - started ))s (state in $LOCAL_SLURM_DIR)" >&2
