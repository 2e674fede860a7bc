"""gptlab.course: building lessons/ from solutions/ and checking notebook hygiene."""

from __future__ import annotations

import json
import os
import runpy
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from gptlab import course

SETUP = "import gptlab\nctx = gptlab.setup_notebook()"

EX_1 = '''def get_stats(ids):
    """Count adjacent pairs."""
    ### BEGIN SOLUTION (Exercise {n}.1: count adjacent pairs)
    counts = {{}}
    for pair in zip(ids, ids[1:]):
        counts[pair] = counts.get(pair, 0) + 1
    return counts
    ### END SOLUTION
'''

EX_2 = '''class Merger:
    def __init__(self, ids):
        ### BEGIN SOLUTION (Exercise {n}.2: keep the ids)
        self.ids = list(ids)
        ### END SOLUTION

    def merge(self, pair, new_id):
        out = []
        for i in range(3):
            if i:
                ### BEGIN SOLUTION (Exercise {n}.2: replace every "pair")
                out.append(new_id)
                ### END SOLUTION
        return out'''

README = """# gptlab

## Course map
| # | lesson | builds |
| --- | --- | --- |
| 00 | [setup](lessons/00_setup.ipynb) · [Colab](https://colab.research.google.com/github/x/gptlab/blob/main/lessons/00_setup.ipynb) | environment |
| 01 | [data](./lessons/01_data.ipynb) | cleaning |
| 02 | tokenization (coming soon) | BPE |
"""


def notebook(cells, kernel="python3"):
    nb = new_notebook(cells=cells)
    nb.metadata["kernelspec"] = {"name": kernel, "display_name": "Python 3", "language": "python"}
    return nb


def lesson_cells(n: int):
    return [
        new_markdown_cell(f"# Lesson {n}\nSolutions sit between `### BEGIN SOLUTION` lines."),
        new_code_cell(SETUP),
        new_code_cell(EX_1.format(n=n)),
        new_markdown_cell("Check it:"),
        new_code_cell(EX_2.format(n=n)),
        new_code_cell("print(get_stats([1, 2, 1, 2]))"),
    ]


def write_nb(path: Path, nb) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, path)
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "pyproject.toml").write_text("[project]\nname = 'x'\n")
    write_nb(tmp_path / "solutions" / "00_setup.ipynb", notebook(lesson_cells(0)))
    write_nb(tmp_path / "solutions" / "01_data.ipynb", notebook(lesson_cells(1)))
    (tmp_path / "README.md").write_text(README)
    return tmp_path


def read_lesson(root: Path, name: str):
    return nbformat.read(root / "lessons" / name, as_version=4)


def has(problems: list[str], *words: str) -> bool:
    return any(all(w in p for w in words) for p in problems)


# ----------------------------------------------------------------------------- build


def test_build_replaces_marked_blocks_with_stubs(repo):
    written = course.build(repo)
    assert written == [repo / "lessons" / "00_setup.ipynb", repo / "lessons" / "01_data.ipynb"]
    cells = read_lesson(repo, "01_data.ipynb").cells
    assert cells[2].source == (
        'def get_stats(ids):\n    """Count adjacent pairs."""\n'
        '    raise NotImplementedError("Exercise 1.1: count adjacent pairs")\n'
    )
    assert cells[4].source == (
        "class Merger:\n    def __init__(self, ids):\n"
        '        raise NotImplementedError("Exercise 1.2: keep the ids")\n\n'
        "    def merge(self, pair, new_id):\n        out = []\n        for i in range(3):\n"
        "            if i:\n"
        '                raise NotImplementedError("Exercise 1.2: replace every \\"pair\\"")\n'
        "        return out"
    )
    # everything else is copied as is, markdown quoting the markers included
    sol = nbformat.read(repo / "solutions" / "01_data.ipynb", as_version=4)
    for i in (0, 1, 3, 5):
        assert cells[i].source == sol.cells[i].source
    # the stubs are valid Python and raise the exercise's message
    code = repo / "stubs.py"
    code.write_text(cells[2].source + "\n" + cells[4].source)
    ns = runpy.run_path(str(code))
    with pytest.raises(NotImplementedError, match="Exercise 1.1: count adjacent pairs"):
        ns["get_stats"]([1, 2])
    with pytest.raises(NotImplementedError, match='Exercise 1.2: replace every "pair"'):
        ns["Merger"].merge(None, (1, 2), 3)


