"""The built-in PyAV encoders and decoders (trio_rtc.media.av_codecs): real pictures and sound
through our encoder, packetizer, frame assembler and decoder, keyframes, rate changes, size
changes, damaged input, and the codec registry."""

from __future__ import annotations

import math
import os
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import av
import pytest

from trio_rtc.jsep.codecs import NegotiatedCodec
from trio_rtc.media import av_codecs
from trio_rtc.media.coding import (
    CodecRegistry,
    DecodeError,
    Decoder,
    Encoder,
    EncoderSettings,
    default_registry,
)
from trio_rtc.media.tracks import OutgoingFrame
from trio_rtc.rtp.codecs import (
    Av1Depacketizer,
    Av1Packetizer,
    Depacketizer,
    EncodedFrame,
    FrameAssembler,
    H264Depacketizer,
    H264Packetizer,
    Packetizer,
    Vp8Depacketizer,
    Vp8Packetizer,
    Vp9Depacketizer,
    Vp9Packetizer,
    packetize_rtp,
)

WIDTH, HEIGHT = 640, 480

# name -> (negotiated codec, packetizer, depacketizer)
VIDEO: dict[str, tuple[NegotiatedCodec, Callable[[], Packetizer], Callable[[], Depacketizer]]] = {
    "vp8": (NegotiatedCodec(96, "VP8", 90000), Vp8Packetizer, Vp8Depacketizer),
    "vp9": (
        NegotiatedCodec(98, "VP9", 90000, parameters={"profile-id": "0"}),
        Vp9Packetizer,
        Vp9Depacketizer,
    ),
    "h264-mode0": (
        NegotiatedCodec(
            102,
            "H264",
            90000,
            parameters={"packetization-mode": "0", "profile-level-id": "42e01f"},
        ),
        lambda: H264Packetizer(0),
        H264Depacketizer,
    ),
    "h264-mode1": (
        NegotiatedCodec(
            104,
            "H264",
            90000,
            parameters={"packetization-mode": "1", "profile-level-id": "42e01f"},
        ),
        lambda: H264Packetizer(1),
        H264Depacketizer,
    ),
    "av1": (NegotiatedCodec(45, "AV1", 90000), Av1Packetizer, Av1Depacketizer),
}

_ROWS: dict[tuple[int, int], list[bytes]] = {}


