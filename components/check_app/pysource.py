"""A Django project's Python read without running it: module files, top-level values,
environment reads, string literals and model classes (the `ast` module only).

What a settings module computes is evaluated as far as literals go (lists, strings, `+`,
`*` unpacking, names assigned before, `from .base import *`); anything else is UNKNOWN and
the checks say they could not tell, instead of guessing.
"""
from __future__ import annotations

import ast
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Optional


class _Unknown:
    def __repr__(self) -> str:
        return "UNKNOWN"


UNKNOWN: Any = _Unknown()


@dataclass
class Module:
    rel: str  # path relative to the project root, with "/"
    tree: Optional[ast.Module]
    error: Optional[str] = None  # why it could not be parsed


@dataclass
class Project:
    """The project's Python files (those `docker build` sends), parsed once."""

    root: Path
    files: tuple[str, ...]
    _modules: dict[str, Module] = field(default_factory=dict)

    def module(self, rel: str) -> Module:
        if rel not in self._modules:
            try:
                text = (self.root / rel).read_text(encoding="utf-8")
                self._modules[rel] = Module(rel, ast.parse(text, filename=rel))
            except SyntaxError as error:
                self._modules[rel] = Module(rel, None, f"line {error.lineno}: {error.msg}")
            except (OSError, UnicodeDecodeError, ValueError) as error:
                self._modules[rel] = Module(rel, None, str(error))
        return self._modules[rel]

    def python_files(self) -> list[str]:
        return [rel for rel in self.files if rel.endswith(".py")]

    def module_file(self, dotted: str) -> Optional[str]:
        """The file of module `dotted` (`a/b.py` or `a/b/__init__.py`), if the project has it."""
        base = dotted.replace(".", "/")
        for candidate in (f"{base}.py", f"{base}/__init__.py"):
            if candidate in self.files:
                return candidate
        return None


def dotted_name(node: ast.AST) -> str:
    """`os.environ.get` for the expression os.environ.get; "" for anything else."""
    if isinstance(node, ast.Name):
        return node.id
    if isinstance(node, ast.Attribute):
        inner = dotted_name(node.value)
        return f"{inner}.{node.attr}" if inner else ""
    if isinstance(node, ast.Call):  # environ.Env()(...), env.str(...)
        return dotted_name(node.func)
    return ""


# --------------------------------------------------------------------------- values

def literal(node: ast.AST, names: dict[str, Any]) -> Any:
    """The value of a literal expression, names looked up in `names`; else UNKNOWN."""
    if isinstance(node, ast.Constant):
        return node.value
    if isinstance(node, (ast.List, ast.Tuple, ast.Set)):
        items: list = []
        for element in node.elts:
            if isinstance(element, ast.Starred):
                inner = literal(element.value, names)
                if not isinstance(inner, (list, tuple)):
                    return UNKNOWN
                items.extend(inner)
            else:
                items.append(literal(element, names))
        return items
    if isinstance(node, ast.Name):
        return names.get(node.id, UNKNOWN)
    if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add):
        left, right = literal(node.left, names), literal(node.right, names)
        if isinstance(left, (list, tuple)) and isinstance(right, (list, tuple)):
            return [*left, *right]
        if isinstance(left, str) and isinstance(right, str):
            return left + right
        return UNKNOWN
    if isinstance(node, ast.Call) and dotted_name(node.func) in ("list", "tuple") \
            and len(node.args) == 1 and not node.keywords:
        inner = literal(node.args[0], names)
        return list(inner) if isinstance(inner, (list, tuple)) else UNKNOWN
    return UNKNOWN


def module_values(project: Project, rel: str, _seen: Optional[set[str]] = None) -> dict:
    """Top-level names of a module as far as literals tell, in statement order (both
    branches of an `if`/`try`, the later one winning); `from X import *` of a project module
    brings its values in."""
    seen = _seen if _seen is not None else set()
    if rel in seen:
        return {}
    seen.add(rel)
    module = project.module(rel)
    values: dict[str, Any] = {}
    if module.tree is None:
        return values
    package = rel.rsplit("/", 1)[0].replace("/", ".") if "/" in rel else ""
    if rel.endswith("/__init__.py"):
        package = rel[:-len("/__init__.py")].replace("/", ".")

    def walk(statements: Iterable[ast.stmt]) -> None:
        for statement in statements:
            if isinstance(statement, ast.Assign):
                value = literal(statement.value, values)
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        values[target.id] = value
            elif isinstance(statement, ast.AnnAssign) and isinstance(statement.target, ast.Name):
                values[statement.target.id] = (literal(statement.value, values)
                                               if statement.value else UNKNOWN)
            elif isinstance(statement, ast.AugAssign) and isinstance(statement.target, ast.Name):
                combined = ast.BinOp(ast.Name(statement.target.id), statement.op,
                                     statement.value)
                values[statement.target.id] = literal(combined, values)
            elif isinstance(statement, ast.ImportFrom) and any(a.name == "*"
                                                               for a in statement.names):
                source = _import_target(statement, package)
                target = project.module_file(source) if source else None
                if target:
                    values.update(module_values(project, target, seen))
            elif isinstance(statement, (ast.If, ast.Try)):
                walk(statement.body)
                walk(getattr(statement, "orelse", []))
                for handler in getattr(statement, "handlers", []):
                    walk(handler.body)
                walk(getattr(statement, "finalbody", []))

    walk(module.tree.body)
    return values


