"""Sessions: state derived from events, the service behind the routes, and the run loop."""
