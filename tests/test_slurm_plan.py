"""The SLURM executor without a cluster: settings, resources, the manifest, launch decisions, arrays,
snapshots, and `scaling launch/status/cancel` against fake SLURM commands (sbatch failing, throttled,
retried; bad input refused before anything is submitted). The real-cluster tests are in
test_slurm_cluster.py."""

from __future__ import annotations

import os
import shutil
import socket
import stat
from pathlib import Path

import pytest
import yaml

from scaling.cli import main as cli
from scaling.errors import UserError
from scaling.launch import scheduler
from scaling.launch.manifest import JobRecord, Manifest, refresh
from scaling.launch.resources import SlurmSettings, duration_minutes, memory_mb, resources_for
from scaling.launch.scheduler import Partition, QueueEntry, parse_sinfo, parse_squeue, parse_time_minutes
from scaling.launch.slurm import check_store_visible, decide, group_arrays
from scaling.launch.snapshot import content_id, prune_snapshots, snapshot_code
from scaling.store import Store
from scaling.sweep import expand, load_sweep_config
from tests.helpers import REPO, scaling, write_sweep

HOST = socket.gethostname().split(".")[0]
PART = Partition("debug", True, True, None, (HOST,), 2, 8000, 0)


def sweep_of(tmp_path, sizes=("20k", "30k"), tokens=(2048,), slurm=None, variants=None, name="t"):
    path = write_sweep(tmp_path / f"{name}.yaml", tmp_path / "store", name=name, sizes=sizes, tokens=tokens, variants=variants)
    if slurm is not None:
        config = yaml.safe_load(path.read_text())
        config["slurm"] = slurm
        path.write_text(yaml.safe_dump(config))
    return path, expand(load_sweep_config(path), str(path))


# ----------------------------------------------------------------------------- parsing
def test_slurm_time_memory_and_gres_strings():
    assert [parse_time_minutes(t) for t in ("infinite", "30:00", "4:00:00", "1-00:00:00", "2-12", "10")] == [None, 30, 240, 1440, 3600, 10]
    assert [duration_minutes(v, "t") for v in (90, "45m", "2h", "1.5d", "2:00:00", "30s")] == [90, 45, 120, 2160, 120, 1]
    assert [memory_mb(v, "m") for v in ("16G", "2500M", "1.5T", 4096, "512MB")] == [16384, 2500, 1572864, 4096, 512]
    for bad in ("soon", "-5"):
        with pytest.raises(UserError, match="expected a duration"):
            duration_minutes(bad, "slurm.time")
    with pytest.raises(UserError, match="slurm.mem_per_task = 'lots'"):
        memory_mb("lots", "slurm.mem_per_task")
    parts = parse_sinfo("gpu|n1|64|512000|gpu:a100:8(S:0-1)|2-00:00:00|up\ngpu|n2|64|256000|gpu:4|2-00:00:00|up\n"
                        "cpu*|c1|32|128000|(null)|infinite|up\n")
    assert parts["gpu"] == Partition("gpu", False, True, 2880, ("n1", "n2"), 64, 512000, 8)
    assert parts["cpu"].default and parts["cpu"].max_time_min is None and parts["cpu"].node_gpus == 0
    queue = parse_squeue("12_0|RUNNING|1:02|None\n12_1|PENDING|0:00|JobArrayTaskLimit\n13|TIMEOUT|10:00|None\n")
    assert queue["12_0"].running and queue["12_1"].live and not queue["12_1"].running and not queue["13"].live


def test_settings_are_strict_and_by_params_rules_apply():
    with pytest.raises(UserError, match=r"unknown key 'slurm.partiton' \(did you mean 'slurm.partition'\?\)"):
        SlurmSettings.from_config({"partiton": "gpu"})
    with pytest.raises(UserError, match="slurm.array_parallelism = 0"):
        SlurmSettings.from_config({"array_parallelism": 0})
    with pytest.raises(UserError, match=r"slurm.by_params\[0\]"):
        SlurmSettings.from_config({"by_params": [{"gpus_per_run": 2}]})
    s = SlurmSettings.from_config({"gpus_per_run": 1, "partition": "cpu", "by_params": [{"min_params": "1B", "gpus_per_run": 4},
                                                                                          {"min_params": "5B", "gpus_per_run": 8}]},
                                  {"partition": "gpu", "qos": None})
    assert s.partition == "gpu" and s.qos == ""
    assert [s.for_params(n).gpus_per_run for n in (5e8, 2e9, 7e9)] == [1, 4, 8]


