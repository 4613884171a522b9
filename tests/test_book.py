"""Build the whole book (executing every chapter) and inspect the HTML."""

import re
from html.parser import HTMLParser
from urllib.parse import unquote, urlsplit

import pytest

import roofline as rl

from conftest import book_pages

pytestmark = pytest.mark.slow
REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)=["']((?:https?:)?//[^"']+)""", re.I)


def test_every_toc_page_is_built(html):
    for page in ("intro.html", "chapters/01_rooflines.html", "exercises/ps1_rooflines/ps1_rooflines.html",
                 "chapters/02_memory_wall.html", "exercises/ps2_memory_wall/ps2_memory_wall.html",
                 "chapters/03_overhead.html", "exercises/ps3_overhead/ps3_overhead.html",
                 "chapters/04_kv_cache.html", "exercises/ps4_kv_cache/ps4_kv_cache.html",
                 "chapters/05_long_context.html", "exercises/ps5_long_context/ps5_long_context.html",
                 "chapters/06_serving_at_scale.html", "instructors.html", "appendix/notation.html", "appendix/glossary.html", "appendix/hardware.html",
                 "appendix/bibliography.html"):
        assert (html / page).is_file(), page
    assert not (html / "solutions").exists(), "solutions must never be published"
    assert not (html / "reports").exists(), "execution failure reports were written into the site"


def test_no_page_loads_anything_from_the_internet(html):
    offenders = {}
    for page in html.rglob("*.html"):
        found = REMOTE.findall(page.read_text(encoding="utf-8"))
        if found:
            offenders[str(page.relative_to(html))] = found
    assert not offenders


def test_math_is_rendered_by_a_local_mathjax(html):
    chapter = (html / "chapters/01_rooflines.html").read_text(encoding="utf-8")
    assert "mathjax/tex-chtml.js" in chapter
    assert (html / "_static/mathjax/tex-chtml.js").is_file()


@pytest.mark.parametrize("page, figures", [("chapters/01_rooflines.html", 5), ("chapters/02_memory_wall.html", 6),
                                             ("chapters/03_overhead.html", 4), ("chapters/04_kv_cache.html", 3),
                                             ("chapters/05_long_context.html", 7),
                                             ("chapters/06_serving_at_scale.html", 6)])
def test_images_exist_and_the_explorer_is_a_static_figure(html, page, figures):
    chapter = (html / page).read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*src="([^"]+)"', chapter)
    assert len(images) >= figures
    for src in images:
        assert (html / "chapters" / src).resolve().is_file(), src
    assert "widget-view" not in chapter and "Loading widget" not in chapter
    assert "embed-amd.js" not in chapter and "require.min.js" not in chapter


def test_prose_numbers_come_from_the_package(html):
    text = re.sub(r"<[^>]+>", "", (html / "chapters/01_rooflines.html").read_text(encoding="utf-8"))
    h100, v5e = rl.get_chip("h100-sxm"), rl.get_chip("tpu-v5e")
    assert f"{rl.critical_batch_size(h100.peak_flops(), h100.hbm_bandwidth):.0f} on an H100 SXM" in text
    assert f"{rl.critical_batch_size(v5e.peak_flops(), v5e.hbm_bandwidth):.0f} tokens on a TPU v5e" in text
    assert f"{rl.get_workload('resnet-18').intensity:.2f}, not 16.471" in text
    assert rl.format_flops(19.5e12) + "." in text  # the corrected ResNet-18 ceiling on the A100


def _text(html, page):
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", "", (html / page).read_text(encoding="utf-8")))


def test_memory_wall_numbers_come_from_the_package(html):
    text = _text(html, "chapters/02_memory_wall.html")
    flops, dram = rl.fit_series("peak_flops").growth(), rl.fit_series("dram_bandwidth").growth()
    assert f"peak FLOP/s 37 1997 to 2023 {flops:.3g}x" in text
    assert f"doubles every {rl.gap_doubling_years(flops, dram):.1f} years" in text
    assert f"at 5 cycles the DRAM share is {rl.memory_stall_fraction(0.8, 5):.0%}" in text
    full = rl.activation_bytes("gpt-3-175b", 1, 2048) / rl.activation_bytes("gpt-3-175b", 1, 2048, "full")
    assert f"recomputing whole layers saves {full:.3g}x for 33%" in text
    assert f"stage 2 on 64 devices reaches {16 / rl.model_state_bytes(1, zero_stage=2, n_devices=64):.3g}x" in text
    assert "against the bf16 baseline that is actually deployed the footprint shrinks 4x" in text


