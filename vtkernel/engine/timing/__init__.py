"""Time: the scheduler process, its tempo map, patch renderer and outputs.

The tick/event model (see `render` and `scheduler` for the details):

- The scheduler process keeps its own copy of the patch, fed by the
  runtime (`vtkernel.runtime.Runtime`, its host beside the engine) with JSON Patch ops.
- Time is a tempo map: beat `b` sounds at `anchor_time + (b - anchor_beat) *
  60 / bpm` (monotonic seconds), and its OSC timetag is computed exactly from
  a fixed monotonic-to-wall offset. Play puts beat 0 one lookahead from now.
- The loop sleeps until the next onset minus the lookahead (or a message);
  each wake-up (a tick) renders every onset in `[horizon, beat(now +
  lookahead))` and advances the horizon. Patterns are pure functions of the
  beat, so the window boundaries never change what sounds, and a replaced
  pattern keeps its phase.
- Edits take effect at the horizon; a quantized edit waits for the first
  step/beat/bar boundary at or after it.
- Events flow along connections from pattern modules through process
  modules to sinks; control signals modulate params (base + sum of signals,
  clamped to the param's range, sampled at each step of the module).
"""
