"""Facts about the environment: distributions, the interpreter probe, the GPU."""
