"""The jinja2 environment (autoescaped) and page rendering."""

from __future__ import annotations

from typing import Any

from aiohttp import web
from jinja2 import Environment, FileSystemLoader, select_autoescape

from server import keys
from server.package_data import web_dir


def create_environment(static_resource: web.StaticResource) -> Environment:
    """Templates from web/templates, HTML autoescaped, with `static(name)` for versioned URLs."""
    environment = Environment(
        loader=FileSystemLoader(web_dir() / "templates"),
        autoescape=select_autoescape(default=True, default_for_string=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )

    def static(filename: str) -> str:
        return str(static_resource.url_for(filename=filename))

    environment.globals["static"] = static
    return environment


def render(request: web.Request, name: str, *, status: int = 200, **context: Any) -> web.Response:
    """Render a page with the caller and their CSRF token in the context."""
    caller = request.get(keys.PRINCIPAL)
    html = (
        request.app[keys.TEMPLATES]
        .get_template(name)
        .render(
            principal=caller,
            csrf_token=caller.csrf_token if caller else "",
            path=request.path,
            status=status,
            idle_minutes=request.app[keys.SETTINGS].session_idle_minutes,
            **context,
        )
    )
    return web.Response(text=html, status=status, content_type="text/html")
