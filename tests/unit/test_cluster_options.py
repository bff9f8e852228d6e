"""`digitlab predict --cluster`: every wrong address, output or missing piece is one clear line,
before any cluster is started and without a file written. (The runs on a real multi-node cluster
are in tests/e2e/test_cluster.py, in the slow tier.)"""

from __future__ import annotations

import sys

import numpy as np
import pytest
from PIL import Image

from digitlab.cluster.connect import INSTALL_HINT, check_address
from digitlab.errors import ClusterError
from tests.conftest import invoke_cli


@pytest.mark.parametrize("address", ["auto", "127.0.0.1:6379", "ray://head.example.org:10001", "[::1]:6379",
                                     "local:1", "local:64"])
def test_well_formed_addresses(address):
    assert check_address(address)[0] == ("local" if address.startswith("local:") else address)


@pytest.mark.parametrize("address", ["", "local:0", "local:65", "local:two", "localhost", "http://h:1", "h:0",
                                     "h:99999", "ray://h", "h:6379/x", "-h:1", "h :1"])
def test_malformed_addresses_are_one_line_naming_the_forms(address):
    with pytest.raises(ClusterError, match="local"):
        check_address(address)


@pytest.fixture
def folder(tmp_path):
    scans = tmp_path / "scans"
    scans.mkdir()
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(scans / "a.png")
    return scans


@pytest.mark.parametrize(("extra", "says"), [
    (["--cluster", "local:2"], "--cluster and --out go together"),
    (["--out", "{tmp}/r.csv"], "--cluster and --out go together"),
    (["--cluster", "local:2", "--out", "{tmp}/r.txt"], ".csv or .parquet"),
    (["--cluster", "local:2", "--out", "{tmp}/nowhere/r.csv"], "does not exist"),
    (["--cluster", "local:2", "--out", "{tmp}/r.csv", "--csv"], "leave out --json, --csv"),
    (["--cluster", "nohost", "--out", "{tmp}/r.csv"], "is not a cluster address"),
])
def test_wrong_cluster_options_are_refused_before_anything_starts(folder, tmp_path, extra, says):
    args = [a.replace("{tmp}", str(tmp_path)) for a in extra]
    done = invoke_cli("predict", str(folder), "--model", "reader", *args)
    assert done.returncode == 1 and says in done.stderr, done.stderr
    assert "Traceback" not in done.stderr and not list(tmp_path.glob("*.csv"))


def test_a_missing_file_is_refused_up_front(folder, tmp_path):
    done = invoke_cli("predict", str(folder), str(tmp_path / "gone.png"), "--model", "reader",
                      "--cluster", "local:2", "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 1 and "gone.png: no such file" in done.stderr, done.stderr


def test_without_ray_installed_the_hint_says_which_extra(folder, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    done = invoke_cli("predict", str(folder), "--model", "reader", "--cluster", "local:2", "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 1 and INSTALL_HINT in done.stderr, done.stderr
    assert "pip install 'digitlab[ray]'" in done.stderr


def test_an_unreachable_cluster_is_one_line(folder, tmp_path):
    done = invoke_cli("predict", str(folder), "--model", "reader", "--cluster", "127.0.0.1:9",
                      "--out", str(tmp_path / "r.csv"))
    assert done.returncode == 1 and "cannot reach a Ray cluster at 127.0.0.1:9" in done.stderr, done.stderr
    assert not (tmp_path / "r.csv").exists()
