"""The package's shape, checked: no import cycles (imports inside functions and under TYPE_CHECKING
count too), imports that go one way through the layers, a client that imports nothing else of ours,
and nothing in the package importing a top-level entry point or face."""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "mediaflow"
TOP_LEVEL_FACES = {path.stem for path in REPO.glob("*.py")}

# Lower layers never import higher ones. A module takes the rank of its longest listed prefix.
LAYERS: list[tuple[str, ...]] = [
    # leaves: import nothing of ours but each other
    (
        "mediaflow",
        "mediaflow.settings",
        "mediaflow.settings_groups",
        "mediaflow.settings_values",
        "mediaflow.logs",
        "mediaflow.aws",
        "mediaflow.sweeper",
        "mediaflow.jobs.model",
        "mediaflow.ssrf",
        "mediaflow.webhooks.callback_urls",
    ),
    # ports and backends, media work
    ("mediaflow.store", "mediaflow.queue", "mediaflow.storage", "mediaflow.media", "mediaflow.jobs.schemas"),
    # the job domain: lifecycle, events, progress, retention
    ("mediaflow.jobs",),
    # listeners on the job domain
    ("mediaflow.webhooks", "mediaflow.observability"),
    # what callers may do to jobs
    ("mediaflow.jobs.service",),
    # the composition root
    ("mediaflow.runtime",),
    ("mediaflow.worker",),
    ("mediaflow.api",),
    ("mediaflow.cli", "mediaflow.__main__", "mediaflow.client"),
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(REPO).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports_of(path: Path) -> set[str]:
    """Every module of ours that `path` imports, wherever the import statement stands."""
    name = module_name(path)
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                target = f"{base}.{node.module}" if node.module else base
            else:
                target = node.module or ""
            found.add(target)
            # `from mediaflow.media import probe` imports the submodule mediaflow.media.probe
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return found


def graph() -> dict[str, set[str]]:
    modules = {module_name(path): path for path in PACKAGE.rglob("*.py")}
    edges = {}
    for name, path in modules.items():
        targets = set()
        for imported in imports_of(path):
            if imported in modules and imported != name:
                targets.add(imported)
            elif imported.split(".")[0] in TOP_LEVEL_FACES:
                targets.add(imported)  # kept so the face check below sees it
        edges[name] = targets
    return edges


def rank(module: str) -> int:
    best, best_len = None, -1
    for index, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            # "mediaflow" names the package's own __init__ only; every module below it is listed
            covers = module == prefix or (prefix != "mediaflow" and module.startswith(prefix + "."))
            if covers and len(prefix) > best_len:
                best, best_len = index, len(prefix)
    assert best is not None, f"{module} is in no layer: add it to LAYERS in {__file__}"
    return best


def find_cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}  # 1 = on the current path, 2 = done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return path[path.index(nxt) :] + [nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (cycle := visit(node)):
            return cycle
    return None


def package_of(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2])


def test_no_import_cycles_between_modules():
    assert find_cycle(graph()) is None, f"import cycle: {' -> '.join(find_cycle(graph()))}"


def test_no_import_cycles_between_subpackages():
    edges: dict[str, set[str]] = {}
    for module, targets in graph().items():
        if (
            module.startswith("mediaflow.jobs.service")
            or module.startswith("mediaflow.jobs.model")
            or module.startswith("mediaflow.jobs.schemas")
            or module == "mediaflow.webhooks.callback_urls"
        ):
            continue  # placed in their own layers on purpose (see LAYERS); their modules are checked above
        for target in targets:
            if (
                target.startswith("mediaflow.")
                and not any(
                    target.startswith(p)
                    for p in (
                        "mediaflow.jobs.service",
                        "mediaflow.jobs.model",
                        "mediaflow.jobs.schemas",
                        "mediaflow.webhooks.callback_urls",
                    )
                )
                and package_of(target) != package_of(module)
            ):
                edges.setdefault(package_of(module), set()).add(package_of(target))
    assert find_cycle(edges) is None, f"subpackage cycle: {' -> '.join(find_cycle(edges))}"


def test_imports_go_down_the_layers():
    breaches = [
        f"{module} (layer {rank(module)}) imports {target} (layer {rank(target)})"
        for module, targets in graph().items()
        for target in targets
        if target.startswith("mediaflow") and rank(target) > rank(module)
    ]
    assert not breaches, "\n".join(breaches)


def test_the_client_imports_nothing_else_of_ours():
    breaches = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        if module.startswith("mediaflow.client")
        for target in targets
        if not target.startswith("mediaflow.client")
    ]
    assert not breaches, "\n".join(breaches)


def test_nothing_in_the_package_imports_a_top_level_module():
    breaches = [
        f"{module} imports {target}"
        for module, targets in graph().items()
        for target in targets
        if not target.startswith("mediaflow")
    ]
    assert not breaches, "\n".join(breaches)


def test_the_checker_sees_cycles_and_breaches():
    """The checks above would fail on a real cycle and a real breach."""
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    assert rank("mediaflow.store.sqlite") < rank("mediaflow.jobs.lifecycle") < rank("mediaflow.api.app")
    assert rank("mediaflow.jobs.service") > rank("mediaflow.webhooks.dispatcher")


def test_modules_stay_small():
    """A module past ~400 lines is asking to be split by concern."""
    large = {module_name(p): n for p in PACKAGE.rglob("*.py") if (n := len(p.read_text().splitlines())) > 420}
    assert not large, large
