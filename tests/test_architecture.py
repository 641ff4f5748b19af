"""The house rules the layout promises: no import cycles between modules of the package, small
modules, and store areas that each stay small enough to read in one sitting."""

import ast
from pathlib import Path

PKG = Path(__file__).resolve().parents[1] / "src" / "coig_writer"


def _module_name(path: Path) -> str:
    parts = path.relative_to(PKG.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, name: str) -> set[str]:
    """Modules of the package that `path` imports at module level or inside functions."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text("utf-8"))):
        if isinstance(node, ast.Import):
            out |= {a.name for a in node.names if a.name.startswith("coig_writer")}
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")
                base = base[:len(base) - node.level + 1]
                mod = ".".join(base + ([node.module] if node.module else []))
            else:
                mod = node.module or ""
            if not mod.startswith("coig_writer"):
                continue
            out.add(mod)
            out |= {f"{mod}.{a.name}" for a in node.names}
    return out


def _graph() -> dict[str, set[str]]:
    files = {_module_name(p): p for p in PKG.rglob("*.py")}
    graph = {}
    for name, path in files.items():
        graph[name] = {m for m in _imports(path, name) if m in files and m != name}
    return graph


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(n: str) -> list[str] | None:
        state[n] = 1
        stack.append(n)
        for m in sorted(graph[n]):
            # a package's __init__ importing its own submodules is not a cycle of the layout
            if n.startswith(m + ".") or m.startswith(n + "."):
                continue
            if state.get(m) == 1:
                return stack[stack.index(m):] + [m]
            if m not in state and (found := visit(m)):
                return found
        stack.pop()
        state[n] = 2
        return None

    for n in sorted(graph):
        if n not in state and (found := visit(n)):
            return found
    return None


def test_no_import_cycles():
    cycle = _cycle(_graph())
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def test_no_module_over_500_lines():
    long = {str(p.relative_to(PKG)): n for p in PKG.rglob("*.py")
            if (n := len(p.read_text("utf-8").splitlines())) > 500}
    assert not long, long


def test_store_areas_stay_small():
    big = {p.name: n for p in (PKG / "store").glob("*.py")
           if (n := len(p.read_text("utf-8").splitlines())) >= 250}
    assert not big, big


def test_no_function_over_150_lines():
    long = {f"{p.relative_to(PKG)}:{f.name}": n for p in PKG.rglob("*.py")
            for f in ast.walk(ast.parse(p.read_text("utf-8")))
            if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
            and (n := f.end_lineno - f.lineno + 1) > 150}
    assert not long, long


# --- options declared once (cli/options.py) ----------------------------------------------------
CLI = PKG / "cli"
MAX_REPEATED_INLINE = 10


def _option_call(node: ast.AST | None) -> ast.Call | None:
    """The `typer.Option(...)` call inside `node` (a parameter's default or annotation)."""
    for n in ast.walk(node) if node is not None else ():
        if (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute) and n.func.attr == "Option"
                and isinstance(n.func.value, ast.Name) and n.func.value.id == "typer"):
            return n
    return None


def _flags(call: ast.Call) -> list[str]:
    """The flags a typer.Option call declares explicitly ("--a/--no-a" counts as both)."""
    return [f for a in call.args if isinstance(a, ast.Constant) and isinstance(a.value, str)
            and a.value.startswith("-") for f in a.value.split("/")]


def _inline_options(source: str, where: str = "") -> list[tuple[str, str, list[str]]]:
    """(function, parameter, flags) of every option declared in a function's signature."""
    out = []
    for f in ast.walk(ast.parse(source)):
        if not isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef):
            continue
        a = f.args
        params = a.posonlyargs + a.args + a.kwonlyargs
        defaults = ([None] * (len(a.posonlyargs + a.args) - len(a.defaults)) + list(a.defaults)
                    + list(a.kw_defaults))
        for arg, default in zip(params, defaults, strict=True):
            call = _option_call(default) or _option_call(arg.annotation)
            if call is not None:
                flags = _flags(call) or ["--" + arg.arg.replace("_", "-")]
                out.append((f"{where}{f.name}", arg.arg, flags))
    return out


def _shared_flags(source: str) -> dict[str, str]:
    """Flag -> alias name of every option a module declares at module level."""
    out = {}
    for node in ast.parse(source).body:
        if isinstance(node, ast.Assign) and (call := _option_call(node.value)) is not None:
            name = node.targets[0].id  # type: ignore[attr-defined]
            assert _flags(call), f"cli/options.py: {name} must name its flag explicitly"
            out |= {f: name for f in _flags(call)}
    return out


def _repeated(inline: list[tuple[str, str, list[str]]]) -> list[tuple[str, str, list[str]]]:
    """Inline options whose parameter name is also declared inline in another function."""
    where: dict[str, set[str]] = {}
    for func, param, _ in inline:
        where.setdefault(param, set()).add(func)
    return [o for o in inline if len(where[o[1]]) > 1]


def _all_inline() -> list[tuple[str, str, list[str]]]:
    return [o for p in sorted(CLI.rglob("*.py"))
            for o in _inline_options(p.read_text("utf-8"), f"{p.relative_to(CLI)}:")]


def test_no_inline_option_repeats_a_shared_one():
    shared = _shared_flags((CLI / "options.py").read_text("utf-8"))
    dup = [f"{func} {param} ({flag}: use options.{shared[flag]})" for func, param, flags in
           _all_inline() for flag in flags if flag in shared]
    assert not dup, dup


def test_repeated_inline_options_stay_few():
    repeated = _repeated(_all_inline())
    assert len(repeated) <= MAX_REPEATED_INLINE, (
        f"{len(repeated)} inline options repeat a parameter another command declares inline; "
        f"declare them once in cli/options.py: {sorted((p, f) for f, p, _ in repeated)}")


def test_the_option_checks_find_repeats():
    src = ('import typer\nA = typer.Option("--db", help="x")\n'
           'def one(db: str = typer.Option("x"), lang: str = typer.Option(None)): ...\n'
           'def two(lang: Annotated[str, typer.Option("--lang/--no-lang")] = "zh"): ...\n')
    inline = _inline_options(src)
    assert [(f, p) for f, p, _ in _repeated(inline)] == [("one", "lang"), ("two", "lang")]
    assert inline[0][2] == ["--db"] and inline[2][2] == ["--lang", "--no-lang"]
    assert _shared_flags(src) == {"--db": "A"}


# --- no private names across modules ----------------------------------------------------------
def _private_imports(path: Path, source: str) -> list[str]:
    name = _module_name(path) if path.is_relative_to(PKG) else path.stem
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    out = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.level or (node.module or "").startswith(
                "coig_writer")):
            mod = node.module or ""
            if node.level:
                base = package.split(".")
                mod = ".".join(base[:len(base) - node.level + 1] + ([mod] if mod else []))
            out += [f"{name} imports {mod}.{a.name}" for a in node.names
                    if a.name.startswith("_") and not a.name.startswith("__")]
    return out


def test_no_private_name_imported_across_modules():
    bad = [x for p in PKG.rglob("*.py") for x in _private_imports(p, p.read_text("utf-8"))]
    assert not bad, bad


def test_the_private_import_check_finds_one():
    assert _private_imports(PKG / "cli" / "x.py", "from .common import _hidden, shown\n") == [
        "coig_writer.cli.x imports coig_writer.cli.common._hidden"]
    assert _private_imports(PKG / "cli" / "x.py", "from .common import __version__\n") == []