def test_resources_from_size_budget_and_partition(tmp_path):
    _, sweep = sweep_of(tmp_path, sizes=("20k",), tokens=(1e9,))
    spec = sweep.runs[0]
    cpu = resources_for(spec, SlurmSettings(), PART)
    assert (cpu.nodes, cpu.tasks_per_node, cpu.cpus_per_task, cpu.gpus_per_node) == (1, 1, 1, 0)
    assert cpu.mem_mb_per_node % 256 == 0 and cpu.mem_mb_per_node >= 2048
    # 6·N·D / 5e9 FLOP/s x 2, rounded up to the next time step
    from scaling.runs.costs import param_counts

    raw = 6 * param_counts(spec).total * 1e9 / 5e9 * 2 / 60
    assert cpu.time_min >= raw and cpu.time_min in (5, 10, 15, 30, 60, 120, 240, 480, 720, 1440, 2880, 4320, 7200, 10080)
    capped = resources_for(spec, SlurmSettings(), Partition("short", False, True, 30, (HOST,), 2, 8000, 0))
    assert capped.time_min == 30
    gpu_part = Partition("gpu", False, True, None, ("a", "b", "c"), 64, 512000, 8)
    multi = resources_for(spec, SlurmSettings(gpus_per_run=16, gpus_per_node=8, mem_per_task="10G", time="3h"), gpu_part)
    assert (multi.nodes, multi.tasks_per_node, multi.gpus_per_node, multi.cpus_per_task, multi.time_min) == (2, 8, 8, 8, 180)
    assert multi.sbatch_options()["mem"] == "81920M" and multi.sbatch_options()["gpus-per-node"] == "8"
    with pytest.raises(UserError, match="slurm.cpus_per_task = 4 CPUs per node, but its largest node has 2"):
        resources_for(spec, SlurmSettings(cpus_per_task=4), PART)
    with pytest.raises(UserError, match="GPU"):
        resources_for(spec, SlurmSettings(gpus_per_run=1), PART)
    with pytest.raises(UserError, match="memory per node"):
        resources_for(spec, SlurmSettings(mem_per_task="1T"), PART)
    with pytest.raises(UserError, match="multiple of slurm.gpus_per_node"):
        resources_for(spec, SlurmSettings(gpus_per_run=12, gpus_per_node=8), gpu_part)
    extra = resources_for(spec, SlurmSettings(sbatch={"exclude": "n3", "exclusive": True}), PART)
    assert extra.sbatch_flags()[-2:] == ["--exclude=n3", "--exclusive"]


# ----------------------------------------------------------------------------- manifest and decisions
def test_refresh_asks_the_queue_once_and_records_ended_jobs(tmp_path):
    store = Store(tmp_path / "store")
    manifest = Manifest(store)
    manifest.record_submitted([JobRecord(job=f"7_{i}", array="7", run=f"r{i}", sweep="t", submitted="now") for i in range(3)]
                              + [JobRecord(job="9", array="9", run="r3", sweep="t", submitted="now")])
    calls = []

    def query(ids):
        calls.append(ids)
        return {"7_0": QueueEntry("7_0", "RUNNING", "0:10", "None"), "7_1": QueueEntry("7_1", "FAILED", "0:01", "None"),
                "9": QueueEntry("9", "PENDING", "0:00", "Priority")}

    queue = refresh(manifest, query)
    assert calls == [["7", "9"]] and set(queue) == {"7_0", "7_1", "9"}
    jobs = manifest.jobs()
    assert [j.job for j in jobs.values() if j.open] == ["7_0", "9"]
    assert (jobs["7_1"].scheduler_state, jobs["7_2"].scheduler_state) == ("FAILED", "gone")
    manifest.record_cancelled(["9"])
    refresh(manifest, lambda ids: calls.append(ids) or {})
    assert calls[-1] == ["7", "9"] and not any(j.open for j in manifest.jobs().values())
    refresh(manifest, lambda ids: calls.append(ids) or {})
    assert len(calls) == 2  # nothing open: the queue is not asked
    assert manifest.jobs()["9"].cancelled


