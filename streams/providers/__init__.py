"""Provider adapters, one module per vendor, each speaking that vendor's HTTP API.

``base`` runs an attempt around what each vendor module describes; ``build`` makes one adapter
per registry entry."""

__all__: list[str] = []
