"""The notebook build behind ``make report`` (execution, cache, LaTeX template, PDF checks); not part of ``aml``."""
