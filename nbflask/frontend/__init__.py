"""The server side of Jupyter's own front-ends (Notebook 7 and JupyterLab), free of Flask.

The built front-ends come from the asset-only wheels `notebook-frontend` and `jupyterlab-js`;
this package finds them and the federated extensions of the environment, builds the page
config each page reads, and keeps the per-user state the pages save (settings, workspaces,
config sections). The blueprints `pages`, `lab`, `notebook`, `labapi` and `assets` put it on HTTP.
"""