def test_overhead_chapter_glues_the_a100_model_and_its_own_measurements(html):
    text = _text(html, "chapters/03_overhead.html")
    a100 = rl.get_chip("a100-40gb")
    knee = rl.repeat_knee(a100.peak_flops("fp32") / 2, a100.hbm_bandwidth)
    assert f"it turns compute-bound at \\(R\\) = {knee:.0f}" in text
    assert f"runs at bandwidth times intensity, {rl.format_flops(a100.hbm_bandwidth / 8)}" in text
    # measured figures are glued: the fitted model's table row holds three SI quantities
    assert re.search(r"overhead per call bandwidth elementwise peak [\d.]+ [nµm]?s [\d.]+ [kMGT]?B/s [\d.]+ [kMGT]?FLOP/s", text)


def test_kv_chapter_corrects_the_seed_with_package_numbers(html):
    text = _text(html, "chapters/04_kv_cache.html")
    real = rl.model_kv_cache_bytes("llama-2-70b", 4096, 8, "fp16") / 2**30
    assert f"so its cache is {real:.3g} GiB, eight times smaller" in text
    assert "which is 80 GiB: the unit is GiB" in text
    h20, a800 = rl.get_chip("h20"), rl.get_chip("a800")
    assert f"in bf16 the A800 can be up to {a800.peak_flops('bf16') / h20.peak_flops('bf16'):.2f} times faster" in text
    # tensor parallelism: the layer-level Megatron model, per-direction links (about 80 and 18, not 148 and 31)
    n_h20, n_a800 = (rl.tensor_parallel_max_chips("llama-2-70b", c) for c in (h20, a800))
    assert f"about {n_h20:.0f} H20s and {n_a800:.0f} A800s" in text
    assert 75 < n_h20 < 85 and 15 < n_a800 < 20
    # the per-model KV table is generated from the model table
    page = (html / "chapters/04_kv_cache.html").read_text(encoding="utf-8")
    for model_id in rl.list_models():
        m = rl.get_model(model_id)
        assert f"<td><code>{model_id}</code></td><td>{m.attention}" in page
    assert "latent 512 + rotary key 64 (for 128 heads)" in page  # DeepSeek-V3's MLA
    assert "window 4096 on 21 of 42 layers" in page  # Gemma 2's alternating local layers
    # encoders cache nothing; GPT-2 (1,024 tokens) is flagged past its context at 4,096
    assert '<td><code>bert-base</code></td><td>MHA</td><td colspan="4">encoder: no KV cache</td>' in page
    gpt2_4k = rl.format_bytes(rl.model_kv_cache_bytes("gpt-2", 4096))
    assert f"<td>{gpt2_4k} (past its context)</td>" in page


def test_long_context_chapter_computes_its_numbers(html):
    text = _text(html, "chapters/05_long_context.html")
    one = rl.split_k_decode_time("llama-3-8b", "h100-sxm", 32768, batch=1)
    best = rl.best_split_k("llama-3-8b", "h100-sxm", 32768, batch=1)
    assert f"split {best.n_splits} ways, {one.time / best.time:.1f} times faster" in text
    sinks = rl.streaming_cost("llama-2-7b", 200_000, "sinks", 4096)
    assert f"but {rl.format_bytes(sinks.peak_kv_bytes)} with a" in text
    # the FP8 tables are generated: every format and every decode option has its row
    for option in rl.fp8_decode_options("llama-3-8b", "h100-sxm", 8192, 16):
        assert f"{option.name} {option.w_dtype} {option.kv_dtype} {option.compute_dtype} {rl.format_time(option.step_time)}" in text
    assert f"e4m3 4 3 448 {rl.matmul_error(fmt='e4m3'):.2%}" in text
    # the split-K model beside the Flash-Decoding measurement: one table row per published row
    for x in rl.flash_decoding_benchmark():
        unsplit, grouped, split = x.modelled("a100-40gb")
        assert (f"{x.batch} {x.context_len:,} {x.flash_attention * 1e6:,.0f} {unsplit.time * 1e6:,.0f} "
                f"{x.flash_decoding * 1e6:,.0f} {split.time * 1e6:,.0f} {x.flash_attention / x.flash_decoding:.1f} "
                f"{unsplit.time / split.time:.1f} {unsplit.time / grouped.time:.1f} {grouped.time / split.time:.1f}") in text
    assert "Problem set 5" in text


