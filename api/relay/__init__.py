"""The relay: `cerver relay` on any machine dials the server and serves as compute for its tenant."""
