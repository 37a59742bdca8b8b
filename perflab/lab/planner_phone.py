"""The split planner's segments on a phone (issue 23): each segment a benchmark_model run with the
delegate of its processor.

On a phone the two processors are the **GPU** (fp32 segments, the GPU delegate) and the **NPU**
(int8 segments through NNAPI, which on a Snapdragon phone calls the cDSP over fastrpc; the
Hexagon delegate wants quantized inputs, and a segment's tensors are float32). Stock
benchmark_model runs one model with one delegate, so a plan runs as its segments one after the
other, each in its own tool run:

* **time**: a round's sample of a chain is the sum over its segments of the fastest of the run's
  ``iterations`` invokes (the tool's ``min``); each invoke of a delegated segment includes the
  delegate's hand-over in and out (the GPU's command-buffer flush and completion, the fastrpc
  round trip), which is what a switch costs. Not in it: handing the tensor from one segment's
  process to the next (in an app, one buffer in shared memory). Within one group of variants
  a segment is run once per round and its sample shared (``C<p><q>:<k>`` is the prefix ``P<p>:<k>``
  and a suffix); the executed plans are another group, run on their own.
* **inputs**: segment [a, b) is timed on unit a−1's activation of the timing frame (computed on
  the host with the fp32 prefix: an input, not a measurement), the LR frame as ``lr`` where the
  segment reads it; pushed once per content.
* **outputs** (quality): the frame goes through the chain on the phone, each segment's output
  pulled (``--output_filepath``) and pushed as the next one's input.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from perflab.core.types import ModelArtifact
from perflab.devices.capabilities import ShellDevice
from perflab.errors import DeviceBusyError, DeviceError, ModelError, PerflabError
from perflab.lab.lifecycle import StopController
from perflab.lab.planner import Keys, PlanFrame, PlanSettings, Progress, Runner, plan_model
from perflab.workloads.phone import PhoneWorkload, RawInput
from perflab.zoo.segments import SegmentKey, SegmentMaker

#: processor names and the delegate each precision's segments run with
PHONE_PROCESSORS = ("gpu", "npu")
PHONE_DELEGATES = {"fp32": "gpu", "int8": "nnapi"}
TOOL_TIMEOUT_S = 300.0


def _host_interpreter(path: Path) -> Any:
    """LiteRT on the host without its default delegate (XNNPACK would announce itself on stderr):
    for the segments' shapes and the timing inputs, never for a measurement."""
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    return Interpreter(model_path=str(path),
                       experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)


def _is_lr(name: str) -> bool:
    return re.search(r"(^|_)lr(:\d+)?$", name) is not None


