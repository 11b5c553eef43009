"""What a run is on disk and how it is built: Hydra composition and ``_target_`` building (``compose``), checkpoints (``checkpoint``) and the trust checks on configs read from files (``stored``)."""
