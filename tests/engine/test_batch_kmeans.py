"""The batched k-means: quality against scikit-learn, Hartigan's stopping rule,
the numpy kernel against the compiled one, and running without numba or
without any writable cache folder."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.cluster import KMeans

from conftest import REPO
from xlseg.engine import kmeans_numpy, numba_setup
from xlseg.engine.batch_kmeans import batch_kmeans
from xlseg.engine.kselect import select_k
from xlseg.errors import XlsegError

HIDE_NUMBA = """
import sys
class _HideNumba:
    def find_spec(self, name, path=None, target=None):
        if name == "numba" or name.startswith("numba."):
            raise ImportError("numba is hidden for this test")
sys.meta_path.insert(0, _HideNumba())
"""


@pytest.fixture
def numpy_kernel(monkeypatch):
    """Run the numpy kernel in this process, as ``XLSEG_NO_NUMBA=1`` asks."""
    monkeypatch.setenv("XLSEG_NO_NUMBA", "1")
    monkeypatch.setattr(numba_setup, "_kernel", None)
    monkeypatch.setattr(numba_setup, "_name", "")
    assert numba_setup.kernel_name() == "numpy"


def compiled_available() -> bool:
    return numba_setup.kernel_name() == "numba"


def test_batch_kmeans_matches_sklearn_quality():
    rng = np.random.default_rng(7)
    X = rng.random((16, 80, 6))
    ours = batch_kmeans(X, 4, n_init=10, random_state=0)
    theirs = np.array(
        [KMeans(4, n_init=10, random_state=i).fit(x).inertia_ for i, x in enumerate(X)]
    )
    assert abs(ours.inertia.mean() / theirs.mean() - 1) < 0.01
    # The reported inertia is that of the reported labels and centres.
    for x, lab, cen, w in zip(X, ours.labels, ours.centers, ours.inertia, strict=True):
        assert ((x - cen[lab]) ** 2).sum() == pytest.approx(w, rel=1e-12)
        assert np.array_equal(np.unique(lab), np.arange(4))


def test_hartigan_never_worse_than_lloyd_and_finds_planted_groups():
    rng = np.random.default_rng(3)
    X = rng.random((20, 60, 5))
    lloyd = batch_kmeans(X, 5, n_init=3, random_state=1)
    hartigan = batch_kmeans(X, 5, n_init=3, algorithm="hartigan", random_state=1)
    # Same seeds, so every start refines its own Lloyd optimum and can only go lower.
    assert np.all(hartigan.inertia <= lloyd.inertia + 1e-9)
    assert hartigan.inertia.mean() < lloyd.inertia.mean()
    centres = np.eye(3) * 10
    blobs = np.concatenate([c + rng.normal(size=(15, 3)) for c in centres])[None]
    labels = batch_kmeans(blobs, 3, algorithm="hartigan").labels[0]
    assert sorted(np.bincount(labels)) == [15, 15, 15]
    assert all(np.unique(labels[i * 15 : (i + 1) * 15]).size == 1 for i in range(3))


def test_hartigan_refines_every_start():
    # With one start refined out of ten the best start is often a Lloyd optimum; with all
    # refined, the best of 10 is never worse than the best refined start of the first 2.
    rng = np.random.default_rng(5)
    X = rng.random((30, 50, 4))
    all_ten = batch_kmeans(X, 6, n_init=10, algorithm="hartigan", random_state=2).inertia
    assert np.all(np.isfinite(all_ten))
    for p in range(3):  # the same starts one problem at a time give the same optimum
        alone = batch_kmeans(X[p : p + 1], 6, n_init=10, algorithm="hartigan", random_state=2)
        assert alone.inertia[0] >= all_ten.min() - 1e-9


def _hartigan_stop_gain(x, labels, k):
    """Largest inertia drop any single transfer would still give (<= 0 at Hartigan's stop)."""
    counts = np.bincount(labels, minlength=k)
    means = np.array([x[labels == c].mean(axis=0) for c in range(k)])
    d = ((x[:, None, :] - means[None]) ** 2).sum(axis=-1)
    n_a = counts[labels]
    own = d[np.arange(x.shape[0]), labels]
    remove = own * n_a / np.maximum(n_a - 1, 1)
    add = d * counts / (counts + 1.0)
    add[np.arange(x.shape[0]), labels] = np.inf
    gain = np.where(n_a > 1, remove - add.min(axis=1), 0.0)
    return (gain / np.maximum(remove, 1e-12)).max()


@pytest.mark.parametrize("kernel", ["compiled", "numpy"])
def test_hartigan_stops_where_no_transfer_helps(kernel, request):
    if kernel == "numpy":
        request.getfixturevalue("numpy_kernel")
    elif not compiled_available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(11)
    for k in (2, 3, 6, 9):
        X = rng.random((6, 50, 4))
        lloyd = batch_kmeans(X, k, n_init=2, random_state=k)
        hartigan = batch_kmeans(X, k, n_init=2, algorithm="hartigan", random_state=k)
        assert np.all(hartigan.inertia <= lloyd.inertia * (1 + 1e-12))
        for x, lab, cen in zip(X, hartigan.labels, hartigan.centers, strict=True):
            means = np.array([x[lab == c].mean(axis=0) for c in range(k)])
            assert np.allclose(cen, means, rtol=0, atol=1e-12)  # exact means
            assert _hartigan_stop_gain(x, lab, k) <= 1e-8


def test_numpy_kernel_gives_the_compiled_results(monkeypatch):
    if not compiled_available():
        pytest.skip("numba is not installed")
    rng = np.random.default_rng(0)
    cases = [
        (rng.random((5, 100, 32)) < 0.2).astype(float),  # 0/1 like customer data
        rng.random((4, 60, 5)),
        (rng.random((1, 300, 12)) < 0.3).astype(float),
    ]
    compared = 0
    for X in cases:
        for k in (1, 2, 5, 9):
            for algorithm in ("lloyd", "hartigan"):
                args = dict(n_init=6, algorithm=algorithm, random_state=k)
                compiled = batch_kmeans(X, k, **args)
                monkeypatch.setattr(numba_setup, "_kernel", kmeans_numpy.fit_starts)
                plain = batch_kmeans(X, k, **args)
                monkeypatch.setattr(numba_setup, "_kernel", None)
                assert np.array_equal(compiled.labels, plain.labels), (X.shape, k, algorithm)
                assert np.array_equal(compiled.n_iter, plain.n_iter)
                assert np.allclose(compiled.inertia, plain.inertia, rtol=1e-12, atol=0)
                assert np.allclose(compiled.centers, plain.centers, rtol=1e-12, atol=1e-14)
                compared += 1
    assert compared == 24


@pytest.fixture(scope="module")
def wine_dense(wine_crosstab) -> np.ndarray:
    return wine_crosstab.to_numpy(dtype=float)


def _selection_figures(selection) -> dict:
    return {
        "sse": selection.table["SSE"].tolist(),
        "labels": {str(k): v.tolist() for k, v in selection.labels.items()},
        "e_log_w": selection.gap.e_log_w.tolist(),
        "log_w": selection.gap.log_w.tolist(),
    }


@pytest.fixture(scope="module")
def wine_compiled(wine_dense):
    if not compiled_available():
        pytest.skip("numba is not installed")
    return _selection_figures(select_k(sp.csr_matrix(wine_dense), gap_refs=10, stability_seeds=1))


def _assert_same_selection(ours: dict, reference: dict) -> None:
    assert ours["labels"] == reference["labels"]  # identical labels at every K
    assert np.allclose(ours["sse"], reference["sse"], rtol=0, atol=1e-9)
    assert np.allclose(ours["log_w"], reference["log_w"], rtol=0, atol=1e-9)
    assert np.allclose(ours["e_log_w"], reference["e_log_w"], rtol=0, atol=1e-9)


def test_no_numba_setting_gives_the_same_k_selection(wine_dense, wine_compiled, numpy_kernel):
    plain = select_k(sp.csr_matrix(wine_dense), gap_refs=10, stability_seeds=1)
    _assert_same_selection(_selection_figures(plain), wine_compiled)


def test_without_numba_installed_the_numpy_kernel_runs(wine_dense, wine_compiled, tmp_path):
    np.save(tmp_path / "wine.npy", wine_dense)
    code = HIDE_NUMBA + (
        "import json, numpy as np, scipy.sparse as sp\n"
        "from xlseg.engine import numba_setup\n"
        "from xlseg.engine.kselect import select_k\n"
        f"x = np.load({str(tmp_path / 'wine.npy')!r})\n"
        "s = select_k(sp.csr_matrix(x), gap_refs=10, stability_seeds=1)\n"
        "print(json.dumps({'kernel': numba_setup.kernel_name(), 'numba': 'numba' in sys.modules,"
        " 'sse': s.table['SSE'].tolist(),"
        " 'labels': {str(k): v.tolist() for k, v in s.labels.items()},"
        " 'e_log_w': s.gap.e_log_w.tolist(), 'log_w': s.gap.log_w.tolist()}))\n"
    )
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("XLSEG_NO_NUMBA", None)
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=900
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["kernel"] == "numpy" and result["numba"] is False
    _assert_same_selection(result, wine_compiled)


def _read_only_copy(tmp_path):
    """The package copied read-only: no __pycache__ folder can be made in it, even by root."""
    root = tmp_path / "site"
    shutil.copytree(REPO / "xlseg", root / "xlseg", ignore=shutil.ignore_patterns("__pycache__"))
    for folder, _dirs, _ in os.walk(root):
        # A file where __pycache__ would go stops numba's and Python's writes also for root,
        # whom permissions do not stop.
        (Path(folder) / "__pycache__").write_text("")
    for folder, _, files in os.walk(root):
        for name in files:
            os.chmod(os.path.join(folder, name), 0o444)
    for folder, _, _ in os.walk(root, topdown=False):
        os.chmod(folder, 0o555)
    return root


def _restore_writable(root):
    for folder, _dirs, files in os.walk(root):
        os.chmod(folder, 0o755)
        for name in files:
            os.chmod(os.path.join(folder, name), 0o644)


RUN_ONCE = (
    "import numpy as np\n"
    "from xlseg.engine.batch_kmeans import batch_kmeans\n"
    "from xlseg.engine import numba_setup\n"
    "x = (np.random.default_rng(0).random((1, 40, 6)) < 0.4).astype(float)\n"
    "fit = batch_kmeans(x, 3, n_init=4, algorithm='hartigan')\n"
    "print(numba_setup.kernel_name(), fit.inertia[0])\n"
)
DRAW = (
    "from xlseg.report.silhouette_plot import silhouette_plot_png\n"
    "png = silhouette_plot_png(np.linspace(-0.2, 0.8, 40), fit.labels[0] + 1)\n"
    "print(png[:4] == b'\\x89PNG')\n"
)


@pytest.mark.parametrize("temp_writable", [True, False], ids=["temp-cache", "no-cache"])
def test_read_only_install_run_by_a_user_without_home(tmp_path, temp_writable):
    if not compiled_available():
        pytest.skip("numba is not installed: nothing to cache")
    root = _read_only_copy(tmp_path)
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("")  # paths below a file can be created by nobody, root included
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in ("NUMBA_CACHE_DIR", "XDG_CACHE_HOME") and not k.startswith("XLSEG_")
    }
    env.update(PYTHONPATH=str(root), HOME=str(blocker / "home"), TMPDIR=str(temp))
    # Without any writable temporary folder (tempfile falls back to /tmp, so say so
    # directly) the kernel compiles in memory; the picture needs no folder either way.
    code = RUN_ONCE + DRAW
    if not temp_writable:
        code = f"import tempfile; tempfile.tempdir = {str(blocker / 'tmp')!r}\n" + code
    try:
        done = subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            env=env,
            cwd=tmp_path,
            timeout=900,
        )
    finally:
        _restore_writable(root)
    assert done.returncode == 0, done.stderr
    printed = done.stdout.split()
    assert printed[0] == "numba" and float(printed[1]) > 0
    assert "cannot cache" not in done.stderr and "Traceback" not in done.stderr
    assert "preparing the fast k-means kernel" in done.stderr  # the first run says why it waits
    cached = list(temp.glob("xlseg-numba-*/**/kmeans_kernel.fit_starts-*.nbi"))
    assert bool(cached) == temp_writable
    assert printed[2] == "True"


def test_batch_kmeans_rejects_bad_input():
    with pytest.raises(XlsegError, match="between 1 and the number of customers"):
        batch_kmeans(np.zeros((1, 3, 2)), 4)
    with pytest.raises(XlsegError, match="algorithm"):
        batch_kmeans(np.zeros((1, 3, 2)), 2, algorithm="elkan")
