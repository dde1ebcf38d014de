"""A self-contained HTML report of trajectories and training runs (``agentgym view --html``).

See :func:`write_report`.
"""

from agentgym.viewer.report import render_html, report_data, write_report

__all__ = ["report_data", "render_html", "write_report"]
