"""Local-stack tooling for developers, tests and benchmarks: the Kafka launcher, the `up`
supervisor and the harness that runs workers and the simulator. The worker never imports it."""
