"""The exact neighbour engine against a plain float64 brute force."""

import math
import re
import sys

import numpy as np
import pytest
import torch

from gan_je.estimators import entropy, neighbors
from gan_je.estimators.neighbors import count_within, kth_neighbor, resolve_backend
from gan_je.extras import MissingExtraError
from tests.samples import requires_cuda, ring


def reference_sq_distances(blocks):
    """All pairwise joint squared distances in numpy float64, self excluded (inf)."""
    total = None
    for b in blocks:
        a = b.numpy()
        sq = ((a[:, None, :] - a[None, :, :]) ** 2).sum(-1)
        total = sq if total is None else np.maximum(total, sq)
    np.fill_diagonal(total, np.inf)
    return total


def data(n, d, seed, shift=0.0):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, d, generator=gen, dtype=torch.float64) * (1 + torch.arange(d)) + shift


@pytest.mark.parametrize("backend", ["torch", "faiss", "kdtree"])
@pytest.mark.parametrize("d", [1, 2, 7, 20])
def test_kth_neighbor_is_exact(backend, d):
    x = data(300, d, seed=d)
    ref = np.sort(reference_sq_distances([x]), axis=1)
    for k in (1, 3, 10):
        sq, idx = kth_neighbor(x, k, backend)
        np.testing.assert_allclose(sq.numpy(), ref[:, k - 1], rtol=1e-12)
        # the index points at a sample at that distance
        np.testing.assert_allclose(((x - x[idx]) ** 2).sum(1).numpy(), sq.numpy(), rtol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "kdtree"])
@pytest.mark.parametrize("dims", [(1, 1), (1, 1, 1)])
def test_kth_neighbor_in_a_joint_space_of_scalars(backend, dims):
    blocks = [data(250, d, seed=10 + i) for i, d in enumerate(dims)]
    ref = np.sort(reference_sq_distances(blocks), axis=1)
    sq, _ = kth_neighbor(blocks, 4, backend)
    np.testing.assert_allclose(sq.numpy(), ref[:, 3], rtol=1e-12)


@pytest.mark.parametrize("backend", ["torch", "kdtree"])
@pytest.mark.parametrize("dims", [(3, 2), (2, 2)], ids=["euclidean-bound", "chebyshev-bound"])
def test_kth_neighbor_in_a_joint_space_of_vectors(backend, dims):
    blocks = [data(250, d, seed=20 + i) for i, d in enumerate(dims)]
    ref = np.sort(reference_sq_distances(blocks), axis=1)
    for k in (1, 2, 7):
        sq, idx = kth_neighbor(blocks, k, backend)
        np.testing.assert_allclose(sq.numpy(), ref[:, k - 1], rtol=1e-12)
        # the tree searches by the Chebyshev bound: the same bits as the brute force
        assert torch.equal(sq, kth_neighbor(blocks, k, "torch")[0])
        assert torch.equal(neighbors.block_distance(blocks, torch.arange(250), idx), sq)


@pytest.mark.parametrize("backend", ["torch", "kdtree"])
@pytest.mark.parametrize("inclusive", [False, True])
def test_count_within_radius_from_kth_neighbor(backend, inclusive):
    x = data(400, 3, seed=30)
    k = 5
    # against a reference that sums the squares the same way (a numpy sum in another order
    # moves the boundary neighbour's distance by an ulp in some rows and flips those counts)
    sq, _ = kth_neighbor(x, k, "torch")
    ref = neighbors.squared_distance(x[:, None, :], x[None, :, :]).numpy()
    np.fill_diagonal(ref, np.inf)
    r2 = sq.numpy()[:, None]
    expected = (ref <= r2).sum(1) if inclusive else (ref < r2).sum(1)
    counts = count_within(x, sq, inclusive=inclusive, backend=backend)
    np.testing.assert_array_equal(counts.numpy(), expected)
    # with each backend's own radii, the neighbour that defines the radius is on the
    # boundary: in when inclusive, out when not
    own_sq, _ = kth_neighbor(x, k, backend)
    counts = count_within(x, own_sq, inclusive=inclusive, backend=backend)
    np.testing.assert_array_equal(counts.numpy(), np.full(400, k if inclusive else k - 1))


