"""Two ICE + DTLS + RTP stacks on 127.0.0.1 with a video (VP8) and an audio (Opus) section, as a
peer connection will wire them for media (the way ``test_rtp_driver.rtp_pair`` builds its pair,
with the sections media tests need)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import attrs
import trio
import trio.lowlevel
from dtls_sim import certs
from ice_helpers import connect_pair

from trio_rtc.dtls.driver import RTCDtlsTransport
from trio_rtc.ice.transport import IceTransportOptions, RTCIceTransport
from trio_rtc.jsep.codecs import NegotiatedCodec, NegotiatedMedia
from trio_rtc.rtp.demux import MediaSection
from trio_rtc.rtp.driver import RtpTransport
from trio_rtc.rtp.extensions import URI_AUDIO_LEVEL, URI_MID, ExtensionMap
from trio_rtc.sdp import Extmap

VP8_PT, OPUS_PT, RTX_PT = 96, 111, 97
MID_ID, LEVEL_ID = 1, 2
VIDEO_MID, AUDIO_MID = "0", "1"
VIDEO = NegotiatedMedia(
    "video",
    codecs=(
        NegotiatedCodec(VP8_PT, "VP8", 90000, rtcp_feedback=("nack", "nack pli")),
        NegotiatedCodec(RTX_PT, "rtx", 90000, parameters={"apt": str(VP8_PT)}),
    ),
    extmaps=(Extmap(MID_ID, URI_MID),),
)
AUDIO = NegotiatedMedia(
    "audio",
    codecs=(NegotiatedCodec(OPUS_PT, "opus", 48000, 2),),
    extmaps=(Extmap(MID_ID, URI_MID), Extmap(LEVEL_ID, URI_AUDIO_LEVEL)),
)
SECTIONS = [
    MediaSection(
        VIDEO_MID, payload_types={VP8_PT}, rtx_payload_types={RTX_PT}, mid_extension_id=MID_ID
    ),
    MediaSection(AUDIO_MID, payload_types={OPUS_PT}, mid_extension_id=MID_ID),
]
EXTMAP = ExtensionMap({MID_ID: URI_MID, LEVEL_ID: URI_AUDIO_LEVEL})


@attrs.define
class MediaPair:
    dtls_a: RTCDtlsTransport
    dtls_b: RTCDtlsTransport
    rtp_a: RtpTransport
    rtp_b: RtpTransport
    nursery: trio.Nursery


@contextlib.asynccontextmanager
async def media_pair() -> AsyncIterator[MediaPair]:
    """Two connected stacks (SRTP keys in place) and a nursery for the media tasks."""
    cert_a, cert_b = certs()
    options = IceTransportOptions(interfaces=["127.0.0.1"], mdns=False)
    async with (
        RTCIceTransport(options=options) as ice_a,
        RTCIceTransport(options=options) as ice_b,
        trio.open_nursery() as nursery,
    ):
        await connect_pair(ice_a, ice_b, trickle=True)
        dtls_a = RTCDtlsTransport(
            ice_a, cert_a, is_client=True, remote_fingerprints=cert_b.getFingerprints()
        )
        dtls_b = RTCDtlsTransport(
            ice_b, cert_b, is_client=False, remote_fingerprints=cert_a.getFingerprints()
        )
        rtp_a = RtpTransport(dtls_a, ice_a, sections=SECTIONS, extension_map=EXTMAP, video=True)
        rtp_b = RtpTransport(dtls_b, ice_b, sections=SECTIONS, extension_map=EXTMAP, video=True)
        for dtls, ice, rtp in ((dtls_a, ice_a, rtp_a), (dtls_b, ice_b, rtp_b)):
            ice.set_rtp_channel(rtp.inbox_send_channel())
            nursery.start_soon(_run_dtls, dtls, ice)
            await nursery.start(rtp.run)
        await rtp_a.wait_until(lambda: rtp_a.state != "new")
        await rtp_b.wait_until(lambda: rtp_b.state != "new")
        yield MediaPair(dtls_a, dtls_b, rtp_a, rtp_b, nursery)
        nursery.cancel_scope.cancel()


async def _run_dtls(dtls: RTCDtlsTransport, ice: RTCIceTransport) -> None:
    await dtls.run(receive_channel=ice.dtls_receive_channel, send_many=ice.send_many)


def task_count() -> int:
    """Every task alive under trio's root task."""

    def walk(task: trio.lowlevel.Task) -> int:
        return 1 + sum(walk(child) for n in task.child_nurseries for child in n.child_tasks)

    return walk(trio.lowlevel.current_root_task())  # type: ignore[arg-type]
