"""OpenTelemetry for the worker: a job's spans in its producer's trace, one GenAI span per
provider attempt, and the GenAI client metrics. Configured only by the standard ``OTEL_*``
variables (``sdk``); with none set it is off and costs a branch per job (``Telemetry.OFF``)."""

__all__: list[str] = []