def _lattice(n_side: int, d: int) -> torch.Tensor:
    """A regular grid: every point has many neighbours at exactly the same distance."""
    axes = [torch.arange(n_side, dtype=torch.float64) * 0.1] * d
    return torch.cartesian_prod(*axes).reshape(-1, d)


@pytest.mark.parametrize(
    "points",
    [
        _lattice(7, 3),
        torch.arange(12, dtype=torch.float64)[:, None].expand(12, 3) * 0.1,  # a diagonal
        torch.randint(0, 3, (200, 4), generator=torch.Generator().manual_seed(5)).double(),
        torch.randint(0, 5, (200, 1), generator=torch.Generator().manual_seed(6)).double(),
    ],
    ids=["lattice", "diagonal", "quantised", "quantised-scalars"],
)
def test_every_backend_gives_the_same_bits_on_ties(points):
    for k in (1, 2, 5):
        results = {b: kth_neighbor(points, k, b)[0] for b in ("torch", "faiss", "kdtree")}
        assert torch.equal(results["torch"], results["kdtree"])
        assert torch.equal(results["torch"], results["faiss"])
        for inclusive in (False, True):
            counts = {
                b: count_within(points, results["torch"], inclusive, b) for b in ("torch", "kdtree")
            }
            assert torch.equal(counts["torch"], counts["kdtree"])


@pytest.mark.parametrize("list_balls", [True, False], ids=["listed", "counted-twice"])
@pytest.mark.parametrize("inclusive", [False, True])
def test_both_tree_counts_give_the_brute_force_bits(list_balls, inclusive):
    lattice = _lattice(6, 3)
    random = data(300, 3, seed=34)
    for points in (lattice, random):
        for k in (1, 4):
            sq, idx = kth_neighbor(points, k, "torch")
            expected = count_within(points, sq, inclusive, "torch")
            for defining in (None, idx):
                counts = neighbors._kdtree_count(points, sq, inclusive, defining, list_balls)
                assert torch.equal(counts, expected)


def test_scalars_are_searched_in_sorted_order_with_the_brute_force_bits():
    x = torch.cat([data(400, 1, seed=36), data(100, 1, seed=36)])  # 100 exact copies
    x[::50] = 1e8  # far outliers: every window reaches past an end of the order
    for k in (1, 3, 8):
        sq, idx = neighbors._sorted_knn(x, k)
        assert torch.equal(sq, kth_neighbor(x, k, "torch")[0])
        assert torch.equal(neighbors.squared_distance(x, x[idx]), sq)
        for inclusive in (False, True):
            expected = count_within(x, sq, inclusive, "torch")
            assert torch.equal(neighbors._sorted_count(x, sq, inclusive), expected)
            zero = torch.zeros_like(sq)  # radius 0: only the copies, when inclusive
            assert torch.equal(
                neighbors._sorted_count(x, zero, inclusive),
                count_within(x, zero, inclusive, "torch"),
            )


def test_auto_counts_large_balls_in_high_dimension_by_brute_force(monkeypatch):
    x = data(300, 6, seed=35)
    big = torch.full((300,), 4.0, dtype=torch.float64) * 36  # most of the cloud
    assert neighbors._sampled_mean_count(x, big) > neighbors.LIST_MAX_MEAN_COUNT
    calls = []
    monkeypatch.setattr(neighbors, "_kdtree_count", lambda *a: calls.append(a))
    expected = count_within(x, big, False, "torch")
    assert torch.equal(count_within(x, big, False, "auto"), expected)
    assert calls == []  # brute force, not the tree


@pytest.mark.parametrize(
    "second",
    [
        data(150, 3, seed=41, shift=0.3),
        data(150, 3, seed=42, shift=40.0),
        None,
        data(150, 3, seed=43) * 0.001,  # inside the first set's balls: every round
    ],
    ids=["overlapping", "apart", "copies", "dense-other-set"],
)
def test_one_pooled_tree_search_gives_ross_neighbours_bit_for_bit(second):
    first = data(200, 3, seed=40)
    second = first[:150].clone() if second is None else second  # copies: many ties
    pooled = torch.cat([first, second])
    for k in (1, 4):
        sq, idx, count = neighbors._pooled_kdtree_within(pooled, 200, k)
        sq_p, _ = kth_neighbor(first, k, "torch")
        sq_q, _ = kth_neighbor(second, k, "torch")
        assert torch.equal(sq, torch.cat([sq_p, sq_q]))
        assert torch.equal(neighbors.squared_distance(pooled, pooled[idx]), sq)
        assert torch.equal((idx >= 200), torch.arange(350) >= 200)  # a same-set neighbour
        assert torch.equal(count, count_within(pooled, sq, True, "torch"))
        torch_sq, _, torch_count = neighbors.kth_within_label(pooled, 200, k, "torch")
        assert torch.equal(torch_sq, sq) and torch.equal(torch_count, count)


