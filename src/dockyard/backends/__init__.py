"""Where the hosts of jobs and endpoints run: this machine (local) or a Ray cluster (ray)."""
