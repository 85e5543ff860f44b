// Tests of usage traces and simulation.
