"""Where an accelerator delegate's graph runs on the emulated phone, what its layers cost there,
and the hand-overs around it, all *spent* on the phone's clock (:mod:`.clock`) while the moments
a kernel would trace are stamped as they happen (:class:`Moments`; :mod:`.atrace` writes them as
the kernel's events). Nothing here writes a duration into the trace: what perflab reads back is
what the emulated phone spent, as on a phone.

One invoke of a delegated graph (:meth:`Placement.before`, the layers, :meth:`Placement.after`):

* GPU: the node begins; the GPU delegate builds and flushes its command buffer (the profile's
  ``gpu.costs.switch_to_us``) and submits it (``kgsl_issueibcmds`` on Adreno); the layers run,
  each at least its GPU cost; the GPU's completion irq (``kgsl-3d0``, Mali: its device node);
  ``switch_back_us`` later the caller runs again and the node ends.
* Hexagon (the tool's own fastrpc call to the NPU, ``npu:`` in the profile): the node begins;
  the delegate prepares (:data:`RPC_TIMING`) and sends (``fastrpc_transport_send``); the DSP
  takes the message ``npu.switch_to_us`` later and says so (its glink irq); the layers run, each
  at least its NPU cost; the DSP's answer is its next irq, inside which the kernel prints
  ``fastrpc_transport_response``; ``npu.switch_back_us`` later the caller runs again.
* NNAPI: the delegate calls the NN HAL over binder (:data:`RPC_TIMING`); on a phone with an NPU
  the HAL's binder thread makes the fastrpc round trip above, else the HAL runs the layers at
  the host's time; its reply reaches the caller over binder.

A phone whose profile gives no costs runs the layers at the host's time and spends nothing
but the RPC hand-overs (binder, fastrpc) and the irq handlers."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from perflab.emulator.benchmark_model import clock

if TYPE_CHECKING:
    from perflab.emulator.benchmark_model.model import OpInfo
    from perflab.emulator.profiles import GpuCosts, NpuProfile, Profile

GPU_IRQ_HANDLER_US = 10.0


@dataclass(frozen=True)
class RpcTiming:
    """The phone's fixed hand-over costs inside an accelerator delegate's node that the profile
    does not set (µs), spent by :class:`Placement`.

    NNAPI: the delegate prepares the request (``nnapi_prep_us``) and calls the NN HAL service
    over binder (``binder_wake_us`` until its binder thread has it); on a phone with an NPU the
    HAL calls the DSP over fastrpc after ``hal_to_dsp_us`` and replies ``dsp_to_hal_us`` after
    the caller side of the DSP's answer; the reply reaches the caller ``binder_wake_us`` later
    and the node ends ``return_us`` after that. Hexagon: the delegate calls the cDSP over
    fastrpc ``hexagon_prep_us`` after the node's begin."""

    nnapi_prep_us: float = 45.0
    binder_wake_us: float = 18.0
    hal_to_dsp_us: float = 30.0
    dsp_to_hal_us: float = 25.0
    return_us: float = 35.0
    hexagon_prep_us: float = 40.0
    hexagon_return_us: float = 30.0  # a Hexagon call on a phone whose profile has no npu: section


RPC_TIMING = RpcTiming()


@dataclass
class Moments:
    """One invoke's traced moments on the phone's clock, in order: (seconds, what). ``what``:
    node_begin, node_end, binder_call, binder_got, binder_reply, binder_reply_got, rpc_send,
    rpc_response, dsp_irq, dsp_irq_end, gpu_submit, gpu_irq, gpu_irq_end.

    A cost is spent from when the last moment was due (:meth:`wait` then :meth:`mark`: the next
    moment comes when the clock has passed that plus the costs since), so the reading of the
    clock itself is not added once per step; a moment is stamped with the reading that passed
    its deadline."""

    at: list[tuple[float, str]] = field(default_factory=list)
    _pending_s: float = 0.0
    _due_s: float = 0.0  # when the last moment was due (its stamp is that or a reading later)

    def wait(self, us: float) -> None:
        """Spend ``us`` before the next moment."""
        self._pending_s += max(0.0, us) * 1e-6

    def mark(self, what: str) -> None:
        if self.at and self._pending_s > 0:
            self._due_s += self._pending_s
            now = clock.spend_until(self._due_s)
        else:
            now = self._due_s = clock.now_s()
        self._pending_s = 0.0
        self.at.append((now, what))


