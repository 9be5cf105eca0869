"""A small self-contained HTML writer: figures as base64 PNG, tables, preformatted text."""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from dataclasses import dataclass, field

__all__ = ["HtmlReport", "figure_to_base64"]

_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:0;
color:#222;background:#fafafa}
header{background:#263238;color:#fff;padding:14px 24px}
header h1{margin:0;font-size:22px}
nav{padding:6px 24px;background:#eceff1;font-size:14px}
nav a{margin-right:14px;color:#1565c0;text-decoration:none}
main{padding:8px 24px;max-width:1200px}
section{background:#fff;border:1px solid #ddd;border-radius:6px;padding:10px 16px;margin:14px 0}
h2{font-size:18px;margin:6px 0 10px}
h3{font-size:15px;margin:10px 0 6px}
figure{margin:10px 0;display:inline-block;vertical-align:top}
figure img{max-width:100%;height:auto;border:1px solid #eee}
figcaption{font-size:12px;color:#555;max-width:900px}
table{border-collapse:collapse;font-size:13px;margin:6px 0}
td,th{border:1px solid #ccc;padding:3px 8px;text-align:left}
th{background:#f0f0f0}
pre{background:#f6f8fa;border:1px solid #ddd;padding:8px;font-size:12px;overflow:auto;
max-height:420px}
.ok{color:#2e7d32;font-weight:bold}.bad{color:#c62828;font-weight:bold}
.part{color:#ef6c00;font-weight:bold}
.note{font-size:13px;color:#444}
"""


def figure_to_base64(fig, *, dpi: int = 90) -> str:
    """PNG bytes of a matplotlib figure, base64-encoded; closes the figure.

    A figure with a layout engine (``fig.set_layout_engine("tight")``, as every
    figure of :mod:`._figures` but nilearn's) is laid out while it is drawn and
    saved as laid out: one draw. Any other figure is cropped to its content
    (``bbox_inches="tight"``), which costs a second, measuring draw.
    """
    import matplotlib
    import matplotlib.pyplot as plt

    from ._figures import PLAIN_TEXT

    buf = io.BytesIO()
    crop = "tight" if fig.get_layout_engine() is None else None
    with matplotlib.rc_context(PLAIN_TEXT):  # tick labels are made while drawing
        fig.savefig(buf, format="png", dpi=dpi, bbox_inches=crop)
    plt.close(fig)
    return base64.b64encode(buf.getvalue()).decode("ascii")


@dataclass
class _Section:
    anchor: str
    title: str
    parts: list[str] = field(default_factory=list)


class HtmlReport:
    """Collects sections of figures, tables and text; :meth:`render` gives one HTML string.

    Examples
    --------
    >>> rep = HtmlReport("demo")
    >>> sec = rep.section("stimuli", "Stimuli")
    >>> rep.text(sec, "No figures yet.")
    >>> "<h2>Stimuli</h2>" in rep.render()
    True
    """

    def __init__(self, title: str) -> None:
        self.title = title
        self.sections: list[_Section] = []
        self.n_figures = 0

    def section(self, anchor: str, title: str) -> _Section:
        sec = _Section(anchor, title)
        self.sections.append(sec)
        return sec

    def figure(self, sec: _Section, fig, alt: str, caption: str = "") -> bool:
        """Embed a matplotlib figure (None is skipped). Returns whether it was added."""
        if fig is None:
            return False
        data = figure_to_base64(fig)
        self.n_figures += 1
        cap = f"<figcaption>{html.escape(caption)}</figcaption>" if caption else ""
        sec.parts.append(
            f'<figure><img src="data:image/png;base64,{data}" alt="{html.escape(alt, quote=True)}"'
            f' data-figure="{self.n_figures}">{cap}</figure>'
        )
        return True

    def heading(self, sec: _Section, text: str) -> None:
        sec.parts.append(f"<h3>{html.escape(text)}</h3>")

    def text(self, sec: _Section, text: str, *, cls: str = "note") -> None:
        sec.parts.append(f'<p class="{cls}">{html.escape(text)}</p>')

    def pre(self, sec: _Section, text: str) -> None:
        sec.parts.append(f"<pre>{html.escape(text)}</pre>")

    def table(self, sec: _Section, header: Sequence[str], rows: Sequence[Sequence[object]],
              *, marks: dict[str, str] | None = None) -> None:
        """A table; a cell whose text is a key of ``marks`` gets that CSS class."""
        marks = marks or {}
        head = "".join(f"<th>{html.escape(str(h))}</th>" for h in header)
        body = []
        for row in rows:
            cells = []
            for v in row:
                text = _fmt(v)
                cls = f' class="{marks[text]}"' if text in marks else ""
                cells.append(f"<td{cls}>{html.escape(text)}</td>")
            body.append("<tr>" + "".join(cells) + "</tr>")
        sec.parts.append(f"<table><tr>{head}</tr>{''.join(body)}</table>")

    def render(self) -> str:
        nav = "".join(f'<a href="#{s.anchor}">{html.escape(s.title)}</a>' for s in self.sections)
        body = "\n".join(
            f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>\n' + "\n".join(s.parts)
            + "</section>" for s in self.sections
        )
        return (
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{html.escape(self.title)}</title><style>{_CSS}</style></head><body>"
            f"<header><h1>{html.escape(self.title)}</h1></header><nav>{nav}</nav>"
            f"<main>{body}</main></body></html>\n"
        )


def _fmt(v) -> str:
    if isinstance(v, float):
        return f"{v:.3f}" if abs(v) < 1e4 else f"{v:.3g}"
    return str(v)
