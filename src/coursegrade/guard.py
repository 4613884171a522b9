"""Undo a submission's tampering with the kernel before each test cell runs.

Imported in the grading kernel at start-up (before any student code), it snapshots
the modules hidden tests rely on (builtins, math, numpy, numpy.testing);
:func:`install` snapshots IPython's hooks. :func:`reset` is evaluated by the grader through an
``execute_request``'s ``user_expressions``, which IPython evaluates without
passing through input transformers, so a transformer that rewrites cells cannot
intercept it. It restores:

- module attributes replaced or added (``numpy.isclose = ...``, ``math.isclose = ...``,
  ``builtins.isinstance = ...``);
- IPython input and AST transformers, event callbacks and shell methods overridden
  on the instance (``shell.run_cell = ...``, ``shell.showtraceback = ...``);
- trace and profile hooks, and any ``roofline`` modules (hidden tests re-import them);
- the import system, so that those imports find the real package: ``sys.meta_path``,
  ``sys.path_hooks``, ``sys.modules`` entries of the modules above, the path importer cache,
  and the kernel's own folder moved to the end of ``sys.path`` (a ``roofline`` a submission
  writes there cannot shadow the course's).
"""

from __future__ import annotations

import builtins
import math
import os
import sys

import numpy
import numpy.testing

_MODULES = (builtins, math, numpy, numpy.testing)
_SNAPSHOT = {module.__name__: dict(vars(module)) for module in _MODULES}
_IPYTHON_MANAGED = {"builtins": {"exit", "quit", "get_ipython"}}  # IPython's BuiltinTrap adds/removes these
_EVENTS = ("pre_execute", "pre_run_cell", "post_execute", "post_run_cell")
_TRANSFORMERS = ("input_transformers_cleanup", "input_transformers_post", "ast_transformers")
_SHELL = {}
_IMPORT_HOOKS = {"meta_path": list(sys.meta_path), "path_hooks": list(sys.path_hooks)}


def _shadowing_methods(shell) -> dict:
    """Instance attributes that shadow a method of the shell's class."""
    return {name: value for name, value in vars(shell).items()
            if callable(value) and callable(getattr(type(shell), name, None))}


def install(shell) -> None:
    """Snapshot the shell's hooks; called once at kernel start, before student code."""
    _SHELL["methods"] = _shadowing_methods(shell)  # ipykernel sets _showtraceback itself
    _SHELL["events"] = {e: list(shell.events.callbacks.get(e, [])) for e in _EVENTS}
    _SHELL["transformers"] = {a: list(getattr(shell, a, [])) for a in _TRANSFORMERS}


def _restore_module(module) -> list[str]:
    pristine = _SNAPSHOT[module.__name__]
    namespace = vars(module)
    changed = [name for name in list(namespace) if name not in pristine or namespace[name] is not pristine[name]]
    changed += [name for name in pristine if name not in namespace]
    changed = [name for name in changed if name not in _IPYTHON_MANAGED.get(module.__name__, ())]
    for name in changed:
        if name in pristine:
            namespace[name] = pristine[name]
        else:
            del namespace[name]
    return [f"{module.__name__}.{name}" for name in changed]


def reset(shell) -> str:
    """Restore everything listed in the module docstring; return what had been changed."""
    if not _SHELL:
        raise RuntimeError("coursegrade.guard.install(shell) must run at kernel start")
    changed = []
    for module in _MODULES:
        changed += _restore_module(module)
    for attribute, pristine in _SHELL["transformers"].items():
        current = getattr(shell, attribute)
        if current != pristine:
            current[:] = pristine
            changed.append(f"shell.{attribute}")
    for event, pristine in _SHELL["events"].items():
        if shell.events.callbacks.get(event, []) != pristine:
            shell.events.callbacks[event][:] = pristine
            changed.append(f"events.{event}")
    methods = _SHELL["methods"]
    for name, value in _shadowing_methods(shell).items():
        if methods.get(name) is not value:
            delattr(shell, name)
            changed.append(f"shell.{name}")
    for name, value in methods.items():
        if vars(shell).get(name) is not value:
            setattr(shell, name, value)
            changed.append(f"shell.{name}")
    if sys.gettrace() is not None or sys.getprofile() is not None:
        sys.settrace(None)
        sys.setprofile(None)
        changed.append("sys.settrace/setprofile")
    changed += _restore_imports()
    for name in [m for m in sys.modules if m.split(".")[0] == "roofline"]:
        del sys.modules[name]
    return ", ".join(sorted(set(changed)))


def _restore_imports() -> list[str]:
    """Put back the import hooks and guarded modules; let installed packages win over the kernel's folder."""
    changed = []
    for name, pristine in _IMPORT_HOOKS.items():
        hooks = getattr(sys, name)
        if hooks != pristine:
            hooks[:] = pristine
            changed.append(f"sys.{name}")
    for module in _MODULES:
        if sys.modules.get(module.__name__) is not module:
            sys.modules[module.__name__] = module
            changed.append(f"sys.modules[{module.__name__!r}]")
    here = [entry for entry in sys.path if entry in ("", ".", os.getcwd())]
    sys.path[:] = [entry for entry in sys.path if entry not in here] + here
    sys.path_importer_cache.clear()  # finders are rebuilt from the restored hooks
    return changed