@dataclass(frozen=True)
class Placement:
    """An applied accelerator delegate on this phone: per builtin op the least time it lasts
    there (``layer_s``; 0: the host's own time) and the hand-overs around the graph."""

    applied: str  # gpu | nnapi | hexagon
    processor: str  # gpu | npu | hal (NNAPI without an NPU: the HAL's own device, host time)
    layer_s: tuple[float, ...]
    npu: NpuProfile | None = None
    gpu: GpuCosts | None = None
    qualcomm: bool = False

    def _dsp_call(self, m: Moments) -> None:
        """fastrpc send → the DSP's irq when it has the message (an NPU) → the layers follow."""
        m.mark("rpc_send")
        if self.npu is not None:
            m.wait(self.npu.switch_to_us)
            self._dsp_irq(m)

    def _dsp_irq(self, m: Moments, response: bool = False) -> None:
        assert self.npu is not None
        m.mark("dsp_irq")
        m.wait(self.npu.irq_handler_us / 2)
        if response:
            m.mark("rpc_response")
        m.wait(self.npu.irq_handler_us / 2)
        m.mark("dsp_irq_end")

    def _dsp_answer(self, m: Moments) -> None:
        if self.npu is None:
            m.mark("rpc_response")
            return
        self._dsp_irq(m, response=True)
        m.wait(self.npu.switch_back_us)

    def before(self, m: Moments) -> None:
        """From the node's begin to its first layer."""
        t = RPC_TIMING
        m.mark("node_begin")
        if self.applied == "gpu":
            if self.gpu is not None:
                m.wait(self.gpu.switch_to_us)
            m.mark("gpu_submit")
        elif self.applied == "nnapi":
            m.wait(t.nnapi_prep_us)
            m.mark("binder_call")
            m.wait(t.binder_wake_us)
            m.mark("binder_got")
            if self.npu is not None:
                m.wait(t.hal_to_dsp_us)
                self._dsp_call(m)
        else:
            m.wait(t.hexagon_prep_us)
            self._dsp_call(m)

    def after(self, m: Moments) -> None:
        """From the last layer's end to the node's end."""
        t = RPC_TIMING
        if self.applied == "gpu":
            m.mark("gpu_irq")
            m.wait(GPU_IRQ_HANDLER_US)
            m.mark("gpu_irq_end")
            if self.gpu is not None:
                m.wait(self.gpu.switch_back_us)
        elif self.applied == "nnapi":
            if self.npu is not None:
                self._dsp_answer(m)
                m.wait(t.dsp_to_hal_us)
            m.mark("binder_reply")
            m.wait(t.binder_wake_us)
            m.mark("binder_reply_got")
            m.wait(t.return_us)
        else:
            self._dsp_answer(m)
            if self.npu is None:
                m.wait(t.hexagon_return_us)
        m.mark("node_end")


def placement(profile: Profile | None, applied: str | None, builtin: list[OpInfo]) -> Placement | None:
    """Where the delegate ``applied`` runs the graph on this phone; None for the CPU (no
    delegate, XNNPACK). ``profile`` None: the emulator's defaults (no costs, no NPU)."""
    if applied not in ("gpu", "nnapi", "hexagon"):
        return None
    qualcomm = profile is not None and profile.gpu.kind == "kgsl"
    npu = profile.npu if profile is not None and applied in ("nnapi", "hexagon") else None
    gpu = profile.gpu.costs if profile is not None and applied == "gpu" else None
    costs = gpu if gpu is not None else (npu.costs if npu is not None else None)
    layer_s = tuple((costs.layer_us(o.cost) * 1e-6 if costs is not None else 0.0) for o in builtin)
    processor = "gpu" if applied == "gpu" else ("npu" if npu is not None or applied == "hexagon" else "hal")
    return Placement(applied, processor, layer_s, npu=npu, gpu=gpu, qualcomm=qualcomm)