def test_decisions_and_arrays_follow_state_attempts_and_dependencies(tmp_path):
    _, sweep = sweep_of(tmp_path, sizes=("20k", "30k"), tokens=(2048, 4096),
                        variants=[{"init": "text-lm", "init_from": "pretrain:4096"}])
    from scaling.runs.graph import with_dependencies

    specs = with_dependencies(list(sweep.runs))
    assert len(specs) == 6  # 4 runs + 2 text LMs (one per size)
    store = Store(tmp_path / "store")
    for spec in specs:
        store.register(spec)
    lm20, lm30 = specs[0], specs[1]
    a, b, c, d = specs[2:]
    store.run(lm20.run_id).update_status(state="done")
    store.run(a.run_id).update_status(state="done")
    jobs = {lm30.run_id: [JobRecord("5_0", "5", lm30.run_id, "t", "now")],
            c.run_id: [JobRecord(f"{k}", f"{k}", c.run_id, "t", "now") for k in (1, 2, 3)]}
    queue = {"5_0": QueueEntry("5_0", "PENDING", "0:00", "Priority")}
    decisions = {x.spec.run_id: x for x in decide(store, specs, jobs, queue, SlurmSettings(max_attempts=3))}
    assert decisions[a.run_id].action == "done" and decisions[lm30.run_id].action == "live"
    assert decisions[b.run_id].action == "submit" and decisions[b.run_id].after_jobs == ()  # its text LM (20k) is done
    assert decisions[c.run_id].action == "gave-up" and "3 attempts" in decisions[c.run_id].detail
    assert decisions[d.run_id].action == "submit" and decisions[d.run_id].after_jobs == ("5_0",)
    # a text LM submitted in the same launch puts its dependents in a later array that waits for it
    fresh = decide(Store(tmp_path / "fresh"), specs, {}, {}, SlurmSettings())
    arrays = group_arrays(fresh, SlurmSettings(mem_per_task="1G"), PART, 1001)
    assert [(x.wave, len(x.runs)) for x in arrays] == [(0, 2), (1, 2), (1, 2)]
    assert {x.after_runs for x in arrays[1:]} == {(lm20.run_id,), (lm30.run_id,)}


def test_arrays_split_below_max_array_size(tmp_path):
    _, sweep = sweep_of(tmp_path, sizes=("20k", "25k", "30k", "35k", "40k", "50k"), tokens=(1024, 2048))
    decisions = decide(Store(tmp_path / "store"), list(sweep.runs), {}, {}, SlurmSettings())
    assert [len(a.runs) for a in group_arrays(decisions, SlurmSettings(max_array_size=5), PART, 1001)] == [5, 5, 2]
    assert [len(a.runs) for a in group_arrays(decisions, SlurmSettings(), PART, 4)] == [4, 4, 4]  # the cluster's MaxArraySize


def test_store_on_a_node_local_filesystem_is_refused_for_a_multi_node_partition(tmp_path):
    check_store_visible(Path("/tmp/x"), PART)  # a one-node cluster on this host sees /tmp
    with pytest.raises(UserError, match="node-local filesystem"):
        check_store_visible(Path("/tmp/x"), Partition("p", True, True, None, ("other1", "other2"), 2, 100, 0))


def test_code_snapshot_is_content_addressed(tmp_path):
    store = Store(tmp_path / "store")
    first = snapshot_code(store)
    assert (first.path / "scaling" / "launch" / "slurm.py").exists() and first.path.name == first.id
    assert snapshot_code(store).path == first.path
    copy = tmp_path / "copy"
    shutil.copytree(first.path / "scaling", copy)
    assert content_id(copy) == first.id
    (copy / "spec.py").write_text((copy / "spec.py").read_text() + "\n# edited\n")
    assert content_id(copy) != first.id


def test_snapshots_no_open_job_uses_are_pruned(tmp_path):
    store = Store(tmp_path / "store")
    current = snapshot_code(store)
    code = store.root / "slurm" / "code"
    for old in ("aaaaaaaaaaaa", "bbbbbbbbbbbb", ".cccccccccccc.123.tmp"):
        (code / old / "scaling").mkdir(parents=True)
    assert prune_snapshots(store, {current.id, "bbbbbbbbbbbb"}) == ["aaaaaaaaaaaa"]
    assert sorted(p.name for p in code.iterdir()) == sorted([current.id, "bbbbbbbbbbbb"])


