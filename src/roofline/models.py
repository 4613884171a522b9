"""The model-config table: transformer shapes the chapters use, each with its source."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder or encoder transformer.

    ``n_kv_heads < n_heads`` means grouped-query attention (GQA); ``n_kv_heads == 1``
    is multi-query attention (MQA); equal counts are multi-head attention (MHA).
    ``sliding_window`` is the attention window in tokens (``None`` = full attention).
    ``gated_mlp`` marks a SwiGLU MLP with three matrices (Llama, Mistral) instead of two.
    ``tied_embeddings``: the output head reuses the input embedding matrix (GPT-2, BERT);
    ``False`` means a separate ``vocab_size x d_model`` head (Llama, Mistral).
    """

    model_id: str
    n_layers: int
    d_model: int
    n_heads: int
    n_kv_heads: int
    head_dim: int
    d_ff: int
    vocab_size: int
    max_seq_len: int
    source: str
    sliding_window: int | None = None
    gated_mlp: bool = False
    tied_embeddings: bool = True

    def __post_init__(self):
        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "max_seq_len"):
            value = getattr(self, name)
            if not isinstance(value, int) or value <= 0:
                raise ValueError(f"{name} must be a positive integer; got {value!r}")
        if self.n_heads % self.n_kv_heads:
            raise ValueError(
                f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})"
            )

    @property
    def attention(self) -> str:
        """``"MHA"``, ``"GQA"`` or ``"MQA"``."""
        if self.n_kv_heads == self.n_heads:
            return "MHA"
        return "MQA" if self.n_kv_heads == 1 else "GQA"


_HF = "Hugging Face config.json of "

MODELS: dict[str, ModelConfig] = {
    m.model_id: m
    for m in [
        ModelConfig("gpt-2", 12, 768, 12, 12, 64, 3072, 50257, 1024,
                    _HF + "openai-community/gpt2 (n_layer 12, n_embd 768, n_head 12, n_positions 1024); Radford et al. 2019"),
        ModelConfig("bert-base", 12, 768, 12, 12, 64, 3072, 30522, 512,
                    _HF + "google-bert/bert-base-uncased; Devlin et al. 2019, BERT_BASE (L=12, H=768, A=12)"),
        ModelConfig("bert-large", 24, 1024, 16, 16, 64, 4096, 30522, 512,
                    _HF + "google-bert/bert-large-uncased; Devlin et al. 2019, BERT_LARGE (L=24, H=1024, A=16)"),
        ModelConfig("gpt-3-175b", 96, 12288, 96, 96, 128, 49152, 50257, 2048,
                    "Brown et al. 2020, Language Models are Few-Shot Learners, Table 2.1 (n_layers 96, d_model 12288, n_heads 96, d_head 128, d_ff = 4 d_model)"),
        ModelConfig("llama-2-7b", 32, 4096, 32, 32, 128, 11008, 32000, 4096,
                    _HF + "meta-llama/Llama-2-7b-hf; Touvron et al. 2023, Llama 2, Table 1", gated_mlp=True, tied_embeddings=False),
        ModelConfig("llama-2-13b", 40, 5120, 40, 40, 128, 13824, 32000, 4096,
                    _HF + "meta-llama/Llama-2-13b-hf; Touvron et al. 2023, Llama 2, Table 1", gated_mlp=True, tied_embeddings=False),
        ModelConfig("llama-2-70b", 80, 8192, 64, 8, 128, 28672, 32000, 4096,
                    _HF + "meta-llama/Llama-2-70b-hf (num_key_value_heads 8: GQA); Touvron et al. 2023, Llama 2, Table 1",
                    gated_mlp=True, tied_embeddings=False),
        ModelConfig("llama-3-8b", 32, 4096, 32, 8, 128, 14336, 128256, 8192,
                    _HF + "meta-llama/Meta-Llama-3-8B (num_key_value_heads 8)", gated_mlp=True, tied_embeddings=False),
        ModelConfig("llama-3-70b", 80, 8192, 64, 8, 128, 28672, 128256, 8192,
                    _HF + "meta-llama/Meta-Llama-3-70B (num_key_value_heads 8)", gated_mlp=True, tied_embeddings=False),
        ModelConfig("mistral-7b", 32, 4096, 32, 8, 128, 14336, 32000, 32768,
                    _HF + "mistralai/Mistral-7B-v0.1 (num_key_value_heads 8, sliding_window 4096); Jiang et al. 2023",
                    sliding_window=4096, gated_mlp=True, tied_embeddings=False),
    ]
}


def get_model(model_id) -> ModelConfig:
    """The :class:`ModelConfig` with id ``model_id`` (e.g. ``"llama-2-70b"``); a ModelConfig is returned as is."""
    if isinstance(model_id, ModelConfig):
        return model_id
    if not isinstance(model_id, str) or model_id.lower() not in MODELS:
        raise ValueError(f"model_id must be one of {list_models()}; got {model_id!r}")
    return MODELS[model_id.lower()]


def list_models() -> list[str]:
    """All model ids, in table order."""
    return list(MODELS)
