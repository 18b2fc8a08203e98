"""The web view on Faust's web server: one route table, its handlers and the OpenAPI document
made from it."""

__all__: list[str] = []
