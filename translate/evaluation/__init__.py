"""Image-quality metrics (``metrics``), validation shared by training and evaluation (``validation``) and ``translate evaluate``."""