def _texture(width: int, height: int) -> list[bytes]:
    """Rows twice as wide as the picture: blocks plus ripples, cheap to make once."""
    if (width, height) not in _ROWS:
        wide = 2 * width
        rows = []
        for y in range(height):
            row = bytearray(wide)
            for x in range(wide):
                value = ((x // 16) * 53 + (y // 16) * 37) % 160 + 48
                row[x] = value + int(30 * math.sin(x / 5.0) * math.cos(y / 7.0))
            rows.append(bytes(row))
        _ROWS[(width, height)] = rows
    return _ROWS[(width, height)]


def picture(index: int, width: int = WIDTH, height: int = HEIGHT) -> Any:
    """A moving pattern: each frame slides the texture by a few pixels."""
    frame = av.VideoFrame(width, height, "yuv420p")
    luma = _texture(width, height)
    chroma = _texture(width // 2, height // 2)
    shift = (index * 4) % width
    for plane, rows in zip(frame.planes, (luma, chroma, chroma), strict=True):
        plane_width = len(rows[0]) // 2
        offset = shift if rows is luma else shift // 2
        lines = [rows[y][offset : offset + plane_width] for y in range(plane.height)]
        padding = b"\x80" * (plane.line_size - plane_width)
        plane.update(b"".join(line + padding for line in lines))
    frame.pts = index
    frame.time_base = Fraction(1, 30)
    return frame


def send(
    packetizer: Packetizer,
    assembler: FrameAssembler,
    frames: list[OutgoingFrame],
    max_payload_size: int,
    sequence: int = 0,
) -> list[EncodedFrame]:
    out = []
    for frame in frames:
        assert frame.timestamp is not None
        packets = packetize_rtp(
            packetizer,
            frame.data,
            sequence_number=sequence,
            timestamp=frame.timestamp,
            payload_type=96,
            ssrc=1,
            keyframe=frame.keyframe,
            max_payload_size=max_payload_size,
        )
        sequence += len(packets)
        for packet in packets:
            out += assembler.receive_packet(packet)
    return out


@pytest.mark.parametrize("name", list(VIDEO))
def test_video_round_trip_through_rtp(name: str) -> None:
    codec, make_packetizer, make_depacketizer = VIDEO[name]
    settings = EncoderSettings(max_payload_size=1000)
    encoder = default_registry.create_encoder(codec, settings)
    decoder = default_registry.create_decoder(codec)
    assert encoder.kind == decoder.kind == "video"
    assert encoder.mime_type == decoder.mime_type == f"video/{codec.name}"
    packetizer, assembler = make_packetizer(), FrameAssembler(make_depacketizer())
    encoded: list[OutgoingFrame] = []
    for index in range(8):
        out = encoder.encode(picture(index), keyframe=index == 5)
        assert len(out) == 1  # one encoded frame per picture, no lookahead
        encoded += out
    assert [frame.keyframe for frame in encoded] == [i in (0, 5) for i in range(8)]
    assert [frame.timestamp for frame in encoded] == [i * 3000 for i in range(8)]
    assert all(frame.qp is not None and frame.codec == encoder.mime_type for frame in encoded)
    received = send(packetizer, assembler, encoded, 1000)
    assert len(received) == 8
    for frame in received:
        pictures = decoder.decode(frame)
        assert [(p.width, p.height) for p in pictures] == [(WIDTH, HEIGHT)]  # no frame delay
    encoder.close()
    decoder.close()


def test_h264_mode0_fits_small_payloads_and_has_parameter_sets_on_keyframes() -> None:
    from trio_rtc.rtp.codecs.h264 import split_annex_b

    codec = VIDEO["h264-mode0"][0]
    encoder = av_codecs.H264Encoder(codec, EncoderSettings(max_payload_size=400))
    frames = [encoder.encode(picture(index), keyframe=index == 2)[0] for index in range(3)]
    for frame in frames:
        units = split_annex_b(frame.data)
        assert max(len(unit) for unit in units) <= 400
        types = {unit[0] & 0x1F for unit in units}
        assert 6 not in types  # x264's SEI is dropped
        assert ({7, 8, 5} <= types) == frame.keyframe  # SPS, PPS, IDR slice
    sps = next(u for u in split_annex_b(frames[0].data) if u[0] & 0x1F == 7)
    assert sps[1] == 66 and sps[2] & 0x40  # constrained baseline
    assert sps[3] == 31  # level 3.1, from the fmtp
    encoder.close()


@pytest.mark.parametrize("name", ["vp8", "vp9", "h264-mode1", "av1"])
def test_set_target_halving_the_bitrate_roughly_halves_the_bytes(
    name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(av_codecs, "_REOPEN_INTERVAL", 0.0)  # the test runs faster than 3 s
    codec = VIDEO[name][0]
    encoder = default_registry.create_encoder(codec, EncoderSettings(bitrate=800_000))
    sizes = []
    for index in range(110):
        if index == 50:
            encoder.set_target(bitrate=400_000)
        sizes += [len(frame.data) for frame in encoder.encode(picture(index))]
    before = sum(sizes[5:50]) / 45
    after = sum(sizes[65:110]) / 45
    assert 0.3 < after / before < 0.75, (before, after)
    encoder.close()


@pytest.mark.parametrize("name", ["vp8", "vp9", "h264-mode1", "av1"])
def test_a_new_picture_size_is_a_keyframe_at_that_size(name: str) -> None:
    codec = VIDEO[name][0]
    encoder = default_registry.create_encoder(codec)
    decoder = default_registry.create_decoder(codec)
    sizes = []
    for index in range(5):
        width, height = (WIDTH, HEIGHT) if index < 2 else (320, 240)
        (frame,) = encoder.encode(picture(index, width, height))
        assert frame.keyframe == (index in (0, 2))
        decoded = decoder.decode(EncodedFrame(frame.data, frame.timestamp or 0, True, 0, 0))
        sizes += [(p.width, p.height) for p in decoded]
    assert sizes == [(WIDTH, HEIGHT)] * 2 + [(320, 240)] * 3


@pytest.mark.parametrize("name", ["vp8", "vp9", "h264-mode1", "av1"])
def test_damaged_data_is_a_decode_error_and_the_next_keyframe_decodes(name: str) -> None:
    codec = VIDEO[name][0]
    encoder = default_registry.create_encoder(codec)
    decoder = default_registry.create_decoder(codec)
    first, second, third = (encoder.encode(picture(i), keyframe=i == 2)[0] for i in range(3))

    def frame(data: bytes) -> EncodedFrame:
        return EncodedFrame(data, 0, True, 0, 0)

    assert len(decoder.decode(frame(first.data))) == 1
    # Cut into the headers: a decoder cannot always tell a frame cut in its last partition or
    # tile (VP8, VP9 read it as zeros).
    cut = len(second.data) // 4
    with pytest.raises(DecodeError):
        decoder.decode(frame(second.data[:cut]))
    with pytest.raises(DecodeError):
        decoder.decode(frame(b""))
    assert third.keyframe
    assert [(p.width, p.height) for p in decoder.decode(frame(third.data))] == [(WIDTH, HEIGHT)]


def test_any_pixel_format_and_odd_size_is_accepted() -> None:
    encoder = av_codecs.Vp8Encoder(VIDEO["vp8"][0], EncoderSettings())
    decoder = av_codecs.Vp8Decoder(VIDEO["vp8"][0])
    rgb = picture(0, 320, 240).reformat(width=161, height=121, format="rgb24")
    rgb.pts = None
    (frame,) = encoder.encode(rgb)
    assert rgb.format.name == "rgb24" and rgb.pts is None  # the caller's frame is untouched
    (decoded,) = decoder.decode(EncodedFrame(frame.data, 0, True, 0, 0))
    assert (decoded.width, decoded.height) == (160, 120)


def test_timestamps_without_pts_follow_the_target_framerate() -> None:
    encoder = av_codecs.H264Encoder(VIDEO["h264-mode1"][0], EncoderSettings(framerate=25))
    stamps = []
    for index in range(4):
        frame = picture(index, 160, 120)
        frame.pts = None
        if index == 2:
            encoder.set_target(framerate=10)
        stamps += [out.timestamp for out in encoder.encode(frame)]
    assert stamps == [0, 3600, 12600, 21600]


def test_the_registry_builds_the_builtin_codecs() -> None:
    registry = CodecRegistry()
    cases = [
        (NegotiatedCodec(96, "VP8", 90000), av_codecs.Vp8Encoder, av_codecs.Vp8Decoder),
        (NegotiatedCodec(98, "vp9", 90000), av_codecs.Vp9Encoder, av_codecs.Vp9Decoder),
        (NegotiatedCodec(102, "H264", 90000), av_codecs.H264Encoder, av_codecs.H264Decoder),
        (NegotiatedCodec(45, "AV1", 90000), av_codecs.Av1Encoder, av_codecs.Av1Decoder),
        (NegotiatedCodec(111, "opus", 48000, 2), av_codecs.OpusEncoder, av_codecs.OpusDecoder),
        (NegotiatedCodec(0, "PCMU", 8000), av_codecs.G711Encoder, av_codecs.G711Decoder),
        (NegotiatedCodec(8, "PCMA", 8000), av_codecs.G711Encoder, av_codecs.G711Decoder),
    ]
    for codec, encoder_class, decoder_class in cases:
        encoder = registry.create_encoder(codec)
        decoder = registry.create_decoder(codec)
        assert type(encoder) is encoder_class and type(decoder) is decoder_class
        assert isinstance(encoder, Encoder) and isinstance(decoder, Decoder)
        assert encoder.mime_type.lower() == f"{encoder.kind}/{codec.name}".lower()
        encoder.close()
        decoder.close()
    assert default_registry.can_encode("av1") and default_registry.can_decode("pcma")


def tone(rate: int, layout: str, seconds: float, frequency: float = 440.0) -> list[Any]:
    """s16 sine frames of 10 ms (a capture device's usual size)."""
    channels = 2 if layout == "stereo" else 1
    step = rate // 100
    frames = []
    for start in range(0, int(rate * seconds), step):
        samples = []
        for n in range(start, start + step):
            value = int(12000 * math.sin(2 * math.pi * frequency * n / rate))
            samples += [value] * channels
        frame = av.AudioFrame(format="s16", layout=layout, samples=step)
        frame.planes[0].update(b"".join(v.to_bytes(2, "little", signed=True) for v in samples))
        frame.sample_rate = rate
        frame.pts = start
        frame.time_base = Fraction(1, rate)
        frames.append(frame)
    return frames


def dominant_frequency(frames: list[Any], candidates: tuple[float, ...]) -> float:
    """The candidate with the most energy in the first channel (Goertzel, pure Python)."""
    rate = frames[0].sample_rate
    channels = frames[0].layout.nb_channels
    samples: list[int] = []
    for frame in frames:
        assert frame.format.name == "s16"
        data = bytes(frame.planes[0])[: frame.samples * channels * 2]
        samples += [
            int.from_bytes(data[i : i + 2], "little", signed=True)
            for i in range(0, len(data), 2 * channels)
        ]
    samples = samples[len(samples) // 4 :]  # past the codec's start-up

    def power(frequency: float) -> float:
        coefficient = 2 * math.cos(2 * math.pi * frequency / rate)
        previous = before = 0.0
        for sample in samples:
            previous, before = sample + coefficient * previous - before, previous
        return previous * previous + before * before - coefficient * previous * before

    return max(candidates, key=power)


@pytest.mark.parametrize("stereo", [False, True])
def test_opus_round_trip_resamples_and_keeps_the_pitch(stereo: bool) -> None:
    parameters = {"minptime": "10", "useinbandfec": "1"}
    if stereo:
        parameters["stereo"] = "1"
    codec = NegotiatedCodec(111, "opus", 48000, 2, parameters)
    encoder = default_registry.create_encoder(codec)
    decoder = default_registry.create_decoder(codec)
    assert encoder.kind == "audio" and encoder.mime_type == "audio/opus"
    encoded: list[OutgoingFrame] = []
    for frame in tone(44100, "stereo", 0.5):
        encoded += encoder.encode(frame)
    assert len(encoded) >= 22  # 0.5 s of 20 ms frames, less what the resampler holds back
    assert [frame.timestamp for frame in encoded] == [i * 960 for i in range(len(encoded))]
    assert all(frame.duration == 0.02 and frame.keyframe for frame in encoded)
    decoded = []
    for index, frame in enumerate(encoded):
        decoded += decoder.decode(
            EncodedFrame(frame.data, frame.timestamp or 0, True, index, index)
        )
    assert {(f.sample_rate, f.layout.nb_channels) for f in decoded} == {(48000, 2 if stereo else 1)}
    assert dominant_frequency(decoded, (220.0, 440.0, 660.0, 880.0, 1000.0)) == 440.0
    with pytest.raises(DecodeError):
        decoder.decode(EncodedFrame(b"", 0, True, 0, 0))


def opus_modes(frames: list[OutgoingFrame]) -> set[str]:
    """The coding modes of Opus packets, from their TOC byte (RFC 6716 §3.1: configurations
    0-11 SILK, 12-15 hybrid, 16-31 CELT)."""
    return {
        "silk" if frame.data[0] >> 3 < 12 else "hybrid" if frame.data[0] >> 3 < 16 else "celt"
        for frame in frames
    }


def test_opus_fec_follows_the_loss_the_receiver_reports(monkeypatch: pytest.MonkeyPatch) -> None:
    """In-band FEC lives in SILK: with none or little loss reported a tone is coded in CELT
    (no redundancy to pay for), with 12 % reported in SILK; a loss that falls to half of its
    level keeps the level, a lower one leaves it."""
    monkeypatch.setattr(av_codecs, "_REOPEN_INTERVAL", 0.0)  # the test runs faster than 3 s
    codec = NegotiatedCodec(111, "opus", 48000, 2, {"minptime": "10", "useinbandfec": "1"})
    encoder = default_registry.create_encoder(codec)
    assert isinstance(encoder, av_codecs.OpusEncoder)
    set_packet_loss = encoder.set_packet_loss

    def steady_modes() -> set[str]:
        encoded: list[OutgoingFrame] = []
        for frame in tone(48000, "mono", 1.0):
            encoded += encoder.encode(frame)
        return opus_modes(encoded[-20:])  # past a (re)opened encoder's first frames

    assert steady_modes() == {"celt"}
    set_packet_loss(0.12)
    assert steady_modes() == {"silk"}
    set_packet_loss(0.06)
    assert steady_modes() == {"silk"}
    set_packet_loss(0.02)
    assert steady_modes() == {"celt"}
    set_packet_loss(math.nan)  # ignored
    assert steady_modes() == {"celt"}

    plain = default_registry.create_encoder(NegotiatedCodec(111, "opus", 48000, 2, {}))
    assert isinstance(plain, av_codecs.OpusEncoder)
    plain.set_packet_loss(0.2)  # no FEC negotiated: nothing to size
    encoded = []
    for frame in tone(48000, "mono", 0.5):
        encoded += plain.encode(frame)
    assert opus_modes(encoded) == {"celt"}


@pytest.mark.parametrize("name", ["PCMU", "PCMA"])
def test_g711_round_trip(name: str) -> None:
    codec = NegotiatedCodec(0 if name == "PCMU" else 8, name, 8000)
    encoder = default_registry.create_encoder(codec)
    decoder = default_registry.create_decoder(codec)
    assert encoder.mime_type == decoder.mime_type == f"audio/{name}"
    encoded: list[OutgoingFrame] = []
    for frame in tone(16000, "mono", 0.3):
        encoded += encoder.encode(frame)
    assert len(encoded) >= 13
    assert all(len(frame.data) == 160 and frame.duration == 0.02 for frame in encoded)
    assert [frame.timestamp for frame in encoded] == [i * 160 for i in range(len(encoded))]
    decoded = []
    for frame in encoded:
        decoded += decoder.decode(EncodedFrame(frame.data, frame.timestamp or 0, True, 0, 0))
    assert {(f.sample_rate, f.layout.nb_channels, f.format.name) for f in decoded} == {
        (8000, 1, "s16")
    }
    assert sum(f.samples for f in decoded) == 160 * len(encoded)
    assert dominant_frequency(decoded, (220.0, 440.0, 880.0, 1000.0)) == 440.0


def test_no_codec_leaves_a_thread_real_time() -> None:
    """SVT-AV1 run as root switches its threads (and the one opening it) to SCHED_FIFO 99;
    the encoder puts them back, or a spinning codec thread and every browser started later
    would starve the machine."""
    realtime = {os.SCHED_FIFO, os.SCHED_RR}

    def realtime_threads() -> list[int]:
        found = []
        for name in os.listdir("/proc/self/task"):
            try:
                if os.sched_getscheduler(int(name)) in realtime:
                    found.append(int(name))
            except OSError:
                continue
        return found

    assert realtime_threads() == []
    for name in ("AV1", "VP8", "H264", "VP9"):
        encoder = default_registry.create_encoder(NegotiatedCodec(96, name, 90000))
        for _ in range(3):
            encoder.encode(av.VideoFrame(64, 64, "yuv420p"))
        assert realtime_threads() == [], name
        encoder.close()


@pytest.mark.parametrize("name", ["H264", "VP9", "AV1"])
def test_streams_say_their_colour_space(name: str) -> None:
    """BT.601 limited range is written into the stream, so a browser does not guess BT.709."""
    codec = NegotiatedCodec(96, name, 90000, parameters={"packetization-mode": "1"})
    encoder = default_registry.create_encoder(codec)
    decoder = default_registry.create_decoder(codec)
    pictures = []
    for index in range(3):
        for out in encoder.encode(av.VideoFrame(64, 64, "yuv420p")):
            assert out.timestamp is not None
            frame = EncodedFrame(out.data, out.timestamp, out.keyframe, index, index)
            pictures.extend(decoder.decode(frame))
    encoder.close()
    decoder.close()
    assert pictures
    assert {(p.colorspace, p.color_range) for p in pictures} == {(6, 1)}


def test_a_registry_loading_in_one_thread_is_not_seen_empty_from_another(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The built-in codecs load on first use, possibly from two threads at once (a decoder
    opened in a codec thread while the event loop opens an encoder): the second waits for the
    tables, it never finds them empty."""
    import threading
    import time

    from trio_rtc.media import coding

    loading = threading.Event()
    real = coding.av_available

    def slow_av_available() -> bool:
        loading.set()
        time.sleep(0.2)
        return real()

    monkeypatch.setattr(coding, "av_available", slow_av_available)
    registry = CodecRegistry()
    first = threading.Thread(target=registry.can_decode, args=("opus",))
    first.start()
    assert loading.wait(5)
    assert registry.can_encode("VP8")  # while the first thread is still loading
    first.join()
