"""Cerver's HTTP API and command line: thin clients of warehouse, ingest and queries."""
