"""Events produced elsewhere, into the warehouse: REST batches (and, next, OTLP spans and importers)."""