def test_every_chapter_has_check_the_source_boxes_and_answers(html):
    for page, boxes in (("chapters/01_rooflines.html", 3), ("chapters/02_memory_wall.html", 7),
                        ("chapters/03_overhead.html", 1), ("chapters/04_kv_cache.html", 3),
                        ("chapters/05_long_context.html", 3)):
        chapter = (html / page).read_text(encoding="utf-8")
        assert chapter.count("Check the source") >= boxes, page
        assert chapter.count('<div class="dropdown admonition">') >= 3, page


class _Links(HTMLParser):
    def __init__(self):
        super().__init__()
        self.ids, self.targets = set(), []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for key in ("href", "src"):
            if attrs.get(key) and not (tag == "link" and key == "href" and attrs.get("rel") == "canonical"):
                self.targets.append(attrs[key])


def _parse(path):
    parser = _Links()
    parser.feed(path.read_text(encoding="utf-8"))
    return parser


def test_no_internal_link_is_broken(html):
    parsed = {p: _parse(html / p) for p in book_pages(html)}
    broken = []
    for page, links in parsed.items():
        for target in links.targets:
            url = urlsplit(target)
            if url.scheme or url.netloc or target.startswith(("mailto:", "javascript:", "data:")):
                continue
            path = (html / page).parent / unquote(url.path) if url.path else html / page
            if path.is_dir():
                path = path / "index.html"
            if not path.exists():
                broken.append(f"{page} -> {target}")
            elif url.fragment and path.suffix == ".html":
                rel = path.resolve().relative_to(html.resolve()).as_posix()
                ids = parsed[rel].ids if rel in parsed else _parse(path).ids
                if url.fragment not in ids:
                    broken.append(f"{page} -> {target} (no such anchor)")
    assert not broken


def test_every_page_with_its_images_is_under_1_5_mb(html):
    for page in book_pages(html):
        size = (html / page).stat().st_size
        for target in _parse(html / page).targets:
            path = (html / page).parent / unquote(urlsplit(target).path)
            if urlsplit(target).path.endswith((".png", ".jpg", ".svg", ".gif")) and path.is_file():
                size += path.stat().st_size
        assert size < 1.5e6, f"{page} weighs {size / 1e6:.2f} MB with its images"


def test_glossary_gives_chinese_terms_and_chapters_link_to_it(html):
    glossary = (html / "appendix/glossary.html").read_text(encoding="utf-8")
    for chinese in ("屋檐模型", "算术强度", "内存墙", "额外开销", "KV 缓存"):
        assert chinese in glossary
    chapter = (html / "chapters/01_rooflines.html").read_text(encoding="utf-8")
    for term in ("term-roofline", "term-arithmetic-intensity", "term-ridge-point", "term-critical-batch-size"):
        assert f"glossary.html#{term}" in chapter


def test_figures_are_numbered_and_cited_works_listed(html):
    chapter = (html / "chapters/01_rooflines.html").read_text(encoding="utf-8")
    for n in range(1, 5):
        assert f"Fig. 1.{n}" in chapter
    bibliography = (html / "appendix/bibliography.html").read_text(encoding="utf-8")
    for title in ("How to Scale Your Model", "Roofline: An Insightful Visual Performance Model", "AI and Memory Wall",
                  "Deep Residual Learning"):
        assert title in bibliography


def test_hardware_appendix_lists_every_chip_with_its_source(html):
    page = (html / "appendix/hardware.html").read_text(encoding="utf-8")
    for chip in rl.CHIPS.values():
        assert f"<code>{chip.chip_id}</code>" in page
    assert page.count("datasheet") >= 5


