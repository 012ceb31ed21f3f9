"""Sub-command ``history``: solution quality per solver configuration across the runs of a store."""

from __future__ import annotations

import argparse

from bench.store import DEFAULT_STORE


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("history", help="solution quality per solver configuration across runs (table + figure)",
                       description="For each (instance, solver configuration), the objective relative to the "
                                   "instance's reference (best proven optimum in the store, else best known) across "
                                   "the store's runs, ordered by time and labelled by commit, machine marked. Prints "
                                   "a Markdown table; with --out also writes history.md, history.csv (one row per "
                                   "result) and history.png/.pdf.")
    p.add_argument("--store", default=str(DEFAULT_STORE), help=f"results store (default: {DEFAULT_STORE})")
    p.add_argument("--suite", default=None, help="only runs of this suite (default: every suite)")
    p.add_argument("--solver", action="append", default=None, metavar="LABEL",
                   help="only this solver configuration, as labelled in reports (repeatable)")
    p.add_argument("--out", default=None, metavar="DIR", help="also write the table, the rows and the figure here")
    p.set_defaults(func=cmd_history)


def cmd_history(args) -> int:
    from bench.history import history_frame, prune_history_frame
    from bench.paths import atomic_write_text, output_directory, store_files
    from bench.store import ResultStore
    from reports.history import history_figure, history_markdown, history_table
    from reports.prune_history import prune_history_markdown, prune_history_table

    store = ResultStore(args.store, create=False)
    out = output_directory(args.out, *store_files(store.path), writes=lambda name: name.startswith("history.")) \
        if args.out else None
    frame = history_frame(store, args.suite, args.solver)
    prune_frame = prune_history_frame(store, args.suite) if not args.solver else None
    prune_text = prune_history_markdown(prune_history_table(prune_frame)) if prune_frame is not None else ""
    if frame.empty and prune_text:  # only whole-model runs in this store
        print(prune_text, end="")
        if out is not None:
            out.mkdir(parents=True, exist_ok=True)
            atomic_write_text(out / "history.md", "# maskbench history\n\n" + prune_text)
            print(out / "history.md")
        return 0
    if frame.empty:
        wanted = " and ".join(x for x in (f"suite {args.suite!r}" if args.suite else "",
                                          f"solvers {args.solver}" if args.solver else "") if x)
        raise ValueError(f"{args.store}: no results" + (f" for {wanted}" if wanted else ""))
    table = history_table(frame)
    text = history_markdown(table) + ("\n" + prune_text if prune_text else "")
    print(text, end="")
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / "history.md", "# maskbench history\n\n" + text)
        atomic_write_text(out / "history.csv", frame.to_csv(index=False))
        for path in [out / "history.md", out / "history.csv", *history_figure(table, out / "history")]:
            print(path)
    return 0
