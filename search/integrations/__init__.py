"""nascell's search driven from other libraries: `keras_tuner` (a KerasTuner Oracle and Tuner)."""
