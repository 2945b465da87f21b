"""Refuse private names of third-party libraries in src/.

A private name (a leading underscore) is a library's implementation detail: it
changes or disappears in any release. This check fails, with ``file:line``,
on:

- ``from lib import _x`` and ``import lib._module`` / ``from lib._module import x``;
- ``obj._attr`` where ``obj`` is a name imported from a library (``lib._x``,
  ``SomeLibClass._x``), or any ``._attr`` whose owner is not keel's own code:
  an attribute read on ``self``/``cls`` is keel's own only when the class
  defines or assigns that attribute itself;
- ``getattr(obj, "_...")`` / ``setattr`` / ``hasattr`` with a private literal;
- a class that subclasses a library class and defines or overrides a
  private method or attribute of it (hooking its internals).

Dunder names (``__init__``) are public protocol and always allowed.

Usage: python .ci/private_names.py [SRC_DIR]   (default: src)
"""

from __future__ import annotations

import ast
import importlib
import sys
from pathlib import Path

OWN_PACKAGE = "keel"


def is_private(name: str) -> bool:
    return name.startswith("_") and not (name.startswith("__") and name.endswith("__"))


class Checker(ast.NodeVisitor):
    def __init__(self, path: Path, own_private_names: set[str]) -> None:
        self.path = path
        self.own_private_names = own_private_names  # private names keel itself defines
        self.findings: list[str] = []
        self.library_names: set[str] = set()  # names bound to a library module or object
        self.imported_from: dict[str, tuple[str, str | None]] = {}  # name -> (module, attribute)
        self.own_names: set[str] = set()  # names bound to keel's own objects
        self.class_stack: list[tuple[set[str], bool]] = []  # (own attributes, subclasses a library class)

    def report(self, node: ast.AST, message: str) -> None:
        self.findings.append(f"{self.path}:{getattr(node, 'lineno', 0)}: {message}")

    # --- imports -----------------------------------------------------------------
    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            root = alias.name.split(".")[0]
            if root == OWN_PACKAGE:
                self.own_names.add(alias.asname or root)
                continue
            if any(is_private(part) for part in alias.name.split(".")):
                self.report(node, f"import of a private module: {alias.name}")
            self.library_names.add(alias.asname or root)
            self.imported_from[alias.asname or root] = (alias.name if alias.asname else root, None)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        module = node.module or ""
        if node.level or module.split(".")[0] == OWN_PACKAGE:
            for alias in node.names:
                self.own_names.add(alias.asname or alias.name)
            return
        if module == "__future__":
            return
        if any(is_private(part) for part in module.split(".")):
            self.report(node, f"import from a private module: {module}")
        for alias in node.names:
            if is_private(alias.name):
                self.report(node, f"private name imported from {module}: {alias.name}")
            self.library_names.add(alias.asname or alias.name)
            self.imported_from[alias.asname or alias.name] = (module, alias.name)

    # --- classes -----------------------------------------------------------------
    def visit_ClassDef(self, node: ast.ClassDef) -> None:
        library_bases = [base for base in node.bases if self._root_name(base) in self.library_names]
        subclasses_library = bool(library_bases)
        own: set[str] = set()
        for statement in ast.walk(node):
            if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                own.add(statement.name)
            elif isinstance(statement, ast.Assign | ast.AnnAssign):
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                for target in targets:
                    if isinstance(target, ast.Name):
                        own.add(target.id)
                    elif isinstance(target, ast.Attribute):
                        own.add(target.attr)
        if subclasses_library:
            for statement in node.body:
                names: list[str] = []
                if isinstance(statement, ast.FunctionDef | ast.AsyncFunctionDef):
                    names = [statement.name]
                elif isinstance(statement, ast.Assign):
                    names = [target.id for target in statement.targets if isinstance(target, ast.Name)]
                elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                    names = [statement.target.id]
                for name in names:
                    if is_private(name) and any(self._base_has(base, name) for base in library_bases):
                        self.report(statement, f"{node.name} overrides {name}, a private hook of its library base")
        self.class_stack.append((own, subclasses_library))
        self.own_names.add(node.name)
        self.generic_visit(node)
        self.class_stack.pop()

    def visit_FunctionDef(self, node: ast.FunctionDef | ast.AsyncFunctionDef) -> None:
        self.own_names.add(node.name)
        self.generic_visit(node)

    visit_AsyncFunctionDef = visit_FunctionDef

    # --- attribute access --------------------------------------------------------
    def visit_Attribute(self, node: ast.Attribute) -> None:
        if is_private(node.attr) and not self._own_attribute(node):
            self.report(node, f"private attribute of a library object: .{node.attr}")
        self.generic_visit(node)

    def visit_Call(self, node: ast.Call) -> None:
        func = node.func
        if (
            isinstance(func, ast.Name)
            and func.id in {"getattr", "setattr", "hasattr", "delattr"}
            and len(node.args) >= 2
            and isinstance(node.args[1], ast.Constant)
            and isinstance(node.args[1].value, str)
            and is_private(node.args[1].value)
        ):
            self.report(node, f"{func.id}(..., {node.args[1].value!r}) reaches a private name")
        self.generic_visit(node)

    def _own_attribute(self, node: ast.Attribute) -> bool:
        owner = node.value
        root = self._root_name(owner)
        if isinstance(owner, ast.Name) and owner.id in {"self", "cls"} and self.class_stack:
            own, subclasses_library = self.class_stack[-1]
            # On a class of keel's own, its private attributes are its own; on a
            # library subclass, only those the class itself defines.
            return node.attr in own or not subclasses_library
        if root in self.library_names:
            return False
        if root in self.own_names:
            return True
        # An attribute of some other value (a parameter, a local): keel's own
        # only if some class of this module defines that name.
        return node.attr in self.own_private_names

    def _base_has(self, base: ast.expr, name: str) -> bool:
        """Whether the library class ``base`` names has ``name`` (imported to see;
        one that cannot be imported here is assumed to)."""
        while isinstance(base, ast.Subscript):  # Generic[T], SomeBase[T]
            base = base.value
        dotted = ast.unparse(base).split(".")
        if dotted[0] not in self.imported_from:
            return True
        module, attribute = self.imported_from[dotted[0]]
        try:
            target: object = importlib.import_module(module)
            for part in ([attribute] if attribute else []) + dotted[1:]:
                target = getattr(target, part)
        except (ImportError, AttributeError):
            return True
        return hasattr(target, name)

    @staticmethod
    def _root_name(node: ast.AST) -> str | None:
        while isinstance(node, ast.Attribute | ast.Call | ast.Subscript):
            node = node.value if not isinstance(node, ast.Call) else node.func
        return node.id if isinstance(node, ast.Name) else None


def module_private_names(tree: ast.Module) -> set[str]:
    """Private names this module defines itself (functions, classes, attributes it assigns)."""
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef) and is_private(node.name):
            names.add(node.name)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if isinstance(target, ast.Attribute) and is_private(target.attr):
                    names.add(target.attr)
                elif isinstance(target, ast.Name) and is_private(target.id):
                    names.add(target.id)
    return names


def check(path: Path, own_private: set[str]) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    checker = Checker(path, own_private)
    checker.visit(tree)
    return checker.findings


def main(argv: list[str]) -> int:
    root = Path(argv[1] if len(argv) > 1 else "src")
    files = sorted(root.rglob("*.py"))
    # Private names keel defines anywhere (dataclass fields, slots of its own classes):
    # reading them on a keel object is not reaching into a library.
    own_private: set[str] = set()
    for path in files:
        own_private |= module_private_names(ast.parse(path.read_text(encoding="utf-8")))
    findings = [finding for path in files for finding in check(path, own_private)]
    for finding in findings:
        print(finding)
    if findings:
        print(f"{len(findings)} use(s) of a library's private names: use its public API instead.", file=sys.stderr)
        return 1
    print(f"no private names of a library in {len(files)} files under {root}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
