"""Running a TFLite model on a device: host interpreter, benchmark_model command lines, parsing."""
