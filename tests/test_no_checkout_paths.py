"""No package module runs the checkout's scripts or looks for the checkout (issue #14).

The package must work after ``pip install .`` from any folder: child processes start as
``python -m spinexr.cli.<command>`` (:func:`spinexr.utils.process.run_command`) and shipped
configs are found by :func:`spinexr.utils.paths.config_path`. This scans the source of every
``spinexr/**/*.py`` (docstrings excluded: they may name ``tools/x.py`` as the user's command) for

* a string that is a path into ``tools/`` (``'tools/train.py'``, ``osp.join(root, 'tools')``);
* a walk up from a file: ``Path(...).parents[k]`` or ``dirname(dirname(...))``.
"""
import ast
import re
from pathlib import Path

import pytest

import spinexr

PACKAGE = Path(spinexr.__file__).resolve().parent
MODULES = sorted(PACKAGE.rglob('*.py'))

#: Modules owned by other work that still find the checkout; the mark is strict, so the test
#: reports when one is fixed and its entry must go.
_PENDING: dict = {}

_TOOLS_PATH = re.compile(r'^(\./)?tools(/|$)')


def _docstrings(tree: ast.AST) -> set:
    """ids of the docstring constants of a module and its classes and functions."""
    out = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.Module, ast.ClassDef, ast.FunctionDef, ast.AsyncFunctionDef)):
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                out.add(id(body[0].value))
    return out


def _name(func: ast.AST) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ''


def checkout_references(source: str) -> list:
    """``(line, what)`` for every path into ``tools/`` and every walk up from a file."""
    tree = ast.parse(source)
    docs = _docstrings(tree)
    found = []
    for node in ast.walk(tree):
        if (isinstance(node, ast.Constant) and isinstance(node.value, str)
                and id(node) not in docs and _TOOLS_PATH.match(node.value.strip())):
            found.append((node.lineno, f'path into tools/: {node.value!r}'))
        elif (isinstance(node, ast.Subscript) and isinstance(node.value, ast.Attribute)
              and node.value.attr == 'parents'):
            found.append((node.lineno, 'walk up: .parents[...]'))
        elif (isinstance(node, ast.Call) and _name(node.func) == 'dirname' and node.args
              and isinstance(node.args[0], ast.Call) and _name(node.args[0].func) == 'dirname'):
            found.append((node.lineno, 'walk up: dirname(dirname(...))'))
    return found


def test_the_scan_finds_what_it_looks_for():
    code = ('"""Run tools/train.py."""\n'
            "import os.path as osp\n"
            "ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))\n"
            "REPO = Path(__file__).resolve().parents[2]\n"
            "cmd = [python, 'tools/train.py', cfg]\n"
            "tools_dir = osp.join(ROOT, 'tools')\n"
            "msg = 'rerun tools/search_ensemble.py'\n")
    assert [line for line, _ in checkout_references(code)] == [3, 4, 5, 6]


@pytest.mark.parametrize('path', [
    pytest.param(p, marks=pytest.mark.xfail(strict=True, reason=_PENDING[str(
        p.relative_to(PACKAGE))])) if str(p.relative_to(PACKAGE)) in _PENDING else p
    for p in MODULES], ids=lambda p: str(p.relative_to(PACKAGE)))
def test_module_does_not_reach_into_the_checkout(path):
    found = checkout_references(path.read_text(encoding='utf-8'))
    assert not found, '\n'.join(f'{path.relative_to(PACKAGE)}:{line}: {what}'
                                for line, what in found)