def test_build_clears_outputs_and_sets_kernelspec(repo):
    nb = notebook(lesson_cells(0), kernel="my-venv")
    nb.cells[1].outputs = [new_output("stream", text="ready\n")]
    nb.cells[1].execution_count = 7
    nb.cells[1].metadata["execution"] = {"iopub.execute_input": "2024-01-01T00:00:00"}
    nb.cells[1].metadata["tags"] = ["keep-me"]
    nb.metadata["widgets"] = {"state": {}}
    write_nb(repo / "solutions" / "00_setup.ipynb", nb)
    course.build(repo)
    les = read_lesson(repo, "00_setup.ipynb")
    assert les.metadata.kernelspec == {"name": "python3", "display_name": "Python 3",
                                       "language": "python"}
    assert "widgets" not in les.metadata
    assert all(c.outputs == [] and c.execution_count is None
               for c in les.cells if c.cell_type == "code")
    assert les.cells[1].metadata == {"tags": ["keep-me"]}


def test_build_is_idempotent_and_byte_stable(repo, tmp_path_factory):
    course.build(repo)
    first = {p.name: p.read_bytes() for p in (repo / "lessons").iterdir()}
    stamps = {p.name: p.stat().st_mtime_ns for p in (repo / "lessons").iterdir()}
    assert course.build(repo)
    assert {p.name: p.read_bytes() for p in (repo / "lessons").iterdir()} == first
    assert {p.name: p.stat().st_mtime_ns for p in (repo / "lessons").iterdir()} == stamps
    assert all(data.endswith(b"}\n") for data in first.values())
    # the same input elsewhere gives the same bytes, and render_lesson agrees with build
    other = tmp_path_factory.mktemp("other")
    (other / "pyproject.toml").write_text("")
    for p in (repo / "solutions").iterdir():
        (other / "solutions").mkdir(exist_ok=True)
        (other / "solutions" / p.name).write_bytes(p.read_bytes())
    course.build(other)
    assert {p.name: p.read_bytes() for p in (other / "lessons").iterdir()} == first
    assert course.render_lesson(repo / "solutions" / "00_setup.ipynb") == first["00_setup.ipynb"]
    assert not list((repo / "lessons").glob(".*.tmp"))


def test_build_fills_missing_cell_ids_deterministically(repo):
    raw = json.loads(nbformat.writes(notebook(lesson_cells(0))))
    for cell in raw["cells"]:
        cell.pop("id")
    path = repo / "solutions" / "00_setup.ipynb"
    path.write_text(json.dumps(raw))
    data = course.render_lesson(path)
    assert data == course.render_lesson(path)
    assert b'"id": "cell-000"' in data


def test_build_removes_lessons_without_solutions_and_drops_solution_only_cells(repo):
    write_nb(repo / "lessons" / "07_orphan.ipynb", notebook([new_code_cell(SETUP)]))
    nb = notebook(lesson_cells(0))
    answer = new_code_cell("### BEGIN SOLUTION\nnot even a valid marker, never scanned")
    answer.metadata["tags"] = ["solution-only"]
    nb.cells.insert(3, answer)
    write_nb(repo / "solutions" / "00_setup.ipynb", nb)
    course.build(repo)
    assert sorted(p.name for p in (repo / "lessons").iterdir()) == ["00_setup.ipynb",
                                                                    "01_data.ipynb"]
    les = read_lesson(repo, "00_setup.ipynb")
    assert len(les.cells) == len(nb.cells) - 1
    assert all("never scanned" not in c.source for c in les.cells)
    assert course.check(repo) == []


def test_exercises_are_listed_in_order(repo):
    exs = course.lesson_exercises(repo / "solutions" / "01_data.ipynb")
    assert [(e.id, e.hint, e.cell) for e in exs] == [
        ("1.1", "count adjacent pairs", 2), ("1.2", "keep the ids", 4),
        ("1.2", 'replace every "pair"', 4)]
    assert exs[0].message == "Exercise 1.1: count adjacent pairs"


