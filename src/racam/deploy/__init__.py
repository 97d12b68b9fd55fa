"""Applying a trained run to new images, on its own: nothing here imports the training
pipeline.

- :mod:`racam.deploy.run_dir`: a finished run folder (config, checkpoints, digests).
- :mod:`racam.deploy.bundle`: the self-describing bundle of ``racam export`` (``bundle.json``:
  input size, channels, normalisation, thresholds, mask rule, racam version, provenance).
- :mod:`racam.deploy.export`: ``racam export`` (ONNX files + ``bundle.json``); with
  :mod:`~racam.deploy.quantize` (``--int8``: static INT8 quantisation calibrated on the run's
  training images).
- :mod:`racam.deploy.inference`: :class:`~racam.deploy.inference.Inferencer`, one class for a
  run folder (torch) or a bundle (onnxruntime, sessions set by
  :mod:`~racam.deploy.ort_session`); images far larger than the network input are segmented
  in tiles (:mod:`~racam.deploy.tiles`).
- :mod:`racam.deploy.predict`: ``racam predict``, the folder loop; with
  :mod:`~racam.deploy.images` (the input list), :mod:`~racam.deploy.output_dir` (the folder it
  owns), :mod:`~racam.deploy.outputs` (masks, overlays, CSV, journal) and
  :mod:`~racam.deploy.gallery` (``index.html``).
"""
