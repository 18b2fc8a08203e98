"""A job through the router as a ticket would send it: its request and its deadline."""

from __future__ import annotations

from streams.models import RawJob
from streams.routing.router import Routed, Router


async def route(router: Router, job: RawJob) -> Routed:
    options = job.options
    seconds = (
        options.deadline_ms / 1000 if options and options.deadline_ms else router.default_deadline_s
    )
    return await router.enrich(router.request_for(job), deadline=router.deadline(seconds))
