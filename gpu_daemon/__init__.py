"""gpu_daemon: the GPU side — FastAPI app, auth, planners, image backends, S3 uploader."""

__version__ = "0.1.0"
