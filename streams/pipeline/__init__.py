"""The data path of one record: the enrich agent, the Enricher (decode, repost cache, route,
publish), dead letters and in-order acknowledgement."""
