"""The `asl` command line: a thin layer that parses, calls the engine and renders.

Exit status: 0 when everything was assessed; 1 when the pack or the engine failed;
2 for a usage error or when any evidence was rejected (the rest is still assessed and
printed). Errors go to standard error, one line each, without tracebacks.

Each command lives in its own module, imported only when that command runs (or its
own help is asked for): `asl --help` and `asl --version` import click and nothing of
the engine, the store or the service, so they answer at once. The commands' one-line
summaries for `asl --help` are therefore kept here, in `COMMANDS`; a test checks each
against its command's docstring.
"""

from __future__ import annotations

import importlib

import click

from cli import __version__

# name -> (module, attribute, the summary `asl --help` shortens to fit its line)
COMMANDS: dict[str, tuple[str, str, str]] = {
    "assess": ("cli.assess", "assess",
               "Assess the models in FILES (model documents, portfolios, JSON Lines files "
               "or directories; - reads standard input)."),
    "audit": ("cli.audit", "audit_group", "Verify and export the decision log."),
    "batch": ("cli.batch", "batch_command",
              "Assess every model of PORTFOLIOS (files, directories, - for standard input) "
              "into the record, in lineage order, and print a summary."),
    "crosswalk": ("cli.crosswalk", "crosswalk_command",
                  "Show the models in FILE assessed under their own framework and under "
                  "another, side by side: what was translated and how, what was left out, "
                  "and where the two frameworks disagree."),
    "db": ("cli.batch", "db_group", "Manage the assessment database's schema."),
    "diff": ("cli.history", "diff_command",
             "What changed between two stored assessments of MODEL (ids A B from asl "
             "history; by default its two newest): each contract key that changed, with the "
             "evidence behind the change, the conclusions added and removed, and the "
             "evidence that changed."),
    "history": ("cli.history", "history_command",
                "Every stored assessment of MODEL, oldest first: when, with which pack "
                "version, the ASL and the decision."),
    "impact": ("cli.whatif", "impact",
               "List the models and conclusions in FILES (a portfolio) that rest on an "
               "evidence item, following carried-over determinations from model to model, "
               "or where a rule fired and what it concluded; with --draft, every stored "
               "model a draft pack would change."),
    "import": ("cli.importer", "import_group",
               "Turn other tools' records into evidence documents."),
    "list": ("cli.history", "list_command",
             "Every stored model with its newest assessment, and the packs it was made with "
             "(the table names them; JSON and CSV give each pack's version too)."),
    "rules": ("cli.rules", "rules", "Read, check, test, compare and scaffold rule packs."),
    "serve": ("cli.serve", "serve_command",
              "Serve the assessments, explanations, rules and packs over HTTP."),
    "tokens": ("cli.tokens", "tokens_group", "Make, list and revoke API tokens for `asl serve`."),
    "what-if": ("cli.whatif", "what_if",
                "Re-assess FILE with some evidence changed, and show every contract key and "
                "conclusion that changes, in the model and in the models of its portfolio "
                "that carry its determination over."),
    "why": ("cli.why", "why",
            "Explain a conclusion: the chain from it through each rule (title, citation, "
            "reason) down to the evidence it rests on, as text, JSON or a graph."),
    "why-not": ("cli.whynot", "why_not_command",
                "Show what stands in the way of TARGET for the model in FILE: the conclusions "
                "that prevent it (with their evidence), and for each rule that would conclude "
                "it, the condition that failed and by how much."),
}


class LazyGroup(click.Group):
    """A group whose commands (`COMMANDS`) are imported when one is run, not when the
    group's own help lists them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in COMMANDS:
            return super().get_command(ctx, cmd_name)
        module, attribute, _ = COMMANDS[cmd_name]
        command = getattr(importlib.import_module(module), attribute)
        assert isinstance(command, click.Command), f"{module}.{attribute} is not a command"
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The `Commands:` section, as click writes it, from the summaries."""
        names = self.list_commands(ctx)
        if not names:
            return
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = [(name, self._summary(ctx, name).get_short_help_str(limit)) for name in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)

    def _summary(self, ctx: click.Context, name: str) -> click.Command:
        """A command standing in for `name` in the list: its summary, nothing imported."""
        if name in COMMANDS:
            return click.Command(name, help=COMMANDS[name][2])
        command = super().get_command(ctx, name)
        assert command is not None
        return command


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__)
def main() -> None:
    """Decide which AI Safety Level of safeguards a model requires under RSP v2.1,
    and show the evidence behind every conclusion.

    \b
    Example:
      asl assess examples/
      asl why examples/security-gap-pause.yaml --conclusion decision
    """
    from engine.tuning import tune_for_throughput  # a command is about to run

    tune_for_throughput()
