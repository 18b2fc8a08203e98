"""A job through the router as a ticket would send it: its request and its deadline."""

from __future__ import annotations

from streams.deadline import Deadline
from streams.models import RawJob
from streams.routing.router import Routed, Router, request_for


async def route(router: Router, job: RawJob) -> Routed:
    options = job.options
    seconds = (
        options.deadline_ms / 1000
        if options and options.deadline_ms
        else router.config.default_deadline_s
    )
    deadline = Deadline.after(seconds, clock=router.clock)
    return await router.enrich(request_for(job, router.config), deadline=deadline)