class PhoneRunner:
    """Implements perflab.lab.planner.Runner with benchmark_model on one phone."""

    processors = PHONE_PROCESSORS
    timing_method = ("each segment one benchmark_model run on the phone with its processor's delegate (gpu: the "
                     "GPU delegate, fp32; npu: NNAPI, int8); a chain's sample is the sum of its segments' fastest "
                     "invokes (the tool's min), each with its delegate's hand-over, without the tensor's hand-off "
                     "between the segments' processes")

    def __init__(self, maker: SegmentMaker, threads: int, workload: PhoneWorkload,
                 check: Callable[[], None] = lambda: None) -> None:
        self.maker, self.threads, self.workload, self.check = maker, threads, workload, check
        self._arts: dict[SegmentKey, ModelArtifact] = {}
        self._acts: dict[tuple[int, tuple[int, ...]], np.ndarray] = {}
        self._timing_inputs: dict[tuple[SegmentKey, tuple[int, ...]], list[RawInput]] = {}

    # ---- the files

    def _art(self, key: SegmentKey) -> ModelArtifact:
        if key not in self._arts:
            path = self.maker.path(key)
            data = path.read_bytes()
            base = self.maker.art
            self._arts[key] = ModelArtifact(name=f"{base.name}-{path.stem}", family=base.family, variant=key.precision,
                                            scale=base.scale, path=path, sha256=hashlib.sha256(data).hexdigest(),
                                            size_bytes=len(data))
        return self._arts[key]

    def _activation(self, start: int, x: np.ndarray) -> np.ndarray:
        """Unit start−1's fp32 activation of x, on the host (the input segment [start, …) is timed on)."""
        if start == 0:
            return x
        key = (start, tuple(x.shape))
        if key not in self._acts:
            path = self.maker.path(SegmentKey(0, start, "fp32"))
            try:
                it = _host_interpreter(path)
                (d,) = it.get_input_details()  # a prefix short of the tail reads the frame alone
                it.resize_tensor_input(d["index"], list(x.shape), strict=True)
                it.allocate_tensors()
                it.set_tensor(d["index"], np.asarray(x, dtype=np.float32))
                it.invoke()
                act = it.get_tensor(it.get_output_details()[0]["index"])
            except (ValueError, RuntimeError) as exc:
                raise ModelError(f"LiteRT on this machine cannot run {path.name} for the timing input: {exc}") from exc
            self._acts[key] = np.asarray(act, dtype=np.float32)
        return self._acts[key]

    def _inputs(self, key: SegmentKey, act: np.ndarray, lr: np.ndarray) -> tuple[list[RawInput], tuple[int, ...]]:
        """The segment's inputs as raw float32 tensors, and its output's shape at this geometry
        (the host's LiteRT interpreter reads the shapes; nothing is run on the host)."""
        raw: list[RawInput] = []
        try:
            it = _host_interpreter(self.maker.path(key))
            for d in it.get_input_details():
                name = str(d["name"])
                value = lr if _is_lr(name) and len(it.get_input_details()) > 1 else act
                it.resize_tensor_input(d["index"], list(value.shape), strict=True)
                if np.dtype(d["dtype"]) != np.float32:
                    raise ModelError(f"segment {key.file}: input {name} is {np.dtype(d['dtype'])}, expected float32")
                raw.append(RawInput(name, tuple(int(v) for v in value.shape),
                                    np.ascontiguousarray(value, dtype=np.float32).tobytes()))
            it.allocate_tensors()
            out = it.get_output_details()[0]
        except (ValueError, RuntimeError) as exc:
            raise ModelError(f"LiteRT on this machine cannot read segment {key.file} at {act.shape}: {exc}") from exc
        return raw, tuple(int(v) for v in out["shape"])

    # ---- Runner

    def _time_segment(self, key: SegmentKey, x: np.ndarray, iterations: int, warmup: int) -> float:
        if (key, x.shape) not in self._timing_inputs:  # the same every round: read once
            self._timing_inputs[(key, x.shape)] = self._inputs(key, self._activation(key.start, x), x)[0]
        inputs = self._timing_inputs[(key, x.shape)]
        run = self.workload.run_graph(self._art(key), inputs, delegate=PHONE_DELEGATES[key.precision],
                                      threads=self.threads, num_runs=iterations, warmup_runs=warmup,
                                      timeout_s=TOOL_TIMEOUT_S)
        stat = run.output.inference
        summary = None if stat is None else stat.summary()
        if summary is None or summary.min_ms is None:
            raise ModelError(f"benchmark_model printed no fastest inference (min=) for {key.file}")
        return summary.min_ms

    @staticmethod
    def _segments(group: dict[str, Keys], reverse: bool) -> list[SegmentKey]:
        order: dict[SegmentKey, None] = {}
        for keys in group.values():
            for k in keys:
                order.setdefault(k, None)
        segs = list(order)
        return segs[::-1] if reverse else segs

    def warm(self, group: dict[str, Keys], x: np.ndarray, warmup: int) -> None:
        """Each segment pushed and run ``warmup`` times untimed (each timed run warms up once more
        inside the tool)."""
        for key in self._segments(group, False):
            self.check()
            self._time_segment(key, x, max(1, warmup), 0)

    def round(self, group: dict[str, Keys], x: np.ndarray, iterations: int, reverse: bool,
              check: Callable[[], None]) -> dict[str, float]:
        sample: dict[SegmentKey, float] = {}
        for key in self._segments(group, reverse):
            check()
            sample[key] = self._time_segment(key, x, iterations, 1)
        return {name: float(sum(sample[k] for k in keys)) for name, keys in group.items()}

    def output(self, keys: Keys, lr: np.ndarray) -> np.ndarray:
        y = np.asarray(lr, dtype=np.float32)
        for key in keys:
            self.check()
            inputs, shape = self._inputs(key, y, np.asarray(lr, dtype=np.float32))
            run = self.workload.run_graph(self._art(key), inputs, delegate=PHONE_DELEGATES[key.precision],
                                          threads=self.threads, num_runs=1, warmup_runs=0, timeout_s=TOOL_TIMEOUT_S,
                                          want_output=True, keep_inputs=False)
            raw = run.raw_output or b""
            expected = int(np.prod(shape)) * 4
            if len(raw) != expected:
                raise ModelError(f"segment {key.file}: the phone wrote {len(raw)} output bytes, expected {expected} "
                                 f"(float32 {shape})")
            y = np.frombuffer(raw, dtype=np.float32).reshape(shape).copy()
        return y


def phone_runner(workload: PhoneWorkload, check: Callable[[], None]) -> Callable[[SegmentMaker, int], Runner]:
    """The ``runner`` argument of perflab.lab.planner.plan_model for one phone."""

    def make(maker: SegmentMaker, threads: int) -> PhoneRunner:
        return PhoneRunner(maker, threads, workload, check)

    return make


def plan_on_phone(phone: ShellDevice, jobs: Sequence[tuple[ModelArtifact, PlanSettings]],
                  frames: Sequence[PlanFrame], stop: StopController, progress: Progress, note: Progress,
                  plan_id: str, skipped: list[dict[str, str]]) -> list[dict[str, Any]]:
    """Every model planned on the phone: locked and tuned for the pass (``prepare``), the tool's
    run killed on Ctrl-C, the pushed inputs deleted and the phone restored afterwards, also on
    errors and interrupts (a failed restore is said with what to run, never in place of the error
    that ended the pass). A model that cannot be planned (ModelError) lands in ``skipped``;
    ``note`` is said even where progress is quiet."""
    models: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="perflab-plan-") as work:
        workload = PhoneWorkload(phone, Path(work))
        with stop.cancelling(workload.cancel), stop.restoring(phone.restore):
            try:
                phone.prepare(plan_id)
            except DeviceBusyError:  # another perflab holds it: nothing of ours to undo
                raise
            except BaseException:
                _restore(phone, note)
                raise
            try:
                workload.check_ready()
                for art, s in jobs:
                    try:
                        models.append(plan_model(art, frames, s, check=stop.check, progress=progress,
                                                 runner=phone_runner(workload, stop.check)))
                    except ModelError as exc:  # this model cannot run here; the others still can
                        note(f"perflab: {art.name}: not planned on {phone.serial}: {exc}")
                        skipped.append({"model": art.name, "reason": str(exc)})
            finally:
                try:
                    workload.forget_inputs()
                except DeviceError as exc:  # gone: the files stay in perflab's folder on the phone
                    note(f"perflab: [{phone.serial}] pushed inputs not deleted: {exc}")
                finally:
                    _restore(phone, note)
    return models


def _restore(phone: ShellDevice, note: Progress) -> None:
    try:
        phone.restore()
    except PerflabError as exc:
        note(f"perflab: [{phone.serial}] not restored: {exc}. Run `perflab devices restore {phone.serial}` when it "
             "is back.")