def _import_target(statement: ast.ImportFrom, package: str) -> Optional[str]:
    if not statement.level:
        return statement.module
    parts = package.split(".") if package else []
    if statement.level - 1 > len(parts):
        return None
    base = parts[:len(parts) - (statement.level - 1)]
    return ".".join([*base, *([statement.module] if statement.module else [])])


def defines(project: Project, rel: str, name: str) -> bool:
    """The module binds `name` at its top level (assignment, def, class or import)."""
    tree = project.module(rel).tree
    if tree is None:
        return False
    for statement in ast.walk(tree):
        if isinstance(statement, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) \
                and statement.name == name:
            return True
        if isinstance(statement, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == name for t in statement.targets):
            return True
        if isinstance(statement, (ast.Import, ast.ImportFrom)) and any(
                (alias.asname or alias.name) == name for alias in statement.names):
            return True
    return False


def setdefault_value(project: Project, rel: str, variable: str) -> Optional[str]:
    """The literal in `os.environ.setdefault(variable, "...")` in the module (manage.py)."""
    tree = project.module(rel).tree
    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Call) and dotted_name(node.func).endswith("setdefault") \
                and len(node.args) == 2 and literal(node.args[0], {}) == variable:
            value = literal(node.args[1], {})
            return value if isinstance(value, str) else None
    return None


# --------------------------------------------------------------------------- environment

def string_constants(project: Project) -> dict[str, set[str]]:
    """Every top-level `NAME = "text"` of the project's modules: NAME -> its texts (how a
    settings module that reads `os.environ[envvars.SECRET_KEY]` names its variables)."""
    constants: dict[str, set[str]] = {}
    for rel in project.python_files():
        tree = project.module(rel).tree
        for statement in tree.body if tree else ():
            if isinstance(statement, ast.Assign) and isinstance(statement.value, ast.Constant) \
                    and isinstance(statement.value.value, str):
                for target in statement.targets:
                    if isinstance(target, ast.Name):
                        constants.setdefault(target.id, set()).add(statement.value.value)
    return constants


def _is_env_reader(name: str) -> bool:
    """os.getenv, os.environ.get, environ[...], env("X") and env.bool("X") (django-environ),
    config("X") (python-decouple), the project's own env_str(...) helpers."""
    lowered = name.lower()
    return "env" in lowered or lowered.rsplit(".", 1)[-1] == "config"


def environment_reads(project: Project, rel: str,
                      constants: dict[str, set[str]]) -> set[str]:
    """The variable names the module reads from the environment: string arguments of an
    environment reader's call, subscripts of `os.environ` or `env`, `in os.environ` tests;
    a name given as a constant (`envvars.SECRET_KEY`) resolved through `constants`."""
    tree = project.module(rel).tree
    found: set[str] = set()

    def names_of(node: Optional[ast.AST]) -> set[str]:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            return {node.value}
        if isinstance(node, ast.Name):
            return constants.get(node.id, set())
        if isinstance(node, ast.Attribute):
            return constants.get(node.attr, set())
        return set()

    for node in ast.walk(tree) if tree else ():
        if isinstance(node, ast.Call) and _is_env_reader(dotted_name(node.func)):
            first = node.args[0] if node.args else next(
                (k.value for k in node.keywords if k.arg in ("key", "name", "var")), None)
            found |= names_of(first)
        elif isinstance(node, ast.Subscript) and _is_env_reader(dotted_name(node.value)):
            found |= names_of(node.slice)
        elif isinstance(node, ast.Compare) and any(isinstance(op, (ast.In, ast.NotIn))
                                                   for op in node.ops) \
                and any(_is_env_reader(dotted_name(c)) for c in node.comparators):
            found |= names_of(node.left)
    return found


def string_literals(project: Project, rel: str,
                    wanted: Callable[[str], bool]) -> list[int]:
    """Line numbers of the module's string literals for which `wanted` is true."""
    tree = project.module(rel).tree
    return sorted({node.lineno for node in ast.walk(tree) if tree
                   and isinstance(node, ast.Constant) and isinstance(node.value, str)
                   and wanted(node.value)}) if tree else []


# --------------------------------------------------------------------------- models

# base classes that make a model: models.Model and the many `...Model` bases of packages
# (TimeStampedModel, MPTTModel), and Django's user bases (AbstractUser, AbstractBaseUser)
_MODEL_BASE_SUFFIXES = ("Model", "User")


def concrete_models(project: Project, rel: str) -> list[str]:
    """Classes of the module that are concrete Django models (need a migration): a base
    named `...Model`/`...User` or a model class of the same module, and no
    `class Meta: abstract = True`."""
    tree = project.module(rel).tree
    models: list[str] = []
    known: set[str] = set()
    for statement in tree.body if tree else ():
        if not isinstance(statement, ast.ClassDef):
            continue
        bases = [dotted_name(base).rsplit(".", 1)[-1] for base in statement.bases]
        if not any(base.endswith(_MODEL_BASE_SUFFIXES) or base in known for base in bases):
            continue
        known.add(statement.name)
        if not _is_abstract(statement):
            models.append(statement.name)
    return models


def _is_abstract(cls: ast.ClassDef) -> bool:
    for inner in cls.body:
        if isinstance(inner, ast.ClassDef) and inner.name == "Meta":
            for statement in inner.body:
                if isinstance(statement, ast.Assign) and any(
                        isinstance(t, ast.Name) and t.id == "abstract" for t in statement.targets):
                    return literal(statement.value, {}) is True
    return False
