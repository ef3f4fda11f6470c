"""The documentation runs as written: README.md, docs/*.md and leaderboards/README.md.

Every ``vadbench`` command line of their fenced shell blocks parses with vadbench's own argument parser;
the short ones run (`vadbench list`, `leaderboard` on a small store made here, `data check` and `data
cache` on the fake roots of tests/fakeroots.py in place of the data roots they name, `grid --dry-run`),
while those that train, plot stored runs or need a GPU or cluster are only parsed. The documented output
of `vadbench list` is the real one, every subcommand has its --help and a documented command, the
variable-length method of docs/plugins.md passes the conformance checks, and every relative link points
to a file (and heading) that exists.
"""

from __future__ import annotations

import argparse
import re
import shlex
import sys
import types
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import fakeroots
import pytest
from conftest import TINY_SYNTHETIC

from vadbench.cli import build_parser, main
from vadbench.testing import parametrize_with_checks

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
DOCS = REPO / "docs"
PAGES = [README, *sorted(DOCS.glob("*.md")), REPO / "leaderboards" / "README.md"]
#: Fenced blocks whose lines are shell commands (console blocks: the lines after ``$ ``).
SHELL = ("bash", "sh", "console")
#: Shell tokens that end a command, and those whose next token is a file, not an argument.
CONTROL = {"&&", "||", "|", ";", "&"}
REDIRECTIONS = {">", ">>", "<"}
ENVIRONMENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*=")
#: A fake root per dataset, for the documented commands that name a data root.
FAKE_ROOTS = {
    "shanghaitech": fakeroots.sh_root,
    "ucf-crime": fakeroots.ucf_root,
    "xd-violence": lambda root: fakeroots.xd_root(root, audio=True),
    "ucsd-ped2": fakeroots.ucsd_root,
}


@dataclass(frozen=True)
class Block:
    page: Path
    line: int  # of the opening fence, 1-based
    language: str
    text: str


@dataclass(frozen=True)
class Command:
    page: Path
    line: int
    argv: tuple[str, ...]  # after "vadbench"

    def __str__(self) -> str:
        return f"{self.page.relative_to(REPO)}:{self.line}: vadbench {shlex.join(self.argv)}"


def fenced_blocks(page: Path) -> Iterator[Block]:
    """The fenced code blocks of a markdown page (indented fences of list items included)."""
    opened: tuple[int, str, str] | None = None
    body: list[str] = []
    for number, line in enumerate(page.read_text().splitlines(), 1):
        stripped = line.strip()
        if opened is None and stripped.startswith("```"):
            opened, body = (number, stripped[3:].strip(), line[: len(line) - len(line.lstrip())]), []
        elif opened is not None and stripped == "```":
            yield Block(page, opened[0], opened[1], "\n".join(body))
            opened = None
        elif opened is not None:
            body.append(line.removeprefix(opened[2]))


def shell_lines(block: Block) -> Iterator[tuple[int, str]]:
    """(line number, command line) of a shell block, continuation lines joined."""
    pending, start = "", 0
    for offset, line in enumerate(block.text.splitlines(), 1):
        if block.language == "console":
            if not line.startswith("$ "):
                continue
            line = line[2:]
        start = start or block.line + offset
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        yield start, pending + line
        pending, start = "", 0


def vadbench_argvs(line: str) -> Iterator[tuple[str, ...]]:
    """The arguments of each ``vadbench`` command in a shell line: after ``&&`` or ``|``, behind environment
    assignments, and inside a quoted argument (``ray exec CONFIG "vadbench grid ..."``)."""
    lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
    lexer.whitespace_split = True
    words: list[str] = []
    redirected = False
    for token in [*lexer, ";"]:
        if token in CONTROL:
            yield from command_argvs(words)
            words = []
        elif token in REDIRECTIONS:
            redirected = True
        elif redirected:
            redirected = False
        else:
            words.append(token)


