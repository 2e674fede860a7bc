"""The ``gptlab`` command: ``gptlab doctor``, ``gptlab lab``, ``gptlab data download``,
``gptlab course build|check``, ``gptlab train``, ``gptlab sample``, ``gptlab serve``.

Each subcommand is a thin front end over a library function, so everything here is also
usable (and tested) from Python.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path


def _course_root() -> Path:
    """The course folder: the current one (or a parent) holding lessons/, else the checkout
    this package was installed from (``pip install -e .``)."""
    for folder in [Path.cwd(), *Path.cwd().parents]:
        if (folder / "lessons").is_dir() and (folder / "pyproject.toml").is_file():
            return folder
    here = Path(__file__).resolve().parent.parent
    if (here / "lessons").is_dir():
        return here
    raise FileNotFoundError(
        "Could not find the course folder (one with lessons/ and pyproject.toml). "
        "Run this command inside your gptlab checkout, or clone it and `pip install -e .`."
    )


def cmd_doctor(args: argparse.Namespace) -> int:
    from gptlab.doctor import run_checks

    return 0 if run_checks() else 1


def cmd_lab(args: argparse.Namespace) -> int:
    lessons = _course_root() / "lessons"
    cmd = [sys.executable, "-m", "jupyterlab", str(lessons), *args.jupyter_args]
    if args.dry_run:
        print(" ".join(cmd))
        return 0
    print(f"Opening JupyterLab on {lessons} (Ctrl+C to stop)")
    return subprocess.call(cmd)


def cmd_data_download(args: argparse.Namespace) -> int:
    from gptlab import data

    try:
        data.download(args.name)
    except (ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


def cmd_data_list(args: argparse.Namespace) -> int:
    from gptlab import data

    for name in data.list_corpora():
        where = data.available_offline(name)
        print(f"{name:20s} {'here: ' + str(where) if where else 'not downloaded'}")
    return 0


def cmd_course(args: argparse.Namespace) -> int:
    from gptlab import course

    root = Path(args.root) if args.root else None
    if args.action == "build":
        return course.build_command(root)
    if args.action == "strip":
        return course.strip_command(args.paths or None, root)
    return course.check_command(root)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gptlab", description="Build a GPT from scratch: the course's command line."
    )
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("doctor", help="check this machine is ready for the course")
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser("lab", help="open JupyterLab on the lessons")
    p.add_argument("--dry-run", action="store_true", help="print the command, do not run it")
    p.add_argument("jupyter_args", nargs=argparse.REMAINDER, help="passed on to jupyter lab")
    p.set_defaults(func=cmd_lab)

    p = sub.add_parser("data", help="corpora and tokenizer files")
    data_sub = p.add_subparsers(dest="action", required=True)
    d = data_sub.add_parser("download", help="fetch files now, for offline use later")
    d.add_argument("name", nargs="?", default=None, help="what to fetch (default: everything)")
    d.set_defaults(func=cmd_data_download)
    d = data_sub.add_parser("list", help="known corpora and whether they are here")
    d.set_defaults(func=cmd_data_list)

    p = sub.add_parser("course", help="build lessons/ from solutions/, or check them")
    p.add_argument("action", choices=["build", "check", "strip"])
    p.add_argument("paths", nargs="*", help="notebooks to strip of outputs (strip only)")
    p.add_argument("--root", help="course folder (default: found from the current folder)")
    p.set_defaults(func=cmd_course)

    from gptlab import train_cli  # train, sample (light: torch loads when they run)
    from gptlab.serve import cli as serve_cli  # serve (light: FastAPI loads when it runs)

    train_cli.add_parsers(sub)
    serve_cli.add_parsers(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
