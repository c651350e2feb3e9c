"""Patterns: the step sequencer (`steps`) and the Tidal/Strudel pattern language.

- `steps`: the `seq` module's step lists and their tiny string form (pure
  functions of the beat position).
- `core`: Tidal's model, a pattern is a function from a time span in cycles
  (exact `Fraction`s) to the haps active in it, with Strudel 1.1's
  transformations; `signals`: continuous signals and Strudel's random
  generator; `controls`: control patterns (values become mappings);
  `tonal`: scales; `tree`: a pattern as JSON data; `mini`: mini-notation.

The old names stay importable from here for the `seq` module.
"""

# Importing these attaches the control methods (`.s`, `.n`, `.gain`, ...) and `.scale` to Pattern.
from vtkernel.engine.patterns import controls as controls
from vtkernel.engine.patterns import tonal as tonal
from vtkernel.engine.patterns import tree as tree
from vtkernel.engine.patterns.steps import Step, euclid, events_between, lfo_value, parse_mini, step_at

tree.install()  # from here on, what the public methods and functions build carries its JSON form

__all__ = ["Step", "euclid", "events_between", "lfo_value", "parse_mini", "step_at"]
