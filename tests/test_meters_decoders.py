"""Meter decoders against byte sequences built from meters.md (no I/O)."""

from __future__ import annotations

import struct

import numpy as np
import pytest

from perflab.telemetry.meters import ppk2, scpi, um

UM25C_HEX = """
09 c9 13 c6 04 7a 00 00 02 44 00 19 00 4d 00 00
00 00 00 01 00 00 00 09 00 00 00 00 00 00 00 00
""" + "00 " * 64 + """
00 01 00 00 00 07 00 00 00 00 00 00 00 00 00 0d
00 00 00 00 00 00 00 02 00 04 00 00 01 b9 00 01
ff f1
"""
UM25C_FRAME = bytes.fromhex(UM25C_HEX)

PPK2_METADATA = """Calibrated: 0
R0: 1003.3506
R1: 101.5865
R2: 10.3027
R3: 0.9636
R4: 0.0564
GS0: 0.0000
GS1: 112.7890
GS2: 18.0115
GS3: 2.4217
GS4: 0.0729
GI0: 1.0000
GI1: 0.9695
GI2: 0.9609
GI3: 0.9519
GI4: 0.9582
O0: 112.9420
O1: 75.4627
O2: 64.6020
O3: 50.4983
O4: 87.2177
VDD: 3000
HW: 9173
mode: 2
S0: 0.000000048
S1: 0.000000596
S2: 0.000005281
S3: 0.000062577
S4: 0.002940743
I0: -0.000000104
I1: -0.000001443
I2: 0.000036439
I3: -0.000374119
I4: -0.009388455
UG0: 1.00
UG1: 1.00
UG2: 1.00
UG3: 1.00
UG4: 1.00
IA: 56
END
"""


