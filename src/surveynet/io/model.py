"""The surveynet model format: a directory with ``model.safetensors`` and ``config.json``.

``config.json`` holds ``format_version``, ``pipeline``, ``architecture`` (a registry name),
``config`` (the full architecture config), ``preprocessing`` (grids, line lists, normaliser
statistics...), ``label_names``, ``surveynet_version``, ``training`` (data hash, command, seed)
and, for converted weights, ``source`` (file name and sha256). Loading reads tensors with
``safetensors.numpy`` and JSON: nothing is unpickled and no code next to the weights is imported.
Bundled models live in ``surveynet/models/<name>/``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, ClassVar, TypeVar

import numpy as np
from numpy.typing import NDArray
from safetensors.numpy import load_file, save_file

import surveynet
from surveynet.errors import ModelFormatError

FORMAT_VERSION = 1
WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"


@dataclass
class SavedModel:
    """A model as stored on disk.

    Attributes
    ----------
    tensors : dict of str to ndarray
        ``state_dict``-named tensors (torch layout).
    meta : dict
        The parsed ``config.json``.
    path : Path or None
        Directory it was read from.
    """

    tensors: dict[str, NDArray[Any]]
    meta: dict[str, Any]
    path: Path | None = None
    weights_hash: str = field(default="")

    @property
    def architecture(self) -> str:
        """Registry name of the architecture."""
        return str(self.meta["architecture"])

    @property
    def config(self) -> dict[str, Any]:
        """Architecture config dict."""
        return dict(self.meta.get("config", {}))

    @property
    def preprocessing(self) -> dict[str, Any]:
        """Preprocessing metadata."""
        return dict(self.meta.get("preprocessing", {}))

    @property
    def name(self) -> str:
        """Model name (bundled name or directory name)."""
        return str(self.meta.get("name") or (self.path.name if self.path else "unnamed"))


def file_sha256(path: str | os.PathLike[str], n: int = 16) -> str:
    """SHA-256 hex digest of a file (first ``n`` hex digits)."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()[:n]


def arrays_sha256(arrays: list[NDArray[Any]] | tuple[NDArray[Any], ...], n: int = 16) -> str:
    """SHA-256 of the bytes of arrays (used as the training-data hash)."""
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(str(a.dtype).encode())
        h.update(str(a.shape).encode())
        h.update(a.tobytes())
    return h.hexdigest()[:n]


