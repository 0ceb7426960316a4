"""The LSTM controller of Zoph & Le's REINFORCE (and ENAS): `controller` (sampling, the update,
its state) and `controller_graph` (the TensorFlow graphs it runs)."""
