"""``ldflow web``: serve the web app with uvicorn."""

from __future__ import annotations

import typer

PANEL = "Web"
app = typer.Typer()


@app.command(rich_help_panel=PANEL, short_help="Serve the web app (board, request pages, forms, links).")
def web() -> None:
    """Serve the web app on LDFLOW_WEB_HOST:LDFLOW_WEB_PORT (default 127.0.0.1:8000) until Ctrl-C.
    Links in mails point at LDFLOW_BASE_URL (set it to the address people reach, e.g. behind a TLS
    reverse proxy)."""
    import uvicorn

    from flows import bootstrap
    from flows.settings import load_settings
    from flows.web.app import create_app

    settings = load_settings()
    web_app = create_app(bootstrap.build(settings))
    uvicorn.run(web_app, host=settings.web_host, port=settings.web_port, log_level="info",
                proxy_headers=True, forwarded_allow_ips="127.0.0.1", server_header=False)
