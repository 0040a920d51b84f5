"""Render the report's sections as Markdown and as one offline HTML page (jinja2).

The HTML page references ``figures/*.png`` relatively, or embeds them as data URIs with
``self_contained`` (one file to mail or archive). It loads nothing from the network.
"""

from __future__ import annotations

import base64
import html
import re
from pathlib import Path

import jinja2

from actlab.report.document import CodeItem, FigureItem, Section, TableItem


def inline(text: str) -> jinja2.utils.markupsafe.Markup:
    """Markdown-light to HTML: escape, then **bold** and `code`."""
    escaped = html.escape(text)
    escaped = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", escaped)
    escaped = re.sub(r"`(.+?)`", r"<code>\1</code>", escaped)
    return jinja2.utils.markupsafe.Markup(escaped)


def render_html(title: str, sections: list[Section], out: Path, self_contained: bool) -> str:
    environment = jinja2.Environment(
        loader=jinja2.PackageLoader("actlab.report", "templates"), autoescape=True)
    environment.filters["inline"] = inline
    views = []
    for section in sections:
        items = []
        for item in section.items:
            if isinstance(item, FigureItem):
                src = item.path
                if self_contained:
                    data = base64.b64encode((out / item.path).read_bytes()).decode()
                    src = f"data:image/png;base64,{data}"
                items.append({"kind": "figure", "src": src, "title": item.title,
                              "caption": item.caption, "links": item.files})
            elif isinstance(item, TableItem):
                items.append({"kind": "table", "title": item.title, "caption": item.caption,
                              "html": item.html, "links": item.files})
            elif isinstance(item, CodeItem):
                items.append({"kind": "code", "title": item.title, "text": item.text})
            else:
                items.append({"kind": "text", "text": item})
        views.append({"title": section.title, "anchor": section.anchor,
                      "paragraphs": section.paragraphs, "entries": items})
    return environment.get_template("report.html.j2").render(title=title, sections=views)


def render_markdown(title: str, sections: list[Section]) -> str:
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"{'#' * section.level} {section.title}", ""]
        for paragraph in section.paragraphs:
            lines += [paragraph, ""]
        for item in section.items:
            if isinstance(item, FigureItem):
                lines += [f"![{item.title}]({item.path})", "", f"*{item.title}.* {item.caption}",
                          ""]
            elif isinstance(item, TableItem):
                lines += [f"### {item.title}", "", item.caption, "", item.markdown, "",
                          "Files: " + ", ".join(f"`{f}`" for f in item.files), ""]
            elif isinstance(item, CodeItem):
                fence = "~~~~" if "```" in item.text else "```"
                lines += [f"### {item.title}", "", f"{fence}{item.language}",
                          item.text.rstrip("\n"), fence, ""]
            else:
                lines += [f"- {item}"]
        if section.items and not isinstance(section.items[-1],
                                            FigureItem | TableItem | CodeItem):
            lines.append("")
    return "\n".join(lines)
