"""Plots and the self-contained HTML report of a retention-priority list (``retain report``)."""

from retain.reports.html import render_report

__all__ = ["render_report"]
