"""Process plumbing: clock, backoff, supervision, systemd notify, logging, the daemon."""
