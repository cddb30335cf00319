"""HTTP only: each module maps one part of the Jupyter Server API or the UI onto the layers below."""
