"""`GET /metrics`: the site's health and figures for Prometheus (jobs/health_metrics.py says what is exported), in
the text exposition format of the official client library, built afresh for each scrape.

No session is needed, but only a client whose address is in `[web] metrics_from` (its address as the site tells
it: behind a trusted proxy, the one X-Forwarded-For names), or one sending `Authorization: Bearer <token>` with
the content of `[web] metrics_token_file` (compared in constant time; a file that others than its owner may read
is not used), may read it; anyone else gets 403.
"""

from __future__ import annotations

import hmac
import ipaddress
import logging
from collections.abc import Iterator

from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from rtvault.config import Config
from rtvault.config.settings import credentials_problem
from rtvault.jobs.health_metrics import Family, gather
from rtvault.web.site import Site, client_address

log = logging.getLogger(__name__)
REFUSED = ("403: /metrics est réservé aux adresses de [web] metrics_from et aux porteurs du jeton de [web] "
           "metrics_token_file.\n403: /metrics is open only to the addresses of [web] metrics_from and to the "
           "bearer of the token in [web] metrics_token_file.\n")


class _Families:
    """A collector handing the library the families gathered for one scrape."""

    def __init__(self, families: list[Family]) -> None:
        self.families = families

    def collect(self) -> Iterator[Metric]:
        for family in self.families:
            metric = Metric(family.name, family.help, "gauge")
            for labels, value in family.samples:
                metric.add_sample(family.name, labels, value)
            yield metric


def exposition(config: Config) -> bytes:
    """The metrics of the site now, as Prometheus reads them."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(_Families(gather(config)))  # type: ignore[arg-type]
    return generate_latest(registry)


def _token(config: Config) -> bytes | None:
    path = config.web.metrics_token_file
    if path is None:
        return None
    problem = credentials_problem(path)
    if problem is None:
        try:
            token = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as error:
            problem = f"cannot read {path}: {error}"
        else:
            return token.encode() if token else None
    log.error("[web] metrics_token_file: %s; bearer tokens are refused on /metrics until it is fixed", problem)
    return None


def allowed(site: Site, request: Request) -> bool:
    """From an address of [web] metrics_from, or with the bearer token of [web] metrics_token_file."""
    try:
        address = ipaddress.ip_address(client_address(request))
        if any(address in ipaddress.ip_network(item, strict=False) for item in site.config.web.metrics_from):
            return True
    except ValueError:
        pass
    scheme, _, given = request.headers.get("authorization", "").partition(" ")
    expected = _token(site.config) if scheme.lower() == "bearer" else None
    return expected is not None and hmac.compare_digest(given.strip().encode(), expected)


def metrics_route(site: Site) -> Route:
    async def metrics(request: Request) -> Response:
        if not allowed(site, request):
            return PlainTextResponse(REFUSED, status_code=403)
        body = await run_in_threadpool(exposition, site.config)
        return Response(body, media_type=CONTENT_TYPE_LATEST)

    return Route("/metrics", metrics, methods=["GET"])
