"""The per-layer records of a cell (``layers`` in results.json): every pass's rows, the trace
statistics and switches, the delegate partition and the aligned table. Part of the results
format, whose history is written in :mod:`perflab.store.results`."""

from __future__ import annotations

from pydantic import Field

from perflab.store.record_base import Rec


class LayerRow(Rec):
    index: int
    node_type: str
    name: str
    avg_ms: float
    first_ms: float | None = None
    pct: float | None = None
    times_called: int | None = None
    method: str | None = None  # op_profile / atrace / differential / estimate (None: the pass's)
    se_ms: float | None = None  # 1σ standard error of avg_ms (differential; atrace on a phone: across its runs)
    ci_lo_ms: float | None = None  # 95% interval of avg_ms (differential: bootstrap over its rounds)
    ci_hi_ms: float | None = None
    macs_per_lr_pixel: int | None = None  # conv multiply-accumulates of the row per LR pixel
    layers: list[str] = Field(default_factory=list)  # the model's (Keras) layers a differential row covers
    # differential: why this row's cost is not a number (its 95% interval too wide, with the figures);
    # shown greyed with its interval, left out of rank checks and comparisons (the pass's other rows stay numbers)
    unresolved: str | None = None


class SumCheckRecord(Rec):
    """The layers' sum against an independently timed whole model."""

    layers_sum_ms: float
    layers_sum_se_ms: float | None = None
    whole_model_ms: float
    whole_model_source: str  # what was timed for the whole model
    diff_pct: float  # (sum − whole) / whole × 100
    tolerance_pct: float
    ok: bool


class VariantTimingRecord(Rec):
    """One timed model variant of the differential profiler."""

    name: str  # prefix01 …, dup:<layer>, whole
    counts: list[int] = Field(default_factory=list)  # how often it runs each row's layer
    time_ms: float
    statistic: str  # what time_ms is: "p10" of raw samples, or "mean" (a tool's summary)
    se_ms: float
    n: int
    residual_ms: float | None = None  # measured − fitted (None: not in the fit)


class RankCheckRecord(Rec):
    """Rank agreement of this pass's rows with another method (Spearman, rows matched by name)."""

    against: str  # op_profile / atrace / macs (the per-layer MACs, a proxy)
    spearman: float | None
    n: int
    same_top: bool  # both put the same row first
    note: str = ""


class PassLoadRecord(Rec):
    """The load on the host and the phone while a pass ran (what could disturb its timings)."""

    host_loadavg_1m_start: float | None = None
    host_loadavg_1m_end: float | None = None
    host_cpu_busy_pct: float | None = None  # all the host's CPUs over the pass (100 = every core busy)
    host_cpus: int | None = None
    phone_loadavg_1m_start: float | None = None
    phone_loadavg_1m_end: float | None = None
    missing: dict[str, str] = Field(default_factory=dict)  # field -> why it could not be read


class LayerPassRecord(Rec):
    """Per-layer times by one method, measured in its own pass (never the timed series)."""

    method: str  # op_profile / atrace / differential / estimate
    source: str  # how, in words (tool, trace file, variants and rounds)
    rows: list[LayerRow] = Field(default_factory=list)
    total_ms: float | None = None
    sum_check: SumCheckRecord | None = None
    variants: list[VariantTimingRecord] = Field(default_factory=list)
    fit_chi2: float | None = None
    fit_dof: int | None = None
    fit_birge: float | None = None  # factor the uncertainties were inflated by (≥ 1)
    rank_checks: list[RankCheckRecord] = Field(default_factory=list)
    notes: list[str] = Field(default_factory=list)
    trace_file: str | None = None  # relative to the run folder
    missing: str | None = None  # why this method has no rows
    # why the rows must not be trusted (a failed sum check, with its figures): shown greyed,
    # left out of rank checks and the aligned table's comparisons
    unreliable: str | None = None
    rounds: int | None = None  # differential: interleaved rounds run
    stop: str | None = None  # differential: why the rounds stopped (converged / max rounds / budget)
    load: PassLoadRecord | None = None


class SwitchSummaryRecord(Rec):
    """Processor switch latency around one delegate node, over the traced inferences (µs)."""

    op: str  # the delegate node, e.g. TfLiteGpuDelegateV2@1/0
    irq_name: str
    via: str  # fastrpc+irq / submit / irq (irq includes the accelerator's own work) / fastrpc / binder
    n: int
    cpu_to_accel_median_us: float
    cpu_to_accel_p90_us: float
    accel_to_cpu_median_us: float
    accel_to_cpu_p90_us: float
    #: where the node's work went as the kernel shows it: npu / gpu / hal (binder to the NN HAL only)
    processor: str | None = None
    #: the accelerator's own time inside the node, where the trace bounds it (fastrpc+irq: the
    #: DSP's first irq → its response; submit: the submission → the last irq); else None
    accel_median_us: float | None = None
    accel_p90_us: float | None = None


class IrqCountRecord(Rec):
    name: str
    count: int
    total_us: float
    max_us: float


class SpanRecord(Rec):
    name: str
    kind: str  # op / delegate / irq
    begin_us: float  # from the inference's begin
    end_us: float
    track: str = ""  # irq: "CPU <n>"; ops: the thread