def test_the_defining_hint_changes_no_count():
    x = data(500, 2, seed=33)
    sq, idx = kth_neighbor(x, 4, "kdtree")
    sq[::7] = sq[::7] * (1 + 1e-16)  # radii next to, not on, their defining neighbour
    for inclusive in (False, True):
        plain = count_within(x, sq, inclusive, "kdtree")
        hinted = count_within(x, sq, inclusive, "kdtree", defining=idx)
        assert torch.equal(plain, hinted)
        assert torch.equal(plain, count_within(x, sq, inclusive, "torch"))


@pytest.mark.parametrize("backend", ["torch", "kdtree"])
@pytest.mark.parametrize("d", [1, 2])
def test_count_within_arbitrary_radii(backend, d):
    x = data(300, d, seed=31)
    r2 = torch.rand(300, generator=torch.Generator().manual_seed(0), dtype=torch.float64) * 4
    ref = reference_sq_distances([x])
    expected = (ref < r2.numpy()[:, None]).sum(1)
    np.testing.assert_array_equal(count_within(x, r2, False, backend).numpy(), expected)


def test_cancellation_falls_back_to_exact_tiers(monkeypatch):
    """Far from the origin float32 (and even float64) matmul distances are useless; the
    certified search must notice and fall back, down to direct differences."""
    calls = []
    original = neighbors.squared_distance
    monkeypatch.setattr(
        neighbors, "squared_distance", lambda a, b: calls.append(b.shape) or original(a, b)
    )
    for shift in (1e3, 1e9):  # 1e3 defeats float32, 1e9 float64 as well
        x = ring(300, seed=32, shift=shift)
        ref = np.sort(reference_sq_distances([x]), axis=1)
        sq, _ = kth_neighbor(x, 3, "torch")
        np.testing.assert_allclose(sq.numpy(), ref[:, 2], rtol=1e-9)
        counts = count_within(x, sq, inclusive=True, backend="torch")
        np.testing.assert_array_equal(counts.numpy(), np.full(300, 3))
    # the direct tier compares rows with every point: b has shape (1, N, D)
    assert any(shape == (1, 300, 2) for shape in calls)


def test_small_chunks_give_the_same_answer(monkeypatch):
    x = data(500, 6, seed=33)
    expected_sq = kth_neighbor(x, 3, "torch")[0]
    expected_counts = count_within(x, expected_sq, True, "torch")
    monkeypatch.setattr(neighbors, "CHUNK_BYTES", 500 * 8 * 7)  # a handful of rows per chunk
    assert torch.equal(kth_neighbor(x, 3, "torch")[0], expected_sq)
    assert torch.equal(count_within(x, expected_sq, True, "torch"), expected_counts)


def test_tiny_sets_use_every_point_as_a_candidate():
    x = data(5, 2, seed=34)
    ref = np.sort(reference_sq_distances([x]), axis=1)
    for backend in ("torch", "faiss", "kdtree"):
        np.testing.assert_allclose(kth_neighbor(x, 4, backend)[0].numpy(), ref[:, 3])


@pytest.mark.parametrize("blocks", [(5,), (1, 1), (3, 2)])
def test_grouped_proposal_is_exact(monkeypatch, blocks):
    """The grouped candidate proposal that CUDA uses, forced on for CPU tensors."""
    points = [data(2600, d, seed=40 + d) for d in blocks]
    points[0][100:140] = points[0][100]  # duplicates: ties across groups
    expected = kth_neighbor(points, 4, "torch")[0]
    monkeypatch.setattr(neighbors, "_grouped", lambda values: values.shape[1] >= 64 * 32)
    assert torch.equal(kth_neighbor(points, 4, "torch")[0], expected)


