"""The model table, and the shape arithmetic every cost in the package is built from.

A :class:`ModelConfig` is one transformer's shape; it derives its parameters (total and
per token), its weight matrices, the KV-cache bytes a token adds and the attention FLOPs
of a token at a given context. The rows are read from ``data/models.json``, each with
the configuration file or paper it comes from.

Architectures covered: dense and mixture-of-experts (MoE) MLPs; multi-head, grouped-query,
multi-query and multi-head latent attention (MHA, GQA, MQA, MLA); query widths other than
``d_model`` (``n_heads * head_dim != d_model``, as in Gemma, Qwen3 and gpt-oss); layers
that alternate local (sliding-window) and global attention.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from functools import cached_property

import numpy as np

from .tables import read_json
from .units import check_int, check_positive, dtype_bytes


@dataclass(frozen=True)
class ModelConfig:
    """Shape of a decoder or encoder transformer.

    ``encoder``: a bidirectional encoder (BERT), which generates nothing and caches no keys
    and values. ``n_kv_heads < n_heads`` means grouped-query attention (GQA); ``n_kv_heads == 1``
    is multi-query attention (MQA); equal counts are multi-head attention (MHA).
    ``head_dim`` is the width of one query, key or value head; the query width
    ``n_heads * head_dim`` need not equal ``d_model``.

    ``sliding_window`` is the window of local layers in tokens; ``attention_pattern``
    says which layers are local (``"L"``) or global (``"G"``), repeated over the layers
    (``"LG"``: layer 0 local, layer 1 global, ...); empty means every layer is local when
    there is a window, global otherwise.

    ``gated_mlp`` marks a gated MLP with three matrices (SwiGLU, GeGLU) instead of two.
    ``tied_embeddings``: the output head reuses the input embedding matrix.
    ``norm``, ``biases`` and ``learned_positions`` default to the GPT/BERT style
    (LayerNorm with a bias, biases on every linear layer, learned position embeddings)
    for an ungated model and to the Llama style (RMSNorm, no biases, rotary positions)
    for a gated one. ``norms_per_layer`` (2; Gemma 2: 4), ``qk_norm`` (an RMSNorm of
    ``head_dim`` on queries and on keys, Qwen3), ``attention_sinks`` (one learned logit
    per head, gpt-oss) and ``router_bias`` (DeepSeek's per-expert score bias) complete the
    parameter count.

    Mixture of experts: ``n_experts`` routed experts of width ``expert_d_ff`` (default
    ``d_ff``), ``experts_per_token`` of them per token, plus ``n_shared_experts`` every
    token uses; the first ``dense_layers`` layers keep a dense MLP of width ``d_ff``.

    Multi-head latent attention (DeepSeek): ``kv_lora_rank > 0``. Keys and values are
    rebuilt from a cached latent of ``kv_lora_rank`` plus a shared rotary key of
    ``rope_head_dim``; queries go through a ``q_lora_rank`` bottleneck (0: none). A
    head's query/key width is ``head_dim + rope_head_dim``, its value width ``v_head_dim``.
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
    encoder: bool = False  # a bidirectional encoder (BERT): it generates nothing and keeps no KV cache
    sliding_window: int | None = None
    gated_mlp: bool = False
    tied_embeddings: bool = True
    attention_pattern: str = ""
    norm: str | None = None
    biases: bool | None = None
    learned_positions: bool | None = None
    norms_per_layer: int = 2
    qk_norm: bool = False
    attention_sinks: bool = False
    n_experts: int = 0
    experts_per_token: int = 0
    n_shared_experts: int = 0
    expert_d_ff: int = 0
    dense_layers: int = 0
    router_bias: bool = False
    q_lora_rank: int = 0
    kv_lora_rank: int = 0
    rope_head_dim: int = 0
    v_head_dim: int = 0
    published_parameters: str = ""

    def __post_init__(self):
        for name in ("n_layers", "d_model", "n_heads", "n_kv_heads", "head_dim", "d_ff", "vocab_size", "max_seq_len",
                     "norms_per_layer"):
            check_int(name, getattr(self, name), minimum=1)
        for name in ("n_experts", "experts_per_token", "n_shared_experts", "expert_d_ff", "dense_layers",
                     "q_lora_rank", "kv_lora_rank", "rope_head_dim", "v_head_dim"):
            check_int(name, getattr(self, name), minimum=0)
        if self.n_heads % self.n_kv_heads:
            raise ValueError(f"n_heads ({self.n_heads}) must be a multiple of n_kv_heads ({self.n_kv_heads})")
        if self.sliding_window is not None:
            check_int("sliding_window", self.sliding_window, minimum=1)
        if set(self.attention_pattern) - {"L", "G"}:
            raise ValueError(f"attention_pattern must be made of 'L' and 'G'; got {self.attention_pattern!r}")
        if "L" in self.attention_pattern and self.sliding_window is None:
            raise ValueError("attention_pattern has local layers ('L'), so sliding_window must be set")
        if self.n_experts and not 1 <= self.experts_per_token <= self.n_experts:
            raise ValueError(f"experts_per_token must be between 1 and n_experts ({self.n_experts}); "
                             f"got {self.experts_per_token}")
        if not self.n_experts and (self.experts_per_token or self.n_shared_experts or self.dense_layers):
            raise ValueError("experts_per_token, n_shared_experts and dense_layers need n_experts > 0")
        if self.dense_layers > self.n_layers:
            raise ValueError(f"dense_layers must be at most n_layers ({self.n_layers}); got {self.dense_layers}")
        if (self.q_lora_rank or self.rope_head_dim) and not self.kv_lora_rank:
            raise ValueError("q_lora_rank and rope_head_dim describe latent attention: set kv_lora_rank too")
        gpt_style = not self.gated_mlp
        for name, default in (("norm", "layernorm" if gpt_style else "rmsnorm"), ("biases", gpt_style),
                              ("learned_positions", gpt_style)):
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.norm not in ("layernorm", "rmsnorm"):
            raise ValueError(f"norm must be 'layernorm' or 'rmsnorm'; got {self.norm!r}")

    # --- attention layout -------------------------------------------------------------

    @property
    def attention(self) -> str:
        """``"MLA"``, ``"MHA"``, ``"GQA"`` or ``"MQA"``."""
        if self.kv_lora_rank:
            return "MLA"
        if self.n_kv_heads == self.n_heads:
            return "MHA"
        return "MQA" if self.n_kv_heads == 1 else "GQA"

    @property
    def qk_head_dim(self) -> int:
        """Width of one head's query and key (MLA: its non-rotary and rotary parts)."""
        return self.head_dim + self.rope_head_dim

    @property
    def value_head_dim(self) -> int:
        """Width of one head's value."""
        return self.v_head_dim or self.head_dim

    def layer_windows(self) -> tuple:
        """Per layer, the tokens it attends to at most: ``sliding_window`` (local) or ``None`` (global)."""
        pattern = self.attention_pattern or ("L" if self.sliding_window else "G")
        return tuple(self.sliding_window if pattern[i % len(pattern)] == "L" else None for i in range(self.n_layers))

    @cached_property
    def _window_counts(self) -> tuple:
        windows = self.layer_windows()
        return tuple((windows.count(w), w) for w in dict.fromkeys(windows))

    def window_counts(self) -> tuple:
        """``(layers, window)`` for each distinct window (``None``: global layers); computed once per model."""
        return self._window_counts

    def attended_tokens(self, tokens):
        """Tokens one query attends to at a context of ``tokens``, summed over the layers."""
        return self._attended(check_positive("tokens", tokens, allow_zero=True))

    def _attended(self, tokens):
        """:meth:`attended_tokens` of an already checked ``tokens``."""
        return sum(n * (tokens if w is None else np.minimum(tokens, w)) for n, w in self._window_counts)

    @property
    def cache_heads(self) -> int:
        """Heads whose keys and values the cache stores apart: ``n_kv_heads``; 1 for MLA (one shared latent)."""
        return 1 if self.kv_lora_rank else self.n_kv_heads

    # --- weight matrices and parameters ------------------------------------------------

    @property
    def is_moe(self) -> bool:
        return self.n_experts > 0

    @property
    def moe_layers(self) -> int:
        """Layers whose MLP is a mixture of experts (the last ones)."""
        return self.n_layers - self.dense_layers if self.is_moe else 0

    @property
    def dense_mlp_layers(self) -> int:
        """Layers with a dense MLP of width ``d_ff``: all of a dense model, the first ``dense_layers`` of an MoE one."""
        return self.n_layers - self.moe_layers

    def is_moe_layer(self, layer: int) -> bool:
        """Whether layer ``layer`` (0-based) has a mixture-of-experts MLP."""
        return layer >= self.dense_mlp_layers

    def attention_matmuls(self) -> list[tuple]:
        """``(name, k, n)`` of each weight matrix of one layer's attention, ``[k, n]`` mapping k to n features."""
        d, h = self.d_model, self.n_heads
        out = ("output projection", h * self.value_head_dim, d)
        if not self.kv_lora_rank:
            return [("Q projection", d, h * self.head_dim), ("K, V projections", d, 2 * self.n_kv_heads * self.head_dim),
                    out]
        query = ([("Q down", d, self.q_lora_rank), ("Q up", self.q_lora_rank, h * self.qk_head_dim)]
                 if self.q_lora_rank else [("Q projection", d, h * self.qk_head_dim)])
        return [*query, ("KV down", d, self.kv_lora_rank + self.rope_head_dim),
                ("KV up", self.kv_lora_rank, h * (self.head_dim + self.value_head_dim)), out]

    def mlp_matmuls(self, width: int | None = None) -> list[tuple]:
        """``(name, k, n)`` of an MLP's matrices: up, gate (gated MLPs), down; ``width`` defaults to ``d_ff``."""
        d, f = self.d_model, width or self.d_ff
        gate = [("MLP gate", d, f)] if self.gated_mlp else []
        return [("MLP up", d, f), *gate, ("MLP down", f, d)]

    @staticmethod
    def matrix_weights(matmuls) -> int:
        """Weights of ``(name, k, n)`` matrices: ``sum k n`` (no biases)."""
        return sum(k * n for _, k, n in matmuls)

    def _linear(self, matmuls) -> int:
        """Parameters of linear layers: weights, plus biases when the model has them."""
        return sum(k * n + (n if self.biases else 0) for _, k, n in matmuls)

    def _norm(self, width: int) -> int:
        return width * (2 if self.norm == "layernorm" else 1)

    def attention_parameters(self) -> int:
        """One layer's attention: projections, their norms (MLA, qk-norm) and sinks."""
        extra = self.n_heads if self.attention_sinks else 0
        if self.qk_norm:
            extra += 2 * self._norm(self.head_dim)
        if self.kv_lora_rank:
            extra += self._norm(self.kv_lora_rank) + (self._norm(self.q_lora_rank) if self.q_lora_rank else 0)
        return self._linear(self.attention_matmuls()) + extra

    @property
    def expert_width(self) -> int:
        return self.expert_d_ff or self.d_ff

    def expert_parameters(self) -> int:
        """One expert's MLP (routed or shared)."""
        return self._linear(self.mlp_matmuls(self.expert_width))

    def router_parameters(self) -> int:
        """One MoE layer's router: ``d_model x n_experts``, with a bias where the model has one."""
        return self.d_model * self.n_experts + (self.n_experts if self.biases or self.router_bias else 0)

    def layer_parameters(self, layer: int, experts: float | None = None) -> float:
        """Parameters of layer ``layer`` (0-based); ``experts`` routed experts counted (default: all).

        ``experts=experts_per_token`` gives the parameters one token uses.
        """
        check_int("layer", layer, minimum=0)
        if layer >= self.n_layers:
            raise ValueError(f"layer must be below n_layers ({self.n_layers}); got {layer}")
        common = self.attention_parameters() + self.norms_per_layer * self._norm(self.d_model)
        if not self.is_moe_layer(layer):
            return common + self._linear(self.mlp_matmuls())
        routed = self.n_experts if experts is None else experts
        return common + self.router_parameters() + (self.n_shared_experts + routed) * self.expert_parameters()

    def _layers(self, experts=None) -> float:
        dense = self.dense_mlp_layers
        total = dense * self.layer_parameters(0, experts) if dense else 0
        if self.moe_layers:
            total = total + self.moe_layers * self.layer_parameters(self.n_layers - 1, experts)
        return total

    def embedding_parameters(self) -> int:
        """Input embeddings: tokens, plus learned positions where the model has them."""
        return (self.vocab_size + (self.max_seq_len if self.learned_positions else 0)) * self.d_model

    def parameter_count(self) -> int:
        """All parameters: layers, input embeddings, final norm and an untied output head.

        Left out: BERT's token-type embeddings and pooler, DeepSeek-V3's multi-token
        prediction module (neither takes part in generating a token).
        """
        head = 0 if self.tied_embeddings else self.vocab_size * self.d_model
        return int(self._layers() + self.embedding_parameters() + self._norm(self.d_model) + head)

    def active_parameter_count(self, embedding: bool = True) -> int:
        """Parameters one token uses: its experts only, the output head always.

        ``embedding=False`` leaves out the input embedding table, of which a token reads
        one row (gpt-oss's model card counts so; Mixtral's, Qwen's and DeepSeek's count
        it). For a dense model with ``embedding=True`` this is :meth:`parameter_count`.
        """
        head = self.vocab_size * self.d_model
        tables = (self.embedding_parameters() - (head if self.tied_embeddings else 0)) if embedding else 0
        return int(self._layers(self.experts_per_token) + tables + self._norm(self.d_model) + head)

    def experts_touched(self, tokens):
        """Expected distinct routed experts per MoE layer when ``tokens`` tokens are routed.

        Each token picks ``k`` of ``E`` experts; with routing uniform and independent, an
        expert is missed by all ``n`` tokens with probability ``(1 - k/E)^n``, so
        ``E (1 - (1 - k/E)^n)``: ``k`` for one token, close to ``E`` for a large batch.
        """
        n = check_positive("tokens", tokens)
        if not self.is_moe:
            return 0.0 * np.asarray(n) if np.ndim(n) else 0.0
        E, k = self.n_experts, self.experts_per_token
        touched = E * (1 - (1 - k / E) ** np.asarray(n, dtype=float))
        return float(touched) if touched.ndim == 0 else touched

    def matmul_parameters(self, tokens=1):
        """Weights the matmuls of a step over ``tokens`` tokens read: all layers and the output head.

        A dense model reads every matrix whatever the batch; an MoE layer reads its router,
        its shared experts and the routed experts the tokens touch
        (:meth:`experts_touched`). Biases, norms and the embedding lookup (one row per
        token) are left out. With ``tokens=1`` these are the weights each token
        multiplies: two FLOPs per weight per token.
        """
        touched = self.experts_touched(tokens)
        weights = (self.n_layers * self.matrix_weights(self.attention_matmuls())
                   + self.dense_mlp_layers * self.matrix_weights(self.mlp_matmuls()))
        if self.moe_layers:
            expert = self.matrix_weights(self.mlp_matmuls(self.expert_width))
            weights = weights + self.moe_layers * (self.d_model * self.n_experts
                                                   + (self.n_shared_experts + touched) * expert)
        weights = weights + self.vocab_size * self.d_model
        return float(weights) if np.ndim(weights) == 0 else weights

    # --- KV cache and attention ----------------------------------------------------------

    def kv_elements_per_token_layer(self, as_mha: bool = False) -> int:
        """Values one token caches in one layer: ``2 H_kv d_h`` (K and V); MLA: ``latent + rotary key``.

        ``as_mha=True`` counts a full key and value for every query head: the mistake of
        treating a GQA model as multi-head (and the cache MLA avoids).
        """
        if as_mha:
            return self.n_heads * (self.qk_head_dim + self.value_head_dim)
        if self.kv_lora_rank:
            return self.kv_lora_rank + self.rope_head_dim
        return 2 * self.n_kv_heads * self.head_dim

    def kv_bytes_per_token(self, dtype: str = "bf16", as_mha: bool = False) -> float:
        """KV-cache bytes one token adds across all layers (while no window is full)."""
        return float(self.n_layers * self.kv_elements_per_token_layer(as_mha) * dtype_bytes(dtype))

    def kv_cache_bytes(self, tokens, dtype: str = "bf16", as_mha: bool = False):
        """KV-cache bytes of one sequence of ``tokens`` tokens; a local layer keeps its last ``sliding_window``."""
        t = check_positive("tokens", tokens, allow_zero=True)
        per_layer = self.kv_elements_per_token_layer(as_mha) * dtype_bytes(dtype)
        total = self._attended(t) * per_layer
        return float(total) if np.ndim(total) == 0 else total

    def attention_widths(self, absorbed: bool = True) -> tuple:
        """``(score, value)`` widths per head: FLOPs per attended token and head are ``2 (score + value)``.

        MHA/GQA/MQA: ``head_dim`` each. MLA ``absorbed`` (how decode kernels run it: the
        key and value up-projections folded into the query and output, attention done
        on the cached latent): ``latent + rotary`` and ``latent``; not absorbed (prefill):
        ``head_dim + rope_head_dim`` and ``v_head_dim``.
        """
        if self.kv_lora_rank and absorbed:
            return self.kv_lora_rank + self.rope_head_dim, self.kv_lora_rank
        return self.qk_head_dim, self.value_head_dim

    def attention_flops(self, context, absorbed: bool = True):
        """FLOPs of one token's attention over ``context`` tokens, all layers.

        ``2 H (score + value) min(T, window)`` per layer (:meth:`attention_widths`):
        ``4 L H d_h T`` for a model of global MHA/GQA layers.
        """
        t = check_positive("context", context, allow_zero=True)
        score, value = self.attention_widths(absorbed)
        total = 2 * self.n_heads * (score + value) * self._attended(t)
        return float(total) if np.ndim(total) == 0 else total

    def causal_attention_flops(self, tokens, absorbed: bool = False):
        """FLOPs of causal attention over a prompt of ``tokens`` tokens, all layers (prefill).

        Token ``t`` attends to about ``t`` tokens (``min(t, window)`` in a local layer): per
        layer ``2 H (score + value)`` times ``T^2 / 2``, or ``T W - W^2 / 2`` once ``T > W``.
        """
        t = check_positive("tokens", tokens, allow_zero=True)
        score, value = self.attention_widths(absorbed)
        full = np.multiply(t, t) / 2
        pairs = sum(n * (full if w is None else np.where(np.greater(t, w), np.multiply(t, w) - w**2 / 2, full))
                    for n, w in self._window_counts)
        total = 2 * self.n_heads * (score + value) * pairs
        return float(total) if np.ndim(total) == 0 else total


def _load_models() -> dict[str, ModelConfig]:
    known = {f.name for f in fields(ModelConfig)}
    models = {}
    for row in read_json("models.json"):
        unknown = set(row) - known
        if unknown:
            raise ValueError(f"data/models.json row {row.get('model_id')!r} has unknown fields {sorted(unknown)}")
        models[row["model_id"]] = ModelConfig(**row)
    return models


MODELS: dict[str, ModelConfig] = _load_models()


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
