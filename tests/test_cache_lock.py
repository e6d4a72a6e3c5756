"""Numba's kernel cache entries are written and read under a lock shared by all processes."""

import os
import subprocess
import sys
import threading
from pathlib import Path

import pytest
from numba.core import caching

import simulator.kernels  # noqa: F401  (installs the lock)
from simulator.kernels import cache_lock

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(cache_lock.fcntl is None, reason="flock is POSIX only")


def _cache_file(directory: Path) -> caching.IndexDataCacheFile:
    return caching.IndexDataCacheFile(str(directory), "kernel-1.py312", ("stamp", 1))


@pytest.mark.parametrize("operation", ["save", "load"])
def test_an_entry_waits_for_the_lock_and_then_goes_through(tmp_path, operation):
    entries = _cache_file(tmp_path)
    entries.save("float32 signature", b"float32 code")
    done = []

    def use_the_cache():
        if operation == "save":
            entries.save("float64 signature", b"float64 code")
            done.append(True)
        else:
            done.append(entries.load("float32 signature"))

    with cache_lock.locked(str(tmp_path)):  # another process, as far as flock is concerned
        worker = threading.Thread(target=use_the_cache)
        worker.start()
        worker.join(timeout=1.0)
        assert worker.is_alive() and not done, f"{operation} ran while the cache was locked"
    worker.join(timeout=30)
    assert not worker.is_alive()
    if operation == "save":
        assert entries.load("float64 signature") == b"float64 code"
    else:
        assert done == [b"float32 code"]
    assert entries.load("float32 signature") == b"float32 code"  # nothing lost either way


def test_installing_twice_wraps_once():
    save = caching.IndexDataCacheFile.save
    cache_lock.install()
    assert caching.IndexDataCacheFile.save is save
    assert save.__cache_lock__ and caching.IndexDataCacheFile.load.__cache_lock__


def test_an_unwritable_cache_directory_is_used_unlocked(tmp_path):
    missing = tmp_path / "not there"
    with cache_lock.locked(str(missing)):  # no lock file can be made: no error, no lock
        pass
    assert _cache_file(missing).load("anything") is None


def test_a_file_system_without_flock_is_used_unlocked(tmp_path, monkeypatch):
    def no_locks(fd, operation):
        raise OSError(37, "No locks available")

    monkeypatch.setattr(cache_lock.fcntl, "flock", no_locks)
    entries = _cache_file(tmp_path)
    entries.save("signature", b"code")
    assert entries.load("signature") == b"code"


def test_two_processes_compiling_two_signatures_at_once_leave_both_in_the_cache(tmp_path):
    """Two processes compile one cached kernel for float32 and for float64 into one cache at
    the same time; a third then loads both from the cache (nothing compiled) and each gives
    its own dtype's answer. An end-to-end check that the locked cache serves processes: the
    race itself is too narrow to trigger on demand (the tests above check the exclusion)."""
    source = tmp_path / "twokinds.py"
    source.write_text(
        "import simulator.kernels\n"
        "from numba import njit\n"
        "@njit(cache=True)\n"
        "def halve(x):\n"
        "    x[:] = x / 2\n"
        "    return x\n"
    )
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path / "cache"), "PYTHONPATH": f"{ROOT}"}
    env["PYTHONPATH"] += os.pathsep + str(tmp_path)
    compile_one = "import numpy as np, twokinds; print(twokinds.halve(np.full(1, 3.0, np.{}))[0])"
    pipes = {"stdout": subprocess.PIPE, "stderr": subprocess.PIPE, "text": True, "env": env}
    procs = [
        subprocess.Popen([sys.executable, "-c", compile_one.format(t)], **pipes)
        for t in ("float32", "float64")
    ]
    for proc in procs:
        out, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
        assert out.strip() == "1.5"
    check = (
        "import numpy as np, twokinds\n"
        "a = twokinds.halve(np.full(1, 3.0, np.float32))\n"
        "b = twokinds.halve(np.full(1, 3.0, np.float64))\n"
        "print(a.dtype, a[0], b.dtype, b[0], len(twokinds.halve.stats.cache_hits))\n"
    )
    res = subprocess.run([sys.executable, "-c", check], env=env, capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["float32", "1.5", "float64", "1.5", "2"]
