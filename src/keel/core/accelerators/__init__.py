"""Accelerators: code that replaces or bypasses a library's mechanism.

Each one uses public APIs only and stays only while a same-run A/B (with and
without it) shows a benchmark target missed without it; docs/performance.md
has one line per accelerator with that A/B.
"""
