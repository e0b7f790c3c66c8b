"""``gradcheck latex`` and ``gradcheck report``: derivations for papers, with their verification record.

``gradcheck report --out DIR`` runs the selected claims, computes the figures, and writes
``report.tex`` (and ``report.pdf`` when ``pdflatex`` is installed), ``report.md``,
``results.json`` and ``figures/`` (and ``references.bib``, a copy of ``--bib``, when a claim
cites one of its keys).  With ``--catalogue`` (or ``[tool.gradcheck]``) the report is the
catalogues': their claims, sources and figures, titled ``--title`` or the first line of the
catalogue's docstring; nothing of an installed catalogue unless it is named too.  Nothing in DIR is touched until everything is ready:
all files are first written into a staging folder inside DIR (same file system) and the PDF is
compiled there; then each file is moved into place with ``os.replace``, which is atomic.  An
interrupted run therefore leaves the previous report as it was, and never a half-written file.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import shutil
import subprocess
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

from rich.console import Console

from .. import render
from .._environment import environment
from .._files import write_whole
from ..catalogue import Settings, get, select
from ..catalogue._load import within
from ..render.bib import Bibliography, read_bib
from ._catalogue import results_table, run_claims
from ._console import add_catalogue_option, add_run_options, catalogues, console as wide_console, docstring_title

#: The files a report consists of, besides ``figures/``.
REPORT_FILES = ("report.tex", "report.md", "results.json", "report.pdf", "references.bib")


def add_parser(sub) -> None:
    p = sub.add_parser(
        "latex",
        help="print one claim as LaTeX (an equation body with its \\label)",
        description="Print the statement of a claim as the body of a LaTeX equation, with "
        "\\label{claim:ID}; with --steps, its derivation as the body of an align.",
    )
    p.add_argument("id", metavar="ID", help="a claim id, e.g. softmax.jacobian (`gradcheck list` shows them)")
    p.add_argument("--steps", action="store_true", help="print the derivation steps instead of the statement")
    add_catalogue_option(p)
    p.set_defaults(func=cmd_latex)

    p = sub.add_parser(
        "report",
        help="write report.tex/.pdf, report.md, results.json and figures for the selected claims",
        description="Run the selected claims (default: all) and write a report with each claim's "
        "derivation, its verification record and the command that reproduces it.",
    )
    p.add_argument("patterns", nargs="*", metavar="ID", help="claim ids or topics (default: all)")
    p.add_argument("--out", required=True, metavar="DIR", help="folder to write the report into (created if missing)")
    add_catalogue_option(p)
    p.add_argument(
        "--title",
        default=None,
        help="the report's title (default: the first line of the named catalogue's docstring, "
        "or 'gradcheck: verified derivations')",
    )
    p.add_argument(
        "--bib",
        default=None,
        metavar="FILE",
        help="a BibTeX file: sources that are its keys are cited (\\cite{key}, BibTeX builds the references)",
    )
    add_run_options(p)
    p.add_argument("--no-pdf", action="store_true", help="do not run pdflatex even when it is installed")
    p.set_defaults(func=cmd_report)


def cmd_latex(args) -> int:
    print(get(args.id, catalogues(args)[0]).latex(steps=args.steps))
    return 0


# --- writing whole files -----------------------------------------------------------------


@contextlib.contextmanager
def _staging(out: Path) -> Iterator[Path]:
    stage = Path(tempfile.mkdtemp(dir=out, prefix=".gradcheck-report-"))
    try:
        yield stage
    finally:
        shutil.rmtree(stage, ignore_errors=True)


def _publish(stage: Path, out: Path, names: list[str]) -> None:
    """Move each staged file into ``out`` (atomic per file); figures first, the documents last."""
    for name in names:
        dest = out / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        os.replace(stage / name, dest)


# --- pdflatex ----------------------------------------------------------------------------


def _bibtex(tex: Path, timeout: float) -> None:
    exe = shutil.which("bibtex")
    if exe is None:
        raise FileNotFoundError("bibtex is not installed (it comes with pdflatex: scripts/ensure-latex.sh)")
    proc = subprocess.run(
        [exe, tex.stem], cwd=tex.parent, capture_output=True, text=True, errors="replace", timeout=timeout
    )
    if proc.returncode >= 2:  # 1: warnings only
        raise RuntimeError("bibtex failed on " + tex.stem + ":\n" + proc.stdout[-1500:])


def compile_pdf(tex: Path, runs: int = 2, timeout: float = 180.0, bibtex: bool = False) -> Path:
    """Compile ``tex`` with pdflatex in its own folder (twice, for references); return the PDF.

    With ``bibtex``, BibTeX runs after the first pass (for ``\\cite``) and pdflatex twice more.
    Raises RuntimeError with the first LaTeX error when it fails.
    """
    exe = shutil.which("pdflatex")
    if exe is None:
        raise FileNotFoundError("pdflatex is not installed (scripts/ensure-latex.sh installs it)")
    for i in range(runs + (1 if bibtex else 0)):
        if bibtex and i == 1:
            _bibtex(tex, timeout)
        proc = subprocess.run(
            [exe, "-interaction=nonstopmode", "-halt-on-error", "-no-shell-escape", tex.name],
            cwd=tex.parent,
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
        )
        if proc.returncode != 0:
            log = proc.stdout.splitlines()
            first = next((i for i, line in enumerate(log) if line.startswith("!")), max(len(log) - 20, 0))
            raise RuntimeError("pdflatex failed on " + tex.name + ":\n" + "\n".join(log[first : first + 12]))
    return tex.with_suffix(".pdf")


# --- the report --------------------------------------------------------------------------


def build_report(
    claims,
    settings: Settings,
    out: Path,
    console: Console,
    *,
    pdf: bool = True,
    command: str = "gradcheck report",
    make_figures: Callable | None = None,
    catalogues: list[str] | None = None,
    named: bool = False,
    title: str | None = None,
    bib: Bibliography | None = None,
) -> tuple[list, list, Path | None]:
    """Run ``claims``, write the report into ``out``; return the results, their records and the PDF (or None).

    ``catalogues`` are the report's (None: the installed ones), ``named`` whether the user named
    them (their claims' reproducing commands then name them too); ``bib`` the ``--bib`` file.
    """
    from ..render import figures as figures_mod

    results = run_claims(claims, settings, console)
    with console.status("computing figures"):
        # the catalogues' figures, and those of the selected claims (their measurement is cached)
        figs = make_figures() if make_figures else figures_mod.make_figures(results, settings, catalogues)
    env = environment()
    date, packages = env["date"], env["packages"]
    meta = {
        "gradcheck": packages.get("gradcheck", ""),
        "date": date,
        "command": command,
        "profile": settings.profile,
        "max_examples": settings.max_examples,
        "seed": settings.seed,
        "device": env["device"],
        "packages": packages,
        "title": title,
        "catalogues": list(catalogues or []),
    }
    cited = {k: bib.reference(k) for c in claims for k in bib.cites(c.sources)} if bib else {}
    if bib is not None:
        meta["bibliography"] = {"file": "references.bib", "from": str(bib.path), "cited": cited}

    def catalogue_of(claim) -> str | None:
        return next((c for c in catalogues or () if within(claim.module, [c])), None) if named else None

    with console.status("rendering"):
        records = [render.claim_entry(r, date, packages, catalogue=catalogue_of(r.claim), cites=cited) for r in results]
        topics = {c.topic: render.topic_intro(c) for c in claims}
        fig_records = [f.record() for f in figs]
        tex = render.write_report(render.LatexWriter(), records, meta, fig_records, topics)
        md = render.write_report(render.MarkdownWriter(), records, meta, fig_records, topics)
        js = render.results_document(records, meta, fig_records)

    built_pdf = None
    with _staging(out) as stage:
        names = []
        (stage / "figures").mkdir()
        for f in figs:
            for fmt in ("pdf", "png"):
                name = f"figures/{f.name}.{fmt}"
                write_whole(stage / name, f.to_bytes(fmt))
                names.append(name)
        if cited and bib is not None:
            write_whole(stage / "references.bib", bib.path.read_bytes())
            names.append("references.bib")
        for name, text in (("report.md", md), ("results.json", js), ("report.tex", tex)):
            write_whole(stage / name, text)
            names.append(name)
        if pdf:
            with console.status("pdflatex report.tex"):
                built_pdf = compile_pdf(stage / "report.tex", bibtex=bool(cited))
            names.append("report.pdf")
        _publish(stage, out, names)
    return results, records, (out / "report.pdf") if built_pdf else None


def cmd_report(args) -> int:
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"--out must be a folder, got the file {str(out)!r}")
    cats, named = catalogues(args)  # a module that cannot be imported fails here, before any work
    claims = select(args.patterns, cats)  # and an unknown id
    bib = read_bib(args.bib) if args.bib else None
    settings = Settings.from_profile(args.profile, seed=args.seed)
    want_pdf = not args.no_pdf and shutil.which("pdflatex") is not None
    if want_pdf and bib is not None and shutil.which("bibtex") is None:
        raise ValueError("--bib: bibtex is not installed, so report.pdf cannot cite (pass --no-pdf)")
    title = args.title or (docstring_title(cats[0]) if named and len(cats) == 1 else None)
    out.mkdir(parents=True, exist_ok=True)
    console = Console(stderr=True)
    options = [*(x for c in args.catalogue or () for x in ("--catalogue", c))]
    options += [*(["--title", args.title] if args.title else []), *(["--bib", args.bib] if args.bib else [])]
    command = "gradcheck report " + shlex.join(
        [*args.patterns, *options, "--out", str(args.out), "--profile", settings.profile, "--seed", str(settings.seed)]
    )
    try:
        results, records, pdf = build_report(
            claims,
            settings,
            out,
            console,
            pdf=want_pdf,
            command=command,
            catalogues=cats,
            named=named,
            title=title,
            bib=bib,
        )
    except RuntimeError as e:  # pdflatex failed: nothing of the previous report was replaced
        console.print(f"gradcheck report: {e}", style="red", markup=False, highlight=False)
        return 1
    # as wide as `gradcheck verify`'s: CONSOLE_WIDTH columns when not on a terminal
    wide_console().print(results_table(results))
    written = [n for n in REPORT_FILES if (out / n).exists() and (n != "report.pdf" or pdf)]
    figures = " and figures/" if any(out.glob("figures/*")) else ""
    console.print(f"wrote {', '.join(written)}{figures} to {out}")
    if not args.no_pdf and not want_pdf:
        console.print("no report.pdf: pdflatex is not installed (scripts/ensure-latex.sh installs it)")
    if bib is not None and not any(bib.cites(c.sources) for c in claims):
        console.print(f"--bib {args.bib}: no source of the selected claims is one of its keys; nothing cited")
    missed = [r for r in results if not r.ok]
    if missed:
        console.print(
            f"[red]{len(missed)} of {len(results)} claims missed their expected verdict[/red]: "
            + ", ".join(r.claim.id for r in missed)
        )
    unrendered = [r for r in records if r["render_error"]]
    for r in unrendered:
        console.print(
            f"{r['id']}: its derivation could not be rendered: {r['render_error']}",
            style="red",
            markup=False,
            highlight=False,
        )
    return 1 if missed or unrendered else 0