def test_matmul_precision_is_restored():
    before = torch.get_float32_matmul_precision()
    torch.set_float32_matmul_precision("medium")
    try:
        kth_neighbor(data(100, 4, seed=35), 3, "torch")
        assert torch.get_float32_matmul_precision() == "medium"
    finally:
        torch.set_float32_matmul_precision(before)


def test_the_tree_searches_joint_spaces_by_the_bound_that_inflates_least():
    assert neighbors._tree_metric([5]) == (2.0, 1.0, 1.0)
    assert neighbors._tree_metric([1, 1]) == (math.inf, 1.0, 1.0)  # Chebyshev is exact
    p, scale, inflation = neighbors._tree_metric([2, 2])  # cube 16 r^4 / discs pi^2 r^4
    assert (p, scale) == (math.inf, 1.0) and inflation == pytest.approx(16 / math.pi**2)
    p, scale, inflation = neighbors._tree_metric([4, 4])  # ball V_8 (r sqrt 2)^8 / V_4^2 r^8
    assert (p, scale) == (2.0, 0.5) and inflation == pytest.approx(8 / 3)


def test_auto_backend_choice():
    low, high = (
        [torch.zeros(10, 2, dtype=torch.float64)],
        [torch.zeros(10, 64, dtype=torch.float64)],
    )
    scalars = [torch.zeros(10, 1, dtype=torch.float64)] * 2
    vectors = [torch.zeros(10, 2, dtype=torch.float64)] * 2
    assert resolve_backend("auto", low, "knn") == "kdtree"
    assert resolve_backend("auto", high, "knn") == "faiss"
    assert resolve_backend("auto", high, "count") == "torch"
    assert resolve_backend("auto", scalars, "knn") == "kdtree"
    assert resolve_backend("auto", vectors, "knn") == "kdtree"  # by the Chebyshev bound
    assert resolve_backend("faiss", vectors, "knn") == "torch"


def test_without_faiss_auto_searches_with_torch_and_faiss_is_refused(monkeypatch):
    x = data(300, 16, seed=5)  # above KDTREE_MAX_DIM: "auto" would pick faiss
    with_faiss = entropy(x, backend="auto")
    monkeypatch.setitem(sys.modules, "faiss", None)  # "import faiss" now fails
    assert resolve_backend("auto", [x], "knn") == "torch"
    assert entropy(x, backend="auto").item() == with_faiss.item()  # exact either way
    with pytest.raises(MissingExtraError, match=r"backend='faiss' needs .*gan_je\[faiss\]"):
        entropy(x, backend="faiss")
    with pytest.raises(ValueError, match=re.escape("pip install 'gan_je[faiss]'")):
        resolve_backend("faiss", [x], "count")


def test_engine_rejects_unprepared_input():
    with pytest.raises(ValueError, match="float64"):
        kth_neighbor(torch.zeros(10, 2), 3)
    with pytest.raises(ValueError, match="1 <= k < N"):
        kth_neighbor(torch.zeros(3, 2, dtype=torch.float64), 3)
    with pytest.raises(ValueError, match="sq_radius must have shape"):
        count_within(torch.zeros(4, 2, dtype=torch.float64), torch.ones(3), True)


@requires_cuda
def test_cuda_matches_cpu():
    x = data(3000, 16, seed=36)
    sq_cpu, _ = kth_neighbor(x, 3, "torch")
    sq_gpu, _ = kth_neighbor(x.cuda(), 3, "auto")
    assert torch.equal(sq_gpu.cpu(), sq_cpu)
    counts_gpu = count_within(x.cuda(), sq_gpu, False, "auto")
    assert torch.equal(counts_gpu.cpu(), count_within(x, sq_cpu, False, "torch"))
    with pytest.raises(ValueError, match="runs on CPU"):
        kth_neighbor(x.cuda(), 3, "kdtree")


@requires_cuda
def test_tf32_does_not_leak_in():
    x = ring(4000, seed=37, shift=10.0)
    cpu = kth_neighbor(x, 3, "torch")[0]
    torch.backends.cuda.matmul.allow_tf32 = True
    try:
        assert torch.equal(kth_neighbor(x.cuda(), 3, "torch")[0].cpu(), cpu)
    finally:
        torch.backends.cuda.matmul.allow_tf32 = False