def _um34c_frame(volts_raw: int, amps_raw: int) -> bytes:
    frame = bytearray(130)
    struct.pack_into(">HHHI", frame, 0, 0x0D4C, volts_raw, amps_raw, volts_raw * amps_raw // 100)
    struct.pack_into(">I", frame, 106, 1234)
    frame[128] = 0x80
    frame[129] = um.um34c_checksum(bytes(frame))
    return bytes(frame)


def test_um25c_vector_from_meters_md() -> None:
    r = um.decode_frame(UM25C_FRAME)
    assert r.model is um.UmModel.UM25C
    assert r.volts == pytest.approx(5.062)
    assert r.amps == pytest.approx(0.1146)
    assert r.watts == pytest.approx(0.580)
    assert (r.temperature_c, r.temperature_f) == (25, 77)
    assert r.groups[0] == um.UmGroup(charge_mah=1, energy_mwh=9)
    assert r.usb_data_plus_volts == pytest.approx(0.01)
    assert r.charging_mode == "DCP 1.5A"
    assert r.record_threshold_amps == pytest.approx(0.13)
    assert (r.screen_timeout_min, r.brightness, r.screen_index) == (2, 4, 1)
    assert r.load_resistance_ohm == pytest.approx(44.1)


def test_um34c_checksum_and_scaling() -> None:
    frame = _um34c_frame(512, 734)
    r = um.decode_frame(frame)
    assert r.model is um.UmModel.UM34C
    assert r.volts == pytest.approx(5.12) and r.amps == pytest.approx(0.734)
    assert r.record_energy_mwh == 1234
    bad = bytearray(frame)
    bad[129] ^= 0x01
    assert um.frame_model(bytes(bad)) is None
    with pytest.raises(um.UmFrameError):
        um.decode_frame(bytes(bad))


def test_um_stream_resyncs_on_garbage_and_split_reads() -> None:
    f2 = _um34c_frame(500, 100)
    stream = b"\x00\x09\xc9garbage" + UM25C_FRAME + b"\xffjunk\x0d" + f2 + UM25C_FRAME[:77]
    dec = um.UmStreamDecoder()
    got: list[um.UmReading] = []
    for i in range(0, len(stream), 7):
        got += dec.feed(stream[i:i + 7])
    got += dec.feed(UM25C_FRAME[77:])
    assert [g.model for g in got] == [um.UmModel.UM25C, um.UmModel.UM34C, um.UmModel.UM25C]
    assert dec.garbage_bytes == len(b"\x00\x09\xc9garbage") + len(b"\xffjunk\x0d")
    assert dec.pending_bytes == 0


def test_ppk2_metadata_and_formula_vectors() -> None:
    cal = ppk2.parse_metadata(PPK2_METADATA)
    assert cal.r[0] == pytest.approx(1003.3506) and cal.gs[0] == 1.0  # GS0: 0 keeps default (Nordic)
    assert (cal.metadata_vdd_mv, cal.hw, cal.mode, cal.ia) == (3000, 9173, 2, 56)
    wire = bytes.fromhex("d0470000 e8831481 d0c74400 b004fd00")
    words = np.frombuffer(wire, dtype="<u4")
    current_ua = ppk2.words_to_current_ua(words, cal, 3000)
    assert current_ua == pytest.approx([914.066, 4401.924, 105982.540, 940514.788], rel=1e-6)
    assert list(words >> 24) == [0, 0x81, 0, 0]


def test_ppk2_metadata_rejects_other_text() -> None:
    with pytest.raises(ppk2.Ppk2MetadataError):
        ppk2.parse_metadata("+1.0E+00\n")
    assert ppk2.regulator_command(3300) == bytes.fromhex("0d0ce4")
    assert ppk2.regulator_command(100) == bytes.fromhex("0d0320")


def _words(first_counter: int, n: int, adc: int = 1000, rng: int = 2) -> bytes:
    idx = np.arange(n, dtype=np.uint32)
    w = (adc | (rng << 14) | (((first_counter + idx) & 63) << 18)).astype("<u4")
    return w.tobytes()


def test_ppk2_stream_counts_lost_samples_and_garbage() -> None:
    cal = ppk2.Ppk2Calibration()
    dec = ppk2.Ppk2StreamDecoder(cal, 3000)
    # 100 samples, 17 lost, 50 samples, 5 garbage bytes inserted, 60 samples, split oddly
    stream = _words(0, 100) + _words(117, 50) + b"\x12\x34\x56\x78\x9a" + _words(167, 60)
    chunks: list[ppk2.Ppk2Chunk] = []
    for i in range(0, len(stream), 37):
        chunks += dec.feed(stream[i:i + 37])
    assert dec.samples_decoded == 210
    assert dec.samples_lost == 17
    assert dec.gaps == [ppk2.Ppk2Gap(first_index=100, lost_samples=17)]
    assert dec.garbage_bytes == 5
    indices = np.concatenate([c.first_index + np.arange(len(c)) for c in chunks])
    assert indices[99] == 99 and indices[100] == 117 and indices[-1] == 226


def test_ppk2_stream_currents_follow_the_formula() -> None:
    cal = ppk2.parse_metadata(PPK2_METADATA)
    wire = bytes.fromhex("d0470000") + _words(1, 20, adc=1234, rng=3) + _words(21, 20, adc=99, rng=7)
    chunks = ppk2.Ppk2StreamDecoder(cal, 3000).feed(wire)
    current_ua = np.concatenate([c.current_ua for c in chunks])
    expected = ppk2.words_to_current_ua(np.frombuffer(wire, dtype="<u4"), cal, 3000)
    assert current_ua == pytest.approx(expected, rel=1e-12)
    assert current_ua[0] == pytest.approx(914.066, rel=1e-6)
    assert set(np.concatenate([c.range_index for c in chunks]).tolist()) == {1, 3, 4}  # range 7 clamps to 4


def test_ppk2_stream_locks_alignment_after_leading_garbage() -> None:
    dec = ppk2.Ppk2StreamDecoder(ppk2.Ppk2Calibration(), 3000)
    chunks = dec.feed(b"\x01\x02\x03" + _words(40, 20))
    assert sum(len(c) for c in chunks) == 20 and dec.garbage_bytes == 3 and dec.samples_lost == 0


def test_scpi_idn_profiles() -> None:
    idn = scpi.parse_idn("Agilent Technologies,66319D,0,A.03.01\n")
    prof = scpi.profile_for(idn)
    assert prof is not None and prof.family is scpi.ScpiFamily.KEYSIGHT_66319
    n6705 = scpi.profile_for(scpi.parse_idn("Keysight Technologies,N6705C,MY1234,D.01.09"), channel=2)
    assert n6705 is not None and n6705.measure_current == "MEAS:CURR? (@2)" and n6705.supports_elog
    rigol = scpi.profile_for(scpi.parse_idn("RIGOL TECHNOLOGIES,DP832,DP8C1,00.01.14"))
    assert rigol is not None and rigol.family is scpi.ScpiFamily.RIGOL_DP800
    assert scpi.profile_for(scpi.parse_idn("ACME,Toaster 3000,1,1.0")) is None
    with pytest.raises(scpi.ScpiParseError):
        scpi.parse_idn("\x09\xc9\x13garbage")


def test_scpi_numbers_and_nan() -> None:
    assert scpi.parse_number("+1.234560E-01\n") == pytest.approx(0.123456)
    assert scpi.parse_numbers("1.0E-1,2.0E-1, 3.0E-1\n") == pytest.approx([0.1, 0.2, 0.3])
    with pytest.raises(scpi.ScpiParseError):
        scpi.parse_number("9.91E+37")
    with pytest.raises(scpi.ScpiParseError):
        scpi.parse_number("-113,\"Undefined header\"")


def test_scpi_real_block_and_elog_records() -> None:
    values = np.array([0.25, 0.2, 0.3, 0.5, 0.45, 0.55, 4.0, 3.9], dtype=">f4")
    payload = values.tobytes()
    block = b"#2" + str(len(payload)).encode() + payload + b"\n"
    assert scpi.parse_block(block[:10]) is None
    assert scpi.parse_block(block[:-1]) is None  # the newline may still come
    parsed = scpi.parse_block(block + b"rest")
    assert parsed is not None and parsed[1] == len(block)
    decoded = scpi.decode_real_block(parsed[0])
    fields = scpi.elog_fields(current=True, voltage=True, minmax=False)
    assert fields == (scpi.ElogField.CURR_AVG, scpi.ElogField.VOLT_AVG)
    fields = scpi.elog_fields(current=True, voltage=False, minmax=True)
    records = scpi.parse_elog(decoded[:6], fields, first_index=10)
    assert [r.index for r in records] == [10, 11]
    assert records[1].amps == pytest.approx(0.5) and records[1].values[scpi.ElogField.CURR_MAX] == pytest.approx(0.55)
    swapped = scpi.decode_real_block(values.astype("<f4").tobytes(), swapped=True)
    assert swapped == pytest.approx(decoded)
    with pytest.raises(scpi.ScpiParseError):
        scpi.parse_elog(decoded[:5], fields)



def _spike_filter_reference(current: list[float], ranges: list[int]) -> list[float]:
    """Sample by sample, as meters.md §2.5 describes Nordic's filter."""
    avg: float | None = None
    avg4: float | None = None
    prev_range: int | None = None
    after = consecutive = 0
    out: list[float] = []
    for i_ua, r in zip(current, ranges, strict=True):
        before, before4 = avg, avg4
        avg = i_ua if avg is None else 0.18 * i_ua + 0.82 * avg
        avg4 = i_ua if avg4 is None else 0.06 * i_ua + 0.94 * avg4
        if prev_range is None:
            prev_range = r
        value: float | None = i_ua
        if prev_range != r or after > 0:
            if prev_range != r:
                consecutive, after = 0, 3
            else:
                consecutive += 1
            if r == 4:
                if consecutive < 2:
                    avg, avg4 = before, before4
                value = avg4
            else:
                value = avg
            after -= 1
        prev_range = r
        out.append(float("nan") if value is None else value)
    return out


def test_spike_filter_matches_the_sample_by_sample_definition() -> None:
    rng = np.random.default_rng(4)
    n = 5000
    ranges = np.repeat(rng.integers(0, 5, 400), rng.integers(1, 25, 400))[:n].astype(np.uint8)
    current = np.asarray(rng.uniform(1, 1000, ranges.shape[0]) * (10.0 ** ranges), dtype=np.float64)
    expected = _spike_filter_reference(current.tolist(), ranges.tolist())
    filt = ppk2.SpikeFilter()
    got = np.concatenate([filt.apply(current[i:i + 337], ranges[i:i + 337]) for i in range(0, current.size, 337)])
    assert got == pytest.approx(expected, rel=1e-9)
    steady = ppk2.SpikeFilter().apply(np.full(10, 5.0), np.full(10, 2, dtype=np.uint8))
    assert steady.tolist() == [5.0] * 10  # no range change: raw samples pass through
