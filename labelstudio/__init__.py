"""The Label Studio integration, on the top floor: it stands on `tagger` (labels, exports, the
model folder) and `train` (training runs), and nothing below imports it.

Inside, imports point one way: `client` (the SDK and its errors) <- `projects` (labeling
configs, task import, export) <- `predictions` (results in the project's own control names,
pushed back) <- `retrain` (training runs Label Studio asks for) <- `backend` (the ML backend's
web app) <- `__main__` (`python -m labelstudio import|export|predict|serve`).
"""
