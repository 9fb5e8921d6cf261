"""The fused Triton search: on CPU through Triton's interpreter, on CUDA when there is one.

``TRITON_INTERPRET=1`` must be set before the kernel is defined, so the CPU checks run the
kernel in a child process on inputs saved by the test, and compare here.
"""

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

from gan_je.estimators import neighbors
from gan_je.estimators._inputs import prepare
from gan_je.estimators.neighbors import kth_neighbor, resolve_backend
from tests.estimators.test_neighbors import data, reference_sq_distances
from tests.samples import requires_cuda, ring

pytest.importorskip("triton")

CHILD = """
import sys, torch
from gan_je.estimators._triton_search import group_minima
from gan_je.estimators.neighbors import _brute_force_knn
cases = torch.load(sys.argv[1])
out = {}
for name, (x, k) in cases.items():
    base = x.float()
    rows = torch.arange(x.shape[0] - 1, -1, -1)
    out[name] = {
        "knn": _brute_force_knn([x], k, "triton"),
        "minima": group_minima(base, (base * base).sum(1), rows, 32),
    }
torch.save(out, sys.argv[2])
"""


def run_interpreted(tmp_path, cases):
    inputs, outputs = tmp_path / "in.pt", tmp_path / "out.pt"
    torch.save(cases, inputs)
    env = {**os.environ, "TRITON_INTERPRET": "1", "OMP_NUM_THREADS": "1"}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(inputs), str(outputs)],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return torch.load(outputs)


def test_fused_search_is_exact_in_the_interpreter(tmp_path):
    duplicated = data(300, 7, seed=52)
    duplicated[40:80] = duplicated[40]  # ties across groups
    cases = {
        "gaussian d=20": (prepare(data(300, 20, seed=50)), 3),
        "gaussian d=64, k=10": (prepare(data(200, 64, seed=51)), 10),
        "duplicates": (prepare(duplicated), 4),
        # modes so tight that the float32 bound cannot certify and float64 takes over
        "tight ring": (prepare(ring(400, seed=53, sigma=1e-6)), 3),
        "fewer points than groups needed": (prepare(data(40, 3, seed=54)), 3),
    }
    results = run_interpreted(tmp_path, cases)
    for name, (x, k) in cases.items():
        sq, idx = results[name]["knn"]
        assert torch.equal(sq, kth_neighbor(x, k, "torch")[0]), name
        ref = np.sort(reference_sq_distances([x]), axis=1)[:, k - 1]
        np.testing.assert_allclose(sq.numpy(), ref, rtol=1e-12, err_msg=name)
        np.testing.assert_allclose(((x - x[idx]) ** 2).sum(1).numpy(), sq.numpy(), rtol=1e-12)

        # each group minimum against float64 arithmetic, within the certified bound
        n = x.shape[0]
        rows = torch.arange(n - 1, -1, -1)
        shifted = (x * x).sum(1)[None, :] - 2 * x[rows] @ x.T
        shifted[torch.arange(n), rows] = torch.inf
        groups = -(-n // 32)
        padded = torch.full((n, groups * 32), torch.inf, dtype=torch.float64)
        padded[:, :n] = shifted
        expected = padded.reshape(n, groups, 32).amin(dim=2)
        bound = neighbors._ApproxDistances([x], torch.float32, 0).bound(rows)
        minima = results[name]["minima"]
        assert minima.shape == (n, groups)
        assert ((minima.double() - expected).abs() <= bound[:, None]).all(), name


def test_triton_backend_needs_cuda_tensors():
    x = data(50, 3, seed=55)
    with pytest.raises(ValueError, match="runs on CUDA"):
        kth_neighbor(x, 3, "triton")
    with pytest.raises(ValueError, match="runs on CUDA"):
        resolve_backend("triton", [x], "count")


@requires_cuda
def test_triton_backend_matches_cpu():
    for x in (data(3000, 64, seed=56), ring(4000, seed=57, shift=10.0)):
        x = prepare(x)
        expected = kth_neighbor(x, 3, "torch")
        got = kth_neighbor(x.cuda(), 3, "triton")
        assert torch.equal(got[0].cpu(), expected[0])
        assert torch.equal(got[1].cpu(), expected[1])
    # counts and KSG's joint space run on torch
    x = data(100, 4, seed=58).cuda()
    assert resolve_backend("triton", [x], "count") == "torch"
    assert resolve_backend("triton", [x, x], "knn") == "torch"
