"""Keep every page self-contained and free of console errors.

Jupyter Book 1 always loads sphinx-thebe, which adds its configuration script
twice (a JavaScript error, "THEBE_JS_URL has already been declared") and points
at a CDN. The book does not use Thebe, so its scripts and stylesheet are removed
from every page.
"""


def _drop_thebe(app, pagename, templatename, context, doctree):
    def keep(asset):
        text = f"{getattr(asset, 'filename', asset)} {getattr(asset, 'attributes', {}).get('body', '')}"
        return "thebe" not in text.lower()

    for key in ("script_files", "css_files"):
        if key in context:
            context[key] = [asset for asset in context[key] if keep(asset)]


def setup(app):
    app.connect("html-page-context", _drop_thebe, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
