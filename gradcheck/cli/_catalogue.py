"""``gradcheck list`` and ``gradcheck verify``: the catalogue on the command line."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from ..catalogue import ClaimResult, Settings, select
from ..symbolic._unicode import terminal_prose
from ._console import add_catalogue_option, add_run_options, catalogues, console


def add_parser(sub) -> None:
    p = sub.add_parser(
        "list",
        help="list the registered claims",
        description="List the selected claims with their expected verdicts, sources and titles; the "
        "titles' maths is shown as Unicode text (∂C/∂b₁), as `gradcheck latex ID` shows it as LaTeX.",
    )
    p.add_argument("patterns", nargs="*", metavar="ID", help="claim ids or topics (default: all)")
    p.add_argument("-s", "--statements", action="store_true", help="show each claim's statement under its title")
    add_catalogue_option(p)
    p.set_defaults(func=cmd_list)

    p = sub.add_parser(
        "verify",
        help="run claims and compare each verdict with the expected one",
        description="Run the selected claims (ids like softmax.jacobian, or topics like softmax) "
        "and exit non-zero when any misses its expected verdict.",
    )
    p.add_argument("patterns", nargs="*", metavar="ID", help="claim ids or topics (default: all)")
    add_catalogue_option(p)
    add_run_options(p)
    p.set_defaults(func=cmd_verify)


def readable(claim, encoding: str | None, statement: bool = False) -> Text:
    """A claim's title (and, with ``statement``, its statement, dimmed) with the maths as Unicode
    text, or flattened to ASCII where ``encoding`` cannot write it; never read as Rich markup."""
    text = Text(terminal_prose(claim.title, encoding))
    if statement and claim.statement:
        text.append("\n" + terminal_prose(claim.statement, encoding), style="dim")
    return text


def cmd_list(args) -> int:
    claims = select(args.patterns, catalogues(args)[0])
    con = console()
    table = Table(title=f"{len(claims)} claims", show_lines=args.statements)
    table.add_column("id", no_wrap=True)
    table.add_column("expected")
    table.add_column("sources", max_width=48, overflow="fold")  # wrapped, never cut short
    table.add_column("title and statement" if args.statements else "title")
    for c in claims:
        sources = Text("; ".join(c.sources) or "-")
        table.add_row(c.id, ", ".join(c.expected), sources, readable(c, con.encoding, args.statements))
    con.print(table)
    return 0


def run_claims(claims, settings: Settings, console: Console) -> list[ClaimResult]:
    results = []
    with Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("{task.fields[current]}"),
        console=console,
        transient=True,
    ) as bar:
        task = bar.add_task("verifying", total=len(claims), current="")
        for c in claims:
            bar.update(task, current=c.id)
            results.append(c.run(settings))
            bar.advance(task)
    return results


def results_table(results: list[ClaimResult]) -> Table:
    table = Table(show_lines=False)
    table.add_column("claim", no_wrap=True, min_width=max([len(r.claim.id) for r in results] + [5]))
    table.add_column("verdict", no_wrap=True, min_width=max([len(", ".join(r.reached)) for r in results] + [7]))
    table.add_column("", justify="center", no_wrap=True, min_width=4)
    table.add_column("s", justify="right", no_wrap=True, min_width=5)
    table.add_column("result", no_wrap=True)
    for r in results:
        reached = ", ".join(r.reached) or "-"
        if r.ok:
            mark, verdict = "[green]ok[/green]", reached
        else:
            mark, verdict = "[red]MISS[/red]", f"{reached} (expected {', '.join(r.claim.expected)})"
        summary = " ".join(r.summary.split())
        if len(summary) > 72:
            summary = summary[:71] + "…"
        table.add_row(r.claim.id, verdict, mark, f"{r.seconds:.1f}", summary)
    return table


def cmd_verify(args) -> int:
    claims = select(args.patterns, catalogues(args)[0])
    settings = Settings.from_profile(args.profile, seed=args.seed)
    con = console()
    results = run_claims(claims, settings, con)
    con.print(results_table(results))
    missed = [r for r in results if not r.ok]
    con.print(
        f"{len(results) - len(missed)} of {len(results)} claims reached their expected verdict "
        f"(profile {settings.profile}, {settings.max_examples} points per check, seed {settings.seed})"
    )
    for r in missed:
        con.print(Text.assemble((r.claim.id, "red"), ": ", readable(r.claim, con.encoding, statement=True)))
        if r.error:
            con.print(r.error, markup=False, highlight=False)
        for f in r.findings:
            if not f.ok:
                con.print(
                    f"  {f.what} ({f.method})"
                    + (f"; counterexample {f.counterexample}" if f.counterexample is not None else ""),
                    markup=False,
                )
    return 1 if missed else 0
