"""The HTTP server of `ecglab serve`: FastAPI on uvicorn, one web page, nothing loaded from elsewhere.

Imported only by `ecglab serve` (FastAPI, uvicorn and python-multipart are needed here alone):
`from ecglab.serve.app import create_app`.
"""
