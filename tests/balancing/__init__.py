"""The load-balancing solver (binding) against its properties and the Python baseline."""
