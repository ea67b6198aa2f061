"""Importers: turn other tools' records into evidence documents (evidence-format.md).

The engine reads evidence; it knows nothing of where the figures came from. Turning a
foreign record (an Inspect eval log) into an evidence document is a separate job with
its own inputs (the log formats, a mapping file) and its own refusals, so it lives here,
above the engine: `cli -> importers -> engine`. Whatever an importer writes is checked
with the engine's own evidence validation before it is handed back, so an import can
never produce a document that `asl assess` would refuse.

Modules: `problems` (how every refusal is reported), `inspect_log` (reading Inspect
logs, with or without inspect-ai), `mapping` (the mapping file from tasks and metrics
to thresholds), `inspect_import` (logs + mapping -> evaluations -> a document).
"""
