"""The HTTP service: the FastAPI app and the draw page it serves."""
