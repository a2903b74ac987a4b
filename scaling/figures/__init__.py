"""Paper figures and tables from a results table (``scaling figures``).

Modules, one job each:

- :mod:`~scaling.figures.table`: load and check a results table, choose rows (final runs, budgets);
- :mod:`~scaling.figures.metrics`: what each metric column is called and which way is better;
- :mod:`~scaling.figures.style`: paper and slides styles, colour-blind-safe palette, log axes;
- :mod:`~scaling.figures.canvas`: draw and record at once, so each CSV is exactly what is drawn;
- :mod:`~scaling.figures.fits`: the figures' view of :mod:`scaling.fit` (curves and bands to draw);
- :mod:`~scaling.figures.paper` / :mod:`~scaling.figures.standard` / :mod:`~scaling.figures.tables`:
  the SIMS figures, the standard scaling-law figures, the SIMS tables;
- :mod:`~scaling.figures.reference`: published numbers shipped in ``results/reference/``;
- :mod:`~scaling.figures.registry` / :mod:`~scaling.figures.render`: the list of figures and
  the loop that draws and writes them (the CLI is :mod:`scaling.commands.figures`).

Nothing heavy is imported here.
"""