def command_argvs(words: list[str]) -> Iterator[tuple[str, ...]]:
    """The arguments of `words` if they are a ``vadbench`` command (environment assignments before it
    dropped), else of the ``vadbench`` commands quoted in its arguments."""
    words = words[next((i for i, word in enumerate(words) if not ENVIRONMENT.match(word)), len(words)):]
    if words[:1] == ["vadbench"]:
        yield tuple(words[1:])
        return
    for word in words[1:]:
        if re.search(r"(^|\s)vadbench\s", word):
            yield from vadbench_argvs(word)


def documented_commands(pages: list[Path]) -> list[Command]:
    return [Command(block.page, number, argv)
            for page in pages for block in fenced_blocks(page) if block.language in SHELL
            for number, line in shell_lines(block) for argv in vadbench_argvs(line)]


COMMANDS = documented_commands(PAGES)


def runs_here(command: Command) -> bool:
    """Short commands that need no data root beyond a fake one, no GPU, cluster or training."""
    argv = list(command.argv)
    if argv[:1] in (["list"], ["leaderboard"]) or argv[:2] in (["data", "check"], ["data", "cache"]):
        return True
    return argv[:1] == ["grid"] and "--dry-run" in argv and "--root" not in argv


def test_the_extraction_finds_chained_continued_and_quoted_commands(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("\n".join([
        "```bash", "pip install . && vadbench run --method rtfm   # a comment", "vadbench grid a.toml \\",
        "    --dry-run > out.txt --quiet", 'ray exec c.yaml "X=1 vadbench list"', "OMP_NUM_THREADS=1 vadbench list",
        "```", "```python", "vadbench list", "```", "```console", "$ vadbench --help", "vadbench list (output)", "```",
    ]))
    found = [(command.line, command.argv) for command in documented_commands([page])]
    assert found == [(2, ("run", "--method", "rtfm")), (3, ("grid", "a.toml", "--dry-run", "--quiet")), (5, ("list",)),
                     (6, ("list",)), (12, ("--help",))]


def test_the_pages_document_each_workflow():
    kinds = {tuple(command.argv[:2]) if command.argv[0] == "data" else command.argv[:1] for command in COMMANDS}
    assert {("run",), ("grid",), ("leaderboard",), ("plot",), ("list",), ("data", "check"), ("data", "cache")} <= kinds
    assert any(runs_here(command) for command in COMMANDS if command.page == README)


@pytest.mark.parametrize("command", COMMANDS, ids=str)
def test_every_documented_command_parses(command, capsys):
    try:
        build_parser().parse_args(list(command.argv))
    except SystemExit as exit_info:
        if exit_info.code != 0:  # --help exits 0
            pytest.fail(f"{command} does not parse: {capsys.readouterr().err.strip()}")


def subcommand_paths(parser=None, path=()) -> Iterator[tuple[str, ...]]:
    """Every command path of vadbench's parser: ``()``, ``("run",)``, ``("data", "check")`` ..."""
    parser = parser or build_parser()
    yield path
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                yield from subcommand_paths(child, (*path, name))


@pytest.mark.parametrize("path", list(subcommand_paths()), ids=lambda path: " ".join(path) or "vadbench")
def test_every_subcommand_has_help_and_is_documented(path, capsys):
    with pytest.raises(SystemExit) as exit_info:
        build_parser().parse_args([*path, "--help"])
    assert exit_info.value.code == 0
    assert capsys.readouterr().out.startswith(f"usage: {' '.join(('vadbench', *path))} ")
    assert any(command.argv[: len(path)] == path for command in COMMANDS), f"no documented vadbench {path}"


@pytest.fixture
def builtins_only(monkeypatch):
    """The built-in plugins alone, as the documentation shows them (an installed plugin would add lines)."""
    from vadbench.plugins.manager import get_plugins

    monkeypatch.setenv("VADBENCH_DISABLE_PLUGIN_AUTOLOAD", "1")
    monkeypatch.delenv("VADBENCH_PLUGINS", raising=False)
    get_plugins.cache_clear()
    yield
    get_plugins.cache_clear()


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    """A folder to run the documented commands in: the committed leaderboards/ and a small run store at the
    default `vadbench-runs` (20 steps of Sultani MIL on a small synthetic set)."""
    folder = tmp_path_factory.mktemp("docs")
    (folder / "leaderboards").symlink_to(REPO / "leaderboards")
    tiny = [arg for key, value in TINY_SYNTHETIC.items() for arg in ("--set", f"dataset.{key}={value}")]
    assert main(["run", "--method", "sultani-mil", "--seeds", "0", "--device", "cpu", "--quiet",
                 "--out", str(folder / "vadbench-runs"), *tiny]) == 0
    return folder


def with_fake_root(argv: list[str], workspace: Path) -> list[str]:
    """`argv` with the data root it names replaced by a fake root of its dataset (made once)."""
    if "--root" not in argv:
        return argv
    dataset = argv[2] if argv[0] == "data" else argv[argv.index("--dataset") + 1]
    if dataset not in FAKE_ROOTS:
        pytest.fail(f"no fake root for {dataset}: add one to FAKE_ROOTS")
    root = workspace / "roots" / dataset
    if not root.is_dir():
        root.mkdir(parents=True)
        FAKE_ROOTS[dataset](root)
    position = argv.index("--root") + 1
    return [*argv[:position], str(root), *argv[position + 1:]]


@pytest.mark.parametrize("command", [command for command in COMMANDS if runs_here(command)], ids=str)
def test_the_short_documented_commands_run(command, workspace, builtins_only, monkeypatch, capsys):
    monkeypatch.chdir(workspace)
    code = main(with_fake_root(list(command.argv), workspace))
    out, err = capsys.readouterr()
    assert code == 0, f"{command} exited with {code}: {err.strip()}"
    if command.argv[0] == "leaderboard":
        assert "sultani-mil" in out


def test_the_documented_list_is_what_vadbench_list_prints(builtins_only, capsys):
    text = (DOCS / "commands.md").read_text()
    documented = text.split("$ vadbench list\n", 1)[1].split("```", 1)[0]
    assert main(["list"]) == 0
    assert capsys.readouterr().out == documented, "docs/commands.md: paste the output of `vadbench list` anew"


def documented_module(page: Path, marker: str) -> types.ModuleType:
    """The python block of `page` that contains `marker`, run as a module of its own."""
    source = next(block.text for block in fenced_blocks(page) if block.language == "python" and marker in block.text)
    module = types.ModuleType(f"documented_{page.stem}")
    sys.modules[module.__name__] = module
    exec(compile(source, f"{page}", "exec"), module.__dict__)
    return module


PADDED = documented_module(DOCS / "plugins.md", "class PaddedTopK(")


@parametrize_with_checks(methods=[PADDED.PaddedTopK(PADDED.PaddedTopK.Config(hidden=8, segments=16, batch_size=4))])
def test_the_variable_length_example_passes_the_conformance_checks(component, check):
    check(component)


def slug(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def anchors(page: Path) -> set[str]:
    fenced = {line for block in fenced_blocks(page) for line in block.text.splitlines()}
    return {slug(line.lstrip("#")) for line in page.read_text().splitlines()
            if re.match(r"#{1,6} ", line) and line not in fenced}


def relative_links(page: Path) -> Iterator[str]:
    text = re.sub(r"```.*?```", "", page.read_text(), flags=re.S)  # code blocks hold no links
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target):
            yield target


@pytest.mark.parametrize("page", PAGES, ids=lambda page: str(page.relative_to(REPO)))
def test_every_relative_link_points_to_an_existing_file_and_heading(page):
    for target in relative_links(page):
        path, _, anchor = target.partition("#")
        file = (page.parent / path).resolve() if path else page
        assert file.is_relative_to(REPO) and file.exists(), f"{page.relative_to(REPO)}: {target} does not exist"
        if anchor:
            assert anchor in anchors(file), f"{page.relative_to(REPO)}: {target}: no heading with that anchor"


def test_the_readme_is_a_page_that_links_every_doc():
    text = README.read_text()
    assert len(text.splitlines()) <= 250
    assert {f"docs/{doc.name}" for doc in DOCS.glob("*.md")} <= set(relative_links(README))
