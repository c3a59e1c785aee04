"""`rtvault serve`: the search web interface."""

from __future__ import annotations

import click

from rtvault.cli.output import AppContext, echo


@click.command("serve", epilog="""\b
Examples:
  rtvault serve
  rtvault serve --host 0.0.0.0 --port 8443   # behind a TLS reverse proxy
  rtvault --config /etc/rtvault.toml serve --port 9000
""")
@click.option("--host", default=None, help="Address to listen on (default: [web] host, 127.0.0.1).")
@click.option("--port", default=None, type=click.IntRange(1, 65535), help="TCP port (default: [web] port, 8080).")
@click.pass_obj
def serve_command(app: AppContext, host: str | None, port: int | None) -> None:
    """Serve the search web interface (login, search, patient pages, download, restore, audit) until Ctrl-C."""
    import uvicorn

    from rtvault.web.app import create_app

    config = app.load_config()
    host, port = host or config.web.host, port or config.web.port
    asgi = create_app(config)
    shown = f"[{host}]" if ":" in host else host
    echo(f"rtvault web interface on http://{shown}:{port}/ (Ctrl-C to stop)")
    uvicorn.run(asgi, host=host, port=port, log_level="warning", server_header=False, proxy_headers=False)
