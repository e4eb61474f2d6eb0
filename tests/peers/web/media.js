// Media commands for the page of peer.js (loaded after it by media.html).
//
// Adds to peer.js's `commands`: getUserMedia (Chromium's fake camera and microphone when started
// with --use-fake-device-for-media-stream), addTrack, codec preferences, the degradation
// preference of a sender, transceiver snapshots and getStats() summaries. Every remote track is
// played: video in a muted, autoplaying <video>, audio in a muted <audio>; a "track" event tells
// the test about it.

"use strict";

let localStream = null;
// Elements playing remote tracks, by track id.
const players = new Map();

function onTrack(event) {
  const track = event.track;
  const element = document.createElement(track.kind === "video" ? "video" : "audio");
  element.muted = true;
  element.autoplay = true;
  element.playsInline = true;
  element.srcObject = event.streams.length > 0 ? event.streams[0] : new MediaStream([track]);
  document.body.appendChild(element);
  players.set(track.id, element);
  element.play().catch((error) => {
    emit({ type: "log", level: "warn", text: `play() ${track.kind}: ${error}` });
  });
  emit({
    type: "track",
    kind: track.kind,
    trackId: track.id,
    mid: event.transceiver.mid,
    streams: event.streams.map((s) => s.id),
  });
}

// peer.js makes the RTCPeerConnection in "configure": listen on it as soon as it exists (this
// script may run before or after the first command arrived).
if (pc !== null) {
  pc.addEventListener("track", onTrack);
} else {
  const configureBase = commands.configure;
  commands.configure = (m) => {
    const value = configureBase(m);
    pc.addEventListener("track", onTrack);
    return value;
  };
}

function transceiverInfo(t) {
  return {
    mid: t.mid,
    kind: t.receiver.track.kind,
    direction: t.direction,
    currentDirection: t.currentDirection,
    senderTrack: t.sender.track ? t.sender.track.id : null,
  };
}

// The receiver's codecs with `mimeType` (and, if given, an fmtp line containing every part of
// `fmtp`) first, then their RTX; nothing else, so that no other codec can be negotiated.
function preferredCodecs(kind, mimeType, fmtp) {
  const all = RTCRtpReceiver.getCapabilities(kind).codecs;
  const wanted = all.filter((c) => {
    if (c.mimeType.toLowerCase() !== mimeType.toLowerCase()) {
      return false;
    }
    const line = c.sdpFmtpLine || "";
    return (fmtp || []).every((part) => line.split(";").includes(part));
  });
  if (wanted.length === 0) {
    throw new Error(`no ${mimeType} ${fmtp || ""} among ${all.map((c) => c.mimeType)}`);
  }
  const rtx = all.filter((c) => c.mimeType.toLowerCase() === `${kind}/rtx`);
  return [...wanted, ...rtx];
}

function setCodecPreferences(kind, codec) {
  const codecs = preferredCodecs(kind, codec.mimeType, codec.fmtp);
  let count = 0;
  for (const t of pc.getTransceivers()) {
    if (t.receiver.track.kind === kind) {
      t.setCodecPreferences(codecs);
      count += 1;
    }
  }
  return { count, codecs: codecs.map((c) => `${c.mimeType} ${c.sdpFmtpLine || ""}`.trim()) };
}

async function summarizeStats() {
  const report = await pc.getStats();
  const byId = new Map();
  report.forEach((entry) => byId.set(entry.id, entry));
  const result = { inbound: {}, outbound: {} };
  report.forEach((entry) => {
    if (entry.type === "candidate-pair" && entry.availableOutgoingBitrate !== undefined) {
      result.availableOutgoingBitrate = entry.availableOutgoingBitrate;
    }
    if (entry.type !== "inbound-rtp" && entry.type !== "outbound-rtp") {
      return;
    }
    const codec = entry.codecId ? byId.get(entry.codecId) : undefined;
    const summary = { ...entry, mimeType: codec ? codec.mimeType : null };
    const side = entry.type === "inbound-rtp" ? result.inbound : result.outbound;
    side[entry.kind] = summary;
  });
  return result;
}

Object.assign(commands, {
  async get_user_media(m) {
    localStream = await navigator.mediaDevices.getUserMedia(m.constraints);
    return localStream.getTracks().map((track) => ({
      kind: track.kind,
      id: track.id,
      label: track.label,
      settings: track.getSettings(),
    }));
  },
  // addTrack for every track of the getUserMedia stream; optionally the codec preferences of
  // the transceivers, {video: {mimeType, fmtp: ["part=value", ...]}, audio: {...}}.
  add_tracks(m) {
    if (localStream === null) {
      throw new Error("get_user_media first");
    }
    for (const track of localStream.getTracks()) {
      pc.addTrack(track, localStream);
    }
    const codecs = {};
    for (const [kind, codec] of Object.entries(m.codecs || {})) {
      codecs[kind] = setCodecPreferences(kind, codec);
    }
    return { transceivers: pc.getTransceivers().map(transceiverInfo), codecs };
  },
  set_codec_preferences(m) {
    return setCodecPreferences(m.trackKind, m.codec);
  },
  // The camera's video track sent as simulcast: addTransceiver(track, {sendEncodings}).
  add_simulcast_video(m) {
    if (localStream === null) {
      throw new Error("get_user_media first");
    }
    const [track] = localStream.getVideoTracks();
    pc.addTransceiver(track, {
      direction: "sendonly",
      streams: [localStream],
      sendEncodings: m.encodings,
    });
    return { transceivers: pc.getTransceivers().map(transceiverInfo) };
  },
  // RTCRtpSender.setParameters({degradationPreference}) on every sender with a track of kind
  // `trackKind` ("kind" would clash with the command name on the Python side).
  async set_degradation_preference(m) {
    for (const sender of pc.getSenders()) {
      if (sender.track && sender.track.kind === m.trackKind) {
        const parameters = sender.getParameters();
        parameters.degradationPreference = m.preference;
        await sender.setParameters(parameters);
      }
    }
    return null;
  },
  transceivers() {
    return pc.getTransceivers().map(transceiverInfo);
  },
  // inbound-rtp and outbound-rtp entries by kind (each with its codec's mimeType).
  stats() {
    return summarizeStats();
  },
  // What the elements playing remote tracks show.
  players() {
    return Array.from(players.entries(), ([trackId, element]) => ({
      trackId,
      tag: element.tagName.toLowerCase(),
      paused: element.paused,
      readyState: element.readyState,
      currentTime: element.currentTime,
      videoWidth: element.videoWidth || 0,
      videoHeight: element.videoHeight || 0,
    }));
  },
  stop_tracks() {
    if (localStream !== null) {
      localStream.getTracks().forEach((track) => track.stop());
    }
    return null;
  },
});
