"""The batch lane: jobs that can wait go to a vendor's Batch API at about half the price.

A job asks with ``options.lane`` (``batch``, or ``auto``: batch when its own deadline leaves
room for the vendors' 24-hour window; ``LLM_LANE`` is the default); its ticket says which
provider and model (``ticket.batch_target``). The lane records the job on ``llm.batch``
before its raw offset moves on, and one ``PartitionLane`` per raw partition this worker holds
gathers, sends, polls and finishes (``runner``, ``finish``); a rebalance hands the
partition's lane over with its records (``records``). ``lane.BatchLane`` holds them all.
"""

__all__: list[str] = []
