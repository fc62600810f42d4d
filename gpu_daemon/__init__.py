"""gpu_daemon: the GPU side — FastAPI app, planners, image backends, models, S3 uploader."""

__version__ = "0.1.0"
