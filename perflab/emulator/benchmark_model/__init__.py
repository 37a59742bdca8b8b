"""The emulated TFLite ``benchmark_model`` run by emulated phones (``python -m`` this package).

It takes the real tool's flags and prints the real tool's output format (INFO:/WARN: on
stdout, ERROR:/FATAL: and runtime messages on stderr), while running the model for real
through the host's LiteRT interpreter. What is real and what is emulated:

* real: model loading, input resizing and filling (raw files checked against the tensor's
  byte size exactly as the tool does), every invoke and its wall-clock time on the host CPU,
  pacing (run_delay / run_frequency sleep for real), the memory footprint (the model's tensors
  at this input size: weights and activations),
  ``--output_filepath`` bytes (all outputs of the last invoke, concatenated);
* emulated: delegates (a GPU/NNAPI/Hexagon run still runs on the host CPU but is reported as
  one delegate node, as on a phone; with GPU FP16 allowed the dumped outputs are rounded
  through float16). The per-op profile and the kernel trace are measured: LiteRT cannot time
  single ops of a graph, so the model runs as one-op sub-models, each timed (:mod:`.segments`),
  an injected layer delay spent inside its ops; a model that cannot be cut (several subgraphs)
  has its whole-graph time apportioned by op cost, and the note before the profile says which.

Device paths (``/data/local/tmp/...``) are mapped into the phone's sandbox via the
``PERFLAB_EMU_*`` environment the emulated shell sets. Its output is read by the same parser
as a real phone's (perflab.formats.benchmark_output).

The modules, along the tool's seams:

* :mod:`.run`: the run: set-up, the warm-up and timed phases (timing, pacing, the injected
  delay), memory, outputs; ``main``;
* :mod:`.model`: the interpreter: loading, resizing, inputs, the model's ops and their cost;
* :mod:`.delegates`: which delegate a phone applies and the lines TFLite prints about it;
* :mod:`.opprofile`: the op profile's rows; :mod:`.segments`: the model cut into timed one-op segments;
* :mod:`.output`: what the tool prints and how (log lines, ``count=`` statistics, tables);
* :mod:`.flags`: the flag table; :mod:`.sandbox`: device paths on the host;
* :mod:`.delays`: per-layer delays a test injects; :mod:`.atrace`: the kernel trace a
  traced phone gets.

Nothing is imported here, so ``python -m`` starts with only what the run needs.
"""