class InferenceTimelineRecord(Rec):
    """One traced inference (the one nearest the median) as spans on a timeline."""

    index: int
    duration_us: float
    spans: list[SpanRecord] = Field(default_factory=list)


class TraceLatencyRecord(Rec):
    """Latency statistics from the per-inference intervals of a kernel trace."""

    trace_file: str  # relative to the run folder
    n: int = 0
    median_ms: float | None = None
    p90_ms: float | None = None
    mean_ms: float | None = None
    tool_mean_ms: float | None = None  # benchmark_model's own average (or the host timer's mean)
    tool_log_file: str | None = None  # the traced run's own output, relative to the run folder (logs/…trace.log)
    diff_pct: float | None = None  # (trace mean − tool mean) / tool mean × 100
    tolerance_pct: float = 2.0
    ok: bool | None = None
    lost_events: int = 0
    switches: list[SwitchSummaryRecord] = Field(default_factory=list)
    irqs: list[IrqCountRecord] = Field(default_factory=list)  # the 10 costliest by total time
    timeline: InferenceTimelineRecord | None = None  # one inference, for the report
    notes: list[str] = Field(default_factory=list)
    missing: dict[str, str] = Field(default_factory=dict)


class PartitionRow(Rec):
    index: int  # the op's index in the model (execution order)
    op: str
    placement: str  # delegate / cpu / unknown
    reason: str | None = None  # why it fell back (analyzer or tool text)
    source: str  # log / trace / analyzer / host


class PartitionRecord(Rec):
    """Which ops ran on the delegate and which fell back to the CPU, for one cell."""

    delegate: str
    rows: list[PartitionRow] = Field(default_factory=list)
    on_delegate: int = 0
    on_cpu: int = 0
    unknown: int = 0
    partitions: int | None = None
    sources: list[str] = Field(default_factory=list)
    missing: str | None = None


class AlignedOpRecord(Rec):
    """One op of the model and the differential group it belongs to."""

    index: int  # TFLite node index (execution order)
    op: str  # CONV_2D …
    group: str
    how: str  # name (its tensor names name the group's layers) / order (the op before or after) / op


class OpGroupRecord(Rec):
    """A differential group (or, without groups, one op) and the ops it covers."""

    name: str
    layers: list[str] = Field(default_factory=list)  # Keras layers
    ops: list[int] = Field(default_factory=list)  # op indices (AlignedOpRecord.index)


class AlignedCellRecord(Rec):
    """One method's time over one aligned row: the sum of its per-op rows over the row's ops."""

    method: str
    time_ms: float | None = None
    se_ms: float | None = None  # 1σ where the method has one: root-sum-square of its rows' (total: the fit's)
    ops_seen: int = 0  # how many of the row's ops the method timed
    ops_total: int = 0
    missing: str | None = None  # why there is no value
    note: str | None = None  # partial: the ops it did not see, or a spanning row it shares
    flagged: bool = False  # disagrees with another method on this row
    unresolved: str | None = None  # a differential row of this group was not resolved (why): greyed, not a number


class AlignedRowRecord(Rec):
    name: str
    kind: str  # group / span (groups joined by a row that covers several) / total
    groups: list[str] = Field(default_factory=list)
    ops: list[str] = Field(default_factory=list)  # op labels, e.g. CONV_2D@0
    cells: list[AlignedCellRecord] = Field(default_factory=list)  # in AlignedLayersRecord.methods order
    disagreements: list[str] = Field(default_factory=list)  # in words, per disagreeing pair


class AlignedMethodRecord(Rec):
    method: str
    level: str  # group / op / total (one node covers every group) / missing
    total_ms: float | None = None  # the pass's own total
    rows_sum_ms: float | None = None  # the sum of all its rows
    assigned_ms: float | None = None  # the sum of its rows matched to ops (the totals row)
    unmatched: list[str] = Field(default_factory=list)  # rows matched to no op, each with why
    missing: str | None = None
    notes: list[str] = Field(default_factory=list)
    unreliable: str | None = None  # the pass's reason its rows are not to be trusted (greyed, never compared)


class AlignedLayersRecord(Rec):
    """The passes aligned row for row: one row per differential group (the finest level all
    methods share), each method's per-op times summed over the group's ops (analysis.layer_align)."""

    model_file: str  # the model whose ops were read
    ops: list[AlignedOpRecord] = Field(default_factory=list)
    groups: list[OpGroupRecord] = Field(default_factory=list)  # the mapping: which ops each group covers
    methods: list[AlignedMethodRecord] = Field(default_factory=list)  # in the passes' order
    rows: list[AlignedRowRecord] = Field(default_factory=list)  # groups (and spans) in order, then the total
    tolerance_pct: float = 10.0
    se_factor: float = 2.0
    notes: list[str] = Field(default_factory=list)
    missing: str | None = None  # why there is no aligned table (e.g. the model's ops could not be read)


class LayersRecord(Rec):
    source: str  # op profile / ATrace / differential / emulated …; "none" when missing
    total_ms: float | None = None
    rows: list[LayerRow] = Field(default_factory=list)
    missing: str | None = None  # why there are no rows (e.g. the device cannot profile)
    passes: list[LayerPassRecord] = Field(default_factory=list)  # every method, side by side
    trace: TraceLatencyRecord | None = None
    partition: PartitionRecord | None = None
    aligned: AlignedLayersRecord | None = None  # the passes row for row (absent in older files)
