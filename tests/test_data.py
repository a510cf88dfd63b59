"""Verified fetching and whole-tensor loading of MNIST and Fashion-MNIST."""

from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from bayesprune.data.datasets import (
    FILES,
    RAW_FOLDER,
    SHA256,
    DataIntegrityError,
    Source,
    batch_indices,
    fetch,
    idx_tensor,
    load_split,
    raw_dir,
    sha256_of,
)


def _real_blobs(real_data_root: Path) -> dict[str, bytes]:
    return {name: (raw_dir("mnist", real_data_root) / name).read_bytes() for name in FILES}


def _leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file()]


@pytest.mark.parametrize("damage", ["flip", "truncate"])
def test_damaged_download_is_rejected_naming_file_and_hashes(real_data_root, tmp_path, damage):
    blobs = _real_blobs(real_data_root)
    good = blobs[FILES[1]]
    bad = good[:-100] if damage == "truncate" else good[:50] + bytes([good[50] ^ 0xFF]) + good[51:]
    blobs[FILES[1]] = bad
    source = Source("damaged source", lambda work: blobs)
    with pytest.raises(DataIntegrityError) as error:
        fetch("mnist", tmp_path, report=lambda _: None, source_list=[source])
    message = str(error.value)
    assert FILES[1] in message
    assert SHA256["mnist"][FILES[1]] in message
    assert __import__("hashlib").sha256(bad).hexdigest() in message
    assert not (raw_dir("mnist", tmp_path) / FILES[1]).exists()
    assert all(".tmp" not in p.name for p in _leftovers(tmp_path))


def test_next_source_is_tried_and_gzip_is_unpacked(real_data_root, tmp_path):
    def unreachable(work: Path) -> dict[str, bytes]:
        raise OSError("no route to host")

    gzipped = {name: gzip.compress(blob, compresslevel=1) for name, blob in _real_blobs(real_data_root).items()}
    lines: list[str] = []
    folder = fetch("mnist", tmp_path, report=lines.append,
                   source_list=[Source("mirror", unreachable), Source("registry", lambda work: gzipped)])
    for name in FILES:
        assert sha256_of(folder / name) == SHA256["mnist"][name]
    assert len(lines) == 4 and all("registry" in line and line.endswith("verified") for line in lines)


def test_every_source_failing_is_one_clear_error(tmp_path):
    def unreachable(work: Path) -> dict[str, bytes]:
        raise OSError("no route to host")

    with pytest.raises(DataIntegrityError, match="mirror: no route to host"):
        fetch("mnist", tmp_path, report=lambda _: None, source_list=[Source("mirror", unreachable)])
    assert _leftovers(tmp_path) == []


def test_loading_a_corrupted_file_names_it_and_both_hashes(mnist_copy):
    path = raw_dir("mnist", mnist_copy) / "t10k-labels-idx1-ubyte"
    blob = bytearray(path.read_bytes())
    blob[-1] ^= 1
    path.write_bytes(bytes(blob))
    with pytest.raises(DataIntegrityError) as error:
        load_split("mnist", train=False, root=mnist_copy)
    message = str(error.value)
    assert str(path) in message and SHA256["mnist"]["t10k-labels-idx1-ubyte"] in message
    assert sha256_of(path) in message and "bayesprune data fetch" in message


def test_unknown_dataset_names_the_valid_choices(tmp_path):
    with pytest.raises(ValueError, match="mnist, fashion-mnist"):
        fetch("cifar10", tmp_path)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_splits_load_as_scaled_tensors(real_data_root, dataset):
    x, y = load_split(dataset, train=False, root=real_data_root)
    assert x.shape == (10000, 784) and x.dtype == torch.float32 and y.shape == (10000,)
    assert x.min() == 0.0 and x.max() == 1.0
    assert torch.bincount(y).tolist() == [1000] * 10 if dataset == "fashion-mnist" else len(y.unique()) == 10
    x126, _ = load_split(dataset, train=False, root=real_data_root, pixel_divisor=126.0, subset=5)
    assert x126.shape == (5, 784) and torch.allclose(x126 * 126.0, x[:5] * 255.0)


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
@pytest.mark.parametrize("train", [False, True])
def test_splits_read_what_torchvision_reads(real_data_root, dataset, train):
    from torchvision import datasets

    x, y = load_split(dataset, train=train, root=real_data_root)
    oracle = getattr(datasets, RAW_FOLDER[dataset])(str(real_data_root), train=train, download=False)
    assert torch.equal(x, oracle.data.reshape(len(x), -1).float() / 255.0) and torch.equal(y, oracle.targets)


def test_a_file_that_is_not_idx_is_refused():
    with pytest.raises(DataIntegrityError, match="not an IDX file"):
        idx_tensor(b"PK\x03\x04 a zip, not images")
    assert idx_tensor(b"\x00\x00\x08\x02\x00\x00\x00\x02\x00\x00\x00\x03" + bytes(range(6))).tolist() == [[0, 1, 2], [3, 4, 5]]


def test_train_split_is_the_full_60000(real_data_root):
    x, y = load_split("mnist", train=True, root=real_data_root)
    assert x.shape == (60000, 784) and y.shape == (60000,)


def test_batches_are_slices_of_one_permutation():
    torch.manual_seed(0)
    batches = list(batch_indices(1050, 100))
    assert [len(b) for b in batches] == [100] * 10 + [50]
    assert sorted(torch.cat(batches).tolist()) == list(range(1050))
