"""Adapters: models, harnesses and compute, each kind behind one protocol and a registry."""
