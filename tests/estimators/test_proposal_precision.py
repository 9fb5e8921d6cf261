"""Reduced-precision (TF32, bf16) candidate proposals, emulated on CPU: the product's inputs
are rounded to the format's mantissa, exactly as tensor cores would read them, and the
certification bound widened to match. The answers must be the same bits as "highest"."""

import importlib.util

import numpy as np
import pytest
import torch

from gan_je.estimators import entropy, jensen_shannon, neighbors, proposal_precision
from gan_je.estimators.neighbors import (
    _ApproxDistances,
    _round_mantissa,
    count_within,
    kth_neighbor,
    squared_distance,
)
from tests.estimators.test_neighbors import _lattice, data
from tests.samples import requires_cuda

REDUCED = ["tf32", "bf16"]
BITS = {"tf32": 10, "bf16": 7}


def duplicated(n: int = 300, d: int = 5) -> torch.Tensor:
    x = data(n, d, seed=61)
    x[40:90] = x[40]  # 50 copies: ties within and across chunks
    return x


def uniform(n: int, d: int, seed: int) -> torch.Tensor:
    """Points packed so closely that TF32 and bf16 products cannot rank their neighbours."""
    return torch.rand(n, d, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)


def float32_bound_only(monkeypatch: pytest.MonkeyPatch) -> None:
    """Certify reduced-precision proposals with the unwidened float32 bound."""
    original = neighbors._product_error

    def narrow(dim, norms, max_norm, unit, input_unit=0.0):
        return original(dim, norms, max_norm, 2.0**-24)

    monkeypatch.setattr(neighbors, "_product_error", narrow)


@pytest.mark.parametrize("precision", REDUCED)
def test_rounding_reads_like_the_hardware(precision):
    """Round to nearest, ties to even, to 10 (TF32) or 7 (bf16) mantissa bits: torch's own
    bf16 cast, and a frexp reference for both."""
    gen = torch.Generator().manual_seed(60)
    x32 = torch.randn(20_000, generator=gen) * torch.logspace(-30, 30, 20_000)
    x32[:4] = torch.tensor([1 + 2**-11, 1 + 3 * 2**-11, -(1 + 2**-8), 0.0])  # ties, a sign, 0
    x = x32.double()
    rounded = _round_mantissa(x, BITS[precision])
    assert rounded.dtype == torch.float32
    mantissa, exponent = torch.frexp(x)
    scale = 2.0 ** (BITS[precision] + 1)
    expected = torch.round(mantissa * scale) / scale * torch.exp2(exponent.double())
    assert torch.equal(rounded.double(), expected)
    if precision == "bf16":
        assert torch.equal(rounded, x32.bfloat16().float())


@pytest.mark.parametrize("precision", REDUCED)
@pytest.mark.parametrize(
    "points",
    [data(400, 7, seed=62), uniform(400, 2, seed=63), duplicated(), _lattice(6, 3)],
    ids=["gaussian", "packed", "duplicates", "lattice"],
)
def test_same_neighbours_and_counts_as_highest(precision, points):
    sq, _ = kth_neighbor(points, 3, "torch")
    with proposal_precision(precision):
        got_sq, got_index = kth_neighbor(points, 3, "torch")
        counts = {inc: count_within(points, sq, inc, "torch") for inc in (False, True)}
    assert torch.equal(got_sq, sq)
    # ties make the index ambiguous; it must point at a sample at that distance
    assert torch.equal(squared_distance(points, points[got_index]), sq)
    for inclusive, got in counts.items():
        assert torch.equal(got, count_within(points, sq, inclusive, "torch"))


@pytest.mark.parametrize("precision", REDUCED)
def test_same_index_without_ties(precision):
    x = data(400, 7, seed=62)
    expected = kth_neighbor(x, 3, "torch")[1]
    with proposal_precision(precision):
        assert torch.equal(kth_neighbor(x, 3, "torch")[1], expected)


@pytest.mark.parametrize("precision", REDUCED)
def test_same_estimates_as_highest(precision):
    p, q = duplicated(300, 6), data(300, 6, seed=64, shift=0.5)
    expected = entropy(p, backend="torch"), jensen_shannon(p, q, backend="torch")
    with proposal_precision(precision):
        got = entropy(p, backend="torch"), jensen_shannon(p, q, backend="torch")
    assert torch.equal(got[0], expected[0])
    assert torch.equal(got[1], expected[1])


