"""The LSTM controller of Zoph & Le's REINFORCE (and ENAS): `controller` (sampling, the update),
`tokens` (the token matrix it writes architectures in), `state` (its saved state) and
`controller_graph` (the TensorFlow graphs it runs)."""
