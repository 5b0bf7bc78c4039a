"""Every code sample in docs/ runs, so the documentation cannot rot.

Per page (``docs/**/*.md``), in order:

* ``python`` blocks run in one namespace, in a temporary working directory. A block *claims* its
  output when its last line is a comment (``# text``) or a ``print(...)`` with a trailing comment;
  its whole standard output must then be that text. A block after the marker
  ``<!-- docs-test: run without MindSpore -->`` runs in a fresh interpreter that cannot import the
  real MindSpore (for ``msadam_compat.install()``). Blocks with a ``title="path"`` are the files of
  the plugin in backend-authors.md, which ``test_plugin_author_guide.py`` writes out, installs and runs.
* ``bash`` blocks: ``msadam ...`` lines run (exit status 0; leading ``NAME=value`` words set
  environment variables); ``pip install`` lines are checked statically: every local path exists and
  every extra asked for is declared; the README's two set-up commands are run by ``.ci/run`` itself;
  any other line is an error, so a page cannot show a command nobody runs. ``console`` blocks belong
  to the plugin guide (checked by its own test).
* ``--8<-- "path"`` lines (pymdownx.snippets) are replaced by the file, as the site renders them.
* ``<!-- docs-test: needs mod1 mod2 -->`` skips the page when a module is missing.
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import re
import shlex
import subprocess
import sys
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest
from isolation import run_without_mindspore  # tests/ is not a package

REPO = Path(__file__).resolve().parents[1]
DOCS = REPO / "docs"
PAGES = sorted(path for path in DOCS.rglob("*.md"))
SHELLS = ("bash", "sh", "shell")
ISOLATED = "<!-- docs-test: run without MindSpore -->"
NEEDS = re.compile(r"^<!-- docs-test: needs ([\w .]+) -->$", re.MULTILINE)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<info>[^\n]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
                   re.MULTILINE | re.DOTALL)


@dataclass
class Block:
    language: str
    info: str
    code: str
    isolated: bool
    line: int


SNIPPET = re.compile(r'^([ \t]*)--8<-- "([^"]+)"$', re.MULTILINE)


def setup_commands() -> list[str]:
    """The README's two set-up commands (the first two lines of its bash blocks), run by .ci/run."""
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    lines = [line for block in re.findall(r"^```bash\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
             for line in block.splitlines() if line.strip() and not line.startswith("#")]
    return lines[:2]


def _included(indent: str, path: str) -> str:
    """A snippet's file, indented like the ``--8<--`` line (as pymdownx.snippets renders it)."""
    lines = (REPO / path).read_text(encoding="utf-8").rstrip("\n").splitlines()
    return "\n".join(indent + line if line else line for line in lines)


def blocks_of(text: str) -> list[Block]:
    found = []
    for match in FENCE.finditer(text):
        info = match["info"].strip()
        indent = len(match["indent"])
        code = "\n".join(line[indent:] for line in match["body"].splitlines())
        code = SNIPPET.sub(lambda m: _included(m[1], m[2]), code)
        before = text[:match.start()].rstrip().splitlines()
        isolated = bool(before) and before[-1].strip() == ISOLATED
        line = text.count("\n", 0, match.start()) + 1
        found.append(Block(info.split(" ")[0] if info else "", info, code, isolated, line))
    return found


def claimed_output(code: str) -> str | None:
    """What a block says it prints: its last line's comment, or None if it claims nothing."""
    last = code.strip().splitlines()[-1].strip()
    if last.startswith("# "):
        return last[2:].strip()
    if last.startswith("print(") and "  # " in last:
        return last.rpartition("  # ")[2].strip()
    return None


def _has(page: Path, languages: tuple[str, ...]) -> bool:
    """Whether ``page`` has a sample in one of ``languages`` (the plugin's titled files excepted)."""
    return any(b.language in languages and "title=" not in b.info for b in blocks_of(page.read_text(encoding="utf-8")))


def _page_id(path: Path) -> str:
    return str(path.relative_to(DOCS))


def _skip_unless_available(text: str) -> None:
    for match in NEEDS.finditer(text):
        for module in match[1].split():
            if importlib.util.find_spec(module) is None:
                pytest.skip(f"needs {module}")


# torch 2.13's own torch.distributed.optim still calls torch.jit.script/interface at import (docs/torch.md's ZeRO
# sample); a user never sees it (DeprecationWarning is off outside __main__), but this suite turns warnings into errors.
@pytest.mark.filterwarnings(r"ignore:`torch\.jit\.\w+` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("page", [p for p in PAGES if _has(p, ("python",))], ids=_page_id)
def test_python_samples_run_and_print_what_they_claim(page: Path, tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    text = page.read_text(encoding="utf-8")
    samples = [b for b in blocks_of(text) if b.language == "python" and "title=" not in b.info]
    _skip_unless_available(text)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__docs__"}
    for block in samples:
        where = f"{page.name}:{block.line}"
        if block.isolated:
            result = run_without_mindspore(block.code, tmp_path / f"isolated-{block.line}", cwd=tmp_path)
            assert result.returncode == 0, f"{where}\n{result.stderr}"
            out = result.stdout
        else:
            buffer = io.StringIO()
            with contextlib.redirect_stdout(buffer):
                exec(compile(block.code, where, "exec"), namespace)  # our own documentation
            out = buffer.getvalue()
        claim = claimed_output(block.code)
        if claim is not None:
            assert out.strip() == claim, f"{where} prints {out.strip()!r}, claims {claim!r}"


def _declared_extras(project: Path) -> set[str]:
    data = tomllib.loads((project / "pyproject.toml").read_text(encoding="utf-8"))
    return set(data["project"].get("optional-dependencies", {}))


def check_pip_install(arguments: list[str], where: str) -> None:
    """Local paths exist (relative to the repository) and declare the extras asked for."""
    editable = False
    for argument in arguments:
        if argument in ("-e", "--editable"):
            editable = True
            continue
        if argument.startswith("-"):
            continue
        name, _, extras = argument.partition("[")
        if editable or name.startswith((".", "/")) or (REPO / name).is_dir():
            project = REPO / name
            assert (project / "pyproject.toml").is_file(), f"{where}: {name} is not a project in this repository"
            wanted = set(extras.rstrip("]").split(",")) - {""}
            assert wanted <= _declared_extras(project), f"{where}: {name} declares no extra {wanted}"
        editable = False


@pytest.mark.parametrize("page", [p for p in PAGES if _has(p, SHELLS)], ids=_page_id)
def test_shell_samples_run(page: Path, tmp_path: Path) -> None:
    text = page.read_text(encoding="utf-8")
    samples = [b for b in blocks_of(text) if b.language in SHELLS]
    _skip_unless_available(text)
    for block in samples:
        for offset, raw in enumerate(block.code.splitlines()):
            line = raw.partition(" #")[0].strip() if not raw.lstrip().startswith("#") else ""
            if not line:
                continue
            where = f"{page.name}:{block.line + 1 + offset}"
            if line in setup_commands():
                continue  # .ci/run runs exactly these, in a fresh virtual environment
            for command in (part.strip() for part in line.split("&&")):
                words = shlex.split(command)
                environment = dict(os.environ)
                while words and re.fullmatch(r"[A-Z_][A-Z0-9_]*=.*", words[0]):
                    name, _, value = words.pop(0).partition("=")
                    environment[name] = value
                if words[:3] == ["python", "-m", "pip"]:
                    words = words[2:]
                if words[:2] == ["pip", "install"]:
                    check_pip_install(words[2:], where)
                elif words[0] == "msadam":
                    result = subprocess.run([sys.executable, "-m", "msadam", *words[1:]], capture_output=True,
                                            text=True, timeout=600, cwd=tmp_path, env=environment)
                    assert result.returncode == 0, f"{where}: {command}\n{result.stdout}\n{result.stderr}"
                else:
                    pytest.fail(f"{where}: the docs test cannot run {command!r}; show only msadam and pip commands "
                                f"in bash blocks")


def test_every_page_is_in_the_site_navigation() -> None:
    config = (REPO / "mkdocs.yml").read_text(encoding="utf-8")
    missing = [_page_id(page) for page in PAGES if _page_id(page) not in config]
    assert not missing, f"pages missing from mkdocs.yml's nav: {missing}"
