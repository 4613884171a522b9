"""Every page of the built book in headless Chromium, served on 127.0.0.1.

Needs Debian's chromium at /usr/bin/chromium (`make test` installs it; CI runs as root).
These tests never skip: without a browser they fail and say why.
"""

import functools
import http.server
import re
import shutil
import threading
from pathlib import Path

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout
from playwright.sync_api import sync_playwright

from conftest import REPO, book_pages

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run"]
SCREENSHOTS = REPO / "_build" / "screenshots"
# Raw TeX left in the text (outside code) means MathJax did not typeset it.
RAW_MATH = re.compile(r"\\\(|\\\[|\$\$|\$[^$\s][^$]*\$")

TEXT_OUTSIDE_CODE = """() => {
  const main = document.querySelector('main') || document.body;
  const copy = main.cloneNode(true);
  copy.querySelectorAll('pre, code, script, style, mjx-container, .highlight').forEach(e => e.remove());
  return copy.innerText;
}"""


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def site(html):
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_Quiet, directory=str(html)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/"
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    assert Path(CHROMIUM).is_file(), (
        "Chromium is missing: install Debian's `chromium` package (`make test` does this as root)")
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield chromium
        chromium.close()


class Visit:
    """A page opened in a fresh tab, with every console message and request recorded."""

    def __init__(self, browser, site, path, width=1280):
        self.site = site
        self.page = browser.new_page(viewport={"width": width, "height": 900})
        self.errors, self.external, self.failed = [], [], []
        self.page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.page.on("request", lambda r: None if r.url.startswith((site, "data:")) else self.external.append(r.url))
        self.page.on("requestfailed", lambda r: self.failed.append(r.url))
        self.page.on("response", lambda r: self.failed.append(f"{r.status} {r.url}") if r.status >= 400 else None)
        self.page.goto(site + path, wait_until="networkidle")
        try:  # MathJax typesets asynchronously; on a loaded machine it can finish after networkidle
            self.page.wait_for_function(
                "() => Array.from(document.querySelectorAll('span.math, div.math')).every(e => e.querySelector('mjx-container'))",
                timeout=30000)
        except PlaywrightTimeout:
            pass  # the checks below report the untypeset math

    def close(self):
        self.page.close()


@pytest.fixture(scope="module")
def pages(html):
    return book_pages(html)


def test_every_page_is_clean_in_the_browser(browser, site, pages):
    if SCREENSHOTS.exists():
        shutil.rmtree(SCREENSHOTS)
    SCREENSHOTS.mkdir(parents=True)
    problems = {}
    for path in pages:
        visit = Visit(browser, site, path)
        broken_images = visit.page.evaluate(
            "() => Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0).map(i => i.src)")
        raw_math = RAW_MATH.findall(visit.page.evaluate(TEXT_OUTSIDE_CODE))
        untypeset = visit.page.evaluate(
            "() => Array.from(document.querySelectorAll('span.math, div.math')).filter(e => !e.querySelector('mjx-container')).length")
        visit.page.screenshot(path=str(SCREENSHOTS / (path.replace("/", "__").removesuffix(".html") + ".png")),
                              full_page=True)
        found = {"console errors": visit.errors, "external requests": visit.external, "failed requests": visit.failed,
                 "broken images": broken_images, "raw math": raw_math[:5], "untypeset math": untypeset or []}
        found = {k: v for k, v in found.items() if v}
        if found:
            problems[path] = found
        visit.close()
    assert not problems
    assert len(list(SCREENSHOTS.glob("*.png"))) == len(pages)


def test_no_horizontal_scrolling_on_a_phone(browser, site, pages):
    too_wide = {}
    for path in pages:
        visit = Visit(browser, site, path, width=390)
        width = visit.page.evaluate("() => document.documentElement.scrollWidth")
        if width > 390:
            too_wide[path] = width
        visit.close()
    assert not too_wide


def test_every_dropdown_answer_opens(browser, site, pages):
    opened = 0
    for path in pages:
        visit = Visit(browser, site, path)
        dropdowns = visit.page.locator(".admonition.dropdown")
        for i in range(dropdowns.count()):
            box = dropdowns.nth(i)
            assert "toggle-hidden" in box.get_attribute("class"), f"{path}: dropdown {i} starts open"
            box.locator(".admonition-title").click()
            visit.page.wait_for_function("e => !e.classList.contains('toggle-hidden')", arg=box.element_handle())
            assert box.locator("p").last.is_visible()
            opened += 1
        visit.close()
    assert opened >= 3


def test_next_links_and_the_table_of_contents_reach_every_page(browser, site, pages):
    content = {p for p in pages if p not in ("genindex.html", "search.html", "index.html")}
    visit = Visit(browser, site, "intro.html")
    toc = {href.split("#")[0] for href in visit.page.eval_on_selector_all(
        "nav.bd-docs-nav a.reference.internal", "els => els.map(e => new URL(e.href).pathname.slice(1))")}
    toc.add("intro.html")
    assert content <= toc, content - toc
    seen, path = ["intro.html"], "intro.html"
    while True:
        nxt = visit.page.locator("a.right-next")
        if nxt.count() == 0:
            break
        nxt.first.click()
        visit.page.wait_for_load_state("networkidle")
        path = visit.page.url.removeprefix(site).split("#")[0]
        assert path not in seen, f"next-link loop at {path}"
        seen.append(path)
    assert set(seen) == content
    back = visit.page.locator("a.left-prev")
    assert back.count() == 1
    visit.close()


@pytest.mark.parametrize("query", ["roofline", "KV cache"])
def test_search_finds(browser, site, query):
    visit = Visit(browser, site, f"search.html?q={query.replace(' ', '+')}")
    visit.page.wait_for_selector("#search-results ul.search li", timeout=15000)
    assert visit.page.locator("#search-results ul.search li").count() >= 1
    assert not visit.errors
    visit.close()


def test_dark_theme_keeps_figures_on_white(browser, site):
    visit = Visit(browser, site, "chapters/01_rooflines.html")
    visit.page.evaluate("() => document.documentElement.setAttribute('data-theme', 'dark')")
    background = visit.page.eval_on_selector(".cell_output img", "e => getComputedStyle(e).backgroundColor")
    assert background in ("rgb(255, 255, 255)", "white")
    text = visit.page.eval_on_selector("article p", "e => getComputedStyle(e).color")
    assert text != "rgb(0, 0, 0)", "body text must turn light in the dark theme"
    visit.close()
