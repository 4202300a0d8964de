"""The worker process: ``python -m bgmask.worker`` (``__main__``), what it does with a stream of
requests (``requests``), and the per-user background worker's socket (``server``)."""
