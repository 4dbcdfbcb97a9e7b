"""Multithreaded concurrency tests of the import flow: real threads, real workers, checked histories."""
