"""Build the whole book (executing every chapter) and inspect the HTML."""

import re
from pathlib import Path

import pytest

import roofline as rl

from conftest import REPO, run

pytestmark = pytest.mark.slow
REMOTE = re.compile(r"""<(?:script|link|img|iframe)\b[^>]*?\b(?:src|href)=["']((?:https?:)?//[^"']+)""", re.I)


@pytest.fixture(scope="module")
def html(tmp_path_factory):
    out = tmp_path_factory.mktemp("book")
    result = run([str(Path(__import__("sys").executable).parent / "jupyter-book"), "build", str(REPO),
                  "--path-output", str(out), "--builder", "html", "-W", "--keep-going"], cwd=REPO)
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-5000:]
    return out / "_build" / "html"


def test_every_toc_page_is_built(html):
    for page in ("intro.html", "chapters/01_rooflines.html", "exercises/ps1_rooflines/ps1_rooflines.html",
                 "instructors.html"):
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


def test_images_exist_and_the_explorer_is_a_static_figure(html):
    chapter = (html / "chapters/01_rooflines.html").read_text(encoding="utf-8")
    images = re.findall(r'<img[^>]*src="([^"]+)"', chapter)
    assert len(images) >= 5
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
