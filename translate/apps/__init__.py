"""The applications on top of the library: the drawing page (``serve``, ``page.html``), the axes command (``axes``) and the benchmarks (``bench``)."""