NESTED = (
    "### BEGIN SOLUTION (Exercise 0.1: x)\n### BEGIN SOLUTION (Exercise 0.1: y)\n"
    "### END SOLUTION\n### END SOLUTION"
)
BROKEN = {
    "never closed": ("def f():\n    ### BEGIN SOLUTION (Exercise 0.1: x)\n    return 1",
                     "never closed"),
    "end without begin": ("def f():\n    return 1\n    ### END SOLUTION", "without a BEGIN"),
    "nested": (
        NESTED,
        "inside the block",
    ),
    "missing id": ("def f():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION",
                   "no exercise id"),
    "malformed id": ("### BEGIN SOLUTION (exercise one)\n### END SOLUTION", "malformed"),
    "wrong lesson": ("### BEGIN SOLUTION (Exercise 3.1: x)\n### END SOLUTION", "lesson 00"),
    "out of order": ("### BEGIN SOLUTION (Exercise 0.2: x)\n### END SOLUTION", "expected Exercise 0.1"),
    "typo": ("### BEGIN SOLUTIONS (Exercise 0.1: x)\n### END SOLUTION", "looks like a marker"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_build_rejects_broken_markers(repo, case):
    source, words = BROKEN[case]
    cells = [new_markdown_cell("# t"), new_code_cell(SETUP), new_code_cell(source)]
    write_nb(repo / "solutions" / "00_setup.ipynb", notebook(cells))
    with pytest.raises(ValueError, match=words) as err:
        course.build(repo)
    assert "solutions/00_setup.ipynb, cell 2, line" in str(err.value)
    assert not (repo / "lessons").exists()  # nothing written for any notebook
    assert has(course.check(repo), "solutions/00_setup.ipynb, cell 2", words)


def test_build_rejects_bad_names(repo):
    write_nb(repo / "solutions" / "2-Tokens.ipynb", notebook([new_code_cell(SETUP)]))
    with pytest.raises(ValueError, match="2-Tokens.ipynb.*NN_snake_case"):
        course.build(repo)


# ----------------------------------------------------------------------------- check


def test_check_passes_a_clean_course(repo):
    assert course.check(repo) == ["lessons/00_setup.ipynb is missing; run `gptlab course build`",
                                  "lessons/01_data.ipynb is missing; run `gptlab course build`"]
    course.build(repo)
    assert course.check(repo) == []


def test_check_finds_stale_and_extra_lessons(repo):
    course.build(repo)
    nb = nbformat.read(repo / "solutions" / "01_data.ipynb", as_version=4)
    nb.cells[0].source += "\nMore words."
    write_nb(repo / "solutions" / "01_data.ipynb", nb)
    write_nb(repo / "lessons" / "05_extra.ipynb", notebook([new_code_cell(SETUP)]))
    problems = course.check(repo)
    assert has(problems, "lessons/01_data.ipynb is stale", "gptlab course build")
    assert has(problems, "lessons/05_extra.ipynb has no source", "gptlab course build")
    assert not has(problems, "00_setup")
    course.build(repo)
    assert course.check(repo) == []


def test_check_finds_outputs_counts_and_kernelspec(repo):
    nb = notebook(lesson_cells(0), kernel="gptlab-venv")
    nb.cells[1].outputs = [new_output("stream", text="hi\n")]
    nb.cells[5].execution_count = 3
    write_nb(repo / "solutions" / "00_setup.ipynb", nb)
    course.build(repo)
    les = nbformat.read(repo / "lessons" / "01_data.ipynb", as_version=4)
    les.cells[1].execution_count = 1
    les.metadata.kernelspec["name"] = "julia"
    write_nb(repo / "lessons" / "01_data.ipynb", les)
    problems = course.check(repo)
    assert has(problems, "solutions/00_setup.ipynb stores outputs", "cell 1", "strip")
    assert has(problems, "solutions/00_setup.ipynb stores execution counts", "cell 5")
    assert has(problems, "solutions/00_setup.ipynb has kernelspec 'gptlab-venv'")
    assert has(problems, "lessons/01_data.ipynb stores execution counts", "gptlab course build")
    assert has(problems, "lessons/01_data.ipynb has kernelspec 'julia'")
    assert has(problems, "lessons/01_data.ipynb is stale")
    assert not has(problems, "lessons/00_setup.ipynb")  # the built lesson itself is clean


def test_strip_outputs_cleans_in_place(repo):
    path = repo / "solutions" / "00_setup.ipynb"
    nb = notebook(lesson_cells(0), kernel="other")
    nb.cells[1].outputs = [new_output("stream", text="hi\n")]
    nb.cells[1].execution_count = 4
    write_nb(path, nb)
    assert course.strip_outputs(path) is True
    assert course.strip_outputs(path) is False
    clean = nbformat.read(path, as_version=4)
    assert clean.cells[1].outputs == [] and clean.cells[1].execution_count is None
    assert clean.metadata.kernelspec.name == "python3"
    assert clean.cells[2].source == nb.cells[2].source
    course.build(repo)
    assert course.check(repo) == []


def test_check_numbering_and_names(repo):
    course.build(repo)
    write_nb(repo / "solutions" / "03_attention.ipynb", notebook(lesson_cells(3)))
    write_nb(repo / "solutions" / "01_more.ipynb", notebook(lesson_cells(1)))
    write_nb(repo / "solutions" / "04 Bad Name.ipynb", notebook(lesson_cells(4)))
    problems = course.check(repo)
    assert has(problems, "without gaps", "no 02")
    assert has(problems, "lesson number 01 is used 2 times", "01_data.ipynb", "01_more.ipynb")
    assert has(problems, "solutions/04 Bad Name.ipynb: name must look like NN_snake_case")


def test_check_requires_setup_cell_and_two_exercises(repo):
    cells = lesson_cells(0)
    cells[1].source = "import gptlab\n# gptlab.setup_notebook() later"
    del cells[4]  # leaves a single exercise
    write_nb(repo / "solutions" / "00_setup.ipynb", notebook(cells))
    write_nb(repo / "solutions" / "01_data.ipynb",
             notebook([new_markdown_cell("# no code at all")]))
    course.build(repo)
    problems = course.check(repo)
    assert has(problems, "solutions/00_setup.ipynb: first code cell (cell 1)", "setup_notebook")
    assert has(problems, "solutions/00_setup.ipynb has only 1 exercise (Exercise 0.1)", "2 to 4")
    assert has(problems, "solutions/01_data.ipynb: has no code cell")
    assert has(problems, "solutions/01_data.ipynb has no exercises")


@pytest.mark.parametrize(
    ("row", "words"),
    [
        (None, ("no row for lesson 01", "[data](lessons/01_data.ipynb)")),
        ("| 01 | data (coming) | cleaning |", ("says lesson 01 is coming", "solutions/01_data")),
        ("| 01 | [data](lessons/01_dataset.ipynb) | x |", ("links to lessons/01_dataset.ipynb",)),
        ("| 01 | data | cleaning |", ("has no link to the lesson",)),
        ("| 01 | [data](lessons/01_data.ipynb) |\n| 01 | again |", ("2 course-map rows",)),
    ],
)
def test_check_readme_rows_for_written_lessons(repo, row, words):
    course.build(repo)
    lines = [ln for ln in README.splitlines() if not ln.startswith("| 01 |")]
    if row is not None:
        lines.insert(5, row)
    (repo / "README.md").write_text("\n".join(lines) + "\n")
    problems = course.check(repo)
    assert len(problems) == 1 and has(problems, "README.md", *words), problems


def test_check_readme_rows_for_unwritten_lessons(repo):
    course.build(repo)
    text = README + "| 03 | [attention](lessons/03_attention.ipynb) | heads |\n| 04 | blocks | |\n"
    (repo / "README.md").write_text(text)
    problems = course.check(repo)
    assert has(problems, "links lessons/03_attention.ipynb", "no solutions notebook")
    assert has(problems, "lists lesson 04, which is not written yet", "coming")
    assert len(problems) == 2
    (repo / "README.md").unlink()
    assert course.check(repo) == [course.README_MISSING]


# ----------------------------------------------------------------------------- commands


def test_find_root(repo, tmp_path_factory, monkeypatch):
    deep = repo / "lessons" / "sub"
    deep.mkdir(parents=True)
    assert course.find_root(deep) == repo.resolve()
    monkeypatch.chdir(deep)
    assert course.find_root() == repo.resolve()
    with pytest.raises(FileNotFoundError, match="solutions/ and pyproject.toml"):
        course.find_root(tmp_path_factory.mktemp("elsewhere"))


def test_commands_print_results_and_fixes(repo, capsys, monkeypatch):
    monkeypatch.chdir(repo / "solutions")
    assert course.check_command() == 1
    err = capsys.readouterr().err
    assert "2 problems" in err and "lessons/00_setup.ipynb is missing" in err
    assert "gptlab course build" in err
    assert course.build_command() == 0
    assert "wrote   lessons/00_setup.ipynb" in capsys.readouterr().out
    assert course.build_command(repo) == 0
    assert "already up to date" in capsys.readouterr().out
    assert course.check_command(repo) == 0
    assert "course ok: 2 lessons" in capsys.readouterr().out
    assert course.main(["check"]) == 0
    capsys.readouterr()

    write_nb(repo / "solutions" / "00_setup.ipynb",
             notebook([new_code_cell(SETUP + "\n### END SOLUTION")]))
    before = (repo / "lessons" / "00_setup.ipynb").read_bytes()
    assert course.build_command(repo) == 1
    err = capsys.readouterr().err
    assert "solutions/00_setup.ipynb, cell 0, line 3" in err and "Nothing was written" in err
    assert (repo / "lessons" / "00_setup.ipynb").read_bytes() == before

    monkeypatch.chdir(repo.parent)
    if not any((p / "solutions").is_dir() and (p / "pyproject.toml").is_file()
               for p in (repo.parent, *repo.parent.parents)):
        assert course.check_command() == 1
        assert "Could not find the gptlab course folder" in capsys.readouterr().err


def test_strip_command(repo, capsys):
    nb = notebook(lesson_cells(0))
    nb.cells[1].execution_count = 2
    write_nb(repo / "solutions" / "00_setup.ipynb", nb)
    assert course.strip_command(root=repo) == 0
    assert "1 of 2 notebooks needed cleaning" in capsys.readouterr().out
    assert course.strip_command([os.fspath(repo / "solutions" / "00_setup.ipynb")]) == 0
    assert "0 of 1" in capsys.readouterr().out
