"""A private room server and simulated participants, for tests, benchmarks and demos on one machine."""
