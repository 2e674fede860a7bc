"""Build ``lessons/`` from ``solutions/``, and check the course's notebook hygiene.

``solutions/NN_topic.ipynb`` is the single source of each lesson; ``gptlab course build``
writes ``lessons/NN_topic.ipynb`` from it and ``gptlab course check`` says what is out of
step. Both are thin fronts over :func:`build` and :func:`check`.

Exercise markers
----------------
Inside a code cell of a solutions notebook, each exercise's solution sits between two
marker lines (the nbgrader convention, plus the exercise id)::

    def get_stats(ids):
        \"\"\"Count how often each adjacent pair occurs.\"\"\"
        ### BEGIN SOLUTION (Exercise 2.1: count adjacent pairs)
        counts = {}
        ...
        return counts
        ### END SOLUTION

In the lesson, everything from the BEGIN line to the END line becomes one line at the BEGIN
marker's indentation::

        raise NotImplementedError("Exercise 2.1: count adjacent pairs")

The rule: every BEGIN marker carries ``(Exercise N.M: hint)``, where ``N`` is the lesson
number (``int(NN)`` of the file name: lesson 02 has Exercises 2.1, 2.2, ...), ``M`` counts
the lesson's exercises from 1 in the order they first appear, and the hint is a few words
shown to the learner. An exercise split over several blocks (say ``__init__`` and
``forward`` of one class) repeats its id on each block. Markers are whole lines (only
indentation before them); a line that looks like a marker but is not exactly one, a BEGIN
inside a block, an END without a BEGIN, a block left open at the end of its cell, a missing
or malformed id, or an id out of order all make the build fail with a ValueError naming the
notebook, the cell index (counting code and markdown cells from 0) and the line. Only code
cells are scanned, so markdown may quote the markers freely.

Everything else is copied as is. In the written lesson, code cell outputs are cleared,
execution counts are None, cell ``execution`` timing metadata and notebook widget state are
dropped, and the kernelspec is python3. Cells tagged ``solution-only`` (cell metadata tags)
are left out of the lesson and are not scanned for markers (use them for worked answers or
answer-key plots). Output is deterministic: identical solutions give byte-identical lessons,
so a stale lesson is found by comparing bytes.

README course map
-----------------
README.md holds a markdown table whose rows start with ``| NN |`` (a two-digit lesson
number); every such row in the file counts. For a lesson present in ``solutions/``, its row
must contain a markdown link whose target ends in ``lessons/NN_topic.ipynb`` (the exact file
name), and must not say ``coming``. A row for a lesson not written yet contains the word
``coming`` and no link to a ``lessons/`` notebook. Every solutions notebook must have
exactly one row. Example::

    | # | lesson | builds |
    | --- | --- | --- |
    | 00 | [setup](lessons/00_setup.ipynb) | environment check, how exercises work |
    | 01 | data (coming) | collecting, cleaning, splitting text |

Other rules :func:`check` enforces: names are ``NN_snake_case.ipynb``; numbers run 00, 01,
... without gaps or duplicates; no notebook in solutions/ or lessons/ stores outputs,
execution counts or widget state; kernelspec is python3; each solutions notebook has at
least 2 exercises (the lesson template asks for 2 to 4) and its first code cell calls
``setup_notebook(``.
"""

from __future__ import annotations

import copy
import json
import os
import re
import sys
import tempfile
from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = [
    "Exercise",
    "build",
    "build_command",
    "check",
    "check_command",
    "find_root",
    "lesson_exercises",
    "render_lesson",
    "strip_command",
    "strip_outputs",
]

KERNELSPEC = {"name": "python3", "display_name": "Python 3", "language": "python"}
SOLUTION_ONLY_TAG = "solution-only"
BUILD_HINT = "run `gptlab course build`"
STRIP_HINT = "clear them with `gptlab course strip {path}` (or in Jupyter: Edit > " \
    "Clear Outputs of All Cells, then save)"
MIN_EXERCISES = 2
README_MISSING = (
    "README.md is missing; it holds the course map (a table with one `| NN | ... |` row per "
    "lesson)"
)

