"""Real local servers (S3, GCS, HTTP) started on 127.0.0.1 for tests, the demo and benchmarks."""