@pytest.mark.parametrize("precision", REDUCED)
@pytest.mark.parametrize(
    "points",
    [data(300, 3, seed=65), data(200, 64, seed=66), data(300, 4, seed=67, shift=10.0)],
    ids=["d=3", "d=64", "off-centre"],
)
def test_the_widened_bound_covers_the_emulated_error(precision, points):
    """Every approximate squared distance lies within the widened bound, and some lie
    outside the float32 bound: the widening is needed."""
    n = points.shape[0]
    rows = torch.arange(n)
    shifted, offset, bound = _ApproxDistances([points], torch.float32, n, precision)(rows)
    error = shifted.double() + offset[:, None] - squared_distance(points[:, None], points)
    error = error.abs().fill_diagonal_(0)
    assert (error <= bound[:, None]).all()
    float32 = _ApproxDistances([points], torch.float32, n).bound(rows)
    assert (error > float32[:, None]).any()


@pytest.mark.parametrize("precision", REDUCED)
def test_the_float32_bound_would_give_wrong_neighbours(monkeypatch, precision):
    """Closely packed points: the reduced-precision proposal misranks neighbours by more than
    the float32 bound allows for, so certifying it with that bound returns wrong distances and
    counts; the widened bound sends those rows on to float64."""
    x = uniform(500, 2, seed=68)
    sq, _ = kth_neighbor(x, 3, "torch")
    counts = count_within(x, sq, True, "torch")
    with proposal_precision(precision):
        assert torch.equal(kth_neighbor(x, 3, "torch")[0], sq)
        assert torch.equal(count_within(x, sq, True, "torch"), counts)
        float32_bound_only(monkeypatch)
        assert (kth_neighbor(x, 3, "torch")[0] != sq).any()
        assert (count_within(x, sq, True, "torch") != counts).any()


def test_tf32_still_certifies_most_rows(monkeypatch):
    """The widened bound is not so wide that everything falls through to float64: on
    Gaussian data in 8 dimensions TF32 certifies most rows itself."""
    left = {}
    original = neighbors._candidates

    def recording(blocks, pending, k, n_cand, dtype, precision):
        found = original(blocks, pending, k, n_cand, dtype, precision)
        left.setdefault(precision, len(found[-1]))
        return found

    monkeypatch.setattr(neighbors, "_candidates", recording)
    with proposal_precision("tf32"):
        kth_neighbor(data(2000, 8, seed=69), 3, "torch")
    assert left["tf32"] < 0.2 * 2000


def test_precision_is_scoped_and_checked():
    x = data(100, 3, seed=70)
    with proposal_precision("bf16"):
        assert neighbors._proposal_precision.get() == "bf16"
        with proposal_precision("tf32"):
            assert neighbors._proposal_precision.get() == "tf32"
        assert neighbors._proposal_precision.get() == "bf16"
    assert neighbors._proposal_precision.get() == "highest"
    with pytest.raises(ValueError, match="precision must be one of"), proposal_precision("fp16"):
        kth_neighbor(x, 3, "torch")


@requires_cuda
@pytest.mark.parametrize("precision", REDUCED)
def test_tensor_cores_give_the_cpu_answer(precision):
    """On the GPU the proposals run on tensor cores (torch: TF32 cuBLAS; triton: the fused
    kernel at that precision); the answer is the CPU's "highest" one."""
    x = data(5000, 64, seed=71)
    sq, _ = kth_neighbor(x, 3, "torch")
    counts = count_within(x, sq, True, "torch")
    before = torch.backends.cuda.matmul.fp32_precision
    for backend in ["torch", "triton"] if importlib.util.find_spec("triton") else ["torch"]:
        with proposal_precision(precision):
            got_sq, got_index = kth_neighbor(x.cuda(), 3, backend)
            got_counts = count_within(x.cuda(), got_sq, True, backend)
        assert torch.equal(got_sq.cpu(), sq), backend
        np.testing.assert_array_equal(got_counts.cpu().numpy(), counts.numpy())
        assert torch.equal(squared_distance(x, x[got_index.cpu()]), sq)
    assert torch.backends.cuda.matmul.fp32_precision == before  # restored