NAME_RE = re.compile(r"^(?P<num>\d{2})_(?P<topic>[a-z0-9]+(?:_[a-z0-9]+)*)\.ipynb$")
_MARKER_LIKE_RE = re.compile(r"^\s*#+\s*(BEGIN|END)\s+SOLUTION", re.IGNORECASE)
_BEGIN_RE = re.compile(r"^(?P<indent>[ \t]*)### BEGIN SOLUTION(?P<rest>(?:[ \t].*)?)$")
_END_RE = re.compile(r"^[ \t]*### END SOLUTION[ \t]*$")
_ID_RE = re.compile(
    r"^\(\s*Exercise\s+(?P<major>\d+)\.(?P<minor>\d+)\s*:\s*(?P<hint>\S.*?)\s*\)$"
)
_ROW_RE = re.compile(r"^\s*\|\s*(?P<num>\d{2})\s*\|")
_LINK_RE = re.compile(r"\]\(\s*<?(?P<target>[^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
_ANY_LESSON_LINK_RE = re.compile(r"lessons/(?P<name>[^)\s\"'>#?]+\.ipynb)")
_COMING_RE = re.compile(r"\bcoming\b", re.IGNORECASE)
_SETUP_CALL_RE = re.compile(r"^[^#\n]*\bsetup_notebook\(", re.MULTILINE)


@dataclass(frozen=True)
class Exercise:
    """One marked solution block: ``id`` like "2.1", the learner's hint, where it sits."""

    id: str
    hint: str
    cell: int
    line: int

    @property
    def message(self) -> str:
        return f"Exercise {self.id}: {self.hint}"


# ----------------------------------------------------------------------------- finding


def find_root(start: str | os.PathLike | None = None) -> Path:
    """The course root: ``start`` (default: the current folder) or the nearest parent that
    holds both ``solutions/`` and ``pyproject.toml``."""
    here = Path(start if start is not None else Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "solutions").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    raise FileNotFoundError(
        f"Could not find the gptlab course folder (one holding solutions/ and pyproject.toml) "
        f"in {here} or any folder above it. Run this command inside your gptlab checkout, "
        f"or pass the folder with --root."
    )


def _notebooks(folder: Path) -> list[Path]:
    return sorted(folder.glob("*.ipynb")) if folder.is_dir() else []


def _rel(path: Path, root: Path) -> str:
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def _read(path: Path, label: str) -> nbformat.NotebookNode:
    """Read a notebook as v4. Cells of a v4.5+ notebook that lack an id get ``cell-NNN``
    (their index) before nbformat sees them, since nbformat would invent random ones."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        if isinstance(raw, dict) and (raw.get("nbformat"), raw.get("nbformat_minor", 0)) >= (4, 5):
            cells = raw.get("cells") or []
            used = {c.get("id") for c in cells if isinstance(c, dict)}
            for i, cell in enumerate(cells):
                if isinstance(cell, dict) and not cell.get("id"):
                    new_id, k = f"cell-{i:03d}", 0
                    while new_id in used:
                        k += 1
                        new_id = f"cell-{i:03d}-{k}"
                    cell["id"] = new_id
                    used.add(new_id)
        return nbformat.reads(json.dumps(raw), as_version=4)
    except Exception as exc:  # bad JSON, not a notebook, unreadable
        raise ValueError(f"{label}: cannot read this notebook ({type(exc).__name__}: {exc})") \
            from exc


def _tags(cell: dict) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []) or [])


def _is_solution_only(cell: dict) -> bool:
    return SOLUTION_ONLY_TAG in _tags(cell)


# ----------------------------------------------------------------------------- markers


def _stub_source(source: str, *, lesson: int, label: str, cell: int,
                 seen: list[str]) -> tuple[str, list[Exercise]]:
    """Replace each marked block of one code cell's source by its stub line."""
    out: list[str] = []
    found: list[Exercise] = []
    open_at: int | None = None
    for n, line in enumerate(source.split("\n"), start=1):
        text = line.rstrip("\r")
        where = f"{label}, cell {cell}, line {n} ({text.strip()!r})"
        begin, end = _BEGIN_RE.match(text), _END_RE.match(text)
        if begin:
            if open_at is not None:
                raise ValueError(f"{where}: BEGIN SOLUTION inside the block opened at line "
                                 f"{open_at}; close it with `### END SOLUTION` first")
            ex = _parse_id(begin.group("rest").strip(), lesson=lesson, where=where,
                           cell=cell, line=n, seen=seen)
            found.append(ex)
            out.append(f"{begin.group('indent')}raise NotImplementedError("
                       f"{json.dumps(ex.message, ensure_ascii=False)})")
            open_at = n
        elif end:
            if open_at is None:
                raise ValueError(f"{where}: END SOLUTION without a BEGIN SOLUTION before it")
            open_at = None
        elif _MARKER_LIKE_RE.match(text):
            raise ValueError(f"{where}: looks like a marker but is not one; write exactly "
                             f"`### BEGIN SOLUTION (Exercise {lesson}.M: hint)` or "
                             f"`### END SOLUTION` on a line of its own")
        elif open_at is None:
            out.append(line)
    if open_at is not None:
        raise ValueError(f"{label}, cell {cell}, line {open_at}: BEGIN SOLUTION is never closed; "
                         f"add `### END SOLUTION` at the end of the solution")
    return "\n".join(out), found


def _parse_id(rest: str, *, lesson: int, where: str, cell: int, line: int,
              seen: list[str]) -> Exercise:
    m = _ID_RE.match(rest)
    if not m:
        what = "has no exercise id" if not rest else f"has a malformed exercise id {rest!r}"
        raise ValueError(f"{where}: BEGIN SOLUTION {what}; write "
                         f"`### BEGIN SOLUTION (Exercise {lesson}.1: a few words of hint)`")
    major, minor = int(m.group("major")), int(m.group("minor"))
    ex_id = f"{major}.{minor}"
    if major != lesson:
        raise ValueError(f"{where}: Exercise {ex_id} is in lesson {lesson:02d}; its exercises "
                         f"are numbered {lesson}.1, {lesson}.2, ...")
    if ex_id not in seen:
        expected = f"{lesson}.{len(seen) + 1}"
        if ex_id != expected:
            raise ValueError(f"{where}: exercises are numbered in order of appearance; "
                             f"expected Exercise {expected} here, found Exercise {ex_id}")
        seen.append(ex_id)
    return Exercise(ex_id, m.group("hint"), cell, line)


def _lesson_number(path: Path, label: str) -> int:
    m = NAME_RE.match(path.name)
    if not m:
        raise ValueError(f"{label}: notebook names must look like NN_snake_case.ipynb "
                         f"(for example 02_tokenization.ipynb)")
    return int(m.group("num"))


# ----------------------------------------------------------------------------- build


def _clean_cell(cell: dict) -> None:
    if cell.get("cell_type") == "code":
        cell["outputs"] = []
        cell["execution_count"] = None
    cell.get("metadata", {}).pop("execution", None)


def _clean_notebook(nb: nbformat.NotebookNode) -> None:
    for cell in nb.cells:
        _clean_cell(cell)
    nb.metadata.pop("widgets", None)
    nb.metadata["kernelspec"] = dict(KERNELSPEC)


def _serialize(nb: nbformat.NotebookNode) -> bytes:
    text = nbformat.writes(nb, version=4)
    if not text.endswith("\n"):
        text += "\n"
    return text.encode("utf-8")


def _render(solution: Path, label: str) -> tuple[bytes, list[Exercise]]:
    lesson = _lesson_number(solution, label)
    nb = _read(solution, label)
    cells = []
    exercises: list[Exercise] = []
    seen: list[str] = []
    for i, cell in enumerate(nb.cells):
        if _is_solution_only(cell):
            continue
        cell = copy.deepcopy(cell)
        if cell.get("cell_type") == "code":
            cell["source"], found = _stub_source(cell.get("source", ""), lesson=lesson,
                                                 label=label, cell=i, seen=seen)
            exercises.extend(found)
        cells.append(cell)
    out = copy.deepcopy(nb)
    out.cells = cells
    _clean_notebook(out)
    return _serialize(out), exercises


def render_lesson(solution: str | os.PathLike) -> bytes:
    """The exact bytes ``build`` writes to lessons/ for this solutions notebook."""
    path = Path(solution)
    return _render(path, path.name)[0]


def lesson_exercises(solution: str | os.PathLike) -> list[Exercise]:
    """The marked exercise blocks of a solutions notebook, in order (ValueError if the
    markers are broken)."""
    path = Path(solution)
    return _render(path, path.name)[1]


def _atomic_write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    mode = path.stat().st_mode & 0o777 if path.exists() else 0o644
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


@dataclass
class _BuildReport:
    lessons: list[Path]
    changed: list[Path]
    removed: list[Path]


def _build(root: Path) -> _BuildReport:
    sol_dir, les_dir = root / "solutions", root / "lessons"
    if not sol_dir.is_dir():
        raise FileNotFoundError(f"{root} has no solutions/ folder: nothing to build from")
    rendered = {}
    for sol in _notebooks(sol_dir):  # render everything first: a bad notebook writes nothing
        rendered[les_dir / sol.name] = _render(sol, _rel(sol, root))[0]
    report = _BuildReport(lessons=list(rendered), changed=[], removed=[])
    for path, data in rendered.items():
        if not path.is_file() or path.read_bytes() != data:
            _atomic_write(path, data)
            report.changed.append(path)
    for path in _notebooks(les_dir):
        if path not in rendered:
            path.unlink()
            report.removed.append(path)
    return report


def build(root: str | os.PathLike = ".") -> list[Path]:
    """Write ``lessons/NN_topic.ipynb`` for every ``solutions/NN_topic.ipynb`` under ``root``
    and delete lessons that have no solution; return the lesson paths, in order.

    Unchanged lessons are not rewritten. Raises ValueError (naming notebook, cell and line)
    for broken markers or names, before writing anything.
    """
    return _build(Path(root)).lessons


# ----------------------------------------------------------------------------- check


def _hygiene(nb: nbformat.NotebookNode, label: str, *, generated: bool) -> list[str]:
    problems = []
    fix = BUILD_HINT + " to rewrite it" if generated else STRIP_HINT.format(path=label)
    with_outputs = [i for i, c in enumerate(nb.cells)
                    if c.get("cell_type") == "code" and c.get("outputs")]
    with_counts = [i for i, c in enumerate(nb.cells)
                   if c.get("cell_type") == "code" and c.get("execution_count") is not None]
    if with_outputs:
        problems.append(f"{label} stores outputs in {_cells(with_outputs)}; {fix}")
    if with_counts:
        problems.append(f"{label} stores execution counts in {_cells(with_counts)}; {fix}")
    if nb.metadata.get("widgets"):
        problems.append(f"{label} stores widget state in its metadata; {fix}")
    name = (nb.metadata.get("kernelspec") or {}).get("name")
    if name != "python3":
        fix_k = BUILD_HINT if generated else (
            f"pick the 'Python 3' kernel and save, or run `python -m gptlab.course strip {label}`")
        problems.append(f"{label} has kernelspec {name!r}, not 'python3' (so it runs in "
                        f"every learner's environment); {fix_k}")
    return problems


def _cells(indices: list[int]) -> str:
    shown = ", ".join(str(i) for i in indices[:8]) + (", ..." if len(indices) > 8 else "")
    return f"{len(indices)} code cell{'s' if len(indices) > 1 else ''} (cell {shown})"


def _first_code_cell(nb: nbformat.NotebookNode) -> tuple[int, str] | None:
    for i, cell in enumerate(nb.cells):
        if cell.get("cell_type") == "code" and not _is_solution_only(cell):
            return i, cell.get("source", "")
    return None


def _check_numbering(solutions: list[Path]) -> list[str]:
    by_number: dict[int, list[str]] = defaultdict(list)
    for p in solutions:
        m = NAME_RE.match(p.name)
        if m:
            by_number[int(m.group("num"))].append(p.name)
    problems = []
    for num, names in sorted(by_number.items()):
        if len(names) > 1:
            problems.append(f"lesson number {num:02d} is used {len(names)} times in solutions/ "
                            f"({', '.join(names)}); give each lesson its own number")
    if by_number:
        missing = [n for n in range(max(by_number)) if n not in by_number]
        if missing:
            problems.append(
                f"lesson numbers must run 00, 01, 02, ... without gaps; solutions/ has no "
                f"{', '.join(f'{n:02d}' for n in missing)} (found "
                f"{', '.join(f'{n:02d}' for n in sorted(by_number))}); renumber the notebooks")
    return problems


def _check_readme(root: Path, solutions: list[Path]) -> list[str]:
    readme = root / "README.md"
    present = {}
    for p in solutions:
        m = NAME_RE.match(p.name)
        if m:
            present.setdefault(m.group("num"), p.name)
    if not readme.is_file():
        if not present:
            return []
        return [README_MISSING]
    rows: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for n, line in enumerate(readme.read_text(encoding="utf-8").splitlines(), start=1):
        m = _ROW_RE.match(line)
        if m:
            rows[m.group("num")].append((n, line))
    problems = []
    for num, name in sorted(present.items()):
        want = f"lessons/{name}"
        found = rows.get(num, [])
        if not found:
            problems.append(f"README.md course map has no row for lesson {num} ({name}); add "
                            f"`| {num} | [{name[3:-6]}]({want}) | ... |`")
            continue
        if len(found) > 1:
            problems.append(f"README.md has {len(found)} course-map rows for lesson {num} (lines "
                            f"{', '.join(str(n) for n, _ in found)}); keep one")
        n, line = found[0]
        targets = [m.group("target") for m in _LINK_RE.finditer(line)]
        linked = any(t == want or t.endswith("/" + want) for t in targets)
        if _COMING_RE.search(line):
            problems.append(f"README.md line {n} says lesson {num} is coming, but "
                            f"solutions/{name} exists; replace it with a link to {want}")
        elif not linked:
            others = sorted({m.group("name") for m in _ANY_LESSON_LINK_RE.finditer(line)} -
                            {name})
            what = f"links to lessons/{others[0]}" if others else "has no link to the lesson"
            problems.append(f"README.md line {n} (lesson {num}) {what}; link it to {want}")
    for num, found in sorted(rows.items()):
        if num in present:
            continue
        for n, line in found:
            links = sorted({m.group("name") for m in _ANY_LESSON_LINK_RE.finditer(line)})
            if links:
                problems.append(f"README.md line {n} links lessons/{links[0]}, but lesson {num} "
                                f"has no solutions notebook; mark the row `coming` without a "
                                f"link, or add solutions/{links[0]}")
            elif not _COMING_RE.search(line):
                problems.append(f"README.md line {n} lists lesson {num}, which is not written "
                                f"yet; say `coming` in its row")
    return problems


def check(root: str | os.PathLike = ".") -> list[str]:
    """Everything out of step in the course under ``root``, one sentence each with its fix;
    an empty list means all is well. See the module docstring for the rules."""
    root = Path(root)
    sol_dir, les_dir = root / "solutions", root / "lessons"
    if not sol_dir.is_dir():
        return [f"{root} has no solutions/ folder; run this in the course root"]
    solutions, lessons = _notebooks(sol_dir), _notebooks(les_dir)
    problems: list[str] = []
    for p in solutions + lessons:
        if not NAME_RE.match(p.name):
            problems.append(f"{_rel(p, root)}: name must look like NN_snake_case.ipynb "
                            f"(two digits, underscore, lowercase words joined by _)")
    problems += _check_numbering(solutions)

    for sol in solutions:
        label = _rel(sol, root)
        try:
            nb = _read(sol, label)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        problems += _hygiene(nb, label, generated=False)
        first = _first_code_cell(nb)
        if first is None or not _SETUP_CALL_RE.search(first[1]):
            where = "has no code cell" if first is None else f"first code cell (cell {first[0]})"
            problems.append(f"{label}: {where} does not call `gptlab.setup_notebook()`; every "
                            f"lesson starts with the same setup cell")
        if not NAME_RE.match(sol.name):
            continue
        lesson = les_dir / sol.name
        try:
            data, exercises = _render(sol, label)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        ids = sorted({e.id for e in exercises}, key=lambda s: int(s.split(".")[1]))
        if len(ids) < MIN_EXERCISES:
            have = "no exercises" if not ids else f"only 1 exercise (Exercise {ids[0]})"
            problems.append(f"{label} has {have}; the lesson template asks for 2 to 4, each "
                            f"marked `### BEGIN SOLUTION (Exercise N.M: hint)` ... "
                            f"`### END SOLUTION`")
        if not lesson.is_file():
            problems.append(f"{_rel(lesson, root)} is missing; {BUILD_HINT}")
        elif lesson.read_bytes() != data:
            problems.append(f"{_rel(lesson, root)} is stale (it differs from what {label} "
                            f"builds); {BUILD_HINT}")

    names = {s.name for s in solutions}
    for les in lessons:
        label = _rel(les, root)
        if les.name not in names:
            problems.append(f"{label} has no source solutions/{les.name}; {BUILD_HINT} to "
                            f"remove it, or add the solutions notebook")
        try:
            nb = _read(les, label)
        except ValueError as exc:
            problems.append(str(exc))
            continue
        problems += _hygiene(nb, label, generated=True)

    problems += _check_readme(root, solutions)
    return problems


# ----------------------------------------------------------------------------- strip


def strip_outputs(path: str | os.PathLike) -> bool:
    """Clean a notebook in place: clear outputs and execution counts, drop widget state and
    timing metadata, set the python3 kernelspec. Returns True if the file changed."""
    path = Path(path)
    nb = _read(path, str(path))
    _clean_notebook(nb)
    data = _serialize(nb)
    if path.read_bytes() == data:
        return False
    _atomic_write(path, data)
    return True


# ----------------------------------------------------------------------------- commands


def _resolve_root(root: str | os.PathLike | None) -> Path:
    return find_root() if root is None else Path(root)


def build_command(root: str | os.PathLike | None = None) -> int:
    """``gptlab course build``: write lessons/, print what changed; exit code 0 or 1."""
    try:
        root = _resolve_root(root)
        report = _build(root)
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        print("Nothing was written. Fix the notebook above and run `gptlab course build` "
              "again.", file=sys.stderr)
        return 1
    for path in report.changed:
        print(f"wrote   {_rel(path, root)}")
    for path in report.removed:
        print(f"removed {_rel(path, root)} (no solutions notebook)")
    n = len(report.lessons)
    if report.changed or report.removed:
        print(f"built {n} lesson{'s' if n != 1 else ''}: {len(report.changed)} written, "
              f"{len(report.removed)} removed. Commit lessons/ together with solutions/.")
    else:
        print(f"all {n} lesson{'s' if n != 1 else ''} already up to date")
    return 0


def check_command(root: str | os.PathLike | None = None) -> int:
    """``gptlab course check``: print every problem with its fix; exit code 0 or 1."""
    try:
        root = _resolve_root(root)
    except FileNotFoundError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    problems = check(root)
    if not problems:
        n = len(_notebooks(root / "solutions"))
        print(f"course ok: {n} lesson{'s' if n != 1 else ''}, lessons/ up to date, notebooks "
              f"clean, README course map in step")
        return 0
    print(f"course check found {len(problems)} problem{'s' if len(problems) > 1 else ''}:",
          file=sys.stderr)
    for p in problems:
        print(f"  - {p}", file=sys.stderr)
    return 1


def strip_command(paths: list[str | os.PathLike] | None = None,
                  root: str | os.PathLike | None = None) -> int:
    """Strip the given notebooks (default: every notebook in solutions/ and lessons/)."""
    try:
        if not paths:
            base = _resolve_root(root)
            paths = _notebooks(base / "solutions") + _notebooks(base / "lessons")
        changed = [p for p in paths if strip_outputs(p)]
    except (ValueError, FileNotFoundError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    for p in changed:
        print(f"cleaned {p}")
    print(f"{len(changed)} of {len(paths)} notebooks needed cleaning")
    return 0


def main(argv: list[str] | None = None) -> int:
    """``python -m gptlab.course build|check|strip [PATH ...]``."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in ("build", "check", "strip"):
        print("usage: python -m gptlab.course build|check|strip [NOTEBOOK ...]", file=sys.stderr)
        return 2
    if args[0] == "build":
        return build_command()
    if args[0] == "check":
        return check_command()
    return strip_command(args[1:])


if __name__ == "__main__":
    sys.exit(main())
