"""A folder run's plan from its data, as nnU-Net plans from a dataset fingerprint.

- :mod:`racam.plan.fingerprint`: :class:`Fingerprint` of a folder dataset, from image headers
  (:func:`~racam.plan.fingerprint.from_folder`);
- :mod:`racam.plan.rules`: :class:`Plan` and the rules that derive it
  (:func:`~racam.plan.rules.plan_for`), each value with a one-line reason;
- :mod:`racam.plan.apply`: the run config with the plan's values for the keys the user left
  out (:func:`~racam.plan.apply.planned_run`);
- :mod:`racam.plan.record`: ``plan.json`` in the run folder;
- :mod:`racam.plan.report`: the lines ``racam data info`` and the run report print.
"""
