"""The paper's reproduction: ``racam reproduce`` computes the paper's Tables I, III, IV and
Figures 1, 4-5, 8-9 through the pipeline and reports them next to the paper's numbers.

- :mod:`racam.paper.reproduce`     :class:`~racam.paper.reproduce.Reproduction`: computes and
  writes ``reproduce.json``, the figures and the report
- :mod:`racam.paper.seeds`         classifier seeds: folders, log lines, mean ± sd over seeds
- :mod:`racam.paper.intervals`     bootstrap intervals of method and network differences
- :mod:`racam.paper.figures`       the paper's figures (Figs. 1, 4-5, 8-9)
- :mod:`racam.paper.reference`     the paper's published numbers
- :mod:`racam.paper.results`       ``reproduce.json`` read as typed results
- :mod:`racam.paper.report`        the Markdown/HTML report, and rendering a stored one again
  (:func:`~racam.paper.report.render_folder`)
- :mod:`racam.paper.tables`, :mod:`racam.paper.observations`, :mod:`racam.paper.format`
  the report's tables, its statements next to the paper's claims, its number formats

The rest of racam names no table or figure of the paper.
"""