def test_launch_and_download_buttons_are_configured(html):
    chapter = (html / "chapters/01_rooflines.html").read_text(encoding="utf-8")
    assert "mybinder.org" in chapter and "colab.research.google.com" in chapter and "jupyterhub.example.edu" in chapter
    assert "_sources/chapters/01_rooflines.ipynb" in chapter


def test_chapter_corrections_hold_in_the_built_book(html):
    """The expert review's findings, as the built pages state them (issue 18)."""
    ch1 = _text(html, "chapters/01_rooflines.html")
    h100 = rl.get_chip("h100-sxm")
    assert f"peak, at {rl.format_flops(h100.measured_matmul_flops)}" in ch1  # measured ceilings
    assert "run on the vector units" in ch1 and rl.format_intensity(h100.ridge_intensity("fp32")) in ch1
    assert "stays the bottleneck, its ceiling falling" in ch1  # L1 already limited the 32-wide tile
    ch2 = _text(html, "chapters/02_memory_wall.html")
    flops, dram = rl.fit_series("peak_flops").growth(), rl.fit_series("dram_bandwidth").growth()
    assert f"grows by their ratio, {flops / dram:.2g}x per two years" in ch2
    assert "three times as fast" not in ch2 and "is the only way" not in ch2 and "the only one that helps" not in ch2
    assert "output head" in ch2 and "Speculative decoding" in ch2
    ch3 = _text(html, "chapters/03_overhead.html")
    assert "= 20% of the time" in ch3 and "= 17%" in ch3  # asynchronous and synchronous busy fractions
    assert "The CPU cannot run ahead" not in ch3
    ch4 = _text(html, "chapters/04_kv_cache.html")
    assert "One maximum is optimistic" in ch4 and "not because" not in ch4
    assert "an order of magnitude off" not in ch4 and "consistent with counting both directions of each link" in ch4 and "the domain sets the limit" in ch4
    assert "re-run the whole prefix" in ch4 and "need 2 H100s of 80 GB" in ch4
    ch5 = _text(html, "chapters/05_long_context.html")
    fits = rl.max_batch("llama-3-8b", h100.hbm_capacity, 32768)
    assert f"At 32,768 tokens only {fits:.0f} and 131,072 tokens only" in ch5  # the 32k row does not fit either
    assert "picks the one with the highest throughput" in ch5 and "The best chunk is the largest" not in ch5
    assert "E4M3 has no infinities" in ch5 and "needs no integer calibration" not in ch5
    assert "Read the H100 speed-ups as upper bounds" in ch5 and "did not stream several times the even share" in ch5


def test_serving_at_scale_chapter_computes_its_numbers(html):
    from roofline import serving_scale as sc

    text = _text(html, "chapters/06_serving_at_scale.html")
    page = (html / "chapters/06_serving_at_scale.html").read_text(encoding="utf-8")
    # Llama-3-8B was trained for 8,192 tokens: its crossover lies beyond, and the table says so
    assert (f"<td><code>llama-3-8b</code></td><td>GQA</td><td>{sc.attention_crossover_context('llama-3-8b'):,.0f}"
            " (beyond its 8,192-token context)</td>") in page
    assert f"<td>{sc.attention_crossover_context('deepseek-v3'):,.0f}</td>" in page  # within its 163,840
    assert "<td><code>mistral-7b</code></td><td>GQA</td><td>never</td>" in page
    assert rl.format_intensity(rl.decode_attention_cost("deepseek-v3", 4096).intensity) in text
    spec = sc.speculative_decoding("llama-3-70b", "llama-3-8b", "h200", 0.8, 4, w_dtype="fp8", kv_dtype="fp8")
    assert f"<td>80%</td><td>{spec.tokens_per_step:.2f}</td><td>{spec.speedup:.2f}x</td>" in page
    apart = sc.disaggregated("qwen3-8b", "h100-sxm", 16384)
    assert f"undisturbed step of {rl.format_time(apart.itl)}" in text
    ds = rl.get_model("deepseek-v3")
    assert f"<td><code>deepseek-v3</code></td><td>{ds.parameter_count() / 1e9:.1f}B</td>" in page
    for term in ("Pareto frontier", "speculative decoding", "mixture of experts", "multi-head latent attention",
                 "disaggregated serving", "block scaling"):
        assert f'href="../appendix/glossary.html#term-{term.replace(" ", "-")}"' in page, term
