"""roofline: the compute package behind the book, its explorers and its graded problem sets.

Base SI units throughout (FLOP, byte, second); functions broadcast over numpy
arrays; bad input raises ``ValueError`` naming the argument.

The names below are loaded on first use (PEP 562): ``import roofline`` is cheap, and a
name imports only the module that defines it.
"""

import importlib
import importlib.util

# module -> the public names it defines
_EXPORTS = {
    "core": ["Cost", "TimeBounds", "attainable_flops", "bound_by", "ridge_intensity", "time_bounds"],
    "hardware": ["CHIPS", "Chip", "MemoryLevel", "get_chip", "list_chips"],
    "hierarchy": ["LevelPoint", "bottleneck", "hierarchical_roofline", "memory_stall_fraction", "tiled_matmul_bytes"],
    "models": ["MODELS", "ModelConfig", "get_model", "list_models"],
    "kv_cache": ["kv_cache_bytes"],
    "decode": [
        "DecodeTime",
        "TensorParallelStep",
        "decode_attention_cost",
        "decode_critical_batch",
        "decode_step_cost",
        "decode_step_time",
        "generation_cost",
        "kv_bytes_per_token",
        "kv_flops_saved_per_byte",
        "kv_head_share",
        "kv_recompute_flops",
        "matmul_params",
        "max_batch",
        "model_flops_utilization",
        "model_kv_cache_bytes",
        "prefill_cost",
        "tensor_parallel_decode",
        "tensor_parallel_link_time",
        "tensor_parallel_max_chips",
        "tensor_parallel_share",
    ],
    "deployment": [
        "SCENARIOS",
        "Deployment",
        "Outcome",
        "Scenario",
        "assess",
        "assess_for_student",
        "best_deployment",
        "evaluate",
        "get_scenario",
        "scenario_for",
    ],
    "ops": [
        "ShardedMatmul",
        "critical_batch_size",
        "dot_product",
        "elementwise",
        "matmul",
        "matmul_bytes",
        "matmul_flops",
        "matmul_intensity",
        "per_example_matmul",
        "sharded_matmul",
        "sharded_matmul_critical_d",
        "sharded_matmul_max_chips",
    ],
    "longcontext": [
        "CACHE_POLICIES",
        "DecodeAttentionMeasurement",
        "PartialAttention",
        "SinkExperiment",
        "SplitKTime",
        "StreamingCost",
        "attention",
        "attention_sink_experiment",
        "attention_weights",
        "best_split_k",
        "block_attention",
        "flash_decoding_benchmark",
        "kept_positions",
        "merge_partials",
        "split_k_attention",
        "split_k_decode_time",
        "split_k_layer_time",
        "streaming_cost",
    ],
    "fp8": [
        "FLOAT_FORMATS",
        "FloatFormat",
        "PrecisionOption",
        "amax_scale",
        "attention_error",
        "fp8_decode_options",
        "matmul_error",
        "quantize",
        "round_to_format",
    ],
    "measure": [
        "OverheadModel",
        "RepeatResult",
        "bandwidth_probe",
        "batching_speedup",
        "compute_probe",
        "device_busy_fraction",
        "elementwise_sweep",
        "fit_overhead_model",
        "fusion_speedup",
        "launch_bound_time",
        "model_time",
        "numpy_call_rate",
        "python_add_rate",
        "recorded_measurements",
        "repeat_benchmark",
        "repeat_bytes",
        "repeat_knee",
        "scaling_test",
        "time_call",
    ],
    "serving": [
        "ChunkedPrefill",
        "Request",
        "RequestTrace",
        "ServingResult",
        "best_chunk_size",
        "chunked_prefill",
        "iteration_cost",
        "iteration_time",
        "request_stream",
        "simulate",
    ],
    "prefix_cache": ["Lease", "PrefixCache", "ReuseReport", "chat_workload", "kv_blocks", "replay_prefix_cache"],
    "plot_style": ["color", "finish", "new_axes", "new_panels"],
    "plot_rooflines": ["plot_hierarchical_roofline", "plot_roofline"],
    "plot_memory": ["plot_memory_bars", "plot_streaming_memory"],
    "plot_trends": ["plot_growth_trends"],
    "plot_sweeps": [
        "plot_chunked_prefill",
        "plot_inference_profiles",
        "plot_prefix_reuse",
        "plot_repeat_panels",
        "plot_serving",
        "plot_sink_attention",
        "plot_split_k",
    ],
    "trends": [
        "GrowthFit",
        "fit_growth",
        "fit_series",
        "gap_doubling_years",
        "list_series",
        "load_series",
        "ridge_points_over_time",
    ],
    "remedies": [
        "Remedy",
        "compression_ratio",
        "memory_bound_speedup",
        "pruned_weight_bytes",
        "weight_bytes",
        "weight_remedies",
    ],
    "training": [
        "MODEL_STATE_BYTES",
        "TrainingMemory",
        "activation_bytes",
        "largest_trainable_params",
        "model_state_breakdown",
        "model_state_bytes",
        "published_training_memory",
        "recompute_flops_overhead",
        "training_memory",
    ],
    "transformer": [
        "ATTENTION_CORE",
        "decoder_cost",
        "encoder_cost",
        "layer_costs",
        "output_head_cost",
        "parameter_count",
        "roofline_latency",
    ],
    "units": [
        "DTYPE_BYTES",
        "dtype_bytes",
        "format_bandwidth",
        "format_bytes",
        "format_factor",
        "format_flop_count",
        "format_flops",
        "format_intensity",
        "format_si",
        "format_time",
    ],
    "workloads": ["WORKLOADS", "Workload", "get_workload"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    """Import the module that defines ``name`` (or the submodule ``name``) on first use."""
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)
    elif importlib.util.find_spec(f"{__name__}.{name}") is not None:
        value = importlib.import_module(f".{name}", __name__)
    else:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    globals()[name] = value
    return value


def __dir__():
    return sorted(set(globals()) | set(__all__))
