"""The whole study: its stages as a graph, walked on an executor (this process, stage
processes, Ray), finished runs reused by key, and the dry run's estimate."""