# ----------------------------------------------------------------------------- fake SLURM commands
FAKE_SBATCH = r"""#!/bin/bash
# fake sbatch: logs each call; --test-only accepts; fails transiently the first $(cat transient) real
# calls, and for good from call number $(cat fail_from); queues the tasks of what it accepts
D=$(dirname "$0")
echo "$(date +%s.%N) $*" >> "$D/sbatch.log"
for a in "$@"; do [ "$a" = --test-only ] && { echo "sbatch: Job 1 to start at now" >&2; exit 0; }; done
n=$(( $(cat "$D/count" 2>/dev/null || echo 0) + 1 )); echo $n > "$D/count"
if [ -f "$D/transient" ] && [ $n -le "$(cat "$D/transient")" ]; then
  echo "sbatch: error: Batch job submission failed: Socket timed out on send/recv operation" >&2; exit 1; fi
if [ -f "$D/fail_from" ] && [ $n -ge "$(cat "$D/fail_from")" ]; then
  echo "sbatch: error: Batch job submission failed: Invalid account or account/partition combination specified" >&2; exit 1; fi
id=$((100 + n)); script="${@: -1}"
last=$(grep -o -- '--array=0-[0-9]*' "$script" | cut -d- -f4)
if [ -n "$last" ]; then for i in $(seq 0 "$last"); do echo "${id}_$i|PENDING|0:00|JobArrayTaskLimit" >> "$D/queue"; done
else echo "$id|PENDING|0:00|Priority" >> "$D/queue"; fi
echo "Submitted batch job $id"
"""
FAKE = {
    "sbatch": FAKE_SBATCH,
    "squeue": '#!/bin/bash\nD=$(dirname "$0"); echo "$*" >> "$D/squeue.log"; cat "$D/queue" 2>/dev/null; exit 0\n',
    "sinfo": f'#!/bin/bash\necho "debug*|{HOST}|2|8000|(null)|infinite|up"\n',
    "scontrol": '#!/bin/bash\ncase "$1" in ping) echo "Slurmctld(primary) at x is UP";; show) echo "MaxArraySize            = 1001";; esac\n',
    "scancel": '#!/bin/bash\nD=$(dirname "$0"); echo "$*" >> "$D/scancel.log"; for j in "$@"; do sed -i "/^$j|/d" "$D/queue"; done\n',
    "srun": "#!/bin/bash\nexit 0\n",
}


@pytest.fixture
def fake_slurm(tmp_path, monkeypatch):
    """A directory of fake SLURM commands first on PATH; returns it (logs and queue live there)."""
    bin_dir = tmp_path / "fake-slurm"
    bin_dir.mkdir()
    for name, text in FAKE.items():
        (bin_dir / name).write_text(text)
        (bin_dir / name).chmod(stat.S_IRWXU)
    monkeypatch.setenv("PATH", f"{bin_dir}:{os.environ['PATH']}")
    return bin_dir


def sbatch_calls(fake: Path) -> list[tuple[float, str]]:
    log = fake / "sbatch.log"
    lines = log.read_text().splitlines() if log.exists() else []
    return [(float(line.split()[0]), line.split(" ", 1)[1]) for line in lines if "--test-only" not in line]


