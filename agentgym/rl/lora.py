"""LoRA adapters through peft: wrap, merge, save, load.

The trained model gets low-rank adapters on its linear layers (``TrainConfig.lora``);
only those train. peft injects the adapter layers into the model object in place, so
a policy that samples from that object (``HFPolicy.model``) samples from the adapted
model at once. Three ways out:

- :func:`save_adapter` / :func:`load_adapter`: the adapter alone (megabytes), in
  peft's format;
- :func:`merged_state_dict`: the base weights plus ``(alpha / r) B A``, under the
  original parameter names, computed out of place (the trained model is untouched);
  this is what a serving engine loads (:class:`MergedWeights` for ``load_weights``);
- :func:`save_merged`: those merged weights as a plain transformers checkpoint.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from agentgym.errors import require
from agentgym.rl.config import LoraConfig

__all__ = [
    "apply_lora",
    "merged_state_dict",
    "MergedWeights",
    "save_adapter",
    "load_adapter",
    "save_merged",
]


def _peft() -> Any:
    return require("peft", "train", "LoRA training")


def apply_lora(model: Any, config: LoraConfig) -> Any:
    """Add adapters to ``model`` (in place) and return the peft model around it.

    Only the adapter parameters require gradients afterwards.

    Example:
        >>> from transformers import AutoModelForCausalLM
        >>> from agentgym.policies.tinymodels import build_tiny_chat_model
        >>> import tempfile
        >>> path = build_tiny_chat_model(tempfile.mkdtemp() + "/m")
        >>> model = AutoModelForCausalLM.from_pretrained(path)
        >>> peft_model = apply_lora(model, LoraConfig(rank=4, target_modules=["q_proj"]))
        >>> sorted({n.split(".")[-2] for n, p in peft_model.named_parameters() if p.requires_grad})
        ['default']
    """
    peft = _peft()
    targets: Any = config.target_modules
    if targets == ["all-linear"]:
        targets = "all-linear"
    lora = peft.LoraConfig(
        r=config.rank,
        lora_alpha=config.alpha,
        target_modules=targets,
        lora_dropout=config.dropout,
        bias="none",
        task_type="CAUSAL_LM",
    )
    return peft.get_peft_model(model, lora)


def merged_state_dict(peft_model: Any) -> dict[str, Any]:
    """The base model's state dict with every active adapter merged in, original names.

    ``W' = W + (alpha / r) B A`` per adapted layer, computed out of place.
    """
    from peft.tuners.tuners_utils import BaseTunerLayer

    base = peft_model.get_base_model()
    out: dict[str, Any] = {}
    for key, tensor in base.state_dict().items():
        if "lora_" in key:
            continue
        out[key.replace(".base_layer.", ".")] = tensor.detach()
    for name, module in base.named_modules():
        if not isinstance(module, BaseTunerLayer) or not hasattr(module, "get_delta_weight"):
            continue
        if module.disable_adapters:
            continue
        key = f"{name}.weight"
        delta = None
        for adapter in module.active_adapters:
            if adapter in getattr(module, "lora_A", {}):
                d = module.get_delta_weight(adapter).detach()
                delta = d if delta is None else delta + d
        if delta is not None:
            out[key] = out[key] + delta.to(out[key].dtype)
    return out


class MergedWeights:
    """Something with a ``state_dict()`` (the merged weights), for ``policy.load_weights``.

    ``VLLMPolicy.load_weights(model)`` reads ``model.state_dict()``; with LoRA the
    trainer hands it this view instead of the adapted model.
    """

    def __init__(self, peft_model: Any) -> None:
        self._model = peft_model

    def state_dict(self) -> dict[str, Any]:
        """The merged weights under the base model's parameter names."""
        return merged_state_dict(self._model)

    def save_pretrained(self, path: str | Path) -> None:
        """Write the merged model to ``path`` (what a serving engine loads)."""
        save_merged(self._model, path)


def save_adapter(peft_model: Any, path: str | Path) -> Path:
    """Write the adapter (weights and peft config) to ``path``; returns it."""
    out = Path(path)
    peft_model.save_pretrained(out)
    return out


def load_adapter(peft_model: Any, path: str | Path) -> None:
    """Load adapter weights saved by :func:`save_adapter` into ``peft_model`` (in place)."""
    peft = _peft()
    import torch

    path = Path(path)
    st = path / "adapter_model.safetensors"
    if st.exists():
        from safetensors.torch import load_file

        weights = load_file(str(st))
    else:
        weights = torch.load(path / "adapter_model.bin", map_location="cpu")
    result = peft.set_peft_model_state_dict(peft_model, weights)
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        from agentgym.errors import ConfigError

        raise ConfigError(
            f"adapter at {path} does not fit this model: unexpected keys {unexpected[:5]}"
        )


def save_merged(peft_model: Any, path: str | Path, tokenizer: Any = None) -> Path:
    """Write base + adapter merged as a plain transformers checkpoint (for serving)."""
    out = Path(path)
    base = peft_model.get_base_model()
    base.save_pretrained(out, state_dict=merged_state_dict(peft_model))
    if tokenizer is not None:
        tokenizer.save_pretrained(out)
    return out
