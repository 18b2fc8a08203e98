"""The data path of one job: the enrich agent takes a record and makes its ticket
(``ticket``), the ticket goes to its lane (``enricher`` live, ``lane`` batch), and every lane
finishes through the one outcome sink (``outcome``): an enriched record or a dead letter,
with its provider calls."""

__all__: list[str] = []
