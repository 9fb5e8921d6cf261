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
from gan_je.estimators.neighbors import GROUP, kth_neighbor, resolve_backend
from tests.estimators.test_neighbors import data, reference_sq_distances
from tests.samples import requires_cuda, ring

CHILD = """
import sys, torch
from gan_je.estimators._triton_search import group_minima
from gan_je.estimators.neighbors import EXTRA_CANDIDATES, GROUP, _brute_force_knn, _fused_candidates
from gan_je.estimators.neighbors import _ApproxDistances, _TRITON_PRECISION
cases = torch.load(sys.argv[1])
out = {}
for name, (x, k, precision) in cases.items():
    approx = _ApproxDistances([x], torch.float32, 0, precision)
    (base,), (sqnorms,) = approx.blocks, approx.sqnorms
    rows = torch.arange(x.shape[0] - 1, -1, -1)
    n_cand = min(k + EXTRA_CANDIDATES, len(x) - 1)
    pending = _fused_candidates([x], rows, k, n_cand, torch.float32, precision)[-1]
    out[name] = {
        "knn": _brute_force_knn([x], k, "triton", precision),
        "minima": group_minima(base, sqnorms, rows, GROUP, _TRITON_PRECISION[precision]),
        "uncertified": len(pending),
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


def check_exact(x, k, sq, idx):
    """The k-th neighbours equal the torch backend's and a plain float64 reference."""
    assert torch.equal(sq, kth_neighbor(x, k, "torch")[0])
    ref = np.sort(reference_sq_distances([x]), axis=1)[:, k - 1]
    np.testing.assert_allclose(sq.numpy(), ref, rtol=1e-12)
    np.testing.assert_allclose(((x - x[idx]) ** 2).sum(1).numpy(), sq.numpy(), rtol=1e-12)


def check_minima(x, rows, minima, precision="highest"):
    """Each group minimum within the certified bound (at the proposal ``precision``) of
    float64 arithmetic; groups holding only the row itself (or nothing) are ``inf``."""
    n = x.shape[0]
    shifted = (x * x).sum(1)[None, :] - 2 * x[rows] @ x.T
    shifted[torch.arange(len(rows)), rows] = torch.inf
    groups = -(-n // GROUP)
    padded = torch.full((len(rows), groups * GROUP), torch.inf, dtype=torch.float64)
    padded[:, :n] = shifted
    expected = padded.reshape(len(rows), groups, GROUP).amin(dim=2)
    bound = neighbors._ApproxDistances([x], torch.float32, 0, precision).bound(rows)[:, None]
    assert minima.shape == expected.shape
    minima = minima.double()
    finite = expected.isfinite()
    assert torch.equal(minima.isfinite(), finite)
    assert ((minima - expected).abs() <= bound)[finite].all()


@pytest.mark.slow
def test_fused_search_is_exact_in_the_interpreter(tmp_path):
    pytest.importorskip("triton")
    duplicated = data(300, 7, seed=52)
    duplicated[40:80] = duplicated[40]  # ties across groups
    cases = {
        "gaussian d=20": (prepare(data(300, 20, seed=50)), 3, "highest"),
        "gaussian d=64, k=40 (more candidates than a group)": (
            prepare(data(200, 64, seed=51)),
            40,
            "highest",
        ),
        "duplicates": (prepare(duplicated), 4, "highest"),
        # modes so tight that the float32 bound cannot certify and float64 takes over
        "tight ring": (prepare(ring(400, seed=53, sigma=1e-6)), 3, "highest"),
        "fewer groups than needed": (prepare(data(40, 3, seed=54)), 3, "highest"),
        "one point in the last group": (prepare(data(33, 2, seed=55)), 1, "highest"),
        # the interpreter multiplies in float32: exact on inputs rounded to TF32 already
        "gaussian d=20, tf32": (prepare(data(300, 20, seed=50)), 3, "tf32"),
    }
    results = run_interpreted(tmp_path, cases)
    for name, (x, k, precision) in cases.items():
        result = results[name]
        check_exact(x, k, *result["knn"])
        check_minima(x, torch.arange(x.shape[0] - 1, -1, -1), result["minima"], precision)
        if name == "tight ring":
            assert result["uncertified"] > 0  # the test reaches the float64 tier
        elif precision == "highest" and name != "duplicates":
            assert result["uncertified"] == 0, name  # float32 candidates suffice


@pytest.mark.parametrize("n", [2, 40, 33, 300, 2600])
@pytest.mark.parametrize("n_cand", [1, 4, 40])
def test_group_proposal_floor_bounds_every_other_column(n, n_cand):
    """Whatever the groups, every column left out has a value at least the floor, and the
    candidates are distinct columns with the smallest values."""
    n_cand = min(n_cand, n - 1)
    gen = torch.Generator().manual_seed(n * 100 + n_cand)
    values = torch.randint(0, 50, (20, n), generator=gen).float()  # many ties
    values[torch.arange(20), torch.arange(20) % n] = torch.inf  # the rows' own columns
    groups = -(-n // GROUP)
    padded = torch.full((20, groups * GROUP), torch.inf)
    padded[:, :n] = values
    minima = padded.reshape(20, groups, GROUP).amin(dim=2)
    cand, floor = neighbors._propose_from_groups(
        minima, n, n_cand, lambda cols: values.gather(1, cols)
    )
    assert cand.shape == (20, n_cand)
    for row in range(20):
        chosen = set(cand[row].tolist())
        assert len(chosen) == n_cand
        others = [c for c in range(n) if c not in chosen]
        assert all(values[row, c] >= floor[row] for c in others)
        assert values[row, cand[row]].max() <= floor[row]


def test_triton_backend_needs_cuda_tensors():
    x = data(50, 3, seed=55)
    with pytest.raises(ValueError, match="runs on CUDA"):
        kth_neighbor(x, 3, "triton")
    with pytest.raises(ValueError, match="runs on CUDA"):
        resolve_backend("triton", [x], "count")


@requires_cuda
def test_triton_backend_matches_cpu():
    pytest.importorskip("triton")
    from gan_je.estimators._triton_search import group_minima

    cases = [
        (prepare(data(3000, 64, seed=56)), (1, 3, 40)),
        (prepare(ring(4000, seed=57, shift=10.0)), (3,)),
        (prepare(data(40, 3, seed=58)), (3,)),
    ]
    for x, ks in cases:
        for k in ks:
            got = kth_neighbor(x.cuda(), k, "triton")
            check_exact(x, k, got[0].cpu(), got[1].cpu())
        rows = torch.arange(x.shape[0]).flip(0)
        base = x.float().cuda()
        check_minima(x, rows, group_minima(base, (base * base).sum(1), rows.cuda(), GROUP).cpu())
    # Gaussian data is certified from the kernel's float32 candidates alone
    x = prepare(data(3000, 64, seed=56)).cuda()
    rows = torch.arange(3000).cuda()
    pending = neighbors._fused_candidates([x], rows, 3, 4, torch.float32, "highest")[-1]
    assert len(pending) == 0
    # counts and KSG's joint space run on torch
    assert resolve_backend("triton", [x], "count") == "torch"
    assert resolve_backend("triton", [x, x], "knn") == "torch"
