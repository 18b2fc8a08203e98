"""What the service tells about itself: stats arithmetic and tables, metrics, usage reports."""

__all__: list[str] = []
