"""roofline: the compute package behind the book, its explorers and its graded problem sets.

Base SI units throughout (FLOP, byte, second); functions broadcast over numpy
arrays; bad input raises ``ValueError`` naming the argument.
"""

from .core import TimeBounds, attainable_flops, bound_by, ridge_intensity, time_bounds
from .hardware import CHIPS, Chip, MemoryLevel, get_chip, list_chips
from .hierarchy import LevelPoint, bottleneck, hierarchical_roofline, memory_stall_fraction, tiled_matmul_bytes
from .models import MODELS, ModelConfig, get_model, list_models
from .kv_cache import kv_cache_bytes
from .decode import (
    DecodeTime,
    StepCost,
    TensorParallelStep,
    decode_critical_batch,
    decode_step_cost,
    decode_step_time,
    generation_cost,
    kv_bytes_per_token,
    kv_flops_saved_per_byte,
    kv_recompute_flops,
    matmul_params,
    max_batch,
    model_kv_cache_bytes,
    prefill_cost,
    tensor_parallel_decode,
)
from .ops import (
    OpCost,
    ShardedMatmul,
    critical_batch_size,
    dot_product,
    elementwise,
    matmul,
    matmul_bytes,
    matmul_flops,
    matmul_intensity,
    per_example_matmul,
    sharded_matmul,
    sharded_matmul_critical_d,
    sharded_matmul_max_chips,
)
from .longcontext import (
    CACHE_POLICIES,
    PartialAttention,
    SinkExperiment,
    SplitKTime,
    StreamingCost,
    attention,
    attention_sink_experiment,
    attention_weights,
    best_split_k,
    block_attention,
    kept_positions,
    merge_partials,
    split_k_attention,
    split_k_decode_time,
    streaming_cost,
)
from .fp8 import (
    FLOAT_FORMATS,
    FloatFormat,
    PrecisionOption,
    amax_scale,
    attention_error,
    fp8_decode_options,
    matmul_error,
    quantize,
    round_to_format,
)
from .measure import (
    OverheadModel,
    RepeatResult,
    batching_speedup,
    bandwidth_probe,
    compute_probe,
    elementwise_sweep,
    fit_overhead_model,
    fusion_speedup,
    model_time,
    numpy_call_rate,
    python_add_rate,
    recorded_measurements,
    repeat_benchmark,
    repeat_bytes,
    repeat_knee,
    scaling_test,
    time_call,
)
from .serving import (
    ChunkedPrefill,
    Request,
    RequestTrace,
    ServingResult,
    best_chunk_size,
    chunked_prefill,
    iteration_cost,
    iteration_time,
    request_stream,
    simulate,
)
from .prefix_cache import Lease, PrefixCache, ReuseReport, chat_workload, kv_blocks, replay_prefix_cache
from .plotting_longcontext import (
    plot_chunked_prefill,
    plot_prefix_reuse,
    plot_serving,
    plot_sink_attention,
    plot_split_k,
    plot_streaming_memory,
)
from .plotting import (
    plot_growth_trends,
    plot_hierarchical_roofline,
    plot_inference_profiles,
    plot_memory_bars,
    plot_repeat_panels,
    plot_roofline,
)
from .trends import (
    GrowthFit,
    fit_growth,
    fit_series,
    gap_doubling_years,
    list_series,
    load_series,
    ridge_points_over_time,
)
from .remedies import (
    Remedy,
    compression_ratio,
    memory_bound_speedup,
    pruned_weight_bytes,
    weight_bytes,
    weight_remedies,
)
from .training import (
    MODEL_STATE_BYTES,
    TrainingMemory,
    activation_bytes,
    largest_trainable_params,
    model_state_breakdown,
    model_state_bytes,
    published_training_memory,
    recompute_flops_overhead,
    training_memory,
)
from .transformer import (
    InferenceCost,
    LayerCost,
    decoder_cost,
    encoder_cost,
    layer_costs,
    parameter_count,
    roofline_latency,
)
from .units import (
    DTYPE_BYTES,
    dtype_bytes,
    format_bandwidth,
    format_bytes,
    format_factor,
    format_flop_count,
    format_flops,
    format_intensity,
    format_si,
    format_time,
)
from .workloads import WORKLOADS, Workload, get_workload

__all__ = [name for name in dir() if not name.startswith("_")]
