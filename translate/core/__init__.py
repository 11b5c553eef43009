"""The foundations every area uses: one-line user errors, atomic file writes, the settings schema and its types, where and how networks run (device, precision, seeds), and downloading one file.

Imports nothing else of the package."""
