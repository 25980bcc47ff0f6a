"""The dockyard command line: a client of the server's API (boto3 clients pointed at it)."""