def save_model(
    outdir: str | os.PathLike[str],
    tensors: dict[str, NDArray[Any]],
    *,
    pipeline: str,
    architecture: str,
    config: dict[str, Any],
    preprocessing: dict[str, Any] | None = None,
    label_names: list[str] | None = None,
    training: dict[str, Any] | None = None,
    source: dict[str, Any] | None = None,
    name: str | None = None,
    overwrite: bool = False,
) -> Path:
    """Write a model directory atomically (a temporary directory renamed at the end).

    Parameters
    ----------
    outdir : path
        Model directory to create.
    tensors : dict
        Tensor name -> numpy array (torch ``state_dict`` names and layout).
    pipeline, architecture : str
        Pipeline name and registered architecture name.
    config : dict
        Full architecture config (enough to rebuild the network).
    preprocessing, label_names, training, source, name
        Metadata stored in ``config.json``.
    overwrite : bool
        Replace an existing directory.

    Returns
    -------
    Path
        ``outdir``.
    """
    out = Path(outdir)
    if out.exists():
        if not overwrite:
            raise FileExistsError(f"{out} exists; pass overwrite=True (--overwrite) to replace it")
    tmp = out.with_name(f"{out.name}.tmp-{os.getpid()}")
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        arrays = {k: np.ascontiguousarray(v).reshape(np.shape(v)) for k, v in tensors.items()}
        save_file(arrays, str(tmp / WEIGHTS_FILE), metadata={"format_version": str(FORMAT_VERSION)})
        meta = {
            "format_version": FORMAT_VERSION,
            "name": name or out.name,
            "pipeline": pipeline,
            "architecture": architecture,
            "config": config,
            "preprocessing": preprocessing or {},
            "label_names": label_names or [],
            "surveynet_version": surveynet.__version__,
            "training": training or {},
        }
        if source is not None:
            meta["source"] = source
        (tmp / CONFIG_FILE).write_text(json.dumps(meta, indent=1, sort_keys=False) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(tmp, out)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def bundled_models_dir() -> Path:
    """Folder of the models shipped inside the package."""
    return Path(str(resources.files("surveynet") / "models"))


def list_bundled_models() -> list[dict[str, Any]]:
    """Name, pipeline, architecture and training command of every bundled model."""
    out = []
    root = bundled_models_dir()
    if root.is_dir():
        for d in sorted(root.iterdir()):
            cfg = d / CONFIG_FILE
            if cfg.is_file():
                meta = json.loads(cfg.read_text())
                out.append(
                    {
                        "name": d.name,
                        "pipeline": meta.get("pipeline", ""),
                        "architecture": meta.get("architecture", ""),
                        "command": meta.get("training", {}).get("command", ""),
                        "path": str(d),
                    }
                )
    return out


def resolve_model_path(model: str | os.PathLike[str]) -> Path:
    """A model directory, or the bundled model of that name."""
    p = Path(model)
    if p.is_dir():
        return p
    bundled = bundled_models_dir() / str(model)
    if bundled.is_dir():
        return bundled
    names = [m["name"] for m in list_bundled_models()]
    raise ModelFormatError(f"{model}: no such model directory or bundled model (bundled: {names})")


def load_model(model: str | os.PathLike[str], *, pipeline: str | None = None) -> SavedModel:
    """Read a model directory (or bundled model name) without unpickling anything.

    Parameters
    ----------
    model : str or path
        Directory or bundled name.
    pipeline : str, optional
        If given, the model must belong to this pipeline.

    Raises
    ------
    ModelFormatError
        Missing files, bad JSON, unsupported format version or wrong pipeline.
    """
    path = resolve_model_path(model)
    cfg = path / CONFIG_FILE
    wfile = path / WEIGHTS_FILE
    for f in (cfg, wfile):
        if not f.is_file():
            raise ModelFormatError(f"{path}: missing {f.name}")
    try:
        meta = json.loads(cfg.read_text())
    except json.JSONDecodeError as exc:
        raise ModelFormatError(f"{cfg}: invalid JSON ({exc})") from exc
    for key in ("format_version", "pipeline", "architecture", "config"):
        if key not in meta:
            raise ModelFormatError(f"{cfg}: missing key {key!r}")
    if int(meta["format_version"]) > FORMAT_VERSION:
        raise ModelFormatError(
            f"{cfg}: format_version {meta['format_version']} is newer than this surveynet "
            f"({FORMAT_VERSION}); upgrade surveynet"
        )
    if pipeline is not None and meta["pipeline"] != pipeline:
        raise ModelFormatError(
            f"{path}: model is for pipeline {meta['pipeline']!r}, not {pipeline!r}"
        )
    try:
        tensors = load_file(str(wfile))
    except Exception as exc:  # safetensors raises its own error types
        raise ModelFormatError(f"{wfile}: unreadable safetensors file ({exc})") from exc
    return SavedModel(tensors=tensors, meta=meta, path=path, weights_hash=file_sha256(wfile))


_T = TypeVar("_T", bound="FromSaved")


class FromSaved:
    """Mixin: ``cls.from_saved(model, **kwargs)`` loads a model, then ``cls(saved, **kwargs)``.

    Classes built on a :class:`SavedModel` take it in their constructor (no I/O there) and get
    this loader; ``PIPELINE`` names the pipeline the model must belong to (``""``: any).
    """

    PIPELINE: ClassVar[str] = ""

    @classmethod
    def from_saved(cls: type[_T], model: str | os.PathLike[str] | SavedModel, **kwargs: Any) -> _T:
        """Load a model directory or bundled name (or take a loaded model) and build the class.

        Parameters
        ----------
        model : str, path or SavedModel
            Model directory, bundled model name, or a model already loaded.
        **kwargs
            Constructor options.

        Returns
        -------
        instance of ``cls``
        """
        saved = (
            model
            if isinstance(model, SavedModel)
            else load_model(model, pipeline=cls.PIPELINE or None)
        )
        return cls(saved, **kwargs)  # type: ignore[call-arg]