def test_launch_retries_transient_sbatch_errors_and_spaces_calls(tmp_path, fake_slurm, capsys):
    sweep, _ = sweep_of(tmp_path, sizes=("20k", "25k", "30k", "35k", "40k"), tokens=(1024,),
                        slurm={"max_array_size": 2, "array_parallelism": 1, "submit_interval": 0.3, "mem_per_task": "1G"})
    (fake_slurm / "transient").write_text("2")
    assert cli(["launch", str(sweep), "--executor", "slurm"]) == 0
    calls = sbatch_calls(fake_slurm)
    assert len(calls) == 5  # 2 transient failures, then 3 arrays (2 + 2 + 1 runs)
    assert all(b - a >= 0.3 for (a, _), (b, _) in zip(calls, calls[1:]))
    jobs = Manifest(Store(tmp_path / "store")).jobs()
    assert sorted(jobs) == ["103_0", "103_1", "104_0", "104_1", "105"]
    script = (tmp_path / "store" / "slurm" / "jobs" / "103" / "103_submission.sh").read_text()
    assert "#SBATCH --array=0-1%1" in script and "#SBATCH --requeue" in script and "--chdir=" in script
    assert "SLURM busy" in capsys.readouterr().out
    assert not list((tmp_path / "store" / "slurm" / "jobs").glob("*.pkl"))  # failed attempts left nothing behind
    # relaunch while everything is queued: one queue query, nothing submitted
    assert cli(["launch", str(sweep), "--executor", "slurm"]) == 0
    assert len(sbatch_calls(fake_slurm)) == 5 and "submitted 0 run(s)" in capsys.readouterr().out
    # status: one query per refresh; cancel one run, then the rest, in one scancel call each
    before = len((fake_slurm / "squeue.log").read_text().splitlines())
    assert cli(["status", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert len((fake_slurm / "squeue.log").read_text().splitlines()) == before + 1 and "5 queued" in out
    run_id = jobs["105"].run
    assert cli(["cancel", str(sweep), run_id[:6]]) == 0
    assert (fake_slurm / "scancel.log").read_text().split() == ["105"]
    assert cli(["cancel", str(sweep)]) == 0
    assert len((fake_slurm / "scancel.log").read_text().splitlines()) == 2
    cli(["status", str(sweep)])
    assert "5 cancelled" in capsys.readouterr().out


def test_sbatch_failing_midway_records_only_real_jobs_and_relaunch_completes(tmp_path, fake_slurm, capsys):
    sweep, _ = sweep_of(tmp_path, sizes=("20k", "25k", "30k"), tokens=(1024,),
                        slurm={"max_array_size": 2, "submit_interval": 0, "mem_per_task": "1G"})
    (fake_slurm / "fail_from").write_text("2")
    assert cli(["launch", str(sweep), "--executor", "slurm"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "Invalid account" in err and "2 run(s) in 1 array(s) were submitted" in err
    manifest = Manifest(Store(tmp_path / "store"))
    assert sorted(manifest.jobs()) == ["101_0", "101_1"]
    (fake_slurm / "fail_from").unlink()
    assert cli(["launch", str(sweep), "--executor", "slurm"]) == 0
    assert sorted(manifest.jobs()) == ["101_0", "101_1", "103"]


@pytest.mark.parametrize("flags, message", [
    (["--partition", "gpu"], "unknown slurm.partition 'gpu'"),
    (["--cpus-per-task", "8"], "but its largest node has 2"),
    (["--gpus-per-run", "1"], "GPU(s) per node"),
    (["--mem-per-task", "64G"], "memory per node"),
    (["--time", "soon"], "slurm.time = 'soon'"),
    (["slurm.colour=blue"], "unknown key 'slurm.colour'"),
])
def test_bad_requests_are_one_line_and_submit_nothing(tmp_path, fake_slurm, capsys, flags, message):
    sweep, _ = sweep_of(tmp_path)
    args = [f for f in flags if "=" in f and not f.startswith("-")]
    assert cli(["launch", str(sweep), *args, "--executor", "slurm", *[f for f in flags if f not in args]]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and message in err, err
    assert not sbatch_calls(fake_slurm) and not (tmp_path / "store" / "slurm" / "manifest.jsonl").exists()


def test_a_request_slurm_refuses_is_reported_with_its_reason(tmp_path, fake_slurm, capsys):
    (fake_slurm / "sbatch").write_text('#!/bin/bash\necho "sbatch: error: Invalid qos specification" >&2\nexit 1\n')
    sweep, _ = sweep_of(tmp_path)
    assert cli(["launch", str(sweep), "--executor", "slurm", "--qos", "platinum"]) == 2
    err = capsys.readouterr().err
    assert "SLURM refuses the request for 2 run(s)" in err and "Invalid qos specification" in err and "--qos=platinum" in err
    assert not (tmp_path / "store" / "slurm" / "manifest.jsonl").exists()


def test_executor_slurm_without_slurm_is_a_clear_error(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("PATH", str(tmp_path))  # no SLURM commands at all
    sweep, _ = sweep_of(tmp_path)
    assert cli(["launch", str(sweep), "--executor", "slurm"]) == 2
    assert "no SLURM controller answers here" in capsys.readouterr().err
    assert not scheduler.slurm_available()


def test_status_without_manifest_keeps_the_local_table(tmp_path, capsys):
    sweep, _ = sweep_of(tmp_path)
    assert cli(["status", str(sweep)]) == 0
    out = capsys.readouterr().out
    assert "jobs" not in out.splitlines()[0] and "2 new" in out


def test_the_paper_sweep_file_plans_on_an_8_gpu_partition():
    config = load_sweep_config(Path(__file__).parents[1] / "sweeps" / "sims_paper.yaml")
    for variant in config["variants"]:  # the Qwen2.5 checkpoints are not here: same architectures, own text LM
        variant["init_from"] = "pretrain:1M"
    sweep = expand(config, "sims_paper.yaml")
    settings = SlurmSettings.from_config(config["slurm"])
    gpu = Partition("gpu", False, True, 4320, tuple(f"g{i}" for i in range(8)), 64, 2_000_000, 8)
    requests = {spec.model.size: resources_for(spec, settings, gpu) for spec in sweep.runs}
    assert len(sweep.runs) == 20
    assert {size: r.gpus_per_node for size, r in requests.items()} == {"qwen2.5-0.5B": 1, "qwen2.5-1.5B": 4, "qwen2.5-3B": 4, "qwen2.5-7B": 8}
    assert all(30 <= resources_for(spec, settings, gpu).time_min <= 2880 for spec in sweep.runs)


# ----------------------------------------------------------------------------- inside a job
def test_job_signals_environment_and_key(monkeypatch):
    import signal

    from scaling.launch.slurm_job import job_key, set_distributed_env
    from scaling.train.signals import StopSignal

    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGUSR2, signal.SIGTERM, signal.SIGINT)}
    try:
        stop = StopSignal().install()
        assert not stop()
        os.kill(os.getpid(), signal.SIGTERM)
        assert stop() and stop.signum == signal.SIGTERM
        os.kill(os.getpid(), signal.SIGUSR2)
        os.kill(os.getpid(), signal.SIGTERM)  # the SIGTERM that follows our own requeue does not hide the USR2
        assert stop.signum == signal.SIGUSR2
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
    env = {key: value for key, value in os.environ.items() if not key.startswith("SLURM_")}
    monkeypatch.setattr(os, "environ", env)  # what the job sets must not leak into later tests' sbatch calls
    env.update(SUBMITIT_EXECUTOR="slurm", SLURM_JOB_ID="12345", SLURM_NTASKS="1", MASTER_ADDR="login1", WORLD_SIZE="8")
    set_distributed_env()
    assert "MASTER_ADDR" not in env and "WORLD_SIZE" not in env and job_key() == "12345"
    env.update(SLURM_NTASKS="4", SLURM_JOB_NODELIST="gpu[07-08]", SLURM_ARRAY_JOB_ID="12300", SLURM_ARRAY_TASK_ID="45")
    set_distributed_env()
    assert (env["MASTER_ADDR"], env["MASTER_PORT"], job_key()) == ("gpu07", "32345", "12300_45")


def test_plan_of_the_paper_sweep_before_its_text_lms_are_downloaded(tmp_path):
    """`scaling plan` on the shipped SIMS sweep, without the Qwen2.5 directories: sizes come from the
    published tokenizers (said in a note), times from slurm.throughput per GPU; nothing is stored."""
    out = scaling("plan", str(REPO / "sweeps" / "sims_paper.yaml"), "--store", str(tmp_path / "store"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    seven = [line for line in lines if "qwen2.5-7B" in line and "-s0" in line]
    assert len(seven) == 5 and all(" 7.62B " in line for line in seven)
    # 6·N·D at the sweep's 1.2e14 FLOP/s per GPU, 8 GPUs for 7B: 2e20 FLOPs -> 57.9 h of wall time
    assert any("2.00e+20" in line and "57.9h" in line for line in seven)
    assert all(" fsdp x8 GPU " in line for line in seven)  # 16 bytes per parameter on each of 8 GPUs needs sharding
    runs = [line.split() for line in lines if "-s0 " in line]
    assert len(runs) == 20
    for cells in runs:  # every run: a strategy, and memory per GPU under the 72.6 GiB usable of the sweep's 80G GPUs
        assert cells[8].split("+")[0] in ("ddp", "zero1", "fsdp") and cells[10] == "GPU"
        assert cells[12].endswith("G") and float(cells[12][:-1]) <= 72.6
    assert sum("planned with its published tokenizer's size" in line for line in lines) == 4
    assert "of task (GPU) time left" in out.stdout
    assert not (tmp_path / "store").exists()
