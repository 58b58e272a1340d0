"""Serial, process-pool and Dask runs write identical files; a killed run resumes cleanly."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from probex_lib import motivation, parallel, profiles, zoo

TINY = {"models_t1": 3, "models_other_trees": 1, "models_forest": 2}


def _square(x):
    return x * x


def test_map_tasks_keeps_order_in_every_mode():
    items = list(range(7))
    assert parallel.map_tasks(_square, items, executor="serial") == [x * x for x in items]
    assert parallel.map_tasks(_square, items, executor="process", n_workers=2) == [x * x for x in items]
    with pytest.raises(ValueError, match="unknown executor 'threads'"):
        parallel.map_tasks(_square, items, executor="threads")


def _contents(zoo_dir: Path) -> dict[str, tuple]:
    """Per file: metadata (with the zoo folder replaced) and the raw tensor bytes after the header.

    Fine-tuned models record the absolute path of their root, so files of zoos in different
    folders differ in that string (and so in header length) and in nothing else.
    """
    out = {}
    for p in sorted(zoo_dir.rglob("*.safetensors")):
        raw = p.read_bytes()
        meta = json.dumps(zoo.read_metadata(p), sort_keys=True).replace(str(zoo_dir.resolve()), "<zoo>")
        out[p.relative_to(zoo_dir).as_posix()] = (meta, raw[8 + int.from_bytes(raw[:8], "little"):])
    return out


@pytest.mark.slow
def test_serial_process_and_dask_write_identical_files(kit_dirs, tmp_path):
    from dask.distributed import Client, LocalCluster

    cfg = profiles.get_config("motivation", "smoke", TINY)
    runs = {}
    for name, executor in [("serial", "serial"), ("process", "process")]:
        motivation.build_populations(cfg, tmp_path / name, executor=executor, n_workers=2)
        runs[name] = _contents(tmp_path / name)
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster, Client(cluster) as client:
        motivation.build_populations(cfg, tmp_path / "dask", executor=client)
        runs["dask"] = _contents(tmp_path / "dask")
    assert len(runs["serial"]) == 4 + 3 + 3 + 2
    assert runs["serial"] == runs["process"] == runs["dask"]


@pytest.mark.slow
def test_sigkill_then_rerun_gives_the_same_zoo(kit_dirs, tmp_path):
    script = Path(__file__).with_name("zoo_job.py")
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).parents[1])}
    data_dir = str(kit_dirs[0])
    reference = tmp_path / "reference"
    subprocess.run([sys.executable, str(script), str(reference), data_dir, "serial"], check=True, env=env, capture_output=True)

    victim = tmp_path / "victim"
    proc = subprocess.Popen([sys.executable, str(script), str(victim), data_dir, "serial"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline and len(list((victim / "populations" / "models").glob("*.safetensors"))) < 3:
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    done = list((victim / "populations" / "models").glob("*.safetensors"))
    assert 3 <= len(done) < 16, "the kill should land in the middle of the run"
    for p in done:  # nothing under a final name is ever partial
        zoo.read_header(p)

    subprocess.run([sys.executable, str(script), str(victim), data_dir, "serial"], check=True, env=env, capture_output=True)
    assert _contents(victim) == _contents(reference)
    assert not list(victim.rglob("*.tmp"))
